// Autotuning of the tensor-core kernels' tile (issue 7's `attn tune`): which tile
// configurations to try, and the table of winners kept beside the kernel cache.
//
// A winner is kept per (program with its params, dtype, head dims, length bucket,
// architecture) in <cache>/cuda/tuning.txt, one readable line each:
//   program=lssar_p15 dtype=bf16 d=64 dv=64 L=4096 sm=90 tile=m64n64w4s2 ms=1.234
// The CUDA op looks its tile up there (the default tile when there is no line); `attn tune`
// times the candidates on the GPU and writes the lines. Choosing is not done here: this
// file has no GPU code.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "codegen/cuda/CudaCodegen.h"

namespace attn::cuda {

/// Dynamic shared memory one block may use on sm_<arch> (the opt-in maximum).
int sharedMemoryLimit(int arch);

/// The tiles autotuning tries for `options` on sm_<arch>: every one whose tensor-core
/// kernels fit the architecture's shared memory (the gradient kernel's needs `rowFloats`,
/// see tensorCoreGradientSharedBytes), the default first.
std::vector<TileConfig> candidateTiles(const CudaOptions& options, int arch, int rowFloats);

/// The length bucket a tuned tile serves: the power of two >= L, within [256, 65536].
int64_t lengthBucket(int64_t length);

struct TuningKey {
  std::string program;  ///< the program's name and params, as in its kernel-cache key (lssar_p15)
  std::string dtype;    ///< "f16" | "bf16"
  int headDim = 0, valueDim = 0;
  int64_t bucket = 0;   ///< lengthBucket(L)
  int arch = 0;
  std::string text() const;  ///< "program=... dtype=... d=... dv=... L=... sm=..."
};

class TuningTable {
 public:
  explicit TuningTable(std::string path);
  /// <cache root>/cuda/tuning.txt.
  static std::string defaultPath();
  /// Reads the file; a missing file is an empty table, a line that does not parse is
  /// skipped and counted in `skipped`. A file that cannot be used (not a regular file, over
  /// 16 MiB, unreadable) is an empty table too, and `warning` says why.
  void load(int* skipped = nullptr, std::string* warning = nullptr);
  std::optional<TileConfig> find(const TuningKey& key) const;
  void set(const TuningKey& key, const TileConfig& tile, double milliseconds);
  /// Writes the whole table atomically; false and `warning` when it cannot.
  bool save(std::string* warning = nullptr) const;
  const std::string& path() const { return path_; }
  size_t size() const { return entries_.size(); }

 private:
  std::string path_;
  std::map<std::string, std::pair<TileConfig, double>> entries_;  // key text -> (tile, ms)
};

}  // namespace attn::cuda
