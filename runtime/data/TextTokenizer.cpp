#include "runtime/data/TextTokenizer.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "runtime/data/Bpe.h"
#include "runtime/data/Corpus.h"
#include "runtime/data/DataError.h"
#include "runtime/data/Shards.h"

namespace attn::data {

namespace {

using nlohmann::json;

constexpr uint32_t kByteEndOfText = 256;  // bytes and bpe:N: ids 0..255 are bytes
constexpr uint32_t kFirstMerge = 257;

class Gpt2Text final : public TextTokenizer {
 public:
  Gpt2Text() : bpe_(Tokenizer::loadDefault()) {}
  std::vector<uint32_t> encode(const std::string& text) const override { return bpe_.encode(text); }
  std::string decode(const std::vector<uint32_t>& ids) const override { return bpe_.decode(ids); }
  uint32_t endOfText() const override { return Tokenizer::kEndOfText; }
  uint32_t vocabSize() const override { return static_cast<uint32_t>(Tokenizer::kVocabSize); }
  std::string name() const override { return "gpt2"; }
  std::string describe() const override {
    return json{{"format", "attn-tokenizer"}, {"version", 1}, {"kind", "gpt2"}, {"vocab", vocabSize()},
                {"end_of_text", endOfText()}}
               .dump(1) + "\n";
  }

 private:
  Tokenizer bpe_;
};

// Pieces a byte-level BPE merges within, never across: a digit alone; an optional space and
// a run of letters (bytes >= 0x80 count as letters, so a UTF-8 sequence stays whole); an
// optional space and a run of other symbols; a run of white space.
enum class ByteClass { Digit, Letter, Space, Other };

ByteClass classOf(unsigned char c) {
  if (c >= '0' && c <= '9') return ByteClass::Digit;
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return ByteClass::Letter;
  if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v') return ByteClass::Space;
  return ByteClass::Other;
}

bool attachable(unsigned char c) { return classOf(c) == ByteClass::Letter || classOf(c) == ByteClass::Other; }

std::vector<std::string> pieces(const std::string& text) {
  std::vector<std::string> out;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    ByteClass c = classOf(s[i]);
    if (c == ByteClass::Digit) {
      j = i + 1;
    } else if (c == ByteClass::Space) {
      if (s[i] == ' ' && i + 1 < n && attachable(s[i + 1])) {  // " word", " ,."
        const ByteClass next = classOf(s[i + 1]);
        j = i + 1;
        while (j < n && classOf(s[j]) == next) ++j;
      } else {  // a run of white space, less a last ' ' that starts the next piece
        while (j < n && classOf(s[j]) == ByteClass::Space) ++j;
        if (j < n && j - i > 1 && s[j - 1] == ' ' && attachable(s[j])) --j;
      }
    } else {
      while (j < n && classOf(s[j]) == c) ++j;
    }
    out.emplace_back(text, i, j - i);
    i = j;
  }
  return out;
}

class ByteText : public TextTokenizer {
 public:
  std::vector<uint32_t> encode(const std::string& text) const override {
    std::vector<uint32_t> ids;
    ids.reserve(text.size());
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string decode(const std::vector<uint32_t>& ids) const override {
    std::string out;
    for (uint32_t id : ids) {
      if (id >= 256) throw DataError("token id " + std::to_string(id) + " is not a byte of the bytes tokenizer");
      out.push_back(static_cast<char>(id));
    }
    return out;
  }
  uint32_t endOfText() const override { return kByteEndOfText; }
  uint32_t vocabSize() const override { return 257; }
  std::string name() const override { return "bytes"; }
  std::string describe() const override {
    return json{{"format", "attn-tokenizer"}, {"version", 1}, {"kind", "bytes"}, {"vocab", vocabSize()},
                {"end_of_text", endOfText()}}
               .dump(1) + "\n";
  }
};

using Pair = std::pair<uint32_t, uint32_t>;

class LearnedBpe final : public TextTokenizer {
 public:
  explicit LearnedBpe(std::vector<Pair> merges) : merges_(std::move(merges)) {
    pieceBytes_.resize(256);
    for (uint32_t b = 0; b < 256; ++b) pieceBytes_[b] = std::string(1, static_cast<char>(b));
    pieceBytes_.emplace_back();  // the end of text decodes to nothing
    for (size_t r = 0; r < merges_.size(); ++r) {
      const auto [a, b] = merges_[r];
      rank_[key(a, b)] = static_cast<uint32_t>(r);
      pieceBytes_.push_back(pieceBytes_[a] + pieceBytes_[b]);
    }
  }

  std::vector<uint32_t> encode(const std::string& text) const override {
    std::vector<uint32_t> ids;
    for (const std::string& piece : pieces(text)) {
      {
        std::lock_guard<std::mutex> lock(cacheMutex_);
        if (auto it = cache_.find(piece); it != cache_.end()) {
          ids.insert(ids.end(), it->second.begin(), it->second.end());
          continue;
        }
      }
      std::vector<uint32_t> symbols = mergePiece(piece);
      ids.insert(ids.end(), symbols.begin(), symbols.end());
      std::lock_guard<std::mutex> lock(cacheMutex_);
      if (cache_.size() < 200000) cache_.emplace(piece, std::move(symbols));
    }
    return ids;
  }

  std::string decode(const std::vector<uint32_t>& ids) const override {
    std::string out;
    for (uint32_t id : ids) {
      if (id >= vocabSize())
        throw DataError("token id " + std::to_string(id) + " is outside the " + name() + " vocabulary of " +
                        std::to_string(vocabSize()));
      out += pieceBytes_[id];
    }
    return out;
  }
  uint32_t endOfText() const override { return kByteEndOfText; }
  uint32_t vocabSize() const override { return kFirstMerge + static_cast<uint32_t>(merges_.size()); }
  std::string name() const override { return "bpe:" + std::to_string(merges_.size()); }
  std::string describe() const override {
    json merges = json::array();
    for (const auto& [a, b] : merges_) merges.push_back({a, b});
    return json{{"format", "attn-tokenizer"}, {"version", 1},          {"kind", "bpe"},
                {"vocab", vocabSize()},       {"end_of_text", endOfText()}, {"merges", merges}}
               .dump() + "\n";
  }

 private:
  static uint64_t key(uint32_t a, uint32_t b) { return (static_cast<uint64_t>(a) << 32) | b; }

  // GPT-2's rule inside a piece: merge the adjacent pair of lowest rank, everywhere, again.
  std::vector<uint32_t> mergePiece(const std::string& piece) const {
    std::vector<uint32_t> s;
    for (unsigned char c : piece) s.push_back(c);
    while (s.size() > 1) {
      uint32_t best = UINT32_MAX;
      for (size_t i = 0; i + 1 < s.size(); ++i)
        if (auto it = rank_.find(key(s[i], s[i + 1])); it != rank_.end()) best = std::min(best, it->second);
      if (best == UINT32_MAX) break;
      const auto [a, b] = merges_[best];
      std::vector<uint32_t> next;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          next.push_back(kFirstMerge + best);
          ++i;
        } else {
          next.push_back(s[i]);
        }
      }
      s = std::move(next);
    }
    return s;
  }

  std::vector<Pair> merges_;
  std::unordered_map<uint64_t, uint32_t> rank_;
  std::vector<std::string> pieceBytes_;
  mutable std::mutex cacheMutex_;
  mutable std::unordered_map<std::string, std::vector<uint32_t>> cache_;
};

// Learns `count` merges: the most frequent adjacent pair over the pieces of the text (ties:
// the smaller pair), merged everywhere, repeated. Digits are pieces of one byte, so they
// never pair.
std::vector<Pair> learnMerges(const std::vector<Document>& documents, int64_t count) {
  std::unordered_map<std::string, int64_t> pieceCounts;
  for (const Document& d : documents)
    for (std::string& p : pieces(d.text)) ++pieceCounts[std::move(p)];
  struct Word {
    std::vector<uint32_t> symbols;
    int64_t count;
  };
  std::vector<Word> words;
  words.reserve(pieceCounts.size());
  for (auto& [text, n] : pieceCounts) {
    if (text.size() < 2) continue;
    Word w{{}, n};
    for (unsigned char c : text) w.symbols.push_back(c);
    words.push_back(std::move(w));
  }
  std::sort(words.begin(), words.end(), [](const Word& a, const Word& b) { return a.symbols < b.symbols; });

  std::map<Pair, int64_t> pairCounts;
  for (const Word& w : words)
    for (size_t i = 0; i + 1 < w.symbols.size(); ++i) pairCounts[{w.symbols[i], w.symbols[i + 1]}] += w.count;
  std::vector<Pair> merges;
  while (static_cast<int64_t>(merges.size()) < count) {
    Pair best{0, 0};
    int64_t bestCount = 0;
    for (const auto& [pair, n] : pairCounts)
      if (n > bestCount) best = pair, bestCount = n;
    if (bestCount <= 0)
      throw DataError("bpe:" + std::to_string(count) + ": the training text has only " +
                      std::to_string(merges.size()) + " pairs to merge; ask for fewer merges");
    const uint32_t id = kFirstMerge + static_cast<uint32_t>(merges.size());
    merges.push_back(best);
    // Re-count only the words that hold the pair: their old pairs out, their new pairs in.
    for (Word& w : words) {
      bool holds = false;
      for (size_t i = 0; i + 1 < w.symbols.size() && !holds; ++i)
        holds = w.symbols[i] == best.first && w.symbols[i + 1] == best.second;
      if (!holds) continue;
      for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
        auto it = pairCounts.find({w.symbols[i], w.symbols[i + 1]});
        if ((it->second -= w.count) == 0) pairCounts.erase(it);
      }
      std::vector<uint32_t> next;
      for (size_t i = 0; i < w.symbols.size(); ++i) {
        if (i + 1 < w.symbols.size() && w.symbols[i] == best.first && w.symbols[i + 1] == best.second) {
          next.push_back(id);
          ++i;
        } else {
          next.push_back(w.symbols[i]);
        }
      }
      w.symbols = std::move(next);
      for (size_t i = 0; i + 1 < w.symbols.size(); ++i) pairCounts[{w.symbols[i], w.symbols[i + 1]}] += w.count;
    }
  }
  return merges;
}

// "bpe:N" -> N, or -1.
int64_t bpeMerges(const std::string& spec) {
  if (spec.rfind("bpe:", 0) != 0 || spec.size() < 5 || spec.size() > 9) return -1;
  int64_t n = 0;
  for (size_t i = 4; i < spec.size(); ++i) {
    if (spec[i] < '0' || spec[i] > '9') return -1;
    n = n * 10 + (spec[i] - '0');
  }
  return n >= 1 && n <= kMaxBpeMerges ? n : -1;
}

bool fileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

json readTokenizerJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot read the tokenizer description");
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::exception& e) {
    throw DataError(path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || j.value("format", "") != "attn-tokenizer" || !j.contains("kind") || !j["kind"].is_string())
    throw DataError(path + ": not an attn tokenizer description (format \"attn-tokenizer\" with a \"kind\")");
  return j;
}

}  // namespace

bool isTokenizerSpec(const std::string& spec) { return spec == "gpt2" || spec == "bytes" || bpeMerges(spec) > 0; }

std::unique_ptr<TextTokenizer> gpt2Tokenizer() { return std::make_unique<Gpt2Text>(); }

std::unique_ptr<TextTokenizer> makeTokenizer(const std::string& spec, const std::vector<Document>& trainingText) {
  if (spec == "gpt2") return gpt2Tokenizer();
  if (spec == "bytes") return std::make_unique<ByteText>();
  const int64_t n = bpeMerges(spec);
  if (n < 0)
    throw DataError("unknown tokenizer '" + spec + "' (expected gpt2, bytes or bpe:N with N from 1 to " +
                    std::to_string(kMaxBpeMerges) + ")");
  return std::make_unique<LearnedBpe>(learnMerges(trainingText, n));
}

TokenizerInfo readTokenizerInfo(const std::string& dataDir) {
  const std::string path = dataDir + "/tokenizer.json";
  TokenizerInfo info;
  if (!fileExists(path)) return info;
  json j = readTokenizerJson(path);
  info.kind = j["kind"].get<std::string>();
  try {
    info.vocab = j.at("vocab").get<uint32_t>();
    info.endOfText = j.at("end_of_text").get<uint32_t>();
  } catch (const json::exception&) {
    throw DataError(path + ": \"vocab\" and \"end_of_text\" must be token counts");
  }
  if (info.vocab < 1 || info.vocab > 65536 || info.endOfText >= info.vocab)
    throw DataError(path + ": a vocabulary of " + std::to_string(info.vocab) + " with end of text " +
                    std::to_string(info.endOfText) + " is impossible");
  return info;
}

std::unique_ptr<TextTokenizer> loadTokenizer(const std::string& dataDir) {
  const std::string path = dataDir + "/tokenizer.json";
  const TokenizerInfo info = readTokenizerInfo(dataDir);
  if (info.kind == "gpt2") return gpt2Tokenizer();
  if (info.kind == "bytes") return std::make_unique<ByteText>();
  if (info.kind != "bpe") throw DataError(path + ": unknown tokenizer kind '" + info.kind + "'");
  json j = readTokenizerJson(path);
  std::vector<Pair> merges;
  try {
    for (const auto& m : j.at("merges")) {
      const uint32_t a = m.at(0).get<uint32_t>(), b = m.at(1).get<uint32_t>();
      const uint32_t next = kFirstMerge + static_cast<uint32_t>(merges.size());
      if (m.size() != 2 || a >= next || b >= next || a == kByteEndOfText || b == kByteEndOfText)
        throw DataError(path + ": merge " + std::to_string(merges.size()) + " refers to a token it cannot");
      merges.emplace_back(a, b);
    }
  } catch (const json::exception&) {
    throw DataError(path + ": \"merges\" must be a list of [a, b] token id pairs");
  }
  auto tokenizer = std::make_unique<LearnedBpe>(std::move(merges));
  if (tokenizer->vocabSize() != info.vocab)
    throw DataError(path + ": " + std::to_string(tokenizer->vocabSize() - kFirstMerge) + " merges do not make the " +
                    "vocabulary of " + std::to_string(info.vocab) + " it declares");
  return tokenizer;
}

void writeTokenizerFile(const std::string& dataDir, const TextTokenizer& tokenizer) {
  const std::string text = tokenizer.describe();
  writeFileAtomically(dataDir + "/tokenizer.json", {{text.data(), text.size()}});
}

}  // namespace attn::data
