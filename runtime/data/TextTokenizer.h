// The tokenizers `attn data prepare --tokenizer` offers, behind one interface, and the
// DIR/tokenizer.json that tells every later command which one a data directory holds.
//
//   gpt2    GPT-2's BPE (Bpe.h): 50,257 tokens, <|endoftext|> = 50256. The default, and
//           what a directory without tokenizer.json (llm.c's shards) is taken to hold.
//   bytes   one token per UTF-8 byte (0..255), end of text 256: 257 tokens. On a CPU the
//           output layer is then ~0.3 % of GPT-2's, so training time goes to attention.
//   bpe:N   byte-level BPE with N merges learned from the training documents (ids 257..),
//           deterministic for the same text. Digits are never merged, so a number is one
//           token per digit whatever its context (the passkey task relies on it).
//
// tokenizer.json: {"format": "attn-tokenizer", "version": 1, "kind": "gpt2"|"bytes"|"bpe",
//                  "vocab": V, "end_of_text": E[, "merges": [[a, b], ...]]}
// Not here: special tokens other than the end of text, normalisation of the text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/data/Corpus.h"

namespace attn::data {



class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  /// The ids of `text` (never the end-of-text id). gpt2: DataError for invalid UTF-8;
  /// bytes and bpe:N take any bytes (the corpus reader has checked UTF-8 already).
  virtual std::vector<uint32_t> encode(const std::string& text) const = 0;
  /// The bytes of `ids`; DataError for an id outside the vocabulary.
  virtual std::string decode(const std::vector<uint32_t>& ids) const = 0;
  /// The document separator every document starts with in a shard.
  virtual uint32_t endOfText() const = 0;
  /// Ids are below this.
  virtual uint32_t vocabSize() const = 0;
  /// "gpt2", "bytes" or "bpe:N".
  virtual std::string name() const = 0;
  /// The contents of tokenizer.json.
  virtual std::string describe() const = 0;
};

/// The kinds --tokenizer accepts: "gpt2", "bytes", "bpe:N" with 1 <= N <= kMaxBpeMerges.
constexpr int64_t kMaxBpeMerges = 65535 - 257;
/// Whether `spec` is one of them (for the CLI's exit-2 check; N as a plain number).
bool isTokenizerSpec(const std::string& spec);

/// The tokenizer `spec` names; bpe:N learns its merges from `trainingText`. DataError for a
/// bad spec, or a bpe:N whose text has fewer than N distinct pairs left to merge.
std::unique_ptr<TextTokenizer> makeTokenizer(const std::string& spec, const std::vector<Document>& trainingText);

/// GPT-2's (Tokenizer::loadDefault()).
std::unique_ptr<TextTokenizer> gpt2Tokenizer();

/// The tokenizer of a data directory: DIR/tokenizer.json, or GPT-2's when there is none.
/// DataError naming the file when it is malformed.
std::unique_ptr<TextTokenizer> loadTokenizer(const std::string& dataDir);

/// What tokenizer.json says without building the tokenizer (vocabulary and separator are
/// all that loading shards needs): GPT-2's values when the file is absent.
struct TokenizerInfo {
  std::string kind = "gpt2";
  uint32_t vocab = 50257;
  uint32_t endOfText = 50256;
};
TokenizerInfo readTokenizerInfo(const std::string& dataDir);

/// Writes DIR/tokenizer.json (atomically).
void writeTokenizerFile(const std::string& dataDir, const TextTokenizer& tokenizer);

}  // namespace attn::data
