// `attn tune`: autotuning of the CUDA backend's tensor-core tile for one program.
#pragma once

#include <string>
#include <vector>

namespace attn::cli {

struct TuneOptions {
  std::string file, name;
  std::vector<std::string> sets;
  std::string dtype = "bf16";
  int headDim = 64, valueDim = 0;       // 0: = headDim
  std::string arch = "sm_90";           // --compile-only; otherwise the GPU's
  std::string lengths = "1024,4096,16384";
  int repeats = 5;
  bool compileOnly = false;
};

/// Compiles every candidate tile (registers, spills, shared memory); without
/// --compile-only, times forward + backward of each on the GPU per length bucket and writes
/// the winners to the tuning table (codegen/cuda/Tuning.h), which `--backend cuda` reads.
/// Returns the exit status.
int runTune(const TuneOptions& options);

}  // namespace attn::cli
