#include "runtime/io/Plot.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace attn::io {

std::string plotLossCurves(const std::vector<LossCurve>& curves, const std::string& png, const std::string& title,
                           const PlotAxes& axes) {
  const std::string dat = png + ".dat";
  std::string plots;
  {
    std::ofstream data(dat);
    if (!data) return "cannot write '" + dat + "'";
    for (size_t c = 0; c < curves.size(); ++c) {
      for (const auto& [x, y] : curves[c].points) data << x << ' ' << y << '\n';
      data << "\n\n";  // gnuplot: the next data set (index c + 1)
      plots += std::string(c ? ", " : "") + "'" + dat + "' index " + std::to_string(c) +
               " using 1:2 with linespoints title '" + curves[c].label + "'";
    }
  }
  const std::string script = "set terminal pngcairo size 900,560 noenhanced; set output '" + png + "'; set title '" +
                             title + "'; " + (axes.logX ? "set logscale x 2; " : "") + "set xlabel '" + axes.xlabel + "'; "
                             "set ylabel 'validation loss (nats)'; set grid; set key top left; plot " + plots;
  const std::string command = "gnuplot -e \"" + script + "\"";
  const int status = std::system(command.c_str());
  std::remove(dat.c_str());
  if (status != 0) return "gnuplot could not write '" + png + "' (is gnuplot-nox installed?)";
  return "";
}

}  // namespace attn::io
