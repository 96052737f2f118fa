// Model sizes (runtime/model/ModelSizes.h) and the training loop's reporting at scale:
// named sizes and --layers/--heads/--width, parameter counts against LibTorch's own tensors
// and against GPT-2's published numbers, bad sizes refused as a bad command line naming the
// flag, validation loss every N steps in log.jsonl, and the loss read every --log-every steps
// without changing a single logged value.
#include <ATen/ATen.h>
#include <doctest/doctest.h>
#include <torch/nn/module.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "TestUtil.h"
#include "runtime/model/Gpt2.h"
#include "runtime/model/ModelSizes.h"
#include "runtime/train/Trainer.h"

using namespace attn;
using namespace attn::test;

namespace {

std::vector<nlohmann::json> logLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Byte-level shards (vocabulary 257, padded to 320) of generated text, with validation text.
const std::string& byteShards() {
  static std::string dir;
  if (!dir.empty()) return dir;
  std::vector<std::string> files;
  for (int d = 0; d < 4; ++d) {
    std::string text;
    for (int i = 0; i < 60; ++i) text += "Line " + std::to_string(d * 100 + i) + " of the survey notes the weather. ";
    files.push_back(writeTempFile("scale_doc" + std::to_string(d) + ".txt", text));
  }
  dir = tempDir() + "/scale_shards";
  std::vector<std::string> args{"data", "prepare"};
  args.insert(args.end(), files.begin(), files.end());
  args.insert(args.end(), {"--out", dir, "--val-fraction", "0.5", "--prefix", "s", "--tokenizer", "bytes"});
  CommandResult r = runAttn(args);
  REQUIRE_MESSAGE(r.status == 0, r.err);
  return dir;
}

std::vector<std::string> trainArgs(const std::string& out, int steps) {
  return {"train", "--config", "tiny", "--attn", std::string(ATTN_STDLIB) + "/lssa.attn", "--steps", std::to_string(steps),
          "--seq-len", "16", "--micro-batch", "2", "--data", byteShards(), "--out", out, "--threads", "1", "--quiet"};
}

// `args` with `flag` set to `value`: its value replaced where it is already given, else appended.
std::vector<std::string> withFlag(std::vector<std::string> args, const std::string& flag, const std::string& value) {
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == flag) {
      args[i + 1] = value;
      return args;
    }
  args.insert(args.end(), {flag, value});
  return args;
}

}  // namespace

TEST_SUITE("scale") {
  TEST_CASE("parameter counts: the formula, LibTorch's tensors, and GPT-2's published sizes") {
    // The formula of ModelSizes.h against the tensors the model allocates, on small shapes
    // (and awkward ones: 1 layer, 1 head, width 2, a vocabulary of 37).
    struct Shape {
      int64_t layers, heads, width, vocab;
    };
    for (const Shape& s : {Shape{1, 1, 2, 37}, Shape{2, 3, 6, 501}, Shape{3, 4, 32, 50304}, Shape{4, 4, 128, 320}}) {
      model::Gpt2Config c;
      c.layers = s.layers, c.heads = s.heads, c.width = s.width, c.vocab = s.vocab, c.seqLen = 8;
      model::Gpt2 m(c, Program::fromFile(std::string(ATTN_STDLIB) + "/softmax.attn"), Backend::Reference);
      int64_t allocated = 0;
      for (const auto& p : m.impl().parameters()) allocated += p.numel();
      // Counted here from the architecture: tied embedding V·d; per block LayerNorms 4d,
      // qkv 3d² + 3d, projection d² + d, MLP 4d² + 4d and 4d² + d; final LayerNorm 2d.
      const int64_t d = s.width;
      const int64_t expected = s.vocab * d + s.layers * (4 * d + 3 * d * d + 3 * d + d * d + d + 4 * d * d + 4 * d + 4 * d * d + d) + 2 * d;
      INFO(s.layers, " layers, width ", s.width);
      CHECK(allocated == expected);
      CHECK(model::parameterCount(s.layers, s.width, s.vocab) == allocated);
    }
    // The named sizes against GPT-2's published counts, less GPT-2's learned position
    // embedding (1024 × width, replaced here by RoPE) and with the vocabulary padded to 50,304
    // (47 × width more): GPT-2 small 124,439,808 and medium 354,823,168 parameters (Hugging
    // Face's gpt2 and gpt2-medium).
    auto count = [](const std::string& name) {
      const auto size = *model::namedModelSize(name);
      return model::parameterCount(size.layers, size.width, 50304);
    };
    CHECK(count("124m") == 124439808 - 1024 * 768 + 47 * 768);
    CHECK(count("355m") == 354823168 - 1024 * 1024 + 47 * 1024);
    CHECK(std::abs(static_cast<double>(count("45m")) / 1e6 - 45) < 0.5);
    for (const char* name : {"tiny", "small", "45m", "124m", "355m"}) {
      const auto size = *model::namedModelSize(name);
      CHECK(model::modelSizeProblem(size.layers, size.heads, size.width).empty());
      CHECK(model::Gpt2Config::named(name).layers == size.layers);
    }
  }

  TEST_CASE("--layers, --heads and --width: the model trained, in config.json; bad sizes are exit 2 naming the flag") {
    const std::string run = tempDir() + "/custom_size";
    std::vector<std::string> args = trainArgs(run, 1);
    args.insert(args.end(), {"--layers", "3", "--heads", "2", "--width", "36"});
    CommandResult r = runAttn(args);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.err.find("custom (3 layers, 2 heads, 36 wide, 0.1M parameters)") != std::string::npos);
    auto config = nlohmann::json::parse(readFile(run + "/config.json"));
    CHECK(config.at("model").at("name") == "custom");
    CHECK(config.at("model").at("layers") == 3);
    CHECK(config.at("model").at("heads") == 2);
    CHECK(config.at("model").at("width") == 36);
    // The trained run loads back at its size: eval reads the size from config.json.
    CommandResult e = runAttn({"eval", "--ckpt", run, "--data", byteShards(), "--lengths", "1x", "--threads", "1"});
    INFO(e.err);
    CHECK(e.status == 0);
    // The same model by name and by flags: the same losses.
    const std::string named = tempDir() + "/named_size", flags = tempDir() + "/flag_size";
    std::vector<std::string> byFlags = withFlag(trainArgs(flags, 2), "--config", "small");
    byFlags.insert(byFlags.end(), {"--layers", "4", "--heads", "4", "--width", "128", "--lr", "1e-3", "--warmup", "1"});
    std::vector<std::string> byName = trainArgs(named, 2);
    byName.insert(byName.end(), {"--lr", "1e-3", "--warmup", "1"});
    CommandResult a = runAttn(byName);
    CommandResult b = runAttn(byFlags);
    REQUIRE(a.status == 0);
    REQUIRE(b.status == 0);
    const auto la = logLines(named + "/log.jsonl"), lb = logLines(flags + "/log.jsonl");
    REQUIRE(la.size() == 2);
    REQUIRE(lb.size() == 2);
    CHECK(la[1].at("train_loss").get<double>() == lb[1].at("train_loss").get<double>());

    struct Case {
      std::vector<std::string> flags;
      std::string message;
    };
    const std::vector<Case> cases = {
        {{"--width", "100", "--heads", "3"}, "--width 100 is not a multiple of --heads 3"},
        {{"--heads", "5"}, "--width 128 is not a multiple of --heads 5"},
        {{"--width", "12", "--heads", "4"}, "head dimension 3, which must be even"},
        {{"--layers", "0"}, "--layers"},
        {{"--width", "0"}, "--width"},
        {{"--heads", "100000"}, "--heads"},
        {{"--width", "10000000"}, "--width"},
        {{"--layers", "x"}, "--layers"},
        {{"--config", "355m", "--heads", "3"}, "--width 1024 is not a multiple of --heads 3"},
    };
    for (const Case& c : cases) {
      std::vector<std::string> bad = trainArgs(tempDir() + "/bad_size", 1);
      for (size_t i = 0; i + 1 < c.flags.size(); i += 2) bad = withFlag(bad, c.flags[i], c.flags[i + 1]);
      CommandResult x = runAttn(bad);
      INFO(c.message, "\n", x.err);
      CHECK(x.status == 2);
      CHECK(x.err.find(c.message) != std::string::npos);
    }
  }

  TEST_CASE("--eval-every N: the validation loss in log.jsonl every N steps and after the last") {
    const std::string run = tempDir() + "/eval_every";
    std::vector<std::string> args = trainArgs(run, 7);
    args.insert(args.end(), {"--eval-every", "3", "--eval-windows", "4"});
    CommandResult r = runAttn(args);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const auto log = logLines(run + "/log.jsonl");
    REQUIRE(log.size() == 7);
    for (int s = 0; s < 7; ++s) {
      INFO("step ", s);
      const bool evaluated = (s + 1) % 3 == 0 || s == 6;
      CHECK(log[static_cast<size_t>(s)].contains("val_loss") == evaluated);
      if (evaluated) {
        const double v = log[static_cast<size_t>(s)].at("val_loss").get<double>();
        CHECK(std::isfinite(v));
        CHECK(v > 0);
        CHECK(v < std::log(320.0) + 1);  // a byte model's loss: below a uniform guess over its 320 logits, plus slack
      }
    }
    // The last step's number is what `attn eval` computes on the same 4 windows of the
    // validation stream: the stream protocol at 1x, the first 4 chunks.
    const std::string json = tempDir() + "/eval_every.json";
    CommandResult e = runAttn({"eval", "--ckpt", run, "--data", byteShards(), "--lengths", "1x", "--protocol", "stream",
                               "--max-docs", "4", "--out", json, "--threads", "1"});
    INFO(e.err);
    REQUIRE(e.status == 0);
    const double evaluated = nlohmann::json::parse(readFile(json)).at("lengths")[0].at("loss").get<double>();
    CHECK(std::abs(evaluated - log[6].at("val_loss").get<double>()) < 1e-5);

    std::vector<std::string> noVal = withFlag(trainArgs(tempDir() + "/no_val_run", 2), "--seq-len", "100000");
    noVal.insert(noVal.end(), {"--eval-every", "1"});
    CommandResult x = runAttn(noVal);
    CHECK(x.status == 1);
    CHECK(x.err.find("--eval-every: the validation data has fewer than 100001 tokens") != std::string::npos);
  }

  TEST_CASE("--log-every N reads the losses every N steps; every step's line is the same as with N = 1") {
    const std::string each = tempDir() + "/log_each", batched = tempDir() + "/log_batched";
    CommandResult a = runAttn(trainArgs(each, 7));
    std::vector<std::string> args = trainArgs(batched, 7);
    args.insert(args.end(), {"--log-every", "3"});
    CommandResult b = runAttn(args);
    INFO(a.err, b.err);
    REQUIRE(a.status == 0);
    REQUIRE(b.status == 0);
    const auto la = logLines(each + "/log.jsonl"), lb = logLines(batched + "/log.jsonl");
    REQUIRE(la.size() == 7);
    REQUIRE(lb.size() == 7);
    for (size_t s = 0; s < 7; ++s) {
      CHECK(lb[s].at("step") == static_cast<int>(s));
      CHECK(la[s].at("train_loss").get<double>() == lb[s].at("train_loss").get<double>());
      CHECK(la[s].at("grad_norm").get<double>() == lb[s].at("grad_norm").get<double>());
    }
  }
}
