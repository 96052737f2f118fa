// Training data at paper scale (issue 17): shards memory-mapped as one stream
// (runtime/data/TokenStream.h) instead of read into one vector, and `attn data inspect`.
//
// What is checked: the stream's tokens and windows across shard boundaries against the
// concatenation of readShard's results; that a run over shards split three ways sees the
// same batches (the same losses, bit for bit) as a run over one shard; that a run's peak
// resident memory does not grow with the number of shards (measured by GNU time, i.e. the
// kernel's wait4 rusage, not by attn itself); and inspect's counts against a count written
// here and against what `attn eval` reports for the same data.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "TestUtil.h"
#include "TrainingFixtures.h"
#include "runtime/data/DataError.h"
#include "runtime/data/Shards.h"
#include "runtime/data/TokenStream.h"

using namespace attn::test;
using attn::data::DataError;
using attn::data::MappedShard;
using attn::data::TokenStream;

namespace {

std::vector<uint16_t> randomTokens(size_t n, uint64_t seed, uint16_t below = 50257) {
  std::mt19937_64 rng(seed);
  std::vector<uint16_t> t(n);
  for (auto& x : t) x = static_cast<uint16_t>(rng() % below);
  return t;
}

std::string freshDir(const std::string& name) {
  const std::string dir = tempDir() + "/" + name;
  ::mkdir(dir.c_str(), 0777);
  return dir;
}

std::string lssa() { return std::string(ATTN_STDLIB) + "/lssa.attn"; }

// A data directory of validation documents of the given lengths (each starts with
// end-of-text 50256, the rest random tokens below it) and two training shards.
std::string dataDirWithDocuments(const std::string& name, const std::vector<int64_t>& lengths) {
  const std::string dir = freshDir(name);
  std::mt19937_64 rng(7);
  std::vector<uint16_t> val;
  for (int64_t n : lengths) {
    val.push_back(50256);
    for (int64_t i = 1; i < n; ++i) val.push_back(static_cast<uint16_t>(rng() % 50000));
  }
  attn::data::writeShard(dir + "/syn_val_000000.bin", val);
  attn::data::writeShard(dir + "/syn_train_000000.bin", randomTokens(3000, 1));
  attn::data::writeShard(dir + "/syn_train_000001.bin", randomTokens(1234, 2));
  return dir;
}

// The rows of inspect's window table: length -> {window, windows, targets, docs >= window+1}.
std::map<std::string, std::vector<long long>> windowTable(const std::string& out) {
  std::map<std::string, std::vector<long long>> rows;
  std::istringstream in(out);
  std::string line;
  bool inTable = false;
  while (std::getline(in, line)) {
    if (line.find("  length     window") == 0) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    char spec[16];
    long long a, b, c, d;
    if (std::sscanf(line.c_str(), " %15s %lld %lld %lld %lld", spec, &a, &b, &c, &d) == 5) rows[spec] = {a, b, c, d};
  }
  return rows;
}

}  // namespace

TEST_SUITE("scale") {
  TEST_CASE("a stream of mapped shards reads what the shards hold, across their boundaries") {
    const std::string dir = freshDir("stream");
    const std::vector<size_t> sizes = {37, 1, 0, 501, 4096, 2};
    std::vector<uint16_t> all;
    std::vector<std::string> paths;
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::vector<uint16_t> t = randomTokens(sizes[i], 100 + i, 65535);
      paths.push_back(dir + "/s_train_00000" + std::to_string(i) + ".bin");
      attn::data::writeShard(paths.back(), t);
      all.insert(all.end(), t.begin(), t.end());
    }
    const TokenStream stream = TokenStream::mapShards(paths);
    REQUIRE(stream.size() == static_cast<int64_t>(all.size()));
    CHECK(stream.shardCount() == 5);  // the empty shard holds nothing to map into the stream
    CHECK(stream.slice(0, stream.size()) == all);
    std::mt19937_64 rng(3);
    for (int i = 0; i < 300; ++i) {
      const int64_t count = static_cast<int64_t>(rng() % 600);
      const int64_t start = static_cast<int64_t>(rng() % (all.size() - static_cast<size_t>(count) + 1));
      INFO("start ", start, " count ", count);
      REQUIRE(stream.slice(start, count) ==
              std::vector<uint16_t>(all.begin() + start, all.begin() + start + count));
    }
    // The boundaries themselves: 37 | 1 | 501 | 4096 | 2.
    for (int64_t start : {int64_t{36}, int64_t{37}, int64_t{38}, int64_t{538}, int64_t{539}, int64_t{4633}})
      CHECK(stream.slice(start, 3) == std::vector<uint16_t>(all.begin() + start, all.begin() + start + 3));
    const int64_t n = stream.size();
    CHECK_THROWS_AS(stream.slice(n - 2, 3), DataError);
    CHECK_THROWS_AS(stream.slice(-1, 2), DataError);
    CHECK_THROWS_WITH(TokenStream(stream).push_back(1), "cannot append tokens to a stream of mapped shards");
    TokenStream memory;
    for (uint16_t t : {5, 6, 7}) memory.push_back(t);
    CHECK(memory.slice(1, 2) == std::vector<uint16_t>{6, 7});
  }

  TEST_CASE("a mapped shard passes the reader's checks: the same tokens, the same errors") {
    const std::string dir = freshDir("mapped");
    const std::vector<uint16_t> t = randomTokens(1000, 9, 65535);
    attn::data::writeShard(dir + "/a.bin", t);
    const MappedShard m = MappedShard::open(dir + "/a.bin");
    CHECK(std::vector<uint16_t>(m.tokens(), m.tokens() + m.size()) == attn::data::readShard(dir + "/a.bin"));
    m.release(0, 1000);  // pages dropped from memory come back when read again
    CHECK(std::vector<uint16_t>(m.tokens(), m.tokens() + m.size()) == t);
    // A truncated shard: the message readShard gives.
    std::string bytes = readFile(dir + "/a.bin");
    { std::ofstream(dir + "/cut.bin", std::ios::binary) << bytes.substr(0, bytes.size() - 3); }
    std::string expected;
    try {
      attn::data::readShard(dir + "/cut.bin");
    } catch (const DataError& e) {
      expected = e.what();
    }
    REQUIRE(expected.find("truncated") != std::string::npos);
    CHECK_THROWS_WITH(MappedShard::open(dir + "/cut.bin"), expected.c_str());
    CHECK_THROWS_WITH(MappedShard::open(dir + "/none.bin"), (dir + "/none.bin: cannot open: No such file or directory").c_str());
  }

  TEST_CASE("a run over the tokens split into three shards sees the same batches as over one shard") {
    const std::vector<uint16_t> tokens = randomTokens(9000, 11);
    const std::string one = freshDir("one_shard"), three = freshDir("three_shards");
    attn::data::writeShard(one + "/d_train_000000.bin", tokens);
    attn::data::writeShard(three + "/d_train_000000.bin", std::vector<uint16_t>(tokens.begin(), tokens.begin() + 2999));
    attn::data::writeShard(three + "/d_train_000001.bin", std::vector<uint16_t>(tokens.begin() + 2999, tokens.begin() + 3001));
    attn::data::writeShard(three + "/d_train_000002.bin", std::vector<uint16_t>(tokens.begin() + 3001, tokens.end()));
    std::vector<std::vector<nlohmann::json>> logs;
    for (const std::string& data : {one, three}) {
      const std::string run = data + "/run";
      CommandResult r = runAttn({"train", "--config", "tiny", "--attn", lssa(), "--steps", "3", "--seq-len", "64",
                                 "--micro-batch", "8", "--data", data, "--out", run, "--threads", "1", "--quiet"});
      INFO(r.err);
      REQUIRE(r.status == 0);
      logs.push_back(logLines(run + "/log.jsonl"));
    }
    REQUIRE(logs[0].size() == 3);
    REQUIRE(logs[1].size() == 3);
    for (size_t s = 0; s < 3; ++s) CHECK(logs[0][s].at("train_loss").get<double>() == logs[1][s].at("train_loss").get<double>());
  }

  TEST_CASE("a training run's peak memory does not grow with the number of shards") {
    if (::access("/usr/bin/time", X_OK) != 0) {
      skip("GNU time (/usr/bin/time) is not installed: the child's peak memory cannot be measured");
      return;
    }
    // 25M tokens (50 MB) a shard: a run that read its shards into memory would hold 150 MB
    // more with three of them than with one.
    const int64_t perShard = 25000000;
    const int64_t shardBytes = perShard * 2;
    const std::string one = freshDir("mem_one"), three = freshDir("mem_three");
    for (int i = 0; i < 3; ++i) {
      const std::string name = "/m_train_00000" + std::to_string(i) + ".bin";
      attn::data::writeShard(three + name, randomTokens(static_cast<size_t>(perShard), 20 + static_cast<uint64_t>(i)));
      if (i == 0) ::link((three + name).c_str(), (one + name).c_str());
    }
    auto peakKiB = [&](const std::string& data) {
      CommandResult r = runProgram("/usr/bin/time",
                                   {"-f", "peak-kib %M", ATTN_BINARY, "train", "--config", "tiny", "--attn", lssa(),
                                    "--steps", "2", "--seq-len", "64", "--micro-batch", "4", "--data", data, "--out",
                                    data + "/run", "--threads", "1", "--quiet"});
      INFO(r.err);
      REQUIRE(r.status == 0);
      const size_t at = r.err.rfind("peak-kib ");
      REQUIRE(at != std::string::npos);
      return std::stoll(r.err.substr(at + 9));
    };
    const long long base = peakKiB(one), tripled = peakKiB(three);
    MESSAGE("peak resident memory: one shard ", base, " KiB, three shards ", tripled, " KiB (a shard is ",
            shardBytes / 1024, " KiB)");
    // Under twice one shard's memory in all (the process's own ~200 MB of LibTorch aside),
    // and the two extra shards add less than one shard: shards read whole would add two. (The
    // bar was half a shard: the peaks of two runs of a 600 MB process differ by up to ~25 MB
    // from the allocator alone, and a clean CI run measured +24.5 MB against a bar of 23.8.)
    CHECK(tripled - base < shardBytes / 1024);
    CHECK(tripled < base + 2 * shardBytes / 1024);
  }

  TEST_CASE("attn data inspect: tokens, document lengths and eval's windows, against an independent count") {
    const std::vector<int64_t> lengths = {1, 37, 501, 1100, 2100, 5000, 300, 1025, 1024};
    const std::string dir = dataDirWithDocuments("inspect", lengths);
    CommandResult r = runAttn({"data", "inspect", dir, "--seq-len", "256", "--lengths", "1x,2x,3x,4x", "--max-docs", "0"});
    INFO(r.out, r.err);
    REQUIRE(r.status == 0);
    int64_t valTokens = 0;
    for (int64_t n : lengths) valTokens += n;
    CHECK(r.out.find("train    2 shards           4,234 tokens") != std::string::npos);  // 3000 + 1234
    REQUIRE(valTokens == 11088);
    CHECK(r.out.find("val      1 shard           11,088 tokens          9 documents") != std::string::npos);
    // The histogram: power-of-two buckets counted here.
    std::map<int64_t, int> buckets;
    for (int64_t n : lengths) buckets[int64_t(1) << static_cast<int>(std::floor(std::log2(static_cast<double>(n))))]++;
    for (const auto& [low, count] : buckets) {
      char row[64];
      const std::string range = "[" + std::to_string(low) + ", " + std::to_string(2 * low) + ")";
      std::snprintf(row, sizeof row, "  %-22s %10d\n", range.c_str(), count);
      CHECK_MESSAGE(r.out.find(row) != std::string::npos, row);
    }
    // Windows: the longest length is 4 x 256 = 1024; documents of >= 1025 tokens: 1100,
    // 2100, 5000, 1025 (not 1024). Each scores targets 1..1024 once per length, in
    // ceil(1024 / L) windows.
    const auto table = windowTable(r.out);
    const int64_t units = 4, longest = 1024;
    for (int m : {1, 2, 3, 4}) {
      const int64_t L = 256 * m;
      const std::string spec = std::to_string(m) + "x";
      REQUIRE(table.count(spec) == 1);
      const auto& row = table.at(spec);
      CHECK(row[0] == L);
      CHECK(row[1] == units * ((longest + L - 1) / L));
      CHECK(row[2] == units * longest);
      int64_t fit = 0;
      for (int64_t n : lengths) fit += n >= L + 1;
      CHECK(row[3] == fit);
    }
    CHECK(r.out.find("4 documents of at least 1,025 tokens used (4 long enough, --max-docs 0)") != std::string::npos);
    // --max-docs as eval: the first 2 of the 4.
    CommandResult two = runAttn({"data", "inspect", dir, "--seq-len", "256", "--lengths", "1x,4x"});
    REQUIRE(two.status == 0);
    CHECK(windowTable(two.out).at("1x")[1] == 4 * 4);  // eval's default --max-docs 8 takes all 4
    CommandResult capped = runAttn({"data", "inspect", dir, "--seq-len", "256", "--lengths", "1x,4x", "--max-docs", "2"});
    REQUIRE(capped.status == 0);
    CHECK(windowTable(capped.out).at("1x")[1] == 2 * 4);
    CHECK(windowTable(capped.out).at("4x")[2] == 2 * 1024);
  }

  TEST_CASE("attn data inspect counts the windows attn eval scores") {
    const std::vector<int64_t> lengths = {60, 7, 130, 49, 200, 48};
    const std::string dir = dataDirWithDocuments("inspect_eval", lengths);
    const std::string run = dir + "/run";
    CommandResult t = runAttn({"train", "--config", "tiny", "--attn", lssa(), "--steps", "1", "--seq-len", "16",
                               "--micro-batch", "2", "--data", dir, "--out", run, "--threads", "1", "--quiet"});
    INFO(t.err);
    REQUIRE(t.status == 0);
    const std::string json = dir + "/eval.json";
    CommandResult e = runAttn({"eval", "--ckpt", run, "--data", dir, "--lengths", "1x,2x,3x", "--max-docs", "0",
                               "--out", json, "--threads", "1"});
    INFO(e.err);
    REQUIRE(e.status == 0);
    CommandResult i = runAttn({"data", "inspect", dir, "--seq-len", "16", "--lengths", "1x,2x,3x", "--max-docs", "0"});
    REQUIRE(i.status == 0);
    const auto table = windowTable(i.out);
    const auto evaluated = nlohmann::json::parse(readFile(json));
    REQUIRE(evaluated.at("lengths").size() == 3);
    for (const auto& l : evaluated.at("lengths")) {
      const auto& row = table.at(l.at("length").get<std::string>());
      CHECK(row[0] == l.at("window").get<long long>());
      CHECK(row[1] == l.at("windows").get<long long>());
      CHECK(row[2] == l.at("tokens").get<long long>());
    }
    CHECK(evaluated["lengths"][0].at("units").get<int>() == 4);  // 60, 130, 49, 200 >= 3 x 16 + 1
  }

  TEST_CASE("attn data inspect: errors") {
    CommandResult missing = runAttn({"data", "inspect", tempDir() + "/no_such_dir"});
    CHECK(missing.status == 1);
    CHECK(missing.err.find("no_such_dir: cannot open the data directory") != std::string::npos);
    const std::string empty = freshDir("inspect_empty");
    CommandResult none = runAttn({"data", "inspect", empty});
    CHECK(none.status == 1);
    CHECK(none.err.find("no token shards") != std::string::npos);
    CommandResult badLength = runAttn({"data", "inspect", empty, "--lengths", "0x"});
    CHECK(badLength.status == 2);
    CHECK(badLength.err.find("--lengths") != std::string::npos);
    CommandResult badSeq = runAttn({"data", "inspect", empty, "--seq-len", "0"});
    CHECK(badSeq.status == 2);
    CHECK(badSeq.err.find("--seq-len") != std::string::npos);
    const std::string dir = freshDir("inspect_corrupt");
    { std::ofstream(dir + "/x_val_000000.bin", std::ios::binary) << std::string(100, 'x'); }
    CommandResult corrupt = runAttn({"data", "inspect", dir});
    CHECK(corrupt.status == 1);
    CHECK(corrupt.err.find("x_val_000000.bin: not a token shard") != std::string::npos);
  }
}
