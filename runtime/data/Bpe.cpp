// GPT-2's byte-level BPE (see Bpe.h for what it reproduces and why).
//
// Internally every symbol is a token id rather than a string: a byte is the id of its
// one-character token, and a merge "a b" is the id pair (id(a), id(b)) -> (rank, id(ab)).
// load() checks that every merge's halves and result are tokens of encoder.json, so this
// is the same computation as encoder.py's string-based one, only without building strings.
#include "runtime/data/Bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>
#include <unordered_map>
#include <utility>

#include "runtime/data/DataDir.h"
#include "runtime/data/DataError.h"

namespace attn::data {

namespace {

constexpr uint32_t kNoByte = std::numeric_limits<uint32_t>::max();

/// Pre-tokens longer than this are encoded but not cached: they are rare, and caching them
/// would let one huge run of white space or symbols pin megabytes.
constexpr size_t kMaxCachedPieceBytes = 64;
/// The cache is emptied when it reaches this many pre-tokens (about 30 MB at most); the
/// 10.8 MB corpus of data/sotu has far fewer distinct pre-tokens than this.
constexpr size_t kMaxCacheEntries = size_t{1} << 18;

// ---- bytes_to_unicode -----------------------------------------------------------------

/// GPT-2's bytes_to_unicode: the printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC,
/// U+00AE..U+00FF) stand for themselves; the other 68 bytes, in increasing order, get
/// U+0100, U+0101, ... so that no token string contains white space or control characters.
std::array<uint32_t, 256> byteToCodePoint() {
  std::array<uint32_t, 256> table{};
  auto printable = [](uint32_t b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) table[b] = printable(b) ? b : next++;
  return table;
}

/// The inverse of byteToCodePoint(): code point -> byte, or kNoByte. Every mapped code
/// point is below U+0144.
std::array<uint32_t, 0x144> codePointToByte() {
  std::array<uint32_t, 0x144> table;
  table.fill(kNoByte);
  const std::array<uint32_t, 256> forward = byteToCodePoint();
  for (uint32_t b = 0; b < 256; ++b) table[forward[b]] = b;
  return table;
}

// ---- UTF-8 ----------------------------------------------------------------------------

/// The length of the valid UTF-8 sequence at s[i], or 0 if it is not one (a stray
/// continuation byte, a truncated sequence, an overlong form, a surrogate, > U+10FFFF).
size_t utf8SequenceLength(const unsigned char* s, size_t size, size_t i) {
  const unsigned char lead = s[i];
  if (lead < 0x80) return 1;
  size_t length;
  uint32_t cp;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, cp = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, cp = lead & 0x07;
  } else {
    return 0;
  }
  if (size - i < length) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((s[i + k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i + k] & 0x3F);
  }
  const bool overlong = (length == 3 && cp < 0x800) || (length == 4 && cp < 0x10000);
  const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
  if (overlong || surrogate || cp > 0x10FFFF) return 0;
  return length;
}

/// The offset of the first byte of `text` that does not start a valid UTF-8 sequence, or
/// std::string::npos if `text` is valid UTF-8.
size_t firstInvalidUtf8(const std::string& text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0;
  while (i < text.size()) {
    const size_t length = utf8SequenceLength(s, text.size(), i);
    if (length == 0) return i;
    i += length;
  }
  return std::string::npos;
}

/// Decodes valid UTF-8 `s` (nlohmann::json has checked it) into code points.
std::vector<uint32_t> codePoints(const std::string& s) {
  std::vector<uint32_t> out;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    size_t length = utf8SequenceLength(p, s.size(), i);
    if (length == 0) length = 1;  // unreachable for checked input; never loop forever
    uint32_t cp = length == 1 ? p[i] : p[i] & (0xFF >> (length + 1));
    for (size_t k = 1; k < length; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
    out.push_back(cp);
    i += length;
  }
  return out;
}

std::string hexCodePoint(uint32_t cp) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "U+%04X", cp);
  return buffer;
}

/// `s` shortened for an error message.
std::string excerpt(const std::string& s) {
  constexpr size_t kMax = 60;
  return s.size() <= kMax ? s : s.substr(0, kMax) + "...";
}

// ---- files ----------------------------------------------------------------------------

bool fileExists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot open " + path + ": " + std::strerror(errno));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) throw DataError("cannot read " + path + ": " + std::strerror(errno));
  return contents.str();
}

/// A token string of encoder.json or vocab.bpe (in byte characters) as the raw bytes it
/// stands for; DataError (prefixed with `where`) for a character that is not one of the
/// 256 byte characters.
std::string tokenBytes(const std::string& token, const std::string& where) {
  static const std::array<uint32_t, 0x144> toByte = codePointToByte();
  std::string bytes;
  for (uint32_t cp : codePoints(token)) {
    const uint32_t b = cp < toByte.size() ? toByte[cp] : kNoByte;
    if (b == kNoByte)
      throw DataError(where + ": token \"" + excerpt(token) + "\" contains " + hexCodePoint(cp) +
                      ", which is not one of GPT-2's 256 byte characters");
    bytes.push_back(static_cast<char>(b));
  }
  return bytes;
}

// ---- the pre-tokeniser ----------------------------------------------------------------

/// White space as JavaScript's "\s" defines it (the reference, gpt-3-encoder, is JS): tab,
/// LF, VT, FF, CR, the space separators Zs, U+FEFF, U+2028 and U+2029. PCRE2's own "\s"
/// under UCP (10.42) differs on U+0085, U+180E and U+FEFF, checked against node over
/// every code point.
const char* const kWhiteSpace = "\\t\\n\\x{0B}\\f\\r\\p{Zs}\\x{FEFF}\\x{2028}\\x{2029}";

std::string pretokenPattern() {
  const std::string ws = kWhiteSpace;
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" + ws + "\\p{L}\\p{N}]+|[" + ws +
         "]+(?![^" + ws + "])|[" + ws + "]+";
}

std::string pcre2Message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

pcre2_code* compilePretokenizer() {
  const std::string pattern = pretokenPattern();
  int error = 0;
  PCRE2_SIZE errorOffset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error, &errorOffset, nullptr);
  if (!code)
    throw DataError("cannot compile the GPT-2 pre-tokeniser regex at offset " +
                    std::to_string(errorOffset) + ": " + pcre2Message(error));
  // Best effort: where PCRE2 has no JIT, pcre2_match interprets the same pattern.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return code;
}

// ---- merges --------------------------------------------------------------------------

/// A merge of vocab.bpe: its rank (0 = the first line after "#version") and the id of the
/// token it makes.
struct Merge {
  uint32_t rank;
  uint32_t result;
};

/// pairKey(left id, right id) -> the merge of that pair.
using MergeTable = std::unordered_map<uint64_t, Merge>;

uint64_t pairKey(uint32_t left, uint32_t right) { return (uint64_t{left} << 32) | right; }

}  // namespace

// ---- the tables -----------------------------------------------------------------------

struct Tokenizer::Tables {
  std::vector<std::string> bytesOf;       // id -> raw bytes
  std::array<uint32_t, 256> byteToken{};  // byte -> id of its one-byte token
  MergeTable merges;
  pcre2_code* pretokenizer = nullptr;

  Tables() = default;
  Tables(const Tables&) = delete;
  Tables& operator=(const Tables&) = delete;
  ~Tables() { pcre2_code_free(pretokenizer); }
};

struct Tokenizer::Cache {
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<uint32_t>> ids;
};

namespace {

/// Parses encoder.json into id -> raw bytes, checking it is GPT-2's vocabulary.
std::vector<std::string> readEncoder(const std::string& path) {
  const std::string text = readFile(path);
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path + ": malformed JSON: " + e.what());
  }
  if (!json.is_object())
    throw DataError(path + ": expected a JSON object mapping token strings to ids");
  if (json.size() != Tokenizer::kVocabSize)
    throw DataError(path + ": has " + std::to_string(json.size()) + " tokens, expected " +
                    std::to_string(Tokenizer::kVocabSize) + " (GPT-2's vocabulary)");

  std::vector<std::string> bytesOf(Tokenizer::kVocabSize);
  std::vector<bool> seen(Tokenizer::kVocabSize, false);
  for (const auto& [token, value] : json.items()) {
    if (!value.is_number_unsigned() || value.get<uint64_t>() >= Tokenizer::kVocabSize)
      throw DataError(path + ": token \"" + excerpt(token) + "\" has id " + value.dump() +
                      ", expected an integer in [0, " + std::to_string(Tokenizer::kVocabSize) +
                      ")");
    const auto id = value.get<uint32_t>();
    if (seen[id])
      throw DataError(path + ": id " + std::to_string(id) + " is used by two tokens, \"" +
                      excerpt(token) + "\" and another");
    if (token.empty()) throw DataError(path + ": the empty string is not a token");
    seen[id] = true;
    bytesOf[id] = tokenBytes(token, path);
  }
  if (bytesOf[Tokenizer::kEndOfText] != "<|endoftext|>")
    throw DataError(path + ": id " + std::to_string(Tokenizer::kEndOfText) +
                    " is not \"<|endoftext|>\"");
  return bytesOf;
}

/// Splits `text` at '\n'; a final newline does not start another line.
std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

/// Reads vocab.bpe, given the vocabulary of encoder.json (id -> raw bytes), checking that
/// it has GPT-2's number of merges and that every merge joins two tokens into a token.
MergeTable readMerges(const std::string& path, const std::string& encoderPath,
                      const std::vector<std::string>& bytesOf) {
  std::unordered_map<std::string, uint32_t> idOf;
  idOf.reserve(bytesOf.size());
  for (uint32_t id = 0; id < bytesOf.size(); ++id) idOf.emplace(bytesOf[id], id);

  const std::vector<std::string> lines = splitLines(readFile(path));
  if (lines.empty() || lines[0].rfind("#version", 0) != 0)
    throw DataError(path + ":1: expected a \"#version\" header line");

  MergeTable merges;
  merges.reserve(lines.size());
  std::unordered_map<uint64_t, size_t> lineOf;  // pair -> line, to report duplicates
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const std::string where = path + ":" + std::to_string(i + 1);
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos)
      throw DataError(where + ": malformed merge \"" + excerpt(line) +
                      "\" (expected two tokens separated by one space)");
    const std::string left = tokenBytes(line.substr(0, space), where);
    const std::string right = tokenBytes(line.substr(space + 1), where);
    auto lookUp = [&](const std::string& bytes, const std::string& shown) {
      auto it = idOf.find(bytes);
      if (it == idOf.end())
        throw DataError(where + ": merge \"" + excerpt(line) + "\" uses \"" + excerpt(shown) +
                        "\", which is not a token of " + encoderPath);
      return it->second;
    };
    const uint32_t leftId = lookUp(left, line.substr(0, space));
    const uint32_t rightId = lookUp(right, line.substr(space + 1));
    const uint32_t resultId = lookUp(left + right, line.substr(0, space) + line.substr(space + 1));
    const uint64_t key = pairKey(leftId, rightId);
    auto [previous, fresh] = lineOf.emplace(key, i + 1);
    if (!fresh)
      throw DataError(where + ": duplicate merge \"" + excerpt(line) + "\" (first on line " +
                      std::to_string(previous->second) + ")");
    merges.emplace(key, Merge{static_cast<uint32_t>(i - 1), resultId});
  }
  const size_t count = lines.size() - 1;
  if (count != Tokenizer::kMergeCount)
    throw DataError(path + ": has " + std::to_string(count) + " merges, expected " +
                    std::to_string(Tokenizer::kMergeCount) + " (GPT-2's merges)");
  return merges;
}

}  // namespace

// ---- Tokenizer ------------------------------------------------------------------------

Tokenizer::Tokenizer(std::shared_ptr<const Tables> tables)
    : tables_(std::move(tables)), cache_(std::make_shared<Cache>()) {}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(const Tokenizer&) = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(const Tokenizer&) = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::load(const std::string& encoderJson, const std::string& vocabBpe) {
  auto tables = std::make_shared<Tables>();
  tables->bytesOf = readEncoder(encoderJson);

  std::array<uint32_t, 256> byteToken;
  byteToken.fill(kNoByte);
  for (uint32_t id = 0; id < tables->bytesOf.size(); ++id)
    if (tables->bytesOf[id].size() == 1)
      byteToken[static_cast<unsigned char>(tables->bytesOf[id][0])] = id;
  for (uint32_t b = 0; b < 256; ++b)
    if (byteToken[b] == kNoByte)
      throw DataError(encoderJson + ": has no token for the byte " + std::to_string(b));
  tables->byteToken = byteToken;

  tables->merges = readMerges(vocabBpe, encoderJson, tables->bytesOf);
  tables->pretokenizer = compilePretokenizer();
  return Tokenizer(std::move(tables));
}

Tokenizer Tokenizer::loadDefault() {
  const std::string dir = dataDirectory() + "/gpt2";
  for (const char* name : {"/encoder.json", "/vocab.bpe"})
    if (!fileExists(dir + name))
      throw DataError("GPT-2 tokenizer file " + dir + name +
                      " is missing: run ./scripts/setup.sh to download it");
  return load(dir + "/encoder.json", dir + "/vocab.bpe");
}

size_t Tokenizer::vocabSize() const { return tables_->bytesOf.size(); }

namespace {

/// Runs BPE on `symbols` (ids) in place: while some adjacent pair has a merge, merge every
/// occurrence, left to right, of the pair with the lowest rank (encoder.py's bpe()).
void applyMerges(const MergeTable& merges, std::vector<uint32_t>& symbols) {
  while (symbols.size() > 1) {
    uint32_t bestRank = std::numeric_limits<uint32_t>::max();
    uint32_t left = 0, right = 0, result = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = merges.find(pairKey(symbols[i], symbols[i + 1]));
      if (it != merges.end() && it->second.rank < bestRank) {
        bestRank = it->second.rank;
        left = symbols[i], right = symbols[i + 1], result = it->second.result;
      }
    }
    if (bestRank == std::numeric_limits<uint32_t>::max()) return;
    size_t out = 0;
    for (size_t i = 0; i < symbols.size();) {
      if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
        symbols[out++] = result;
        i += 2;
      } else {
        symbols[out++] = symbols[i++];
      }
    }
    symbols.resize(out);
  }
}

}  // namespace

void Tokenizer::encodePiece(const char* data, size_t size, std::vector<uint32_t>& out) const {
  const bool cacheable = size <= kMaxCachedPieceBytes;
  std::string key;
  if (cacheable) {
    key.assign(data, size);
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->ids.find(key);
    if (it != cache_->ids.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<uint32_t> symbols(size);
  for (size_t i = 0; i < size; ++i) symbols[i] = tables_->byteToken[static_cast<unsigned char>(data[i])];
  applyMerges(tables_->merges, symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    if (cache_->ids.size() >= kMaxCacheEntries) cache_->ids.clear();
    cache_->ids.emplace(std::move(key), std::move(symbols));
  }
}

std::vector<uint32_t> Tokenizer::encode(const std::string& text) const {
  const size_t invalid = firstInvalidUtf8(text);
  if (invalid != std::string::npos)
    throw DataError("text is not valid UTF-8 at byte " + std::to_string(invalid));

  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> match(
      pcre2_match_data_create_from_pattern(tables_->pretokenizer, nullptr), pcre2_match_data_free);
  if (!match) throw std::bad_alloc();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());

  std::vector<uint32_t> ids;
  ids.reserve(text.size() / 4 + 1);
  size_t offset = 0;
  while (offset < text.size()) {
    // The UTF check was done once above; repeating it per match would be quadratic.
    const int rc = pcre2_match(tables_->pretokenizer, subject, text.size(), offset,
                               PCRE2_NO_UTF_CHECK, match.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0)
      throw DataError("the GPT-2 pre-tokeniser failed at byte " + std::to_string(offset) + ": " +
                      pcre2Message(rc));
    const PCRE2_SIZE* range = pcre2_get_ovector_pointer(match.get());
    // Every character is white space, a letter, a number or none of these, so matches are
    // contiguous and never empty; were that ever not so, the bytes would still be kept.
    if (range[0] > offset) encodePiece(text.data() + offset, range[0] - offset, ids);
    if (range[1] <= range[0]) break;
    encodePiece(text.data() + range[0], range[1] - range[0], ids);
    offset = range[1];
  }
  if (offset < text.size()) encodePiece(text.data() + offset, text.size() - offset, ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<uint32_t>& ids) const {
  std::string text;
  for (uint32_t id : ids) {
    if (id >= tables_->bytesOf.size())
      throw DataError("token id " + std::to_string(id) + " is out of range (the vocabulary has " +
                      std::to_string(tables_->bytesOf.size()) + " tokens)");
    text += tables_->bytesOf[id];
  }
  return text;
}

}  // namespace attn::data
