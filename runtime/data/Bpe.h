// GPT-2's byte-level BPE tokenizer, so that attn programs can be trained and run on real
// text (data/sotu) with GPT-2's 50,257-token vocabulary, without Python.
//
// It reproduces OpenAI's encoder.py (and the JS package gpt-3-encoder@1.1.4, which the
// tests use as the reference): every byte of the UTF-8 text is mapped to one of 256
// printable characters (bytes_to_unicode), the text is split into pre-tokens by the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (PCRE2 with UTF and UCP; "\s" is spelled out as JavaScript's white space, see Bpe.cpp),
// and inside each pre-token the adjacent pair with the lowest merge rank in vocab.bpe is
// merged, everywhere in the pre-token, until no ranked pair is left. Checked id for id
// against the JS package on all of data/sotu and on every code point in context; the only
// differences are code points that PCRE2's Unicode tables (14.0 in PCRE2 10.42) leave
// unassigned but a newer JS engine classes as letters or numbers.
//
// Differences from a chat-style tokenizer, on purpose, as in the reference:
//   - encode() does NOT treat "<|endoftext|>" specially: the text "<|endoftext|>" is
//     encoded as ordinary characters ("<", "|", "endoftext", "|", ">"). Append kEndOfText
//     to the id vector yourself to mark a document boundary.
//   - encode() throws DataError("text is not valid UTF-8 at byte N") for invalid UTF-8
//     input (overlong forms, surrogates and code points above U+10FFFF included); it
//     never guesses a repair.
//   - decode() returns the raw bytes of the tokens, which need not be valid UTF-8 when the
//     ids are a slice of a longer sequence.
//
// A Tokenizer is cheap to copy (copies share the immutable tables and the cache) and
// encode/decode may be called from several threads at once: the cache of pre-token -> ids
// is behind a mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace attn::data {

class Tokenizer {
 public:
  /// GPT-2's vocabulary: 256 byte tokens, 50,000 merges and "<|endoftext|>".
  static constexpr size_t kVocabSize = 50257;
  static constexpr size_t kMergeCount = 50000;
  /// The id of "<|endoftext|>", the document separator; encode() never produces it.
  static constexpr uint32_t kEndOfText = 50256;

  /// Reads encoder.json (50,257 entries: token string -> id) and vocab.bpe (a "#version"
  /// line then 50,000 merges "a b"). Throws DataError, naming the file (and the line for
  /// vocab.bpe), on a missing or unreadable file, malformed JSON, a malformed merge line,
  /// a token or merge that is not GPT-2's, or the wrong number of entries.
  static Tokenizer load(const std::string& encoderJson, const std::string& vocabBpe);

  /// load() from dataDirectory()/gpt2; when the files are missing, a DataError that says
  /// to run ./scripts/setup.sh.
  static Tokenizer loadDefault();

  /// The ids of UTF-8 `text` (see the notes above on "<|endoftext|>" and invalid UTF-8).
  std::vector<uint32_t> encode(const std::string& text) const;

  /// The bytes of `ids`, concatenated; DataError for an id >= vocabSize().
  std::string decode(const std::vector<uint32_t>& ids) const;

  size_t vocabSize() const;

  ~Tokenizer();
  Tokenizer(const Tokenizer&);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(const Tokenizer&);
  Tokenizer& operator=(Tokenizer&&) noexcept;

 private:
  struct Tables;
  struct Cache;

  Tokenizer(std::shared_ptr<const Tables> tables);

  /// Appends the ids of one pre-token (raw bytes) to `out`, through the cache.
  void encodePiece(const char* data, size_t size, std::vector<uint32_t>& out) const;

  std::shared_ptr<const Tables> tables_;
  std::shared_ptr<Cache> cache_;
};

}  // namespace attn::data
