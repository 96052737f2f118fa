// The passkey retrieval task (Mohtashami & Jaggi 2023, as long-context papers use it): a
// key, a number, is said once somewhere in a long filler text and asked for at the end.
// One instance, as tokens:
//
//   <eot> FILLER[0, a) NEEDLE FILLER[a, n) QUESTION KEY
//   NEEDLE   = " The pass key is " KEY ". Remember it. " KEY " is the pass key. "
//   QUESTION = " What is the pass key? The pass key is "
//
// with the needle at `depth` (0: right after <eot>, 1: right before the question) and the
// filler cut to make the instance exactly the length asked for. Each piece is tokenized on
// its own and the ids concatenated, so the key's ids are the same in the needle and in the
// answer with any tokenizer. The filler is text (token stretches of given documents: what
// the model knows), the usual repeated "The grass is green..." sentences, or "copy": random
// words that recur within the instance (below).
//
// Scoring (runtime/train/Passkey.h) is teacher-forced: the model reads the instance and is
// right when its argmax at each answer position is the key's next token. `attn data synth`
// mixes such instances into training data so that a small model learns to retrieve.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace attn::data {

class TextTokenizer;

// Copy filler: per instance, a few random "words" (2 to 6 tokens each, drawn from the
// tokenizer's printable tokens without digits) said again and again in a random order. A
// word's first token is a guess among the words; its other tokens can only be predicted by
// finding the word's earlier occurrence and copying what followed, which is the induction
// circuit that retrieval uses too. The words are drawn afresh for every instance, so none
// can be memorised in the weights (the repeated sentences are one fixed text the model
// learns by heart, so it never needs to copy anything but the key). No digits: the key's
// tokens occur only in the needle and the answer.
enum class FillerKind { Text, Repeat, Copy };
/// "text", "repeat" or "copy"; DataError otherwise.
FillerKind parseFillerKind(const std::string& name);
/// The inverse of parseFillerKind.
std::string fillerName(FillerKind kind);

struct PasskeyInstance {
  std::vector<uint32_t> tokens;  ///< the whole instance, <eot> first, the key's ids last
  int64_t answerTokens = 0;      ///< how many of the last ids are the key
  int64_t needleOffset = 0;      ///< where the needle starts in `tokens`
  std::string key;               ///< the digits
};

class PasskeyTask {
 public:
  /// `documents`: the filler texts as token ids (FillerKind::Text; their <eot> ids are left
  /// out; copied). `digits`: the key's length (1..18).
  PasskeyTask(const TextTokenizer& tokenizer, FillerKind filler, const std::vector<std::vector<uint16_t>>* documents,
              int digits = 5);

  /// The instance of exactly `length` tokens with its needle at `depth` in [0, 1], the key
  /// and the filler drawn from `seed` alone. DataError when `length` cannot hold the
  /// needle, question and key with at least one filler token, or the text filler has no
  /// tokens.
  PasskeyInstance make(int64_t length, double depth, uint64_t seed) const;

  /// The shortest instance possible (one filler token).
  int64_t minimumLength() const;

 private:
  std::vector<uint32_t> fillerTokens(int64_t count, uint64_t seed) const;

  const TextTokenizer& tokenizer_;
  FillerKind filler_;
  int digits_;
  std::vector<uint32_t> repeated_;  // one round of the repeated filler
  std::vector<uint16_t> text_;      // text filler: the documents' tokens, <eot> left out
  std::vector<uint32_t> alphabet_;  // copy filler: the tokens words are made of
};

}  // namespace attn::data
