// The GPT-2 tokenizer (runtime/data/Bpe.cpp) against an independent implementation, the JS
// package gpt-3-encoder@1.1.4: exact ids for strings chosen to reach every branch of the
// pre-tokeniser regex and of BPE, a fixture cut from a State of the Union speech, and a
// checksum of the ids of the whole data/sotu corpus; decode(encode(s)) == s everywhere;
// and one DataError, naming the file, per kind of broken input file.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/data/Bpe.h"
#include "runtime/data/DataError.h"
#include "TestUtil.h"

namespace {

using attn::data::DataError;
using attn::data::Tokenizer;
using Ids = std::vector<uint32_t>;

const std::string kGpt2Dir = std::string(ATTN_DATA_DIR) + "/gpt2";
const std::string kEncoderJson = kGpt2Dir + "/encoder.json";
const std::string kVocabBpe = kGpt2Dir + "/vocab.bpe";

/// The real GPT-2 tokenizer, loaded once (data/gpt2 comes from ./scripts/setup.sh).
const Tokenizer& gpt2() {
  static const Tokenizer tokenizer = Tokenizer::load(kEncoderJson, kVocabBpe);
  return tokenizer;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

void writeFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  REQUIRE(out.good());
}

/// A fresh directory under /tmp, removed with everything in it at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    char pattern[] = "/tmp/attn_tok_XXXXXX";
    const char* made = mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path = made;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

/// The message of the DataError that `load` throws; fails the test if it throws none.
template <typename F>
std::string dataErrorOf(F&& load) {
  try {
    load();
  } catch (const DataError& e) {
    return e.what();
  }
  FAIL("expected a DataError");
  return "";
}

/// Whether `haystack` contains `needle` (for readable CHECK failures on messages).
bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// Replaces line `number` (1-based) of `text` with `replacement`.
std::string replaceLine(const std::string& text, size_t number, const std::string& replacement) {
  size_t start = 0;
  for (size_t i = 1; i < number; ++i) start = text.find('\n', start) + 1;
  const size_t end = text.find('\n', start);
  return text.substr(0, start) + replacement + text.substr(end);
}

/// Sets $ATTN_DATA_DIR for the lifetime of the object, then restores it.
struct ScopedDataDir {
  std::string saved;
  bool hadValue;
  explicit ScopedDataDir(const std::string& dir) {
    const char* old = std::getenv("ATTN_DATA_DIR");
    hadValue = old != nullptr;
    if (old) saved = old;
    setenv("ATTN_DATA_DIR", dir.c_str(), 1);
  }
  ~ScopedDataDir() {
    if (hadValue)
      setenv("ATTN_DATA_DIR", saved.c_str(), 1);
    else
      unsetenv("ATTN_DATA_DIR");
  }
};

struct KnownCase {
  const char* text;
  Ids ids;
};

// Expected ids from the JS package gpt-3-encoder@1.1.4 (npm), computed with node:
//   require('./package/Encoder.js').encode(text)
const std::vector<KnownCase> kKnownCases = {
    {"Hello world", {15496, 995}},
    {"", {}},
    {"  leading spaces", {220, 3756, 9029}},
    {"trailing spaces   ", {9535, 4386, 9029, 220, 220, 220}},
    {"multiple   spaces  between", {48101, 220, 220, 9029, 220, 1022}},
    {"   ", {220, 220, 220}},
    {"line one\nline two\n\nparagraph", {1370, 530, 198, 1370, 734, 198, 198, 20360}},
    {"\n\n", {628}},
    {"x  \n  y", {87, 220, 220, 198, 220, 331}},
    {"A\r\nWindows line", {32, 201, 198, 11209, 1627}},
    {"tab\tseparated\t\tvalues", {8658, 197, 25512, 515, 197, 197, 27160}},
    {"I'm sure they'll say we don't know.", {40, 1101, 1654, 484, 1183, 910, 356, 836, 470, 760, 13}},
    {"'s at the start", {338, 379, 262, 923}},
    {"IT'S ALL CAPS'LL", {2043, 6, 50, 11096, 20176, 50, 6, 3069}},
    {"In 2024 pi was 3.14159 and 1,000,000 people came.",
     {818, 48609, 31028, 373, 513, 13, 1415, 19707, 290, 352, 11, 830, 11, 830, 661, 1625, 13}},
    {"Wait... what?!?! (yes) -- [ok] {}",
     {21321, 986, 644, 12248, 12248, 357, 8505, 8, 1377, 685, 482, 60, 23884}},
    {"café naïve résumé", {66, 1878, 2634, 41492, 40560, 16345, 2634}},
    {"日本語のテキスト", {33768, 98, 17312, 105, 45739, 252, 5641, 24336, 25084, 43302}},
    {"smile 🙂 and 👍🏽!", {5796, 576, 32485, 290, 50169, 235, 8582, 237, 121, 0}},
    {"mixed: Grüße, мир, 世界 & 🙂",
     {76, 2966, 25, 1902, 9116, 39683, 68, 11, 12466, 120, 18849, 21169, 11, 220, 10310, 244,
      45911, 234, 1222, 32485}},
    // U+00A0 (no-break space) and U+2028 (line separator): white space to the regex.
    {"\xC2\xA0nbsp and\xE2\x80\xA8sep", {1849, 77, 24145, 290, 447, 101, 325, 79}},
    {"<|endoftext|>", {27, 91, 437, 1659, 5239, 91, 29}},
    {"antidisestablishmentarianism", {415, 29207, 44390, 3699, 1042}},
    {"supercalifragilisticexpialidocious",
     {16668, 9948, 361, 22562, 346, 396, 501, 42372, 498, 312, 32346}},
    {"Mr. President, Members of Congress", {5246, 13, 1992, 11, 12688, 286, 3162}},
};

/// FNV-1a (32-bit) over a stream of ids, one id per step: the corpus checksum below.
struct IdChecksum {
  uint32_t hash = 0x811c9dc5u;
  size_t count = 0;
  void add(const Ids& ids) {
    for (uint32_t id : ids) hash = (hash ^ id) * 0x01000193u;
    count += ids.size();
  }
};

}  // namespace

TEST_SUITE("tokenizer") {

TEST_CASE("known strings encode to gpt-3-encoder@1.1.4's ids and decode back") {
  for (const KnownCase& known : kKnownCases) {
    CAPTURE(known.text);
    CHECK(gpt2().encode(known.text) == known.ids);
    CHECK(gpt2().decode(known.ids) == known.text);
  }
}

TEST_CASE("the vocabulary and <|endoftext|>") {
  CHECK(gpt2().vocabSize() == 50257);
  CHECK(Tokenizer::kEndOfText == 50256);
  CHECK(gpt2().decode({Tokenizer::kEndOfText}) == "<|endoftext|>");
  // The text "<|endoftext|>" is ordinary text to encode(), also inside a document.
  const Ids ids = gpt2().encode("end.<|endoftext|>Next");
  CHECK(std::find(ids.begin(), ids.end(), Tokenizer::kEndOfText) == ids.end());
  CHECK(gpt2().decode(ids) == "end.<|endoftext|>Next");
  // Single bytes, including the ones bytes_to_unicode remaps (control bytes, space, 0xAD).
  CHECK(gpt2().encode("!") == Ids{0});
  CHECK(gpt2().encode(" ") == Ids{220});
  CHECK(gpt2().encode("\n") == Ids{198});
  CHECK(gpt2().encode(std::string(1, '\0')) == Ids{188});
  CHECK(gpt2().decode({188, 0, 220}) == std::string("\0! ", 3));
}

TEST_CASE("long pre-tokens, past the cache's size limit, and repeated calls") {
  // From gpt-3-encoder@1.1.4: 1000 spaces are 1000 single-space tokens (GPT-2 has no
  // double-space merge), "a" * 100 is 25 "aaaa" tokens.
  CHECK(gpt2().encode(std::string(1000, ' ')) == Ids(1000, 220));
  CHECK(gpt2().encode(std::string(100, 'a')) == Ids(25, 24794));
  Ids spaced = {87};
  spaced.insert(spaced.end(), 69, 220);
  spaced.push_back(331);
  CHECK(gpt2().encode("x" + std::string(70, ' ') + "y") == spaced);

  // A megabyte of one white-space run and of one word: no crash, exact round trip.
  const std::string blank(1 << 20, ' ');
  CHECK(gpt2().decode(gpt2().encode(blank)) == blank);
  std::string word;
  for (int i = 0; i < 100000; ++i) word += static_cast<char>('a' + (i * 7) % 26);
  CHECK(gpt2().decode(gpt2().encode(word)) == word);

  // The cache must not change results: the second call is served from it, and a copy of
  // the tokenizer (sharing it) agrees.
  const Tokenizer copy = gpt2();
  for (const KnownCase& known : kKnownCases) {
    CAPTURE(known.text);
    CHECK(gpt2().encode(known.text) == known.ids);
    CHECK(copy.encode(known.text) == known.ids);
  }
}

TEST_CASE("encode from several threads at once") {
  const std::string text = readFile(std::string(ATTN_TEST_DATA) + "/data/tokenizer/sotu_2017_excerpt.txt");
  const Tokenizer fresh = Tokenizer::load(kEncoderJson, kVocabBpe);  // an empty cache
  const Ids expected = gpt2().encode(text);
  std::vector<Ids> results(4);
  std::vector<std::thread> threads;
  for (Ids& result : results) threads.emplace_back([&] { result = fresh.encode(text); });
  for (std::thread& thread : threads) thread.join();
  for (const Ids& result : results) CHECK(result == expected);
}

TEST_CASE("a State of the Union excerpt equals gpt-3-encoder@1.1.4's ids") {
  // tests/data/tokenizer/sotu_2017_excerpt.txt: the first 4,080 bytes of
  // data/sotu/2017_donald_j_trump_r.txt (with em dashes, numbers, "[Applause]"), and its
  // ids from gpt-3-encoder@1.1.4's encode(), saved as JSON by node.
  const std::string dir = std::string(ATTN_TEST_DATA) + "/data/tokenizer/";
  const std::string text = readFile(dir + "sotu_2017_excerpt.txt");
  const Ids expected = nlohmann::json::parse(readFile(dir + "sotu_2017_excerpt.ids.json")).get<Ids>();
  REQUIRE(expected.size() == 841);
  const Ids ids = gpt2().encode(text);
  CHECK(ids.size() == expected.size());
  CHECK(ids == expected);
  CHECK(gpt2().decode(ids) == text);
}

TEST_CASE("every data/sotu document round-trips and the corpus matches gpt-3-encoder's ids") {
  const std::string dir = std::string(ATTN_DATA_DIR) + "/sotu";
  if (!std::filesystem::is_directory(dir)) {
    attn::test::skip(dir + " is missing (run ./scripts/setup.sh)");
    return;
  }
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".txt") files.push_back(entry.path().filename().string());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() == 233);

  IdChecksum checksum;
  for (const std::string& name : files) {
    CAPTURE(name);
    const std::string text = readFile(dir + "/" + name);
    const Ids ids = gpt2().encode(text);
    CHECK(gpt2().decode(ids) == text);
    checksum.add(ids);
  }
  // The same checksum over gpt-3-encoder@1.1.4's ids of the 233 files, in name order
  // (computed with node; the two agree id for id on every file).
  CHECK(checksum.count == 2074279);
  CHECK(checksum.hash == 0x5f0123afu);
}

TEST_CASE("invalid UTF-8 is a DataError with the byte offset") {
  CHECK(dataErrorOf([] { gpt2().encode("abc\xFF"); }) == "text is not valid UTF-8 at byte 3");
  CHECK(dataErrorOf([] { gpt2().encode("a\x80"); }) == "text is not valid UTF-8 at byte 1");
  CHECK(dataErrorOf([] { gpt2().encode("\xC0\xAF"); }) == "text is not valid UTF-8 at byte 0");  // overlong '/'
  CHECK(dataErrorOf([] { gpt2().encode("ok \xED\xA0\x80"); }) ==
        "text is not valid UTF-8 at byte 3");  // a UTF-16 surrogate
  CHECK(dataErrorOf([] { gpt2().encode("\xF4\x90\x80\x80"); }) ==
        "text is not valid UTF-8 at byte 0");  // above U+10FFFF
  CHECK(dataErrorOf([] { gpt2().encode("日本\xE8\xAA"); }) ==
        "text is not valid UTF-8 at byte 6");  // truncated at the end
  // The largest valid sequences are fine.
  CHECK(gpt2().decode(gpt2().encode("\xF4\x8F\xBF\xBF\xEF\xBF\xBF")) == "\xF4\x8F\xBF\xBF\xEF\xBF\xBF");
}

TEST_CASE("decode rejects an id outside the vocabulary") {
  CHECK(gpt2().decode({}) == "");
  CHECK(gpt2().decode({50255}) == " gazed");  // the last merge, "Ġg azed"
  const std::string message = dataErrorOf([] { gpt2().decode({15496, 50257}); });
  CHECK(contains(message, "50257"));
  CHECK(contains(message, "out of range"));
}

TEST_CASE("missing files are DataErrors naming the file") {
  TempDir tmp;
  const std::string missing = tmp.file("nope.json");
  std::string message = dataErrorOf([&] { Tokenizer::load(missing, kVocabBpe); });
  CHECK(contains(message, missing));
  CHECK(contains(message, "No such file"));
  message = dataErrorOf([&] { Tokenizer::load(kEncoderJson, tmp.file("nope.bpe")); });
  CHECK(contains(message, tmp.file("nope.bpe")));

  // loadDefault() says where it looked and how to get the files.
  ScopedDataDir scoped(tmp.path);
  message = dataErrorOf([] { Tokenizer::loadDefault(); });
  CHECK(contains(message, tmp.path + "/gpt2/encoder.json"));
  CHECK(contains(message, "./scripts/setup.sh"));
  std::filesystem::create_directory(tmp.file("gpt2"));
  writeFile(tmp.file("gpt2/encoder.json"), readFile(kEncoderJson));
  message = dataErrorOf([] { Tokenizer::loadDefault(); });
  CHECK(contains(message, tmp.path + "/gpt2/vocab.bpe"));
  CHECK(contains(message, "./scripts/setup.sh"));
  writeFile(tmp.file("gpt2/vocab.bpe"), readFile(kVocabBpe));
  CHECK(Tokenizer::loadDefault().encode("Hello world") == Ids{15496, 995});
}

TEST_CASE("a broken encoder.json is a DataError naming the file") {
  TempDir tmp;
  const std::string path = tmp.file("encoder.json");
  const std::string real = readFile(kEncoderJson);
  auto messageFor = [&](const std::string& contents) {
    writeFile(path, contents);
    const std::string message = dataErrorOf([&] { Tokenizer::load(path, kVocabBpe); });
    CHECK(contains(message, path));
    return message;
  };

  CHECK(contains(messageFor(real.substr(0, real.size() / 2)), "malformed JSON"));
  CHECK(contains(messageFor(""), "malformed JSON"));
  CHECK(contains(messageFor("[1, 2, 3]"), "expected a JSON object"));
  CHECK(contains(messageFor("{\"a\": 0}"), "has 1 tokens, expected 50257"));

  // Full-size, but one entry spoiled at a time.
  nlohmann::json json = nlohmann::json::parse(real);
  nlohmann::json badId = json;
  badId["Hello"] = -1;
  CHECK(contains(messageFor(badId.dump()), "token \"Hello\" has id -1"));
  nlohmann::json duplicate = json;
  duplicate["Hello"] = 0;
  CHECK(contains(messageFor(duplicate.dump()), "id 0 is used by two tokens"));
  nlohmann::json notByteLevel = json;
  notByteLevel.erase("Hello");
  notByteLevel["Hello world"] = 15496;  // a space is not one of the byte characters
  CHECK(contains(messageFor(notByteLevel.dump()), "U+0020"));
  nlohmann::json noEndOfText = json;
  noEndOfText.erase("<|endoftext|>");
  noEndOfText["<|end|>"] = 50256;
  CHECK(contains(messageFor(noEndOfText.dump()), "is not \"<|endoftext|>\""));
}

TEST_CASE("a broken vocab.bpe is a DataError naming the file and line") {
  TempDir tmp;
  const std::string path = tmp.file("vocab.bpe");
  const std::string real = readFile(kVocabBpe);
  auto messageFor = [&](const std::string& contents) {
    writeFile(path, contents);
    const std::string message = dataErrorOf([&] { Tokenizer::load(kEncoderJson, path); });
    CHECK(contains(message, path));
    return message;
  };

  std::string message = messageFor(replaceLine(real, 5, "garbage"));
  CHECK(contains(message, path + ":5:"));
  CHECK(contains(message, "malformed merge \"garbage\""));
  message = messageFor(replaceLine(real, 7, "a b c"));
  CHECK(contains(message, path + ":7:"));
  CHECK(contains(message, "malformed merge"));
  message = messageFor(replaceLine(real, 9, "z q"));  // "zq" is no token
  CHECK(contains(message, path + ":9:"));
  CHECK(contains(message, "\"zq\", which is not a token of " + kEncoderJson));
  message = messageFor(replaceLine(real, 10, "zq x"));  // nor is its left half
  CHECK(contains(message, path + ":10:"));
  CHECK(contains(message, "\"zq\", which is not a token of " + kEncoderJson));
  message = messageFor(replaceLine(real, 11, "h e"));  // line 4 is "h e" already
  CHECK(contains(message, path + ":11: duplicate merge \"h e\" (first on line 4)"));
  message = messageFor(replaceLine(real, 3, "a b\t"));
  CHECK(contains(message, path + ":3:"));
  CHECK(contains(message, "U+0009"));
  CHECK(contains(messageFor(replaceLine(real, 1, "Ġ t")), path + ":1: expected a \"#version\""));
  CHECK(contains(messageFor(""), path + ":1: expected a \"#version\""));
  CHECK(contains(messageFor(real.substr(0, real.find("\nh e\n") + 5)),  // up to "h e"
                 "has 3 merges, expected 50000"));
}

}  // TEST_SUITE("tokenizer")
