// Validation loss against evaluation length, drawn by gnuplot as a PNG: the one plotting
// routine behind `attn eval --plot` and `attn plot`.
//
// gnuplot is run without a shell (support/Subprocess.h: an argument vector, the script on
// its standard input, a deadline, its exit status checked). The script holds no path at all:
// the data are an inline datablock of numbers, and the PNG comes back on gnuplot's standard
// output, which is then written to `png` atomically (support/AtomicWrite.h). Every string
// that does appear (the title, the curves' labels) is a gnuplot single-quoted string, in
// which gnuplot expands nothing (no backquotes, no @macros), with its apostrophes doubled
// and its control characters (a newline would end the command) made spaces; the terminal
// is noenhanced, so no markup is read from them either.
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
/// wrong (naming the file or gnuplot), for the caller to report as a user error: gnuplot
/// missing, failing or too slow, a point that is not a finite x (a positive one on a log2
/// axis) or a finite loss, a PNG that cannot be written. `png` is untouched unless a whole
/// PNG came back.
std::string plotLossCurves(const std::vector<LossCurve>& curves, const std::string& png,
                           const std::string& title, const PlotAxes& axes = {});

/// `text` as a gnuplot single-quoted string literal that gnuplot reads as data, never code
/// (see above). Exposed for the tests.
std::string gnuplotQuote(const std::string& text);

/// The whole gnuplot script plotLossCurves runs (it writes the PNG to standard output).
std::string gnuplotScript(const std::vector<LossCurve>& curves, const std::string& title,
                          const PlotAxes& axes = {});

}  // namespace attn::io
