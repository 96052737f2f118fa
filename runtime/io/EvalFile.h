// Reading `attn eval` result files for plotting and reports, whatever their version:
//   version 1 (before the evaluation protocols): {"1x": loss, "2x": loss, ...}
//   version 2: {"format": "attn-eval", "version": 2, "lengths": [{"length": "1x", "loss": ...,
//              "per_position": {"bucket": B, "loss": [...], "tokens": [...]}}, ...], ...}
// (runtime/train/Evaluate.h writes version 2). Every malformed file is an EvalFileError
// naming the file and what is wrong. No LibTorch, no gnuplot: series only (Plot.h draws).
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/io/Plot.h"

namespace attn::io {

class EvalFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EvalPoint {
  std::string spec;  ///< "4x"
  double multiple = 0;
  double loss = 0;
  int64_t bucket = 0;                 ///< per-position bucket width; 0: none in the file
  std::vector<double> positionLoss;   ///< NaN where a bucket had no token
};

struct EvalFile {
  int version = 1;
  std::string protocol;  ///< "" for version 1 (it was first-window)
  std::vector<EvalPoint> points;  ///< in the file's order
};

EvalFile readEvalFile(const std::string& path);

/// Loss against length multiple.
LossCurve lengthCurve(const EvalFile& file, const std::string& label);

/// One curve per length with per-position losses: x the middle of each bucket (tokens).
/// EvalFileError when the file has none (not made with --per-position).
std::vector<LossCurve> positionCurves(const EvalFile& file, const std::string& label);

}  // namespace attn::io
