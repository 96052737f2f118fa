// How evaluation cuts text into windows (runtime/train/Evaluate.h, protocols same-tokens and
// stream), in a header without LibTorch: `attn eval` scores these windows and `attn data
// inspect` counts them, so the counts it prints are the windows eval will run.
#pragma once

#include <cstdint>
#include <vector>

namespace attn::train {

/// One window over a unit (a document or a stream chunk): inputs unit[start, start + L),
/// targets unit[start + 1, start + L]; only targets at window positions >= scoreFrom count.
struct WindowCut {
  int64_t start = 0;
  int64_t scoreFrom = 0;
};

/// Windows of L tokens that score targets 1..span of a unit, each exactly once: span / L
/// whole windows, and when L does not divide span, one more ending at span that scores only
/// the targets the others left (it starts earlier, so its context overlaps the previous one).
inline std::vector<WindowCut> cutIntoWindows(int64_t L, int64_t span) {
  std::vector<WindowCut> cuts;
  int64_t start = 0;
  for (; start + L <= span; start += L) cuts.push_back({start, 0});
  if (start < span) cuts.push_back({span - L, start - (span - L)});
  return cuts;
}

/// The units same-tokens evaluation takes: the indices of the first `maxUnits` documents
/// (0: all) of at least longest + 1 tokens, in order.
inline std::vector<int64_t> sameTokensUnits(const std::vector<int64_t>& documentLengths, int64_t longest,
                                            int64_t maxUnits) {
  std::vector<int64_t> units;
  for (int64_t d = 0; d < static_cast<int64_t>(documentLengths.size()); ++d) {
    if (maxUnits > 0 && static_cast<int64_t>(units.size()) >= maxUnits) break;
    if (documentLengths[static_cast<size_t>(d)] >= longest + 1) units.push_back(d);
  }
  return units;
}

}  // namespace attn::train
