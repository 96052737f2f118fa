// The fixed CUDA code of the backend: the .cuh files under codegen/cuda/skeleton/,
// embedded in the binary at build time (cmake/EmbedFiles.cmake) and handed to NVRTC by
// name, so a generated source can `#include "scalar_prelude.cuh"`.
#pragma once

#include <string>
#include <vector>

namespace attn::cuda {

struct SkeletonFile {
  const char* name;  ///< e.g. "scalar_prelude.cuh"
  const char* text;
};

/// Every skeleton header, in a fixed order.
const std::vector<SkeletonFile>& skeletonFiles();

}  // namespace attn::cuda
