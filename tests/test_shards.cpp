// llm.c token shards and corpora (runtime/data/Shards.cpp, Corpus.cpp) and `attn data
// prepare`: byte-exact round trips and header bytes, one small bad file per diagnostic with
// its exact message, atomic writes that leave nothing behind and never damage an existing
// shard, the seeded split by whole documents, preparation of tiny text files checked token by
// token against the tokenizer, the built-in corpus, and the command line.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <tuple>
#include <string>
#include <vector>

#include "TestUtil.h"
#include "runtime/data/Bpe.h"
#include "runtime/data/Corpus.h"
#include "runtime/data/DataError.h"
#include "runtime/data/DataInspect.h"
#include "runtime/data/Shards.h"

namespace {

namespace fs = std::filesystem;
using attn::data::DataError;
using attn::data::Document;
using attn::data::Tokenizer;

/// A fresh directory under /tmp, removed with everything in it at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    char pattern[] = "/tmp/attn_shards_XXXXXX";
    const char* made = mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path = made;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ignored);
    fs::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

std::vector<uint8_t> readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void writeBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

void putInt32(std::vector<uint8_t>& bytes, size_t offset, int32_t value) {
  const auto u = static_cast<uint32_t>(value);
  for (int i = 0; i < 4; ++i) bytes[offset + i] = static_cast<uint8_t>(u >> (8 * i));
}

/// A shard file built by hand: the header with `magic`, `version` and `count`, then
/// `tokenBytes` bytes of tokens.
std::vector<uint8_t> handMadeShard(int32_t magic, int32_t version, int32_t count, size_t tokenBytes) {
  std::vector<uint8_t> bytes(1024 + tokenBytes, 0);
  putInt32(bytes, 0, magic);
  putInt32(bytes, 4, version);
  putInt32(bytes, 8, count);
  for (size_t i = 0; i < tokenBytes; ++i) bytes[1024 + i] = static_cast<uint8_t>(i * 13 + 5);
  return bytes;
}

/// The names of the entries of `dir`, sorted.
std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<uint16_t> randomTokens(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint16_t> tokens(n);
  for (auto& t : tokens) t = static_cast<uint16_t>(rng() & 0xffff);
  return tokens;
}

/// The message of the DataError that `body` throws, or "" (and a failed check) if none.
template <typename Body>
std::string errorOf(Body body) {
  try {
    body();
  } catch (const DataError& e) {
    return e.what();
  }
  FAIL_CHECK("no DataError was thrown");
  return "";
}

/// The GPT-2 tokenizer, loaded once; nullptr (with a message) when data/gpt2 is missing.
const Tokenizer* tokenizer() {
  static const std::optional<Tokenizer> loaded = []() -> std::optional<Tokenizer> {
    try {
      return Tokenizer::loadDefault();
    } catch (const DataError&) {
      return std::nullopt;
    }
  }();
  if (!loaded) MESSAGE("skipped: the GPT-2 tokenizer is missing (run ./scripts/setup.sh)");
  return loaded ? &*loaded : nullptr;
}

bool corpusPresent() {
  const bool present = fs::is_directory(std::string(ATTN_DATA_DIR) + "/sotu");
  if (!present) MESSAGE("skipped: data/sotu is missing (run ./scripts/setup.sh)");
  return present;
}

std::vector<uint32_t> widen(const std::vector<uint16_t>& tokens, size_t from, size_t to) {
  return std::vector<uint32_t>(tokens.begin() + static_cast<std::ptrdiff_t>(from),
                               tokens.begin() + static_cast<std::ptrdiff_t>(to));
}

/// Sets an environment variable for the lifetime of the object, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::vector<Document> threeDocuments() {
  return {{"a", "Fellow-Citizens of the Senate and House of Representatives:\n"},
          {"b", "It is a pleasure — déjà vu — to report 42 new states. "},
          {"c", "The state of the Union is strong.\n\nThank you."}};
}

}  // namespace

TEST_SUITE("shards") {
  // ---- the format ---------------------------------------------------------------------------

  TEST_CASE("round trip: 0, 1, 37 and 100,003 random tokens, byte-exact") {
    const TempDir dir;
    for (size_t n : {size_t{0}, size_t{1}, size_t{37}, size_t{100003}}) {
      CAPTURE(n);
      const std::vector<uint16_t> tokens = randomTokens(n, static_cast<uint32_t>(n) + 7);
      const std::string path = dir.file("t_" + std::to_string(n) + ".bin");
      attn::data::writeShard(path, tokens);

      std::vector<uint8_t> expected = handMadeShard(20240520, 1, static_cast<int32_t>(n), 0);
      for (uint16_t t : tokens) {
        expected.push_back(static_cast<uint8_t>(t & 0xff));
        expected.push_back(static_cast<uint8_t>(t >> 8));
      }
      const std::vector<uint8_t> bytes = readBytes(path);
      CHECK(bytes.size() == 1024 + 2 * n);
      CHECK(bytes == expected);
      CHECK(attn::data::readShard(path) == tokens);
      CHECK(attn::data::inspectShard(path).tokens == static_cast<int64_t>(n));
    }
    // Every token value survives, 0 and 65535 included.
    std::vector<uint16_t> all(65536);
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
    attn::data::writeShard(dir.file("all.bin"), all);
    CHECK(attn::data::readShard(dir.file("all.bin")) == all);
  }

  TEST_CASE("header bytes at known offsets") {
    const TempDir dir;
    const std::string path = dir.file("h.bin");
    attn::data::writeShard(path, std::vector<uint16_t>{1, 2, 0xabcd});
    const std::vector<uint8_t> bytes = readBytes(path);
    REQUIRE(bytes.size() == 1030);
    // 20240520 = 0x0134d888, little-endian.
    CHECK(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 4) == std::vector<uint8_t>{0x88, 0xd8, 0x34, 0x01});
    CHECK(std::vector<uint8_t>(bytes.begin() + 4, bytes.begin() + 8) == std::vector<uint8_t>{1, 0, 0, 0});
    CHECK(std::vector<uint8_t>(bytes.begin() + 8, bytes.begin() + 12) == std::vector<uint8_t>{3, 0, 0, 0});
    CHECK(std::all_of(bytes.begin() + 12, bytes.begin() + 1024, [](uint8_t b) { return b == 0; }));
    CHECK(std::vector<uint8_t>(bytes.begin() + 1024, bytes.end()) ==
          std::vector<uint8_t>{0x01, 0x00, 0x02, 0x00, 0xcd, 0xab});
    CHECK(attn::data::kShardHeaderBytes == 1024);
  }

  TEST_CASE("the reader takes a shard written by hand, whatever the unused header ints hold") {
    const TempDir dir;
    std::vector<uint8_t> bytes = handMadeShard(20240520, 1, 2, 4);
    putInt32(bytes, 12, 99);    // llm.c leaves [3..255] unused
    putInt32(bytes, 1020, -1);
    bytes[1024] = 0x50;  // 50256 = 0xc450
    bytes[1025] = 0xc4;
    bytes[1026] = 0x10;
    bytes[1027] = 0x00;
    writeBytes(dir.file("x.bin"), bytes);
    CHECK(attn::data::readShard(dir.file("x.bin")) == std::vector<uint16_t>{50256, 16});
  }

  TEST_CASE("uint32 token ids: written when they fit, rejected above 65535 with nothing written") {
    const TempDir dir;
    attn::data::writeShard(dir.file("ok.bin"), std::vector<uint32_t>{0, 50256, 65535});
    CHECK(attn::data::readShard(dir.file("ok.bin")) == std::vector<uint16_t>{0, 50256, 65535});

    const std::string path = dir.file("big.bin");
    CHECK(errorOf([&] { attn::data::writeShard(path, std::vector<uint32_t>{5, 6, 65536}); }) ==
          path + ": token 65536 at index 2 does not fit in a shard (shards hold uint16 token ids, at most 65535)");
    CHECK(listing(dir.path) == std::vector<std::string>{"ok.bin"});
  }

  // ---- reading errors: one bad file each ------------------------------------------------------

  TEST_CASE("error: bad magic, with what was found and expected") {
    const TempDir dir;
    const std::string path = dir.file("m.bin");
    writeBytes(path, handMadeShard(12345, 1, 0, 0));
    const std::string expected =
        path + ": not a GPT-2 token shard: the magic number is 12345, expected 20240520";
    CHECK(errorOf([&] { attn::data::readShard(path); }) == expected);
    CHECK(errorOf([&] { attn::data::inspectShard(path); }) == expected);

    writeBytes(path, handMadeShard(20240801, 7, 0, 0));
    CHECK(errorOf([&] { attn::data::readShard(path); }) ==
          path + ": not a GPT-2 token shard: the magic number is 20240801, expected 20240520 (that is "
                 "llm.c's Llama 3 shard, with uint32 tokens; attn trains GPT-2)");
    writeBytes(path, handMadeShard(20240522, 1, 0, 0));
    CHECK(errorOf([&] { attn::data::readShard(path); }) ==
          path + ": not a GPT-2 token shard: the magic number is 20240522, expected 20240520 (that is "
                 "llm.c's HellaSwag evaluation file, not a token shard)");
    writeBytes(path, handMadeShard(-1999096831, 1, 0, 0));  // 20240520 written big-endian
    CHECK(errorOf([&] { attn::data::readShard(path); }) ==
          path + ": not a GPT-2 token shard: the magic number is -1999096831, expected 20240520 "
                 "(byte-swapped: the header was written big-endian)");
  }

  TEST_CASE("error: version 2") {
    const TempDir dir;
    const std::string path = dir.file("v.bin");
    writeBytes(path, handMadeShard(20240520, 2, 3, 6));
    const std::string expected = path + ": unsupported shard version 2 (attn reads version 1)";
    CHECK(errorOf([&] { attn::data::readShard(path); }) == expected);
    CHECK(errorOf([&] { attn::data::inspectShard(path); }) == expected);
  }

  TEST_CASE("error: truncated by 1 byte and by half, a trailing byte, a negative count") {
    const TempDir dir;
    const std::string path = dir.file("s.bin");
    attn::data::writeShard(path, randomTokens(100, 3));
    std::vector<uint8_t> bytes = readBytes(path);
    REQUIRE(bytes.size() == 1224);

    writeBytes(path, std::vector<uint8_t>(bytes.begin(), bytes.end() - 1));
    std::string expected = path +
                           ": truncated: the header says 100 tokens (200 bytes after the 1024-byte header), "
                           "the file holds 199 bytes of tokens";
    CHECK(errorOf([&] { attn::data::readShard(path); }) == expected);
    CHECK(errorOf([&] { attn::data::inspectShard(path); }) == expected);

    writeBytes(path, std::vector<uint8_t>(bytes.begin(), bytes.end() - 100));
    CHECK(errorOf([&] { attn::data::readShard(path); }) ==
          path + ": truncated: the header says 100 tokens (200 bytes after the 1024-byte header), the file "
                 "holds 100 bytes of tokens");

    std::vector<uint8_t> longer = bytes;
    longer.push_back(0);
    writeBytes(path, longer);
    expected = path + ": 1 byte of trailing data after the 100 tokens the header declares (the file holds "
                      "201 bytes of tokens, expected 200)";
    CHECK(errorOf([&] { attn::data::readShard(path); }) == expected);
    CHECK(errorOf([&] { attn::data::inspectShard(path); }) == expected);

    writeBytes(path, handMadeShard(20240520, 1, -5, 0));
    CHECK(errorOf([&] { attn::data::readShard(path); }) == path + ": corrupt header: the token count is -5");
  }

  TEST_CASE("error: a file shorter than the 1024-byte header, and an empty file") {
    const TempDir dir;
    const std::string path = dir.file("short.bin");
    std::vector<uint8_t> bytes = handMadeShard(20240520, 1, 0, 0);
    bytes.resize(1000);
    writeBytes(path, bytes);
    const std::string expected = path + ": not a token shard: the file has 1000 bytes, less than the 1024-byte header";
    CHECK(errorOf([&] { attn::data::readShard(path); }) == expected);
    CHECK(errorOf([&] { attn::data::inspectShard(path); }) == expected);
    bytes.resize(1023);
    writeBytes(path, bytes);
    CHECK(errorOf([&] { attn::data::readShard(path); }) ==
          path + ": not a token shard: the file has 1023 bytes, less than the 1024-byte header");
    writeBytes(path, {});
    CHECK(errorOf([&] { attn::data::readShard(path); }) == path + ": not a token shard: the file is empty");
    // Exactly a header declaring no tokens is a valid, empty shard.
    writeBytes(path, handMadeShard(20240520, 1, 0, 0));
    CHECK(attn::data::readShard(path).empty());
  }

  TEST_CASE("error: a missing file, a directory") {
    const TempDir dir;
    const std::string missing = dir.file("nope.bin");
    CHECK(errorOf([&] { attn::data::readShard(missing); }) == missing + ": cannot open: No such file or directory");
    CHECK(errorOf([&] { attn::data::inspectShard(missing); }) ==
          missing + ": cannot open: No such file or directory");
    CHECK(errorOf([&] { attn::data::readShard(dir.path); }) ==
          dir.path + ": cannot read: it is a directory (expected a token shard)");
  }

  // ---- writing: errors and atomicity ----------------------------------------------------------

  TEST_CASE("error: writing into a missing, non-directory or unwritable directory") {
    const TempDir dir;
    const std::vector<uint16_t> tokens{1, 2, 3};
    const std::string inMissing = dir.file("no/such/dir/t.bin");
    std::string message = errorOf([&] { attn::data::writeShard(inMissing, tokens); });
    CHECK(message.rfind(inMissing + ": cannot create the temporary file " + inMissing + ".tmp.", 0) == 0);
    CHECK(message.find(": No such file or directory (does the directory exist, and is it writable?)") !=
          std::string::npos);

    writeText(dir.file("plain"), "not a directory");
    const std::string underFile = dir.file("plain/t.bin");
    message = errorOf([&] { attn::data::writeShard(underFile, tokens); });
    CHECK(message.find(": Not a directory (does the directory exist, and is it writable?)") != std::string::npos);

    if (::geteuid() != 0) {  // root writes into read-only directories
      fs::create_directory(dir.file("ro"));
      fs::permissions(dir.file("ro"), fs::perms::owner_read | fs::perms::owner_exec);
      message = errorOf([&] { attn::data::writeShard(dir.file("ro/t.bin"), tokens); });
      CHECK(message.find(": Permission denied (does the directory exist, and is it writable?)") !=
            std::string::npos);
      CHECK(listing(dir.file("ro")).empty());
    } else {
      MESSAGE("running as root: the read-only directory case is covered by the missing and non-directory ones");
    }
  }

  TEST_CASE("atomic write: no temporary files left, and a failed write leaves the old shard intact") {
    const TempDir dir;
    const std::string path = dir.file("s.bin");
    const std::vector<uint16_t> original = randomTokens(1000, 11);
    attn::data::writeShard(path, original);
    attn::data::writeShard(path, randomTokens(500, 12));  // replaces
    attn::data::writeShard(path, original);               // and back
    attn::data::writeShard(dir.file("t.bin"), randomTokens(3, 13));
    CHECK(listing(dir.path) == std::vector<std::string>{"s.bin", "t.bin"});
    const std::vector<uint8_t> before = readBytes(path);

    // A write that fails half-way: the file size limit stops it after 4 KiB (SIGXFSZ ignored,
    // so write() returns EFBIG). Nothing is printed while the limit is in force.
    struct rlimit oldLimit {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &oldLimit) == 0);
    struct sigaction ignore {}, previous {};
    ignore.sa_handler = SIG_IGN;
    REQUIRE(::sigaction(SIGXFSZ, &ignore, &previous) == 0);
    struct rlimit small = oldLimit;
    small.rlim_cur = 4096;
    const bool limited = ::setrlimit(RLIMIT_FSIZE, &small) == 0;
    std::string message;
    try {
      attn::data::writeShard(path, randomTokens(100000, 14));
    } catch (const DataError& e) {
      message = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &oldLimit);
    ::sigaction(SIGXFSZ, &previous, nullptr);
    REQUIRE(limited);

    CHECK(message.rfind(path + ": cannot write " + path + ".tmp.", 0) == 0);
    CHECK(message.find(": File too large") != std::string::npos);
    CHECK(readBytes(path) == before);
    CHECK(attn::data::readShard(path) == original);
    CHECK(listing(dir.path) == std::vector<std::string>{"s.bin", "t.bin"});

    // A directory in the way: refused before anything is written.
    fs::create_directory(dir.file("d.bin"));
    fs::create_directory(dir.file("d.bin/inside"));
    message = errorOf([&] { attn::data::writeShard(dir.file("d.bin"), original); });
    CHECK(message == dir.file("d.bin") + ": is a directory; expected a file to write");
    CHECK(listing(dir.path) == std::vector<std::string>{"d.bin", "s.bin", "t.bin"});
  }

  // ---- documents and the split -------------------------------------------------------------

  TEST_CASE("text documents: files and directories, sorted, named; a BOM is dropped") {
    const TempDir dir;
    fs::create_directory(dir.file("texts"));
    writeText(dir.file("texts/b.txt"), "second");
    writeText(dir.file("texts/a.txt"), "first");
    writeText(dir.file("texts/notes.md"), "not a .txt: skipped");
    fs::create_directory(dir.file("texts/sub.txt"));  // a directory named .txt: skipped
    writeText(dir.file("single.text"), "\xef\xbb\xbfwith a BOM");

    const std::vector<Document> docs =
        attn::data::loadTextDocuments({dir.file("single.text"), dir.file("texts") + "/"});
    REQUIRE(docs.size() == 3);
    CHECK(docs[0].name == dir.file("single.text"));
    CHECK(docs[0].text == "with a BOM");
    CHECK(docs[1].name == dir.file("texts/a.txt"));
    CHECK(docs[1].text == "first");
    CHECK(docs[2].name == dir.file("texts/b.txt"));
    CHECK(docs[2].text == "second");
  }

  TEST_CASE("error: text documents that cannot be used") {
    const TempDir dir;
    CHECK(errorOf([&] { attn::data::loadTextDocuments({}); }) ==
          "no input: give text files or directories of .txt files");
    const std::string missing = dir.file("missing.txt");
    CHECK(errorOf([&] { attn::data::loadTextDocuments({missing}); }) ==
          missing + ": cannot open: No such file or directory");

    writeText(dir.file("empty.txt"), "");
    CHECK(errorOf([&] { attn::data::loadTextDocuments({dir.file("empty.txt")}); }) ==
          dir.file("empty.txt") + ": the file is empty (a document needs text)");

    writeText(dir.file("latin1.txt"), "line one\nna\xefve\n");
    CHECK(errorOf([&] { attn::data::loadTextDocuments({dir.file("latin1.txt")}); }) ==
          dir.file("latin1.txt") + ": not UTF-8 text: invalid byte 0xef at byte offset 11 (line 2)");
    writeText(dir.file("surrogate.txt"), "ok \xed\xa0\x80");
    CHECK(errorOf([&] { attn::data::loadTextDocuments({dir.file("surrogate.txt")}); }) ==
          dir.file("surrogate.txt") + ": not UTF-8 text: invalid byte 0xed at byte offset 3 (line 1)");

    fs::create_directory(dir.file("none"));
    writeText(dir.file("none/readme.md"), "x");
    CHECK(errorOf([&] { attn::data::loadTextDocuments({dir.file("none")}); }) ==
          dir.file("none") + ": no .txt files in this directory");

    fs::create_directory(dir.file("one"));
    writeText(dir.file("one/a.txt"), "text");
    CHECK(errorOf([&] { attn::data::loadTextDocuments({dir.file("one"), dir.file("one/a.txt")}); }) ==
          dir.file("one/a.txt") + ": the same file as " + dir.file("one/a.txt") + ", given twice");
  }

  TEST_CASE("split: deterministic, disjoint, complete, independent of input order") {
    std::vector<Document> docs;
    for (int i = 0; i < 50; ++i) docs.push_back({"doc" + std::to_string(i), "text " + std::to_string(i)});
    const auto names = [](const std::vector<Document>& v) {
      std::vector<std::string> out;
      for (const auto& d : v) out.push_back(d.name);
      return out;
    };

    const attn::data::Split a = attn::data::splitDocuments(docs, 0.1, 1);
    const attn::data::Split again = attn::data::splitDocuments(docs, 0.1, 1);
    CHECK(a.validation.size() == 5);
    CHECK(a.train.size() == 45);
    CHECK(names(a.validation) == names(again.validation));
    CHECK(names(a.train) == names(again.train));

    // Disjoint and complete; each side keeps the input order, texts travel with names.
    std::set<std::string> all;
    for (const auto& d : a.train) all.insert(d.name);
    for (const auto& d : a.validation) CHECK(all.insert(d.name).second);
    CHECK(all.size() == 50);
    for (const auto* side : {&a.train, &a.validation}) {
      for (size_t i = 0; i < side->size(); ++i) {
        const int number = std::stoi((*side)[i].name.substr(3));
        CHECK((*side)[i].text == "text " + std::to_string(number));
        if (i > 0) CHECK(std::stoi((*side)[i - 1].name.substr(3)) < number);
      }
    }

    // The same documents in another order: the same validation set.
    std::vector<Document> reversed(docs.rbegin(), docs.rend());
    std::vector<std::string> fromReversed = names(attn::data::splitDocuments(reversed, 0.1, 1).validation);
    std::reverse(fromReversed.begin(), fromReversed.end());
    CHECK(fromReversed == names(a.validation));

    // Another seed, another choice (among 2,118,760 possible sets of 5).
    CHECK(names(attn::data::splitDocuments(docs, 0.1, 2).validation) != names(a.validation));
  }

  TEST_CASE("split: sizes, at least one document on each side, bad fractions") {
    const auto docs = [](size_t n) {
      std::vector<Document> v;
      for (size_t i = 0; i < n; ++i) v.push_back({"d" + std::to_string(i), "t"});
      return v;
    };
    CHECK(attn::data::splitDocuments(docs(233), 0.1, 1).validation.size() == 23);
    CHECK(attn::data::splitDocuments(docs(10), 0.25, 1).validation.size() == 3);  // round(2.5) = 3
    CHECK(attn::data::splitDocuments(docs(2), 0.01, 1).validation.size() == 1);
    CHECK(attn::data::splitDocuments(docs(2), 0.99, 1).train.size() == 1);
    CHECK(attn::data::splitDocuments(docs(3), 0.9, 1).train.size() == 1);
    const attn::data::Split one = attn::data::splitDocuments(docs(1), 0.5, 1);
    CHECK(one.train.size() == 1);
    CHECK(one.validation.empty());
    CHECK(attn::data::splitDocuments(docs(0), 0.5, 1).train.empty());

    CHECK(errorOf([&] { attn::data::splitDocuments(docs(4), 0, 1); }) ==
          "the validation fraction must be between 0 and 1 (exclusive), not 0.000000");
    CHECK(errorOf([&] { attn::data::splitDocuments(docs(4), 1, 1); }) ==
          "the validation fraction must be between 0 and 1 (exclusive), not 1.000000");
    CHECK(!errorOf([&] { attn::data::splitDocuments(docs(4), -0.5, 1); }).empty());
    CHECK(!errorOf([&] { attn::data::splitDocuments(docs(4), std::nan(""), 1); }).empty());
  }

  // ---- preparing shards -----------------------------------------------------------------------

  TEST_CASE("prepare: three tiny documents, checked token by token") {
    const Tokenizer* bpe = tokenizer();
    if (!bpe) {
      attn::test::skip("data/gpt2 is missing (run ./scripts/setup.sh)");
      return;
    }
    const TempDir dir;
    attn::data::Split split;
    std::vector<Document> docs = threeDocuments();
    split.train = {docs[0], docs[2]};
    split.validation = {docs[1]};
    const std::string out = dir.file("out");  // created by prepareShards
    const attn::data::PrepareResult r = attn::data::prepareShards(split, *bpe, out, "tiny", 1000);

    CHECK(listing(out) == std::vector<std::string>{"tiny_train_000000.bin", "tiny_val_000000.bin",
                                                   "tiny_val_documents.json"});
    CHECK(r.train.shards == std::vector<std::string>{out + "/tiny_train_000000.bin"});
    CHECK(r.validation.shards == std::vector<std::string>{out + "/tiny_val_000000.bin"});
    CHECK(r.validationIndex == out + "/tiny_val_documents.json");
    CHECK(r.removedStaleShards.empty());
    CHECK(r.train.documents == 2);
    CHECK(r.validation.documents == 1);

    // Each side: for each document, 50256 then exactly the tokenizer's tokens of its text.
    for (const auto& [shard, side, tokens] :
         {std::tuple{out + "/tiny_train_000000.bin", split.train, r.train.tokens},
          std::tuple{out + "/tiny_val_000000.bin", split.validation, r.validation.tokens}}) {
      const std::vector<uint16_t> stored = attn::data::readShard(shard);
      CHECK(static_cast<int64_t>(stored.size()) == tokens);
      size_t at = 0;
      for (const Document& doc : side) {
        const std::vector<uint32_t> expected = bpe->encode(doc.text);
        REQUIRE(at + 1 + expected.size() <= stored.size());
        CHECK(stored[at] == 50256);
        CHECK(widen(stored, at + 1, at + 1 + expected.size()) == expected);
        CHECK(bpe->decode(widen(stored, at + 1, at + 1 + expected.size())) == doc.text);
        at += 1 + expected.size();
      }
      CHECK(at == stored.size());
      CHECK(std::count(stored.begin(), stored.end(), 50256) == static_cast<long>(side.size()));
    }
    CHECK(r.train.tokens == static_cast<int64_t>(2 + bpe->encode(docs[0].text).size() + bpe->encode(docs[2].text).size()));

    const nlohmann::json index = nlohmann::json::parse(attn::test::readFile(r.validationIndex));
    CHECK(index["format"] == "attn-val-documents");
    CHECK(index["version"] == 1);
    CHECK(index["prefix"] == "tiny");
    CHECK(index["tokens"] == r.validation.tokens);
    CHECK(index["tokens_per_shard"] == 1000);
    CHECK(index["shards"] == nlohmann::json::array({"tiny_val_000000.bin"}));
    REQUIRE(index["documents"].size() == 1);
    CHECK(index["documents"][0]["name"] == "b");
    CHECK(index["documents"][0]["offset"] == 0);
    CHECK(index["documents"][0]["length"] == r.validation.tokens);
  }

  TEST_CASE("prepare: small shards split documents across files; the validation index adds up") {
    const Tokenizer* bpe = tokenizer();
    if (!bpe) {
      attn::test::skip("data/gpt2 is missing (run ./scripts/setup.sh)");
      return;
    }
    const TempDir dir;
    attn::data::Split split;
    split.validation = threeDocuments();
    split.train = {{"t", "Only one training document, long enough for a few shards of seven tokens."}};
    const attn::data::PrepareResult r = attn::data::prepareShards(split, *bpe, dir.path, "p", 7);

    // The shards, concatenated, are the documents' tokens; all but the last hold 7 tokens.
    std::vector<uint16_t> stream;
    for (size_t i = 0; i < r.validation.shards.size(); ++i) {
      CHECK(r.validation.shards[i] == dir.file(attn::data::shardFileName("p", "val", static_cast<int64_t>(i))));
      const std::vector<uint16_t> part = attn::data::readShard(r.validation.shards[i]);
      if (i + 1 < r.validation.shards.size()) CHECK(part.size() == 7);
      CHECK(!part.empty());
      stream.insert(stream.end(), part.begin(), part.end());
    }
    CHECK(static_cast<int64_t>(stream.size()) == r.validation.tokens);
    CHECK(r.validation.shards.size() == static_cast<size_t>((r.validation.tokens + 6) / 7));
    CHECK(r.train.shards.size() == static_cast<size_t>((r.train.tokens + 6) / 7));

    const nlohmann::json index = nlohmann::json::parse(attn::test::readFile(r.validationIndex));
    CHECK(index["shards"].size() == r.validation.shards.size());
    CHECK(index["shards"][1] == "p_val_000001.bin");
    int64_t next = 0;
    REQUIRE(index["documents"].size() == 3);
    for (size_t d = 0; d < 3; ++d) {
      const auto& entry = index["documents"][d];
      CHECK(entry["name"] == split.validation[d].name);
      const int64_t offset = entry["offset"], length = entry["length"];
      CHECK(offset == next);
      CHECK(stream[static_cast<size_t>(offset)] == 50256);
      CHECK(bpe->decode(widen(stream, static_cast<size_t>(offset) + 1, static_cast<size_t>(offset + length))) ==
            split.validation[d].text);
      next = offset + length;
    }
    CHECK(next == r.validation.tokens);
  }

  TEST_CASE("prepare: shards left from an earlier preparation are removed, others kept") {
    const Tokenizer* bpe = tokenizer();
    if (!bpe) {
      attn::test::skip("data/gpt2 is missing (run ./scripts/setup.sh)");
      return;
    }
    const TempDir dir;
    attn::data::Split split;
    split.train = {threeDocuments()[0]};
    split.validation = {threeDocuments()[1]};
    const attn::data::PrepareResult first = attn::data::prepareShards(split, *bpe, dir.path, "p", 4);
    REQUIRE(first.train.shards.size() >= 3);
    writeText(dir.file("q_train_000005.bin"), "another prefix: not ours");
    writeText(dir.file("p_train_notes.bin"), "not a shard name: kept");

    const attn::data::PrepareResult second = attn::data::prepareShards(split, *bpe, dir.path, "p", 1000);
    CHECK(second.train.shards.size() == 1);
    std::vector<std::string> expectedRemoved;
    for (size_t i = 1; i < first.validation.shards.size(); ++i) expectedRemoved.push_back(first.validation.shards[i]);
    for (size_t i = 1; i < first.train.shards.size(); ++i) expectedRemoved.push_back(first.train.shards[i]);
    CHECK(second.removedStaleShards == expectedRemoved);
    CHECK(listing(dir.path) == std::vector<std::string>{"p_train_000000.bin", "p_train_notes.bin",
                                                        "p_val_000000.bin", "p_val_documents.json",
                                                        "q_train_000005.bin"});
  }

  TEST_CASE("prepare interrupted (a document the tokenizer rejects, after the first shards): readers refuse the directory until it is prepared again") {
    const Tokenizer* bpe = tokenizer();
    if (!bpe) {
      attn::test::skip("data/gpt2 is missing (run ./scripts/setup.sh)");
      return;
    }
    const TempDir dir;
    attn::data::Split split;
    split.train = {threeDocuments()[0]};
    split.validation = {threeDocuments()[1]};
    attn::data::prepareShards(split, *bpe, dir.path, "p", 4);
    CHECK_FALSE(attn::data::listShards(dir.path).train.empty());
    CHECK_FALSE(fs::exists(dir.file(attn::data::kWritingMarker)));
    // The validation side is written first; the training side fails on invalid UTF-8.
    attn::data::Split broken = split;
    broken.train.push_back(Document{"bad.txt", "ok \xff\xfe"});
    CHECK_FALSE(errorOf([&] { attn::data::prepareShards(broken, *bpe, dir.path, "p", 1000); }).empty());
    CHECK(fs::exists(dir.file(attn::data::kWritingMarker)));
    const std::string refused = errorOf([&] { attn::data::listShards(dir.path); });
    CHECK_MESSAGE(refused.rfind(dir.path + ": an interrupted `attn data prepare` left this directory incomplete", 0) == 0,
                  refused);
    // Prepared again: complete, readable, no marker.
    attn::data::prepareShards(split, *bpe, dir.path, "p", 1000);
    CHECK_FALSE(fs::exists(dir.file(attn::data::kWritingMarker)));
    CHECK(attn::data::listShards(dir.path).train.size() == 1);
  }

  TEST_CASE("error: prepare with a bad prefix, shard size or output directory") {
    const Tokenizer* bpe = tokenizer();
    if (!bpe) {
      attn::test::skip("data/gpt2 is missing (run ./scripts/setup.sh)");
      return;
    }
    const TempDir dir;
    attn::data::Split split;
    split.train = {threeDocuments()[0]};
    CHECK(errorOf([&] { attn::data::prepareShards(split, *bpe, dir.path, "a/b", 10); }) ==
          "invalid shard prefix 'a/b': use letters, digits, '.', '_' and '-' (not first: '.', '-')");
    CHECK(!errorOf([&] { attn::data::prepareShards(split, *bpe, dir.path, "", 10); }).empty());
    CHECK(errorOf([&] { attn::data::prepareShards(split, *bpe, dir.path, "p", 0); }) ==
          "tokens per shard must be between 1 and 2147483647, not 0");
    writeText(dir.file("file"), "x");
    CHECK(errorOf([&] { attn::data::prepareShards(split, *bpe, dir.file("file"), "p", 10); })
              .rfind(dir.file("file") + ": ", 0) == 0);
    CHECK(listing(dir.path) == std::vector<std::string>{"file"});
  }

  // ---- the built-in corpus --------------------------------------------------------------------

  TEST_CASE("the built-in corpus: 233 speeches; prepared, over 2,000,000 tokens") {
    if (!corpusPresent()) {
      attn::test::skip("data/sotu is missing (run ./scripts/setup.sh)");
      return;
    }
    const std::vector<Document> corpus = attn::data::defaultCorpus();
    REQUIRE(corpus.size() == 233);
    CHECK(corpus.front().name == "1790_george_washington_n");
    CHECK(std::is_sorted(corpus.begin(), corpus.end(),
                         [](const Document& a, const Document& b) { return a.name < b.name; }));
    for (const Document& d : corpus) CHECK(!d.text.empty());

    const Tokenizer* bpe = tokenizer();
    if (!bpe) {
      attn::test::skip("data/gpt2 is missing (run ./scripts/setup.sh)");
      return;
    }
    const TempDir dir;
    const auto start = std::chrono::steady_clock::now();
    const attn::data::Split split = attn::data::splitDocuments(corpus, 0.1, 1);
    const attn::data::PrepareResult r = attn::data::prepareShards(split, *bpe, dir.path, "sotu", 100000000);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    MESSAGE("prepared the built-in corpus in " << seconds << " s (tokenizing " << r.tokenizeSeconds << " s): "
                                               << r.train.tokens << " train + " << r.validation.tokens
                                               << " validation tokens");
    CHECK(r.train.documents == 210);
    CHECK(r.validation.documents == 23);
    CHECK(r.train.tokens + r.validation.tokens > 2000000);
    CHECK(attn::data::inspectShard(r.train.shards.at(0)).tokens == r.train.tokens);
    const std::vector<uint16_t> val = attn::data::readShard(r.validation.shards.at(0));
    CHECK(static_cast<int64_t>(val.size()) == r.validation.tokens);
    CHECK(std::count(val.begin(), val.end(), 50256) == 23);
    const nlohmann::json index = nlohmann::json::parse(attn::test::readFile(r.validationIndex));
    int64_t total = 0;
    for (const auto& entry : index["documents"]) {
      CHECK(val.at(entry["offset"].get<size_t>()) == 50256);
      total += entry["length"].get<int64_t>();
    }
    CHECK(total == r.validation.tokens);
  }

  TEST_CASE("the built-in corpus, missing: the error says how to get it") {
    const TempDir dir;
    const ScopedEnv env("ATTN_DATA_DIR", dir.path);
    CHECK(errorOf([] { attn::data::defaultCorpus(); }) ==
          dir.path + "/sotu: the built-in corpus is missing (run ./scripts/setup.sh, which fetches it)");
  }

  // ---- the command line -----------------------------------------------------------------------

  TEST_CASE("attn data prepare: text files and a directory") {
    if (!tokenizer()) {
      attn::test::skip("data/gpt2 is missing (run ./scripts/setup.sh)");
      return;
    }
    const TempDir dir;
    const std::vector<Document> docs = threeDocuments();
    fs::create_directory(dir.file("in"));
    writeText(dir.file("in/a.txt"), docs[0].text);
    writeText(dir.file("in/b.txt"), docs[1].text);
    writeText(dir.file("c.txt"), docs[2].text);
    const std::string out = dir.file("out");
    const auto r = attn::test::runAttn({"data", "prepare", dir.file("in"), dir.file("c.txt"), "--out", out,
                                        "--val-fraction", "0.3", "--seed", "5", "--prefix", "mine"});
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK(r.err.empty());
    CHECK(r.out.rfind("prepared 3 documents, ", 0) == 0);
    CHECK(r.out.find("  train     2 documents") != std::string::npos);
    CHECK(r.out.find("  val       1 document ") != std::string::npos);
    CHECK(r.out.find(out + "/mine_train_000000.bin") != std::string::npos);
    CHECK(r.out.find("validation documents: " + out + "/mine_val_documents.json") != std::string::npos);
    CHECK(listing(out) == std::vector<std::string>{"mine_train_000000.bin", "mine_val_000000.bin",
                                                   "mine_val_documents.json"});
    const int64_t tokens = attn::data::inspectShard(out + "/mine_train_000000.bin").tokens +
                           attn::data::inspectShard(out + "/mine_val_000000.bin").tokens;
    int64_t expected = 3;
    for (const auto& d : docs) expected += static_cast<int64_t>(tokenizer()->encode(d.text).size());
    CHECK(tokens == expected);

    // The default prefix is the single input's name.
    const auto named = attn::test::runAttn({"data", "prepare", dir.file("in"), "--out", dir.file("out2")});
    REQUIRE_MESSAGE(named.status == 0, named.err);
    CHECK(listing(dir.file("out2")) ==
          std::vector<std::string>{"in_train_000000.bin", "in_val_000000.bin", "in_val_documents.json"});
  }

  TEST_CASE("attn data prepare: the built-in corpus") {
    if (!corpusPresent() || !tokenizer()) {
      attn::test::skip("data/sotu or data/gpt2 is missing (run ./scripts/setup.sh)");
      return;
    }
    const TempDir dir;
    const auto r = attn::test::runAttn({"data", "prepare", "--out", dir.path});
    REQUIRE_MESSAGE(r.status == 0, r.err);
    MESSAGE(r.out);
    CHECK(r.out.rfind("prepared 233 documents, 2,", 0) == 0);
    CHECK(r.out.find("  train   210 documents") != std::string::npos);
    CHECK(r.out.find("  val      23 documents") != std::string::npos);
    CHECK(attn::data::inspectShard(dir.file("sotu_train_000000.bin")).tokens +
              attn::data::inspectShard(dir.file("sotu_val_000000.bin")).tokens >
          2000000);
  }

  TEST_CASE("attn data prepare: errors exit 1 with 'attn: error:', a bad command line (or flag value) exits 2") {
    const TempDir dir;
    const std::string missing = dir.file("missing.txt");
    auto r = attn::test::runAttn({"data", "prepare", missing, "--out", dir.file("out")});
    CHECK(r.status == 1);
    CHECK(r.err == "attn: error: " + missing + ": cannot open: No such file or directory\n");
    CHECK(!fs::exists(dir.file("out")));

    writeText(dir.file("a.txt"), "one");
    writeText(dir.file("b.txt"), "two");
    r = attn::test::runAttn({"data", "prepare", dir.file("a.txt"), "--out", dir.file("out")});
    CHECK(r.status == 1);
    CHECK(r.err.rfind("attn: error: only 1 document: holding whole documents out for validation needs at least 2\n",
                      0) == 0);

    r = attn::test::runAttn(
        {"data", "prepare", dir.file("a.txt"), dir.file("b.txt"), "--out", dir.file("out"), "--val-fraction", "1.5"});
    CHECK(r.status == 2);  // a bad flag value is a bad command line, named before anything runs
    CHECK(r.err.rfind("--val-fraction: 1.5 is out of range: expected a finite number > 0 and < 1\n", 0) == 0);

    r = attn::test::runAttn(
        {"data", "prepare", dir.file("a.txt"), dir.file("b.txt"), "--out", dir.file("out"), "--prefix", "../x"});
    CHECK(r.status == 1);
    CHECK(r.err.rfind("attn: error: invalid shard prefix '../x'", 0) == 0);

    r = attn::test::runAttn({"data", "prepare", dir.file("a.txt"), dir.file("b.txt"), "--out", dir.file("out"),
                             "--tokens-per-shard", "0"});
    CHECK(r.status == 2);
    CHECK(r.err.rfind("--tokens-per-shard: 0 is out of range: expected a whole number from 1 to 2147483647\n", 0) == 0);

    {
      const ScopedEnv env("ATTN_DATA_DIR", dir.file("nodata"));
      r = attn::test::runAttn({"data", "prepare", "--out", dir.file("out")});
    }
    CHECK(r.status == 1);
    CHECK(r.err == "attn: error: " + dir.file("nodata") +
                       "/sotu: the built-in corpus is missing (run ./scripts/setup.sh, which fetches it)\n");

    r = attn::test::runAttn({"data", "prepare", dir.file("a.txt")});  // no --out
    CHECK(r.status == 2);
    r = attn::test::runAttn({"data", "prepare", "--out", dir.file("out"), "--seed", "many"});
    CHECK(r.status == 2);
    r = attn::test::runAttn({"data"});
    CHECK(r.status == 2);
    CHECK(!fs::exists(dir.file("out")));
  }

}  // TEST_SUITE("shards")
