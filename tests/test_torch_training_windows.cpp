// Where `attn train` starts its windows (runtime/train/TrainingWindows.h, --windows): the
// aligned starts against an independent definition on documents of awkward lengths, whole
// instances covered, the draws (random: the same as before the flag; aligned: only aligned
// starts, all of them, deterministic by seed), and a run that resumes bit-identically.
#include <ATen/ATen.h>
#undef CHECK
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "TestUtil.h"
#include "TrainingFixtures.h"
#include "runtime/Attention.h"
#include "runtime/train/Trainer.h"
#include "runtime/train/TrainingWindows.h"

using namespace attn;

namespace {

constexpr uint16_t kEot = 7;

// Documents of the given lengths (each <eot> first, then tokens that are never <eot>),
// concatenated, after `lead` tokens of a document continued from elsewhere.
data::TokenStream documents(const std::vector<int64_t>& lengths, int64_t lead, uint64_t seed,
                            std::vector<int64_t>* starts = nullptr) {
  std::mt19937_64 rng(seed);
  std::vector<uint16_t> tokens;
  for (int64_t i = 0; i < lead; ++i) tokens.push_back(static_cast<uint16_t>(8 + rng() % 40));
  for (int64_t n : lengths) {
    if (starts) starts->push_back(static_cast<int64_t>(tokens.size()));
    tokens.push_back(kEot);
    for (int64_t i = 1; i < n; ++i) tokens.push_back(static_cast<uint16_t>(8 + rng() % 40));
  }
  return data::TokenStream(tokens);
}

// The definition, position by position: p starts an aligned window when the nearest <eot>
// at or before p is T·k tokens back (k >= 0) and the window's T + 1 tokens fit.
std::vector<int64_t> expectedStarts(const data::TokenStream& s, int64_t T) {
  const std::vector<uint16_t> t = s.slice(0, s.size());
  std::vector<int64_t> out;
  int64_t lastEot = -1;
  for (int64_t p = 0; p < s.size(); ++p) {
    if (t[static_cast<size_t>(p)] == kEot) lastEot = p;
    if (lastEot >= 0 && (p - lastEot) % T == 0 && p + T + 1 <= s.size()) out.push_back(p);
  }
  return out;
}

std::vector<double> lossesOf(const std::string& logPath) {
  std::ifstream in(logPath);
  std::vector<double> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line).at("train_loss").get<double>());
  return out;
}

}  // namespace

TEST_SUITE("model") {
  TEST_CASE("aligned window starts: the definition, on documents of awkward lengths") {
    for (int64_t T : {1, 16, 37, 128}) {
      for (int64_t lead : {0, 5}) {
        std::vector<int64_t> lengths = {1, 37, 501, 2, 128, 129, 130, 256, 1, 1, 64, 300, 37};
        std::vector<int64_t> docStarts;
        const data::TokenStream s = documents(lengths, lead, 11 + static_cast<uint64_t>(T), &docStarts);
        INFO("T ", T, " lead ", lead);
        const std::vector<int64_t> got = train::alignedWindowStarts(s, kEot, T);
        CHECK(got == expectedStarts(s, T));
        // Each document's first window starts at its <eot>, so a document of at most T + 1
        // tokens is seen whole in it.
        const std::set<int64_t> starts(got.begin(), got.end());
        for (size_t d = 0; d < docStarts.size(); ++d) {
          const int64_t at = docStarts[d];
          if (at + T + 1 > s.size()) continue;  // no window fits there
          CHECK(starts.count(at) == 1);
          CHECK(s.slice(at, 1)[0] == kEot);
        }
        for (int64_t p : got) CHECK(p >= lead);  // the continued document starts none
      }
    }
  }

  TEST_CASE("aligned window starts across the 1M-token blocks the scan reads in") {
    // Documents of 1,000,003 and 37 and 501 tokens: an <eot> right at the block boundary
    // (token 1,048,576) and windows of the long document cut across it.
    const int64_t block = int64_t{1} << 20;
    std::vector<int64_t> lengths = {block - 3, 3, 37, 501, 1000};
    const data::TokenStream s = documents(lengths, 0, 5);
    REQUIRE(s.slice(block, 1)[0] == kEot);
    CHECK(train::alignedWindowStarts(s, kEot, 1000) == expectedStarts(s, 1000));
  }

  TEST_CASE("aligned window starts: no document start, or none with a whole window after it, is an error") {
    const data::TokenStream none = documents({}, 300, 1);
    CHECK_THROWS_WITH_AS(train::alignedWindowStarts(none, kEot, 16),
                         doctest::Contains("--windows aligned: the training data has no document start"), UserError);
    const data::TokenStream late = documents({10}, 300, 1);  // one <eot>, 9 tokens after it
    CHECK_THROWS_AS(train::alignedWindowStarts(late, kEot, 16), UserError);
    CHECK(train::alignedWindowStarts(late, kEot, 9).size() == 1);  // T + 1 = 10 tokens fit
    CHECK_THROWS_WITH_AS(train::parseWindowMode("documents"), doctest::Contains("--windows: unknown mode"), UserError);
    CHECK(train::parseWindowMode("aligned") == train::WindowMode::Aligned);
    CHECK(train::windowModeName(train::parseWindowMode("random")) == "random");
  }

  TEST_CASE("window draws: random offsets as attn train always drew them; aligned ones only among the starts") {
    // The draws of random offsets before --windows existed, written out: the default mode
    // must keep training on the same batches.
    for (uint64_t seed : {1ull, 7ull})
      for (int64_t step : {0, 3})
        for (int64_t micro : {0, 2}) {
          std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step) * 1000003ULL +
                              static_cast<uint64_t>(micro));
          std::uniform_int_distribution<int64_t> start(0, 5000 - 32 - 1);
          std::vector<int64_t> before(12);
          for (int64_t& x : before) x = start(rng);
          CHECK(train::drawWindowStarts(12, seed, step, micro, 5000, 32, nullptr) == before);
        }

    std::vector<int64_t> lengths;
    std::mt19937_64 rng(3);
    for (int i = 0; i < 60; ++i) lengths.push_back(1 + static_cast<int64_t>(rng() % 90));
    const data::TokenStream s = documents(lengths, 3, 9);
    const std::vector<int64_t> aligned = train::alignedWindowStarts(s, kEot, 37);
    const std::set<int64_t> allowed(aligned.begin(), aligned.end());
    std::map<int64_t, int64_t> hits;
    const int64_t draws = 400;  // per (step, micro)
    for (int64_t step = 0; step < 50; ++step) {
      const auto a = train::drawWindowStarts(draws, 1, step, 0, s.size(), 37, &aligned);
      CHECK(a == train::drawWindowStarts(draws, 1, step, 0, s.size(), 37, &aligned));  // by (seed, step, micro)
      CHECK(a != train::drawWindowStarts(draws, 2, step, 0, s.size(), 37, &aligned));
      CHECK(a != train::drawWindowStarts(draws, 1, step, 1, s.size(), 37, &aligned));
      for (int64_t x : a) {
        CHECK(allowed.count(x) == 1);
        ++hits[x];
      }
    }
    // Uniform among the starts: every one drawn, none far from the mean (20,000 draws over
    // ~100 starts: ~200 each, a standard deviation of ~14; 5 of them is 70).
    CHECK(hits.size() == aligned.size());
    const double mean = 50.0 * draws / static_cast<double>(aligned.size());
    for (const auto& [start, n] : hits) {
      INFO("start ", start, " drawn ", n, " times, mean ", mean);
      CHECK(std::abs(static_cast<double>(n) - mean) < 5 * std::sqrt(mean));
    }
  }

  TEST_CASE("attn train --windows aligned: recorded, other batches than random, resumed to the same losses") {
    train::TokenData data;
    {
      std::vector<int64_t> lengths;
      std::mt19937_64 rng(4);
      for (int i = 0; i < 120; ++i) lengths.push_back(1 + static_cast<int64_t>(rng() % 60));
      data.train = documents(lengths, 0, 4);
      data.endOfText = kEot;
      data.validation = {data.train.slice(0, 400)};
    }
    auto options = [&](const std::string& out, const std::string& windows) {
      train::TrainOptions o;
      o.config = "tiny";
      o.attnFile = std::string(ATTN_STDLIB) + "/softmax.attn";
      o.backend = "cpu";
      o.steps = 6;
      o.seqLen = 32;
      o.vocab = 64;
      o.microBatch = 4;
      o.batchTokens = 256;
      o.lr = 3e-3;
      o.warmup = 2;
      o.windows = windows;
      o.quiet = true;
      o.out = out;
      return o;
    };
    const std::string a = test::tempDir() + "/aligned_a", b = test::tempDir() + "/aligned_b",
                      r = test::tempDir() + "/random_r";
    train::train(options(a, "aligned"), data);
    train::train(options(r, "random"), data);
    const std::vector<double> full = lossesOf(a + "/log.jsonl");
    REQUIRE(full.size() == 6);
    CHECK(nlohmann::json::parse(test::readFile(a + "/config.json")).at("windows") == "aligned");
    CHECK(nlohmann::json::parse(test::readFile(r + "/config.json")).at("windows") == "random");
    // The first step's weights are the same (same seed): a different loss is different windows.
    CHECK(lossesOf(r + "/log.jsonl").front() != full.front());

    train::TrainOptions first = options(b, "aligned");
    first.stopAfter = 3;
    train::train(first, data);
    train::TrainOptions wrong = options(b, "random");
    wrong.resume = true;
    CHECK_THROWS_WITH_AS(train::train(wrong, data), doctest::Contains("trained with --windows aligned"), UserError);
    train::TrainOptions rest = options(b, "aligned");
    rest.resume = true;
    train::train(rest, data);
    const std::vector<double> resumed = lossesOf(b + "/log.jsonl");
    REQUIRE(resumed.size() == 6);
    for (size_t s = 0; s < 6; ++s) {
      INFO("step ", s);
      CHECK(resumed[s] == full[s]);
    }

    train::TokenData noDocuments = data;
    noDocuments.endOfText = 63;  // a token the stream never holds
    CHECK_THROWS_WITH_AS(train::train(options(test::tempDir() + "/aligned_none", "aligned"), noDocuments),
                         doctest::Contains("no document start"), UserError);
    CHECK_FALSE(test::pathExists(test::tempDir() + "/aligned_none"));  // refused before anything is written
  }
}
