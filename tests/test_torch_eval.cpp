// Length evaluation and the passkey test on a small trained run: which target tokens each
// protocol scores (recorded from the tensors given to the model, then compared with what
// the documents hold, never with the plan), equal token counts across lengths, the loss and
// its standard error against an independent recompute, loss by position, the JSON and its
// reading by attn plot, the errors; exact match by teacher-forced argmax on hand-built
// logits, and the passkey command's numbers.
#include <ATen/ATen.h>
#undef CHECK
#include <sys/resource.h>

#include <csignal>
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <tuple>

#include "TestUtil.h"
#include "runtime/data/PasskeyTask.h"
#include "runtime/data/Shards.h"
#include "runtime/data/TextTokenizer.h"
#include "runtime/io/EvalFile.h"
#include "runtime/train/Evaluate.h"
#include "runtime/train/Passkey.h"
#include "runtime/train/Trainer.h"

using namespace attn;

namespace {

constexpr int64_t kTrainLength = 8;
constexpr int64_t kVocab = 64;

// Random tokens; validation documents of chosen lengths (some too short for 8x = 64).
train::TokenData randomData(uint64_t seed) {
  std::mt19937_64 rng(seed);
  train::TokenData d;
  for (int i = 0; i < 3000; ++i) d.train.push_back(static_cast<uint16_t>(rng() % kVocab));
  for (int64_t n : {40, 70, 65, 100, 20, 66, 130}) {
    std::vector<uint16_t> doc;
    for (int64_t t = 0; t < n; ++t) doc.push_back(static_cast<uint16_t>(rng() % kVocab));
    d.validation.push_back(doc);
  }
  return d;
}

// A run trained for a few steps (once per process): weights that are not the initial ones.
const std::string& trainedRun() {
  static std::string dir;
  if (!dir.empty()) return dir;
  dir = test::tempDir() + "/eval_run";
  train::TrainOptions o;
  o.config = "tiny";
  o.attnFile = std::string(ATTN_STDLIB) + "/softmax.attn";
  o.steps = 3;
  o.seqLen = kTrainLength;
  o.vocab = kVocab;
  o.microBatch = 4;
  o.lr = 3e-3;
  o.warmup = 1;
  o.quiet = true;
  o.out = dir;
  train::train(o, randomData(1));
  return dir;
}

train::TrainedModel loaded() { return train::loadTrainedModel(trainedRun(), "", "", {}, "cpu", "cpu"); }

struct Recorded {
  // (unit, offset) -> target, per length; and how often each (unit, offset) was scored
  std::map<std::string, std::map<std::pair<int64_t, int64_t>, int64_t>> target;
  std::map<std::string, std::map<std::pair<int64_t, int64_t>, int>> times;
  std::map<std::string, std::vector<train::ScoredWindow>> windows;
};

train::EvalResult evaluateRecording(train::TrainedModel& m, train::EvalOptions e, const train::TokenData& data,
                                    Recorded& rec) {
  e.onScored = [&](const train::ScoredWindow& w) {
    rec.windows[w.length].push_back(w);
    for (size_t i = 0; i < w.offsets.size(); ++i) {
      rec.target[w.length][{w.unit, w.offsets[i]}] = w.targets[i];
      ++rec.times[w.length][{w.unit, w.offsets[i]}];
    }
  };
  return train::evaluate(m, e, data);
}

std::vector<size_t> documentsAtLeast(const train::TokenData& data, int64_t n) {
  std::vector<size_t> out;
  for (size_t d = 0; d < data.validation.size(); ++d)
    if (static_cast<int64_t>(data.validation[d].size()) >= n) out.push_back(d);
  return out;
}

// randomData(seed) as a data directory: shards whose documents start with id 63, and a
// tokenizer.json that says so (a 64-token vocabulary: the run's).
std::string dataDirectory(uint64_t seed, bool withValidation = true) {
  const std::string dir = test::tempDir() + "/eval_data_" + std::to_string(seed) + (withValidation ? "" : "_noval");
  std::filesystem::create_directories(dir);
  train::TokenData d = randomData(seed);
  std::vector<uint16_t> train{63}, val;
  for (uint16_t t : d.train.slice(0, d.train.size())) train.push_back(t == 63 ? 62 : t);
  for (const auto& doc : d.validation) {
    val.push_back(63);
    for (size_t i = 1; i < doc.size(); ++i) val.push_back(doc[i] == 63 ? 62 : doc[i]);
  }
  data::writeShard(dir + "/r_train_000000.bin", train);
  if (withValidation) data::writeShard(dir + "/r_val_000000.bin", val);
  std::ofstream(dir + "/tokenizer.json")
      << R"({"format": "attn-tokenizer", "version": 1, "kind": "test", "vocab": 64, "end_of_text": 63})";
  return dir;
}

}  // namespace

TEST_SUITE("eval") {
  TEST_CASE("attn eval: the table and the JSON; --out written whole or not at all; no validation data is exit 1") {
    const std::string run = trainedRun(), data = dataDirectory(3);
    const std::string json = test::tempDir() + "/cli_eval.json";
    test::CommandResult r = test::runAttn({"eval", "--ckpt", run, "--data", data, "--lengths", "1x,4x,8x",
                                           "--per-position", "1", "--out", json, "--threads", "1"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("protocol same-tokens") != std::string::npos);
    CHECK(r.out.find("  8x ") != std::string::npos);
    const std::string first = test::readFile(json);
    auto j = nlohmann::json::parse(first);
    REQUIRE(j["lengths"].size() == 3);
    CHECK(j["lengths"][0]["tokens"] == j["lengths"][2]["tokens"]);
    CHECK(j["lengths"][2]["units"] == 5);

    // A write that fails (a file-size limit: the error a full disk gives) is exit 1 and the
    // previous result stays as it was.
    {
      struct rlimit old {};
      ::getrlimit(RLIMIT_FSIZE, &old);
      struct rlimit small = old;
      small.rlim_cur = 700;  // the JSON with 64 + 32 + 8 per-position entries is larger
      auto previous = std::signal(SIGXFSZ, SIG_IGN);
      ::setrlimit(RLIMIT_FSIZE, &small);
      test::CommandResult full = test::runAttn({"eval", "--ckpt", run, "--data", data, "--lengths", "1x,4x,8x",
                                                "--per-position", "1", "--out", json, "--threads", "1"});
      ::setrlimit(RLIMIT_FSIZE, &old);
      std::signal(SIGXFSZ, previous);
      INFO(full.err);
      CHECK(full.status == 1);
      CHECK(full.err.find(json) != std::string::npos);
      CHECK(test::readFile(json) == first);
    }
    // --out is a directory: refused, the directory untouched.
    test::CommandResult dir = test::runAttn({"eval", "--ckpt", run, "--data", data, "--lengths", "1x", "--out",
                                             test::tempDir(), "--threads", "1"});
    CHECK(dir.status == 1);
    CHECK(std::filesystem::is_directory(test::tempDir()));
    test::CommandResult none = test::runAttn({"eval", "--ckpt", run, "--data", dataDirectory(3, false), "--lengths",
                                              "1x", "--out", json, "--threads", "1"});
    CHECK(none.status == 1);
    CHECK(none.err.find("no validation documents") != std::string::npos);
    CHECK(test::readFile(json) == first);
    // Too long for every document: exit 1 with the longest length and document.
    test::CommandResult longer = test::runAttn({"eval", "--ckpt", run, "--data", data, "--lengths", "1x,64x",
                                                "--threads", "1"});
    CHECK(longer.status == 1);
    CHECK(longer.err.find("needs validation documents of 513 tokens; the longest has 130") != std::string::npos);
  }

  TEST_CASE("same-tokens scores the same targets at every length, each once, the documents' own tokens") {
    train::TokenData data = randomData(7);
    train::TrainedModel m = loaded();
    train::EvalOptions e;
    e.lengths = {"1x", "2x", "3x", "8x"};  // 3x = 24 does not divide 8x = 64
    Recorded rec;
    train::EvalResult r = evaluateRecording(m, e, data, rec);
    REQUIRE(r.lengths.size() == 4);
    const int64_t longest = 8 * kTrainLength;
    const std::vector<size_t> docs = documentsAtLeast(data, longest + 1);  // 70, 65, 100, 66, 130
    REQUIRE(docs.size() == 5);
    for (const auto& l : r.lengths) {
      INFO("length ", l.spec);
      CHECK(l.tokens == static_cast<int64_t>(docs.size()) * longest);
      CHECK(l.units == static_cast<int64_t>(docs.size()));
      const auto& seen = rec.target[l.spec];
      CHECK(static_cast<int64_t>(seen.size()) == l.tokens);
      for (const auto& [key, count] : rec.times[l.spec]) CHECK(count == 1);
      // Unit u is the u-th long-enough document; it scores targets 1..64 and they are the
      // document's tokens at those offsets.
      for (size_t u = 0; u < docs.size(); ++u)
        for (int64_t o = 1; o <= longest; ++o) {
          auto it = seen.find({static_cast<int64_t>(u), o});
          REQUIRE(it != seen.end());
          CHECK(it->second == data.validation[docs[u]][static_cast<size_t>(o)]);
        }
    }
    CHECK(rec.target["1x"] == rec.target["8x"]);
    CHECK(rec.target["3x"] == rec.target["8x"]);
    CHECK(r.lengths[0].windows == 5 * 8);
    CHECK(r.lengths[2].windows == 5 * 3);  // 0..24, 24..48, and 40..64 scoring 48..64 only
    CHECK(r.lengths[3].windows == 5);
    // Inputs are the window's tokens: a window of 3x starting at 40 scores positions 8..23.
    bool sawTail = false;
    for (const auto& w : rec.windows["3x"])
      if (w.start == 40) {
        sawTail = true;
        CHECK(w.positions.front() == 8);
        CHECK(w.offsets.front() == 49);
      }
    CHECK(sawTail);
  }

  TEST_CASE("the loss and its standard error equal a recompute from the model's own mean loss per window") {
    train::TokenData data = randomData(8);
    train::TrainedModel m = loaded();
    train::EvalOptions e;
    e.lengths = {"1x", "4x"};
    train::EvalResult r = train::evaluate(m, e, data);
    const std::vector<size_t> docs = documentsAtLeast(data, 4 * kTrainLength + 1);
    c10::NoGradGuard noGrad;
    for (const auto& l : r.lengths) {
      INFO("length ", l.spec);
      const int64_t L = l.window;
      m.model.setRopeScaling(model::RopeScaling::NtkStatic, L);
      std::vector<double> unitMeans;
      double total = 0;
      for (size_t d : docs) {
        double unit = 0;
        const int64_t windows = 4 * kTrainLength / L;
        for (int64_t w = 0; w < windows; ++w) {
          at::Tensor x = at::empty({1, L}, at::kLong), y = at::empty({1, L}, at::kLong);
          for (int64_t p = 0; p < L; ++p) {
            x[0][p] = static_cast<int64_t>(data.validation[d][static_cast<size_t>(w * L + p)]);
            y[0][p] = static_cast<int64_t>(data.validation[d][static_cast<size_t>(w * L + p + 1)]);
          }
          unit += m.model.loss(x, y).item<double>() / static_cast<double>(windows);
        }
        unitMeans.push_back(unit);
        total += unit / static_cast<double>(docs.size());
      }
      CHECK(l.loss == doctest::Approx(total).epsilon(1e-6));
      double squares = 0;
      for (double u : unitMeans) squares += (u - total) * (u - total);
      const double n = static_cast<double>(unitMeans.size());
      REQUIRE(l.standardError.has_value());
      CHECK(*l.standardError == doctest::Approx(std::sqrt(squares / (n - 1) / n)).epsilon(1e-5));
    }
  }

  TEST_CASE("the token-weighted mean of the per-position losses is the loss; buckets count every target") {
    train::TokenData data = randomData(9);
    train::TrainedModel m = loaded();
    train::EvalOptions e;
    e.lengths = {"1x", "3x", "8x"};
    e.positionBucket = 5;  // does not divide 8, 24 or 64: a short last bucket
    Recorded rec;
    train::EvalResult r = evaluateRecording(m, e, data, rec);
    for (const auto& l : r.lengths) {
      INFO("length ", l.spec);
      REQUIRE(l.positionLoss.size() == static_cast<size_t>((l.window + 4) / 5));
      double weighted = 0;
      int64_t tokens = 0;
      for (size_t b = 0; b < l.positionLoss.size(); ++b) {
        if (l.positionTokens[b] == 0) continue;
        weighted += l.positionLoss[b] * static_cast<double>(l.positionTokens[b]);
        tokens += l.positionTokens[b];
      }
      CHECK(tokens == l.tokens);
      CHECK(weighted / static_cast<double>(tokens) == doctest::Approx(l.loss).epsilon(1e-9));
      // Each bucket's count is the number of recorded targets at those window positions.
      std::map<int64_t, int64_t> perBucket;
      for (const auto& w : rec.windows[l.spec])
        for (int64_t p : w.positions) ++perBucket[p / 5];
      for (size_t b = 0; b < l.positionTokens.size(); ++b) CHECK(l.positionTokens[b] == perBucket[static_cast<int64_t>(b)]);
    }
  }

  TEST_CASE("stream scores the concatenated documents, the same targets at every length; first-window does not") {
    train::TokenData data = randomData(10);
    std::vector<uint16_t> stream;
    for (const auto& d : data.validation) stream.insert(stream.end(), d.begin(), d.end());
    train::TrainedModel m = loaded();
    train::EvalOptions e;
    e.protocol = "stream";
    e.lengths = {"2x", "4x"};
    e.maxDocuments = 3;  // three chunks of 32
    Recorded rec;
    train::EvalResult r = evaluateRecording(m, e, data, rec);
    for (const auto& l : r.lengths) {
      CHECK(l.tokens == 3 * 32);
      CHECK(l.units == 3);
      for (const auto& [key, target] : rec.target[l.spec])
        CHECK(target == stream[static_cast<size_t>(key.first * 32 + key.second)]);
    }
    CHECK(rec.target["2x"] == rec.target["4x"]);

    e.protocol = "first-window";
    e.maxDocuments = 0;
    e.lengths = {"1x", "8x", "32x"};
    Recorded first;
    train::EvalResult f = evaluateRecording(m, e, data, first);
    REQUIRE(f.lengths.size() == 2);  // 32x = 256 tokens: no document
    CHECK(f.leftOut == std::vector<std::string>{"32x"});
    CHECK(f.lengths[0].tokens == 7 * 8);  // every document has 9 tokens
    CHECK(f.lengths[1].tokens == 5 * 64);
  }

  TEST_CASE("evaluation errors name the problem") {
    train::TrainedModel m = loaded();
    train::TokenData data = randomData(11);
    auto message = [&](train::EvalOptions e, const train::TokenData& d) {
      try {
        train::evaluate(m, e, d);
      } catch (const UserError& err) {
        return std::string(err.what());
      }
      return std::string("no error");
    };
    train::EvalOptions e;
    e.lengths = {"0x"};
    CHECK(message(e, data).find("'0x' is not a multiple") != std::string::npos);
    e.lengths = {"-1x"};
    CHECK(message(e, data).find("'-1x' is not a multiple") != std::string::npos);
    e.lengths = {"2x", "2x"};
    CHECK(message(e, data).find("given twice") != std::string::npos);
    e.lengths = {"32x"};
    CHECK(message(e, data).find("needs validation documents of 257 tokens; the longest has 130") != std::string::npos);
    e.lengths = {"1x"};
    train::TokenData none = data;
    none.validation.clear();
    CHECK(message(e, none).find("no validation documents") != std::string::npos);
    train::TokenData wide = data;
    wide.validation[1][3] = 200;  // beyond the model's 64
    CHECK(message(e, wide).find("token id 200, outside the model's vocabulary of 64") != std::string::npos);
    e.protocol = "sliding";
    CHECK(message(e, data).find("unknown protocol 'sliding'") != std::string::npos);
  }

  TEST_CASE("the JSON holds every number; attn plot's reader takes it, and version-1 files") {
    train::TokenData data = randomData(12);
    train::TrainedModel m = loaded();
    train::EvalOptions e;
    e.lengths = {"2x", "1x"};
    e.positionBucket = 4;
    train::EvalResult r = train::evaluate(m, e, data);
    const std::string text = train::evalResultJson(r);
    auto j = nlohmann::json::parse(text);
    CHECK(j["format"] == "attn-eval");
    CHECK(j["version"] == 2);
    CHECK(j["protocol"] == "same-tokens");
    CHECK(j["train_length"] == kTrainLength);
    REQUIRE(j["lengths"].size() == 2);
    CHECK(j["lengths"][0]["length"] == "2x");  // the order asked for
    CHECK(j["lengths"][0]["loss"].get<double>() == r.lengths[0].loss);
    CHECK(j["lengths"][0]["tokens"] == r.lengths[0].tokens);
    CHECK(j["lengths"][0]["stderr"].get<double>() == *r.lengths[0].standardError);
    CHECK(j["lengths"][1]["per_position"]["bucket"] == 4);

    const std::string path = test::writeTempFile("v2.json", text);
    io::EvalFile file = io::readEvalFile(path);
    CHECK(file.version == 2);
    io::LossCurve curve = io::lengthCurve(file, "v2");
    CHECK(curve.points.at(2.0) == r.lengths[0].loss);
    CHECK(curve.points.at(1.0) == r.lengths[1].loss);
    auto positions = io::positionCurves(file, "v2");
    REQUIRE(positions.size() == 2);
    CHECK(positions[1].label == "v2 1x");
    CHECK(positions[1].points.at(2.0) == r.lengths[1].positionLoss[0]);  // bucket 0 at its middle

    io::EvalFile old = io::readEvalFile(test::writeTempFile("v1.json", R"({"1x": 3.5, "16x": 4.25})"));
    CHECK(old.version == 1);
    CHECK(io::lengthCurve(old, "old").points.at(16.0) == 4.25);
    CHECK_THROWS_WITH_AS(io::positionCurves(old, "old"), doctest::Contains("--per-position"), io::EvalFileError);
    CHECK_THROWS_WITH_AS(io::readEvalFile(test::writeTempFile("bad.json", R"({"format": "attn-eval", "version": 3})")),
                         doctest::Contains("version 2"), io::EvalFileError);
    CHECK_THROWS_WITH_AS(io::readEvalFile(test::writeTempFile("bad1.json", R"({"1.5x": 3})")),
                         doctest::Contains("is not like"), io::EvalFileError);
  }

  TEST_CASE("exact match by teacher-forced argmax, on hand-built logits") {
    // Three instances, a key of two tokens, five classes.
    at::Tensor logits = at::zeros({3, 2, 5});
    at::Tensor answer = at::tensor({3, 1, 3, 1, 0, 4}, at::kLong).view({3, 2});
    logits[0][0][3] = 2;  // both positions right
    logits[0][1][1] = 5;
    logits[1][0][3] = 1;  // first right, second wrong: argmax 2
    logits[1][1][2] = 3;
    logits[1][1][1] = 2;
    logits[2][0][0] = 1;  // first right; second a tie between 2 and 4: argmax takes 2
    logits[2][1][2] = 7;
    logits[2][1][4] = 7;
    CHECK(train::exactMatches(logits, answer) == std::vector<bool>{true, false, false});
    logits[2][1][2] = 6.5;
    CHECK(train::exactMatches(logits, answer) == std::vector<bool>{true, false, true});
    CHECK_THROWS_AS(train::exactMatches(logits, answer.narrow(1, 0, 1)), UserError);
  }

  TEST_CASE("attn passkey's numbers: per length and depth, the same instances for every program") {
    // Bytes-tokenized text: the model's 64 ids do not cover bytes, so a run of its own.
    const std::string dir = test::tempDir() + "/pk_run";
    auto tokenizer = data::makeTokenizer("bytes", {});
    train::TokenData data;
    std::string text;
    for (int i = 0; i < 80; ++i) text += "The committee met on day " + std::to_string(i) + " and agreed. ";
    for (uint32_t t : tokenizer->encode(text)) data.train.push_back(static_cast<uint16_t>(t));
    data.validation.push_back({256});
    for (uint32_t t : tokenizer->encode(text.substr(0, 2000))) data.validation.back().push_back(static_cast<uint16_t>(t));
    train::TrainOptions o;
    o.attnFile = std::string(ATTN_STDLIB) + "/lssa.attn";
    o.steps = 2;
    o.seqLen = 64;
    o.vocab = 320;
    o.microBatch = 2;
    o.quiet = true;
    o.out = dir;
    train::train(o, data);
    train::TrainedModel m = train::loadTrainedModel(dir, "", "", {}, "cpu", "cpu");
    train::PasskeyOptions p;
    p.lengths = {"2x", "4x"};
    p.depths = {0, 1};
    p.trials = 3;
    train::PasskeyResult r = train::passkey(m, p, data, *tokenizer);
    REQUIRE(r.lengths.size() == 2);
    CHECK(r.lengths[1].window == 256);
    REQUIRE(r.lengths[0].depths.size() == 2);
    for (const auto& l : r.lengths) {
      CHECK(l.trials == 6);
      for (const auto& c : l.depths) {
        CHECK(c.trials == 3);
        CHECK(c.digitAccuracy >= static_cast<double>(c.correct) / 3.0);  // every exact match has all digits
        CHECK(c.answerLoss > 0);
        CHECK(std::isfinite(c.answerLoss));
      }
    }
    // Another program on the same weights sees the same instances: LSSA with itself as the
    // "other" program gives identical numbers.
    train::TrainedModel again = train::loadTrainedModel(dir, std::string(ATTN_STDLIB) + "/lssa.attn", "", {}, "cpu", "cpu");
    train::PasskeyResult same = train::passkey(again, p, data, *tokenizer);
    CHECK(same.lengths[1].depths[1].answerLoss == r.lengths[1].depths[1].answerLoss);
    auto j = nlohmann::json::parse(train::passkeyResultJson(r));
    CHECK(j["format"] == "attn-passkey");
    CHECK(j["lengths"][1]["depths"][0]["trials"] == 3);
    CHECK(j["tokenizer"] == "bytes");
    // A tokenizer wider than the model: refused with the reason.
    auto gpt2 = data::makeTokenizer("gpt2", {});
    CHECK_THROWS_WITH_AS(train::passkey(m, p, data, *gpt2), doctest::Contains("does not fit the model's vocabulary"),
                         UserError);
    p.depths = {1.5};
    CHECK_THROWS_WITH_AS(train::passkey(m, p, data, *tokenizer), doctest::Contains("not in [0, 1]"), UserError);
  }
}
