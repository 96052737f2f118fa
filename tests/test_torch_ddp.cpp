// Data parallel `attn train` (runtime/train/Distributed.h) as torchrun runs it: one process
// per rank, started here with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT, Gloo
// over localhost.
//
// What is checked: two ranks with micro-batch m give the losses of one rank with 2m (the same
// windows, gradients averaged over the ranks) on the reference and cpu backends, in float64
// to 1e-9 and float32 to 1e-5, with and without accumulation; rank 0 alone writes the run's
// files; a run stopped and resumed under two ranks continues with the same losses as one
// that was not stopped, and a resume on another world size is refused; a rank killed
// mid-run ends the other with exit 1 and a message well within 60 s; bad variables are a
// bad command line (exit 2) naming the variable.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "TestUtil.h"
#include "runtime/train/Distributed.h"

using namespace attn::test;

extern char** environ;

namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// A TCP port free right now on localhost (the kernel's choice for port 0).
int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

// Byte-level shards of generated text: a 320-token vocabulary keeps the output layer (most
// of a tiny model's work) small, so these runs take seconds.
const std::string& byteShards() {
  static std::string dir;
  if (!dir.empty()) return dir;
  std::vector<std::string> files;
  for (int d = 0; d < 4; ++d) {
    std::string text;
    for (int i = 0; i < 80; ++i)
      text += "Record " + std::to_string(d * 1000 + i * 7) + " of the ledger was read aloud twice. ";
    files.push_back(writeTempFile("ddp_doc" + std::to_string(d) + ".txt", text));
  }
  dir = tempDir() + "/ddp_shards";
  std::vector<std::string> args{"data", "prepare"};
  args.insert(args.end(), files.begin(), files.end());
  args.insert(args.end(), {"--out", dir, "--val-fraction", "0.25", "--prefix", "b", "--tokenizer", "bytes"});
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

std::vector<double> losses(const std::string& run) {
  std::vector<double> out;
  for (const auto& line : logLines(run + "/log.jsonl")) out.push_back(line.at("train_loss").get<double>());
  return out;
}

std::vector<std::string> trainArgs(const std::string& out, const std::string& backend, const std::string& dtype,
                                   int microBatch, int batchTokens, int steps) {
  return {"train", "--config", "tiny", "--attn", std::string(ATTN_STDLIB) + "/lssa.attn", "--backend", backend,
          "--dtype", dtype, "--steps", std::to_string(steps), "--seq-len", "16", "--micro-batch",
          std::to_string(microBatch), "--batch-tokens", std::to_string(batchTokens), "--data", byteShards(), "--out",
          out, "--threads", "1", "--quiet", "--dist-timeout", "30"};
}

std::vector<std::string> rankEnv(int rank, int world, int port) {
  return {"RANK=" + std::to_string(rank), "WORLD_SIZE=" + std::to_string(world), "LOCAL_RANK=" + std::to_string(rank),
          "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port)};
}

// Runs `args` as ranks 0..world-1 at once; returns their results in rank order.
std::vector<CommandResult> runRanks(const std::vector<std::string>& args, int world, double timeout = 120,
                                    std::vector<double> killAfter = {}) {
  const int port = freePort();
  std::vector<CommandResult> results(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      CommandOptions options;
      options.env = rankEnv(r, world, port);
      if (static_cast<size_t>(r) < killAfter.size()) options.killAfterSeconds = killAfter[static_cast<size_t>(r)];
      results[static_cast<size_t>(r)] = runAttnWith(args, options, timeout);
    });
  }
  for (auto& t : threads) t.join();
  return results;
}

bool skipWithoutGloo() {
  if (attn::train::Communicator::available()) return false;
  skip("this attn was built without Gloo's headers (libgloo-dev): no data parallel training to test");
  return true;
}

}  // namespace

TEST_SUITE("ddp") {
  TEST_CASE("two ranks with micro-batch m train as one rank with 2m (reference and cpu; float64 and float32)") {
    if (skipWithoutGloo()) return;
    struct Case {
      std::string backend, dtype;
      double tolerance;
      int accumulation;
    };
    const std::vector<Case> cases = {{"reference", "float64", 1e-9, 1},
                                     {"cpu", "float64", 1e-9, 1},
                                     {"reference", "float32", 1e-5, 1},
                                     {"cpu", "float32", 1e-5, 1},
                                     {"cpu", "float64", 1e-9, 2}};
    const int m = 2, T = 16, steps = 10;
    for (const Case& c : cases) {
      const std::string tag = c.backend + "_" + c.dtype + "_x" + std::to_string(c.accumulation);
      INFO(tag);
      const int batchTokens = 2 * m * T * c.accumulation;
      const std::string single = tempDir() + "/ddp_single_" + tag, pair = tempDir() + "/ddp_pair_" + tag;
      CommandResult one = runAttn(trainArgs(single, c.backend, c.dtype, 2 * m, batchTokens, steps));
      INFO(one.err);
      REQUIRE(one.status == 0);
      std::vector<CommandResult> two = runRanks(trainArgs(pair, c.backend, c.dtype, m, batchTokens, steps), 2);
      INFO(two[0].err, two[1].err);
      REQUIRE(two[0].status == 0);
      REQUIRE(two[1].status == 0);
      CHECK(two[0].out.find("final train loss") != std::string::npos);
      CHECK(two[1].out.empty());  // rank 1 says nothing, writes nothing of its own
      const std::vector<double> a = losses(single), b = losses(pair);
      REQUIRE(a.size() == static_cast<size_t>(steps));
      REQUIRE(b.size() == static_cast<size_t>(steps));
      double worst = 0;
      for (int s = 0; s < steps; ++s) worst = std::max(worst, std::abs(a[static_cast<size_t>(s)] - b[static_cast<size_t>(s)]));
      MESSAGE(tag, ": largest loss difference over ", steps, " steps: ", worst);
      CHECK(worst <= c.tolerance);
      CHECK(a.back() < a.front() - 0.1);  // it trained: a loss that did not move would match trivially
      const auto config = nlohmann::json::parse(readFile(pair + "/config.json"));
      CHECK(config.at("world_size") == 2);
    }
  }

  TEST_CASE("a two-rank run stopped and resumed continues with the same losses; another world size is refused") {
    if (skipWithoutGloo()) return;
    const std::string whole = tempDir() + "/ddp_whole", resumed = tempDir() + "/ddp_resumed";
    const int steps = 6;
    std::vector<CommandResult> w = runRanks(trainArgs(whole, "cpu", "float64", 2, 128, steps), 2);
    INFO(w[0].err, w[1].err);
    REQUIRE(w[0].status == 0);
    REQUIRE(w[1].status == 0);
    std::vector<std::string> first = trainArgs(resumed, "cpu", "float64", 2, 128, steps);
    first.insert(first.end(), {"--stop-after", "3"});
    std::vector<CommandResult> f = runRanks(first, 2);
    INFO(f[0].err, f[1].err);
    REQUIRE(f[0].status == 0);
    REQUIRE(f[1].status == 0);
    REQUIRE(losses(resumed).size() == 3);
    REQUIRE(exists(resumed + "/checkpoint/state.json"));
    std::vector<std::string> again = trainArgs(resumed, "cpu", "float64", 2, 128, steps);
    again.push_back("--resume");
    std::vector<CommandResult> r = runRanks(again, 2);
    INFO(r[0].err, r[1].err);
    REQUIRE(r[0].status == 0);
    REQUIRE(r[1].status == 0);
    const std::vector<double> a = losses(whole), b = losses(resumed);
    REQUIRE(a.size() == static_cast<size_t>(steps));
    REQUIRE(b.size() == static_cast<size_t>(steps));
    for (int s = 0; s < steps; ++s) CHECK(std::abs(a[static_cast<size_t>(s)] - b[static_cast<size_t>(s)]) <= 1e-12);
    // One rank resuming a two-rank run would see other batches: refused.
    CommandResult alone = runAttn(again);
    CHECK(alone.status == 1);
    CHECK(alone.err.find("was trained on 2 rank(s)") != std::string::npos);
  }

  TEST_CASE("a killed rank ends the other with an error well within 60 s") {
    if (skipWithoutGloo()) return;
    const std::string run = tempDir() + "/ddp_killed";
    std::vector<std::string> args = trainArgs(run, "cpu", "float32", 2, 64, 1000000);
    const int port = freePort();
    // Rank 1 is started here (its pid is needed) and killed once rank 0 has logged a step,
    // i.e. mid-training; rank 0 must then end by itself, non-zero, saying why.
    std::vector<std::string> argv = {ATTN_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.push_back(*e);
    for (const std::string& e : rankEnv(1, 2, port)) env.push_back(e);
    std::vector<char*> cenv;
    for (auto& e : env) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string rank1Log = tempDir() + "/ddp_rank1.err";
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, rank1Log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t rank1 = 0;
    REQUIRE(posix_spawn(&rank1, ATTN_BINARY, &actions, nullptr, cargv.data(), cenv.data()) == 0);
    posix_spawn_file_actions_destroy(&actions);

    CommandResult rank0;
    std::chrono::steady_clock::time_point ended;
    std::thread first([&] {
      CommandOptions options;
      options.env = rankEnv(0, 2, port);
      rank0 = runAttnWith(args, options, 180);
      ended = std::chrono::steady_clock::now();
    });
    const auto start = std::chrono::steady_clock::now();
    bool training = false;
    while (!training && std::chrono::steady_clock::now() - start < std::chrono::seconds(120)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      training = exists(run + "/log.jsonl") && !readFile(run + "/log.jsonl").empty();
    }
    ::kill(rank1, SIGKILL);
    const auto killed = std::chrono::steady_clock::now();
    int status = 0;
    ::waitpid(rank1, &status, 0);
    first.join();
    INFO(rank0.err, readFile(rank1Log));
    REQUIRE(training);
    CHECK(WIFSIGNALED(status));
    CHECK_FALSE(rank0.timedOut);
    CHECK(rank0.status == 1);
    CHECK(rank0.err.find("data parallel (rank 0 of 2)") != std::string::npos);
    const double seconds = std::chrono::duration<double>(ended - killed).count();
    MESSAGE("rank 0 ended ", seconds, " s after rank 1 was killed");
    CHECK(seconds < 60);
  }

  TEST_CASE("a build without Gloo refuses WORLD_SIZE 2, saying why") {
    if (attn::train::Communicator::available()) {
      // This build has Gloo: the refusal is the other build's; checked where it runs.
      skip("this build has Gloo: the refusal of a build without it is not reachable here");
      return;
    }
    std::vector<CommandResult> r = runRanks(trainArgs(tempDir() + "/ddp_nogloo", "cpu", "float32", 2, 64, 1), 2, 60);
    CHECK(r[0].status == 1);
    CHECK(r[0].err.find("built without Gloo's headers") != std::string::npos);
  }

  TEST_CASE("bad data-parallel variables are a bad command line naming the variable") {
    const std::string out = tempDir() + "/ddp_env";
    std::vector<std::string> args = trainArgs(out, "cpu", "float32", 2, 64, 1);
    struct Case {
      std::vector<std::string> env;
      std::string message;
    };
    const std::vector<Case> cases = {
        {{"WORLD_SIZE=two", "RANK=0"}, "WORLD_SIZE='two' is not an integer"},
        {{"WORLD_SIZE=2", "RANK=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=1234"}, "RANK 2 is not below WORLD_SIZE 2"},
        {{"WORLD_SIZE=2", "RANK=0", "MASTER_ADDR=127.0.0.1"}, "MASTER_ADDR or MASTER_PORT is not set"},
        {{"WORLD_SIZE=2", "RANK=0", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=70000"}, "MASTER_PORT='70000'"},
    };
    for (const Case& c : cases) {
      CommandOptions options;
      options.env = c.env;
      CommandResult r = runAttnWith(args, options);
      INFO(c.message, "\n", r.err);
      CHECK(r.status == 2);
      CHECK(r.err.find(c.message) != std::string::npos);
    }
    // A global batch the ranks cannot share evenly.
    if (attn::train::Communicator::available()) {
      std::vector<CommandResult> r = runRanks(trainArgs(out, "cpu", "float32", 2, 96, 1), 2, 60);
      CHECK(r[0].status == 1);
      CHECK(r[0].err.find("is not a multiple of micro-batch × seq-len × WORLD_SIZE (64)") != std::string::npos);
    }
  }
}
