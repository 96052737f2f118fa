// Validation loss against evaluation length, drawn by gnuplot as a PNG: the one plotting
// routine behind `attn eval --plot` and `attn plot`.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace attn::io {

struct LossCurve {
  std::string label;
  std::map<double, double> points;  ///< length multiple (1, 2, 4 ...) -> loss
};

/// The x axis: its label, and whether it is log2 (lengths) or linear (positions).
struct PlotAxes {
  std::string xlabel = "evaluation length / training length";
  bool logX = true;
};

/// Writes `png` (one line per curve). Returns an empty string on success, else what went
/// wrong, for the caller to report.
std::string plotLossCurves(const std::vector<LossCurve>& curves, const std::string& png, const std::string& title,
                           const PlotAxes& axes = {});

}  // namespace attn::io
