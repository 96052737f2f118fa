#include "runtime/io/Plot.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "support/AtomicWrite.h"
#include "support/FileError.h"
#include "support/Subprocess.h"

namespace attn::io {

namespace {

// gnuplot draws a small plot in well under a second; a hung one is killed.
constexpr double kGnuplotSeconds = 60;

std::string number(double v) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

}  // namespace

std::string gnuplotQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\'')
      out += "''";
    else if (u < 0x20 || u == 0x7f)
      out += ' ';
    else
      out += c;
  }
  return out + "'";
}

std::string gnuplotScript(const std::vector<LossCurve>& curves, const std::string& title, const PlotAxes& axes) {
  std::string script = "set terminal pngcairo size 900,560 noenhanced\nset output\n";
  script += "$attn_losses << EOD\n";
  for (const LossCurve& curve : curves) {
    for (const auto& [x, y] : curve.points) script += number(x) + " " + number(y) + "\n";
    script += "\n\n";  // the next data set (index c + 1)
  }
  script += "EOD\n";
  script += "set title " + gnuplotQuote(title) + "\n";
  if (axes.logX) script += "set logscale x 2\n";
  script += "set xlabel " + gnuplotQuote(axes.xlabel) + "\n";
  script += "set ylabel 'validation loss (nats)'\nset grid\nset key top left noenhanced\n";
  script += "plot ";
  for (size_t c = 0; c < curves.size(); ++c) {
    script += std::string(c ? ", " : "") + "$attn_losses index " + std::to_string(c) +
              " using 1:2 with linespoints title " + gnuplotQuote(curves[c].label) + " noenhanced";
  }
  return script + "\n";
}

std::string plotLossCurves(const std::vector<LossCurve>& curves, const std::string& png,
                           const std::string& title, const PlotAxes& axes) {
  if (curves.empty()) return "nothing to plot into '" + png + "'";
  for (const LossCurve& curve : curves) {
    if (curve.points.empty()) return "'" + curve.label + "' has no points to plot";
    for (const auto& [x, y] : curve.points) {
      if (!std::isfinite(x) || (axes.logX && x <= 0))
        return "'" + curve.label + "': x = " + number(x) + " is not " + (axes.logX ? "a positive multiple" : "finite");
      if (!std::isfinite(y))
        return "'" + curve.label + "': the loss at " + number(x) + "x is " + number(y) +
               ", not a finite number";
    }
  }
  support::SubprocessOptions options;
  options.timeoutSeconds = kGnuplotSeconds;
  const support::SubprocessResult r =
      support::runSubprocess({"gnuplot"}, gnuplotScript(curves, title, axes), options);
  if (!r.started)
    return "cannot run gnuplot: " + r.startError + " (install gnuplot-nox, which attn plots with)";
  std::string detail = r.err;
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
  if (r.timedOut)
    return "gnuplot did not finish within " + number(kGnuplotSeconds) +
           " s; nothing was written to '" + png + "'";
  if (r.outputTooLarge)
    return "gnuplot wrote an implausibly large PNG; nothing was written to '" + png + "'";
  if (r.signal != 0)
    return "gnuplot was killed by signal " + std::to_string(r.signal) +
           "; nothing was written to '" + png + "'";
  if (r.exitStatus != 0) {
    return "gnuplot failed (exit status " + std::to_string(r.exitStatus) + ")" +
           (detail.empty() ? std::string() : ": " + detail) + "; nothing was written to '" + png +
           "'";
  }
  if (r.out.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) {
    return "gnuplot did not produce a PNG (is its pngcairo terminal available? gnuplot-nox has "
           "it)" +
           (detail.empty() ? std::string() : ": " + detail);
  }
  try {
    support::writeFileAtomically(png, r.out);
  } catch (const support::FileError& e) {
    return e.what();
  }
  return "";
}

}  // namespace attn::io
