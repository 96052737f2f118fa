#include "runtime/train/TrainingWindows.h"

#include <algorithm>
#include <random>

#include "runtime/Attention.h"

namespace attn::train {

WindowMode parseWindowMode(const std::string& name) {
  if (name == "random") return WindowMode::Random;
  if (name == "aligned") return WindowMode::Aligned;
  throw UserError("--windows: unknown mode '" + name + "' (expected random or aligned)");
}

std::string windowModeName(WindowMode mode) { return mode == WindowMode::Aligned ? "aligned" : "random"; }

std::vector<int64_t> alignedWindowStarts(const data::TokenStream& tokens, uint32_t endOfText, int64_t T) {
  if (T < 1) throw UserError("--windows aligned: the window must hold at least one token");
  const int64_t size = tokens.size();
  const int64_t lastStart = size - T - 1;  // the last start whose window (T + 1 tokens) fits
  std::vector<int64_t> starts;
  // Read in blocks: TokenStream::copy releases the mapped pages it read, so resident memory
  // stays one block whatever the size of the stream.
  const int64_t block = int64_t{1} << 20;
  std::vector<uint16_t> buffer(static_cast<size_t>(std::min(block, std::max<int64_t>(size, 1))));
  int64_t document = -1;  // the start of the document being read (-1: none yet)
  auto cut = [&](int64_t from, int64_t to) {  // the document [from, to): starts from, from + T, ...
    for (int64_t s = from; s < to && s <= lastStart; s += T) starts.push_back(s);
  };
  for (int64_t at = 0; at < size; at += block) {
    const int64_t n = std::min(block, size - at);
    tokens.copy(at, n, buffer.data());
    for (int64_t i = 0; i < n; ++i) {
      if (buffer[static_cast<size_t>(i)] != endOfText) continue;
      if (document >= 0) cut(document, at + i);
      document = at + i;
    }
  }
  if (document >= 0) cut(document, size);
  if (starts.empty())
    throw UserError("--windows aligned: the training data has no document start (token " + std::to_string(endOfText) +
                    ", <|endoftext|>) followed by " + std::to_string(T + 1) + " tokens, so no window of " +
                    std::to_string(T) + " can start at one");
  return starts;
}

std::vector<int64_t> drawWindowStarts(int64_t count, uint64_t seed, int64_t step, int64_t micro, int64_t streamSize,
                                      int64_t T, const std::vector<int64_t>* aligned) {
  // The generator and the draws of random offsets are those attn train made before
  // --windows existed, so a run of the default mode trains on the same batches as before.
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step) * 1000003ULL +
                      static_cast<uint64_t>(micro));
  std::vector<int64_t> starts(static_cast<size_t>(count));
  if (aligned) {
    if (aligned->empty()) throw UserError("--windows aligned: no place for a window to start");
    std::uniform_int_distribution<size_t> pick(0, aligned->size() - 1);
    for (int64_t& s : starts) s = (*aligned)[pick(rng)];
  } else {
    std::uniform_int_distribution<int64_t> start(0, streamSize - T - 1);
    for (int64_t& s : starts) s = start(rng);
  }
  return starts;
}

}  // namespace attn::train
