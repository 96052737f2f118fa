// Corpora (Corpus.h): reading text documents, the seeded split by whole documents, and
// shard preparation. Tokens stream to disk: a ShardWriter holds at most one shard's worth,
// so the tokens of a corpus never need to fit in memory at once (its text does).
#include "runtime/data/Corpus.h"
#include "runtime/data/TextTokenizer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "runtime/data/Bpe.h"
#include "runtime/data/DataDir.h"
#include "runtime/data/DataError.h"
#include "runtime/data/Shards.h"
#include "support/ContentHash.h"

namespace attn::data {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw DataError(path + ": " + what);
}

// ---- reading text ---------------------------------------------------------------------------

/// The length of the valid UTF-8 sequence starting at text[i], or 0 if there is none
/// (a stray continuation byte, an overlong form, a surrogate, a code point above U+10FFFF,
/// a sequence cut short).
size_t utf8SequenceLength(const std::string& text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length;
  unsigned char low = 0x80, high = 0xbf;  // the range allowed for the second byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;   // overlong
    if (lead == 0xed) high = 0x9f;  // surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;   // overlong
    if (lead == 0xf4) high = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return length;
}

/// Throws unless `text` is valid UTF-8, naming the first bad byte and its line.
void checkUtf8(const std::string& path, const std::string& text) {
  size_t line = 1;
  for (size_t i = 0; i < text.size();) {
    const size_t length = utf8SequenceLength(text, i);
    if (length == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(text[i]));
      fail(path, std::string("not UTF-8 text: invalid byte ") + hex + " at byte offset " +
                     std::to_string(i) + " (line " + std::to_string(line) + ")");
    }
    if (text[i] == '\n') ++line;
    i += length;
  }
}

/// The whole contents of the regular file at `path`.
std::string readWholeFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::string text;
  char buffer[1 << 16];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, got);
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) fail(path, std::string("cannot read: ") + std::strerror(error));
  return text;
}

Document loadDocument(const std::string& path, const std::string& name) {
  std::string text = readWholeFile(path);
  if (text.empty()) fail(path, "the file is empty (a document needs text)");
  if (text.compare(0, 3, "\xef\xbb\xbf") == 0) text.erase(0, 3);
  if (text.empty()) fail(path, "the file holds only a byte-order mark (a document needs text)");
  checkUtf8(path, text);
  return Document{name, std::move(text)};
}

/// The *.txt regular files directly in `dir`, sorted by file name.
std::vector<std::string> textFilesIn(const std::string& dir) {
  std::error_code error;
  fs::directory_iterator it(dir, error);
  if (error) fail(dir, "cannot list the directory: " + error.message());
  std::vector<std::string> names;
  for (; it != fs::directory_iterator(); it.increment(error)) {
    const std::string name = it->path().filename().string();
    std::error_code statError;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".txt") == 0 &&
        fs::is_regular_file(it->path(), statError)) {
      names.push_back(name);
    }
  }
  if (error) fail(dir, "cannot list the directory: " + error.message());
  std::sort(names.begin(), names.end());
  return names;
}

/// The path of a file inside `dir` as given, without doubling a trailing slash.
std::string joinPath(const std::string& dir, const std::string& name) {
  return !dir.empty() && dir.back() == '/' ? dir + name : dir + "/" + name;
}

/// Remembers the files read (by device and inode) to refuse reading one twice.
class SeenFiles {
 public:
  void add(const std::string& path, const struct stat& info) {
    auto [it, inserted] = seen_.emplace(std::make_pair(info.st_dev, info.st_ino), path);
    if (!inserted) fail(path, "the same file as " + it->second + ", given twice");
  }

 private:
  std::map<std::pair<dev_t, ino_t>, std::string> seen_;
};

// ---- the split ------------------------------------------------------------------------------

/// SplitMix64's finaliser: a well-mixed 64-bit function of `x`.
uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// A hash of `name` under `seed`, the same on every platform: support's FNV-1a started
/// from its offset basis mixed with the seed, then mixed again.
uint64_t nameHash(const std::string& name, uint64_t seed) {
  return mix64(support::fnv1a64(name, 0xcbf29ce484222325ULL ^ mix64(seed)));
}

// ---- writing shards -------------------------------------------------------------------------

/// Takes one side's tokens in order and writes them as shards of `tokensPerShard` tokens.
class ShardWriter {
 public:
  ShardWriter(std::string outDir, std::string prefix, std::string split, int64_t tokensPerShard)
      : outDir_(std::move(outDir)), prefix_(std::move(prefix)), split_(std::move(split)),
        tokensPerShard_(tokensPerShard) {}

  void append(const std::vector<uint32_t>& tokens) {
    for (uint32_t token : tokens) {
      buffer_.push_back(static_cast<uint16_t>(token));  // ids < 50257, checked by the caller
      if (static_cast<int64_t>(buffer_.size()) == tokensPerShard_) flush();
    }
  }

  /// Writes what is left (nothing if the last shard was full).
  void finish() {
    if (!buffer_.empty()) flush();
  }

  const std::vector<std::string>& shards() const { return shards_; }
  int64_t tokens() const { return tokens_; }

 private:
  void flush() {
    const std::string path = joinPath(outDir_, shardFileName(prefix_, split_, static_cast<int64_t>(shards_.size())));
    writeShard(path, buffer_);
    shards_.push_back(path);
    tokens_ += static_cast<int64_t>(buffer_.size());
    buffer_.clear();
  }

  std::string outDir_, prefix_, split_;
  int64_t tokensPerShard_;
  std::vector<uint16_t> buffer_;
  std::vector<std::string> shards_;
  int64_t tokens_ = 0;
};

/// Where one document landed in its side's tokens.
struct DocumentSpan {
  std::string name;
  int64_t offset;
  int64_t length;
};

/// Tokenizes `documents` into `writer`; returns each one's span and adds the time spent in
/// the tokenizer to `tokenizeSeconds`.
std::vector<DocumentSpan> writeDocuments(const std::vector<Document>& documents, const TextTokenizer& tokenizer,
                                         ShardWriter& writer, double& tokenizeSeconds) {
  std::vector<DocumentSpan> spans;
  int64_t offset = 0;
  for (const Document& document : documents) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<uint32_t> tokens{tokenizer.endOfText()};
    try {
      const std::vector<uint32_t> text = tokenizer.encode(document.text);
      tokens.insert(tokens.end(), text.begin(), text.end());
    } catch (const DataError& e) {
      fail(document.name, e.what());
    }
    tokenizeSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (uint32_t token : tokens) {
      if (token > UINT16_MAX) {
        fail(document.name, "the tokenizer gave token id " + std::to_string(token) +
                                ", which does not fit in a shard (at most 65535)");
      }
    }
    writer.append(tokens);
    spans.push_back(DocumentSpan{document.name, offset, static_cast<int64_t>(tokens.size())});
    offset += static_cast<int64_t>(tokens.size());
  }
  writer.finish();
  return spans;
}

std::string fileNameOf(const std::string& path) { return fs::path(path).filename().string(); }

void writeValidationIndex(const std::string& path, const std::string& prefix, int64_t tokensPerShard,
                          const ShardWriter& writer, const std::vector<DocumentSpan>& spans) {
  nlohmann::ordered_json index;
  index["format"] = "attn-val-documents";
  index["version"] = 1;
  index["prefix"] = prefix;
  index["tokens"] = writer.tokens();
  index["tokens_per_shard"] = tokensPerShard;
  index["shards"] = nlohmann::ordered_json::array();
  for (const std::string& shard : writer.shards()) index["shards"].push_back(fileNameOf(shard));
  index["documents"] = nlohmann::ordered_json::array();
  for (const DocumentSpan& span : spans) {
    index["documents"].push_back({{"name", span.name}, {"offset", span.offset}, {"length", span.length}});
  }
  const std::string text = index.dump(1) + "\n";
  writeFileAtomically(path, {{text.data(), text.size()}});
}

/// Whether `name` is PREFIX_SPLIT_ followed by six or more digits and ".bin"; sets `index`.
bool parseShardName(const std::string& name, const std::string& prefix, const std::string& split,
                    int64_t& index) {
  const std::string head = prefix + "_" + split + "_";
  const std::string tail = ".bin";
  if (name.size() < head.size() + 6 + tail.size()) return false;
  if (name.compare(0, head.size(), head) != 0) return false;
  if (name.compare(name.size() - tail.size(), tail.size(), tail) != 0) return false;
  const std::string digits = name.substr(head.size(), name.size() - head.size() - tail.size());
  if (digits.size() > 12 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  index = std::stoll(digits);
  return true;
}

/// Deletes PREFIX_SPLIT_N.bin in `outDir` for every N >= `written`; returns their paths.
std::vector<std::string> removeStaleShards(const std::string& outDir, const std::string& prefix,
                                           const std::string& split, int64_t written) {
  std::vector<std::string> removed;
  std::error_code error;
  for (fs::directory_iterator it(outDir, error); !error && it != fs::directory_iterator(); it.increment(error)) {
    int64_t index = 0;
    if (parseShardName(it->path().filename().string(), prefix, split, index) && index >= written) {
      removed.push_back(joinPath(outDir, it->path().filename().string()));
    }
  }
  if (error) fail(outDir, "cannot list the directory: " + error.message());
  std::sort(removed.begin(), removed.end());
  for (const std::string& path : removed) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      fail(path, std::string("cannot delete this stale shard: ") + std::strerror(errno));
    }
  }
  return removed;
}

void checkPrefix(const std::string& prefix) {
  const bool plain = !prefix.empty() && prefix[0] != '.' && prefix[0] != '-' &&
                     std::all_of(prefix.begin(), prefix.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                              c == '.' || c == '_' || c == '-';
                     });
  if (!plain) {
    throw DataError("invalid shard prefix '" + prefix +
                    "': use letters, digits, '.', '_' and '-' (not first: '.', '-')");
  }
}

void makeOutputDirectory(const std::string& outDir) {
  std::error_code error;
  fs::create_directories(outDir, error);
  if (error) fail(outDir, "cannot create the output directory: " + error.message());
  if (!fs::is_directory(outDir, error)) fail(outDir, "the output path exists and is not a directory");
}

}  // namespace

// ---- public API ---------------------------------------------------------------------------

std::vector<Document> loadTextDocuments(const std::vector<std::string>& paths) {
  if (paths.empty()) throw DataError("no input: give text files or directories of .txt files");
  std::vector<Document> documents;
  SeenFiles seen;
  for (const std::string& path : paths) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
    if (S_ISDIR(info.st_mode)) {
      const std::vector<std::string> names = textFilesIn(path);
      if (names.empty()) fail(path, "no .txt files in this directory");
      for (const std::string& name : names) {
        const std::string file = joinPath(path, name);
        struct stat fileInfo {};
        if (::stat(file.c_str(), &fileInfo) != 0) fail(file, std::string("cannot open: ") + std::strerror(errno));
        seen.add(file, fileInfo);
        documents.push_back(loadDocument(file, file));
      }
    } else if (S_ISREG(info.st_mode)) {
      seen.add(path, info);
      documents.push_back(loadDocument(path, path));
    } else {
      fail(path, "not a regular file or a directory");
    }
  }
  return documents;
}

std::string defaultCorpusDirectory() { return dataDirectory() + "/sotu"; }

std::vector<Document> defaultCorpus() {
  const std::string dir = defaultCorpusDirectory();
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    fail(dir, "the built-in corpus is missing (run ./scripts/setup.sh, which fetches it)");
  }
  std::vector<Document> documents = loadTextDocuments({dir});
  for (Document& document : documents) document.name = fs::path(document.name).stem().string();
  return documents;
}

Split splitDocuments(std::vector<Document> documents, double validationFraction, uint64_t seed) {
  if (!(validationFraction > 0 && validationFraction < 1)) {
    throw DataError("the validation fraction must be between 0 and 1 (exclusive), not " +
                    std::to_string(validationFraction));
  }
  const size_t n = documents.size();
  size_t held = 0;
  if (n >= 2) {
    held = static_cast<size_t>(std::llround(validationFraction * static_cast<double>(n)));
    held = std::clamp<size_t>(held, 1, n - 1);
  }
  // Rank the documents by (hash of name, position); the first `held` are validation.
  std::vector<std::pair<uint64_t, size_t>> ranked(n);
  for (size_t i = 0; i < n; ++i) ranked[i] = {nameHash(documents[i].name, seed), i};
  std::sort(ranked.begin(), ranked.end());
  std::vector<bool> isValidation(n, false);
  for (size_t r = 0; r < held; ++r) isValidation[ranked[r].second] = true;

  Split split;
  for (size_t i = 0; i < n; ++i) {
    (isValidation[i] ? split.validation : split.train).push_back(std::move(documents[i]));
  }
  return split;
}

std::string shardFileName(const std::string& prefix, const std::string& split, int64_t index) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%06lld", static_cast<long long>(index));
  return prefix + "_" + split + "_" + digits + ".bin";
}

namespace {

// GPT-2's tokenizer as a TextTokenizer, borrowed from the caller.
class BorrowedGpt2 final : public TextTokenizer {
 public:
  explicit BorrowedGpt2(const Tokenizer& t) : t_(t) {}
  std::vector<uint32_t> encode(const std::string& text) const override { return t_.encode(text); }
  std::string decode(const std::vector<uint32_t>& ids) const override { return t_.decode(ids); }
  uint32_t endOfText() const override { return Tokenizer::kEndOfText; }
  uint32_t vocabSize() const override { return static_cast<uint32_t>(t_.vocabSize()); }
  std::string name() const override { return "gpt2"; }
  std::string describe() const override { return ""; }

 private:
  const Tokenizer& t_;
};

}  // namespace

PrepareResult prepareShards(const Split& split, const Tokenizer& tokenizer, const std::string& outDir,
                            const std::string& prefix, int64_t tokensPerShard) {
  return prepareShards(split, BorrowedGpt2(tokenizer), outDir, prefix, tokensPerShard);
}

PrepareResult prepareShards(const Split& split, const TextTokenizer& tokenizer, const std::string& outDir,
                            const std::string& prefix, int64_t tokensPerShard) {
  checkPrefix(prefix);
  if (tokensPerShard < 1 || tokensPerShard > kMaxShardTokens) {
    throw DataError("tokens per shard must be between 1 and " + std::to_string(kMaxShardTokens) + ", not " +
                    std::to_string(tokensPerShard));
  }
  makeOutputDirectory(outDir);
  WritingMarker marker(outDir, "attn data prepare");
  PrepareResult result;

  ShardWriter validation(outDir, prefix, "val", tokensPerShard);
  const std::vector<DocumentSpan> spans = writeDocuments(split.validation, tokenizer, validation, result.tokenizeSeconds);
  result.validationIndex = joinPath(outDir, prefix + "_val_documents.json");
  writeValidationIndex(result.validationIndex, prefix, tokensPerShard, validation, spans);

  ShardWriter train(outDir, prefix, "train", tokensPerShard);
  writeDocuments(split.train, tokenizer, train, result.tokenizeSeconds);

  const auto record = [&](const std::string& side, const ShardWriter& writer, size_t documents,
                          PreparedSplit& prepared) {
    prepared.documents = static_cast<int64_t>(documents);
    prepared.tokens = writer.tokens();
    prepared.shards = writer.shards();
    const std::vector<std::string> removed =
        removeStaleShards(outDir, prefix, side, static_cast<int64_t>(writer.shards().size()));
    result.removedStaleShards.insert(result.removedStaleShards.end(), removed.begin(), removed.end());
  };
  record("val", validation, split.validation.size(), result.validation);
  record("train", train, split.train.size(), result.train);
  const std::string description = joinPath(outDir, "tokenizer.json");
  if (tokenizer.name() != "gpt2") {
    writeTokenizerFile(outDir, tokenizer);
  } else if (fs::exists(description)) {
    std::error_code error;
    fs::remove(description, error);
    if (error) throw DataError(description + ": cannot remove the stale tokenizer description: " + error.message());
    result.removedStaleShards.push_back(description);
  }
  marker.remove();
  return result;
}

}  // namespace attn::data
