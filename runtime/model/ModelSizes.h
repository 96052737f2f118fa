// The GPT-2 sizes attn trains, by name and by flags (--layers --heads --width), in a header
// without LibTorch: the light CLI checks a size before LibTorch is loaded, the model builds
// from it, and the parameter count is the model's own formula (tests check it against the
// parameters LibTorch allocates).
//
// The named sizes: tiny and small for the CPU; 124m is GPT-2 small (the paper's model); 45m
// and 355m are the other sizes the paper mentions ("45M-355M parameters") without giving
// their shapes. 355m is GPT-2 medium (24 layers, 16 heads, 1024 wide); 45m is taken as 6
// layers, 8 heads, 512 wide, the GPT-2-style shape whose count is 45M with GPT-2's vocabulary
// (an assumption, said so in docs/TRAINING.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace attn::model {

struct ModelSize {
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t width = 0;
  int64_t seqLen = 0;  ///< the training length the size is trained at by default
};

/// "tiny", "small", "45m", "124m", "355m"; nullopt otherwise.
inline std::optional<ModelSize> namedModelSize(const std::string& name) {
  if (name == "tiny") return ModelSize{4, 4, 128, 256};
  if (name == "small") return ModelSize{6, 6, 384, 512};
  if (name == "45m") return ModelSize{6, 8, 512, 1024};
  if (name == "124m") return ModelSize{12, 12, 768, 1024};
  if (name == "355m") return ModelSize{24, 16, 1024, 1024};
  return std::nullopt;
}

constexpr const char* kModelSizeNames = "tiny, small, 45m, 124m or 355m";

/// The largest sizes accepted from flags: past them a value is a typo, and the parameter
/// count alone would exhaust memory before the model could say so.
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxHeads = 1024;
constexpr int64_t kMaxWidth = 65536;

/// Why layers / heads / width cannot make a model ("" when they can): each at least 1 and
/// at most its maximum, width a multiple of heads, and the head dimension even (RoPE
/// rotates pairs). Names the flag: "--width 100 is not a multiple of --heads 3".
inline std::string modelSizeProblem(int64_t layers, int64_t heads, int64_t width) {
  if (layers < 1 || layers > kMaxLayers) return "--layers " + std::to_string(layers) + " is not between 1 and " + std::to_string(kMaxLayers);
  if (heads < 1 || heads > kMaxHeads) return "--heads " + std::to_string(heads) + " is not between 1 and " + std::to_string(kMaxHeads);
  if (width < 1 || width > kMaxWidth) return "--width " + std::to_string(width) + " is not between 1 and " + std::to_string(kMaxWidth);
  if (width % heads != 0)
    return "--width " + std::to_string(width) + " is not a multiple of --heads " + std::to_string(heads);
  if ((width / heads) % 2 != 0)
    return "--width " + std::to_string(width) + " / --heads " + std::to_string(heads) + " = head dimension " +
           std::to_string(width / heads) + ", which must be even (RoPE rotates pairs of dimensions)";
  return "";
}

/// Parameters of the model (runtime/model/Gpt2.h): the tied token embedding (vocab x width,
/// no position embedding: RoPE), per layer two LayerNorms (2 x 2 width), the qkv projection
/// (3 width^2 + 3 width), the attention output (width^2 + width), the MLP (4 width^2 + 4 width
/// and 4 width^2 + width), and the final LayerNorm (2 width).
inline int64_t parameterCount(int64_t layers, int64_t width, int64_t vocab) {
  const int64_t perLayer = 12 * width * width + 13 * width;
  return vocab * width + layers * perLayer + 2 * width;
}

}  // namespace attn::model
