#include "runtime/data/PasskeyTask.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "runtime/data/DataError.h"
#include "runtime/data/TextTokenizer.h"

namespace attn::data {

namespace {

const char* const kRepeatedFiller = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

void append(std::vector<uint32_t>& out, const std::vector<uint32_t>& piece) { out.insert(out.end(), piece.begin(), piece.end()); }

}  // namespace

FillerKind parseFillerKind(const std::string& name) {
  if (name == "text") return FillerKind::Text;
  if (name == "repeat") return FillerKind::Repeat;
  if (name == "copy") return FillerKind::Copy;
  throw DataError("unknown filler '" + name + "' (expected text, repeat or copy)");
}

std::string fillerName(FillerKind kind) {
  switch (kind) {
    case FillerKind::Text: return "text";
    case FillerKind::Repeat: return "repeat";
    case FillerKind::Copy: return "copy";
  }
  return "?";
}

PasskeyTask::PasskeyTask(const TextTokenizer& tokenizer, FillerKind filler,
                         const std::vector<std::vector<uint16_t>>* documents, int digits)
    : tokenizer_(tokenizer), filler_(filler), digits_(digits) {
  if (digits < 1 || digits > 18) throw DataError("a pass key has 1 to 18 digits, not " + std::to_string(digits));
  repeated_ = tokenizer.encode(kRepeatedFiller);
  if (filler == FillerKind::Text) {
    if (!documents) throw DataError("text filler needs documents");
    for (const auto& d : *documents)
      for (uint16_t t : d)
        if (t != tokenizer.endOfText()) text_.push_back(t);
    if (text_.empty()) throw DataError("the filler documents hold no text tokens");
  }
  if (filler == FillerKind::Copy) {
    for (uint32_t id = 0; id < tokenizer.vocabSize(); ++id) {
      if (id == tokenizer.endOfText()) continue;
      const std::string piece = tokenizer.decode({id});
      const bool plain = !piece.empty() && std::all_of(piece.begin(), piece.end(), [](char c) {
        return c >= 0x20 && c <= 0x7e && !(c >= '0' && c <= '9');
      });
      if (plain) alphabet_.push_back(id);
    }
    // Every byte-level tokenizer has the printable ASCII bytes; fewer means words would repeat.
    if (alphabet_.size() < 16) throw DataError("copy filler: the tokenizer has fewer than 16 printable tokens");
  }
}

int64_t PasskeyTask::minimumLength() const {
  const std::string key(static_cast<size_t>(digits_), '1');
  const int64_t fixed = 1 + static_cast<int64_t>(tokenizer_.encode(" The pass key is ").size() +
                                                 3 * tokenizer_.encode(key).size() +
                                                 tokenizer_.encode(". Remember it. ").size() +
                                                 tokenizer_.encode(" is the pass key. ").size() +
                                                 tokenizer_.encode(" What is the pass key? The pass key is ").size());
  return fixed + 1;
}

// `count` filler tokens: a stretch of the documents (ids <eot> skipped, wrapping around
// their end) from a place drawn from the seed, the repeated sentences from a drawn phase,
// or recurring random words (copy).
std::vector<uint32_t> PasskeyTask::fillerTokens(int64_t count, uint64_t seed) const {
  std::mt19937_64 rng(seed ^ 0x5DEECE66DULL);
  std::vector<uint32_t> out;
  out.reserve(static_cast<size_t>(count));
  if (filler_ == FillerKind::Copy) {
    // 2 .. max(2, count / 10) words of 2-6 tokens: about count / 4 words said, so each word
    // recurs at least 2.5 times on average, at distances from a few tokens (few words) to
    // most of the filler (many), the range retrieval needs.
    const uint64_t most = static_cast<uint64_t>(std::max<int64_t>(2, count / 10));
    const uint64_t words = 2 + rng() % (most - 1);
    std::vector<std::vector<uint32_t>> vocabulary(static_cast<size_t>(words));
    for (auto& word : vocabulary) {
      const uint64_t length = 2 + rng() % 5;
      for (uint64_t k = 0; k < length; ++k) word.push_back(alphabet_[rng() % alphabet_.size()]);
    }
    while (static_cast<int64_t>(out.size()) < count) {
      const auto& word = vocabulary[rng() % words];
      for (size_t k = 0; k < word.size() && static_cast<int64_t>(out.size()) < count; ++k) out.push_back(word[k]);
    }
    return out;
  }
  if (filler_ == FillerKind::Repeat) {
    size_t at = static_cast<size_t>(rng() % repeated_.size());
    while (static_cast<int64_t>(out.size()) < count) {
      out.push_back(repeated_[at]);
      at = (at + 1) % repeated_.size();
    }
    return out;
  }
  // A stretch of the documents' text (their <eot> ids left out), from a start drawn
  // uniformly, wrapping around the end.
  size_t at = static_cast<size_t>(rng() % text_.size());
  while (static_cast<int64_t>(out.size()) < count) {
    out.push_back(text_[at]);
    at = (at + 1) % text_.size();
  }
  return out;
}

PasskeyInstance PasskeyTask::make(int64_t length, double depth, uint64_t seed) const {
  if (!(depth >= 0 && depth <= 1)) throw DataError("a needle depth is between 0 and 1");
  std::mt19937_64 rng(seed);
  PasskeyInstance inst;
  // Plain modulo rather than std's distributions, whose output the standard leaves to each
  // library: the same seed gives the same instance everywhere.
  inst.key.push_back(static_cast<char>('1' + rng() % 9));
  while (static_cast<int>(inst.key.size()) < digits_) inst.key.push_back(static_cast<char>('0' + rng() % 10));

  const std::vector<uint32_t> key = tokenizer_.encode(inst.key);
  std::vector<uint32_t> needle = tokenizer_.encode(" The pass key is ");
  append(needle, key);
  append(needle, tokenizer_.encode(". Remember it. "));
  append(needle, key);
  append(needle, tokenizer_.encode(" is the pass key. "));
  const std::vector<uint32_t> question = tokenizer_.encode(" What is the pass key? The pass key is ");

  const int64_t fixed = 1 + static_cast<int64_t>(needle.size() + question.size() + key.size());
  const int64_t filler = length - fixed;
  if (filler < 1)
    throw DataError("a passkey instance of " + std::to_string(length) + " tokens cannot hold the needle, the question " +
                    "and the key (" + std::to_string(fixed) + " tokens) with any filler");
  const std::vector<uint32_t> text = fillerTokens(filler, rng());
  const int64_t before = std::llround(depth * static_cast<double>(filler));

  inst.tokens.reserve(static_cast<size_t>(length));
  inst.tokens.push_back(tokenizer_.endOfText());
  inst.tokens.insert(inst.tokens.end(), text.begin(), text.begin() + before);
  inst.needleOffset = static_cast<int64_t>(inst.tokens.size());
  append(inst.tokens, needle);
  inst.tokens.insert(inst.tokens.end(), text.begin() + before, text.end());
  append(inst.tokens, question);
  append(inst.tokens, key);
  inst.answerTokens = static_cast<int64_t>(key.size());
  return inst;
}

}  // namespace attn::data
