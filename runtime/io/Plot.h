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

/// Writes `png` (log2 x axis, one line per curve). Returns an empty string on success, else
/// what went wrong, for the caller to report.
std::string plotLossCurves(const std::vector<LossCurve>& curves, const std::string& png, const std::string& title);

}  // namespace attn::io
