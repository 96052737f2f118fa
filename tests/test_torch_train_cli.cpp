// `attn train` and `attn eval` as scripts use them: on shards made by `attn data prepare`,
// the run directory's files and their contents, evaluation's table and JSON, a killed run
// that resumes from a whole checkpoint, and the errors (exit 1, a clear message).
#include <doctest/doctest.h>

#include <cmath>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>

#include "TestUtil.h"

using namespace attn::test;

namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Three documents of a few hundred tokens each, prepared into shards once per process.
const std::string& shards() {
  static std::string dir;
  if (!dir.empty()) return dir;
  std::string text;
  for (int i = 0; i < 60; ++i) text += "The committee met on day " + std::to_string(i) + " and agreed to continue. ";
  std::vector<std::string> files;
  for (int d = 0; d < 4; ++d) files.push_back(writeTempFile("doc" + std::to_string(d) + ".txt", text + std::to_string(d)));
  dir = tempDir() + "/shards";
  std::vector<std::string> args{"data", "prepare"};
  args.insert(args.end(), files.begin(), files.end());
  args.insert(args.end(), {"--out", dir, "--val-fraction", "0.5", "--prefix", "t"});
  CommandResult r = runAttn(args);
  REQUIRE_MESSAGE(r.status == 0, r.err);
  return dir;
}

std::vector<nlohmann::json> logLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::vector<std::string> trainArgs(const std::string& out, int steps) {
  return {"train", "--config", "tiny", "--attn", std::string(ATTN_STDLIB) + "/lssa.attn", "--steps",
          std::to_string(steps), "--seq-len", "16", "--micro-batch", "2", "--data", shards(), "--out", out,
          "--threads", "1"};
}

}  // namespace

TEST_SUITE("model") {
  TEST_CASE("attn train writes log.jsonl, config.json, a checkpoint; attn eval prints and writes the table") {
    const std::string run = tempDir() + "/cli_run";
    CommandResult t = runAttn(trainArgs(run, 3));
    INFO(t.err);
    REQUIRE(t.status == 0);
    CHECK(t.out.find("final train loss") != std::string::npos);
    auto log = logLines(run + "/log.jsonl");
    REQUIRE(log.size() == 3);
    for (size_t s = 0; s < 3; ++s) {
      CHECK(log[s].at("step").get<int>() == static_cast<int>(s));
      CHECK(std::isfinite(log[s].at("train_loss").get<double>()));
      CHECK(log[s].at("lr").get<double>() > 0);
      CHECK(log[s].at("tokens_per_s").get<double>() > 0);
    }
    CHECK(log[0].at("train_loss").get<double>() > 9.0);  // ~ln(50304) at initialisation
    auto config = nlohmann::json::parse(readFile(run + "/config.json"));
    CHECK(config.at("model").at("name") == "tiny");
    CHECK(config.at("model").at("seq_len") == 16);
    CHECK(config.at("seq_len") == 16);
    CHECK(exists(run + "/checkpoint/model.pt"));
    CHECK(exists(run + "/checkpoint/optimizer.pt"));
    CHECK_FALSE(exists(run + "/checkpoint.tmp"));
    CHECK(readFile(run + "/attention.attn") == readFile(std::string(ATTN_STDLIB) + "/lssa.attn"));

    const std::string json = tempDir() + "/eval.json";
    CommandResult e = runAttn({"eval", "--ckpt", run, "--data", shards(), "--lengths", "1x,2x,4x", "--out", json,
                               "--threads", "1"});
    INFO(e.err);
    REQUIRE(e.status == 0);
    CHECK(e.out.find("validation loss") != std::string::npos);
    CHECK(e.out.find("  2x ") != std::string::npos);
    auto table = nlohmann::json::parse(readFile(json));
    CHECK(table.at("format") == "attn-eval");
    REQUIRE(table.at("lengths").size() == 3);
    CHECK(table["lengths"][0]["length"] == "1x");
    CHECK(table["lengths"][2]["length"] == "4x");
    CHECK(std::isfinite(table["lengths"][2]["loss"].get<double>()));
    // LSSAR on the LSSA-trained weights: the same lengths, other numbers.
    CommandResult r = runAttn({"eval", "--ckpt", run, "--attn", std::string(ATTN_STDLIB) + "/lssar.attn", "--data",
                               shards(), "--lengths", "1x,2x", "--out", json});
    REQUIRE(r.status == 0);
    auto other = nlohmann::json::parse(readFile(json));
    CHECK(other["lengths"][0]["loss"].get<double>() != table["lengths"][0]["loss"].get<double>());
    // attn plot: both runs in one PNG.
    const std::string a = tempDir() + "/lssa.json", b = tempDir() + "/lssar.json", png = tempDir() + "/plot.png";
    { std::ofstream(a) << table.dump(); }
    { std::ofstream(b) << other.dump(); }
    CommandResult p = runAttn({"plot", a, b, "--out", png});
    INFO(p.err);
    REQUIRE(p.status == 0);
    std::string bytes = readFile(png);
    REQUIRE(bytes.size() > 1000);
    CHECK(bytes.substr(1, 3) == "PNG");
    CommandResult bad = runAttn({"plot", run + "/config.json", "--out", png});
    CHECK(bad.status == 1);
    CHECK(bad.err.find("is not like") != std::string::npos);
  }

  TEST_CASE("a killed run leaves a whole checkpoint and resumes from it") {
    const std::string run = tempDir() + "/killed_run";
    std::vector<std::string> args = trainArgs(run, 100000);
    args.insert(args.end(), {"--checkpoint-every", "1", "--quiet"});
    // Killed 0.3 s after its first whole checkpoint exists (so possibly in the middle of
    // writing a later one), however slowly a loaded machine gets there.
    CommandOptions kill;
    kill.killOnceExists = run + "/checkpoint/state.json";
    kill.killAfterSeconds = 0.3;
    CommandResult killed = runAttnWith(args, kill, 300);
    INFO(killed.err);
    REQUIRE_FALSE(killed.timedOut);
    REQUIRE(killed.signal == SIGKILL);
    std::string ckpt = exists(run + "/checkpoint/state.json") ? run + "/checkpoint" : run + "/checkpoint.old";
    REQUIRE(exists(ckpt + "/state.json"));
    int64_t step = nlohmann::json::parse(readFile(ckpt + "/state.json")).at("step").get<int64_t>();
    CHECK(step >= 0);
    std::vector<std::string> resume = trainArgs(run, static_cast<int>(step) + 3);
    resume.push_back("--resume");
    CommandResult r = runAttn(resume);
    INFO(r.err);
    CHECK(r.status == 0);
    auto log = logLines(run + "/log.jsonl");
    REQUIRE(log.size() == static_cast<size_t>(step + 3));
    CHECK(log.back().at("step").get<int64_t>() == step + 2);
  }

  TEST_CASE("train and eval errors: exit 1 with the reason") {
    struct Case {
      std::vector<std::string> args;
      std::string message;
    };
    const std::string lssa = std::string(ATTN_STDLIB) + "/lssa.attn";
    const std::vector<Case> cases = {
        {{"train", "--config", "huge", "--attn", lssa, "--out", tempDir() + "/x"}, "unknown model config 'huge'"},
        {{"train", "--attn", tempDir() + "/missing.attn", "--out", tempDir() + "/x"}, "missing.attn"},
        {{"train", "--attn", lssa, "--data", tempDir(), "--out", tempDir() + "/x"}, "no training shards"},
        {{"train", "--attn", lssa, "--resume", "--data", shards(), "--out", tempDir() + "/fresh"}, "no checkpoint"},
        {{"eval", "--ckpt", tempDir() + "/nothing", "--data", shards()}, "is not a training run"},
        {{"train", "--attn", lssa, "--backend", "gpu", "--out", tempDir() + "/x"}, "unknown backend 'gpu'"},
        {{"train", "--attn", lssa, "--device", "cuda", "--data", shards(), "--out", tempDir() + "/x"},
         "--device cuda: no CUDA device is available"},
    };
    for (const Case& c : cases) {
      CommandResult r = runAttn(c.args);
      INFO(c.message, "\n", r.err);
      CHECK(r.signal == 0);
      CHECK(r.status == 1);
      CHECK(r.err.find(c.message) != std::string::npos);
    }
  }
}
