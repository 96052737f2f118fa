// Evaluation lengths as the CLI takes them: "4x" is four times the training length. Shared
// by the light CLI (to refuse a bad flag with exit 2 before LibTorch is loaded) and by
// evaluation and the passkey test (the same rule for library callers).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace attn::train {

/// The largest multiple accepted: 1024x (beyond it no corpus or memory would do).
constexpr int64_t kMaxLengthMultiple = 1024;

/// "16x" -> 16. Digits then 'x', the number in [1, kMaxLengthMultiple]; anything else
/// ("0x", "-1x", "4.5x", "x", "4", "1e3x") is nullopt.
inline std::optional<int64_t> parseLengthMultiple(const std::string& spec) {
  if (spec.size() < 2 || spec.back() != 'x' || spec.size() > 6) return std::nullopt;
  int64_t n = 0;
  for (size_t i = 0; i + 1 < spec.size(); ++i) {
    if (spec[i] < '0' || spec[i] > '9') return std::nullopt;
    n = n * 10 + (spec[i] - '0');
  }
  if (n < 1 || n > kMaxLengthMultiple) return std::nullopt;
  return n;
}

}  // namespace attn::train
