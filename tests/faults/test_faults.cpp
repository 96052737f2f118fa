// Suite `faults`: the CLI (build/bin/attn) under injected write failures, kills at random
// moments and damaged files. What every case asserts:
//   - no run exits 3 or by a signal (other than the SIGKILL the test sends);
//   - no previous result is lost: after a failed or killed write the old file (checkpoint,
//     .npy, shard, PNG, source file) is byte-identical, or the new one is whole;
//   - every error names the file.
// Write failures come from an LD_PRELOAD library (FaultShim.cpp: ENOSPC after N bytes, EIO on
// the K-th write, on fsync or on rename, only for files whose path holds a given text), so
// no root and no small file system is needed.
//
// The random choices (how many bytes before the disk fills, when to kill) come from one
// seed, printed with every failure. The ctest run is short; a longer one:
//   ATTN_FAULTS_ROUNDS=50 ATTN_FAULTS_SEED=$RANDOM build/bin/attn_tests -ts=faults
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "TestUtil.h"
#include "runtime/data/Shards.h"
#include "runtime/io/Npy.h"

namespace fs = std::filesystem;
using namespace attn;
using namespace attn::test;

namespace {

uint64_t seed() {
  static const uint64_t s = [] {
    const char* v = std::getenv("ATTN_FAULTS_SEED");
    return v && *v ? std::strtoull(v, nullptr, 10) : uint64_t(20261203);
  }();
  return s;
}

/// Rounds of each randomized case (ATTN_FAULTS_ROUNDS, default 2: the ctest run).
int rounds() {
  const char* v = std::getenv("ATTN_FAULTS_ROUNDS");
  const int n = v && *v ? std::atoi(v) : 2;
  return n > 0 ? n : 2;
}

std::string freshDir(const std::string& name) {
  const std::string dir = tempDir() + "/faults-" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void writePlain(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

/// The injected failure, as environment entries for runAttnWith.
CommandOptions fault(const std::vector<std::string>& settings) {
  CommandOptions o;
  o.env = {std::string("LD_PRELOAD=") + ATTN_FAULT_SHIM};
  o.env.insert(o.env.end(), settings.begin(), settings.end());
  return o;
}

/// A spread of write failures for files whose path holds `path`: the disk full at once,
/// after a few bytes, after a random amount; EIO on a write, on fsync, on rename.
std::vector<std::vector<std::string>> failuresFor(const std::string& path, std::mt19937_64& rng,
                                                  uint64_t typical) {
  std::uniform_int_distribution<uint64_t> bytes(1, typical > 1 ? typical - 1 : 1);
  const std::string p = "ATTN_FAULT_PATH=" + path;
  return {
      {p, "ATTN_FAULT_AFTER_BYTES=0"},
      {p, "ATTN_FAULT_AFTER_BYTES=" + std::to_string(bytes(rng))},
      {p, "ATTN_FAULT_WRITE_CALL=1", "ATTN_FAULT_ERRNO=EIO"},
      {p, "ATTN_FAULT_FSYNC=1"},
      {p, "ATTN_FAULT_RENAME=1"},
  };
}

std::string describe(const std::vector<std::string>& settings) {
  std::string s;
  for (const auto& e : settings) s += e + " ";
  return s;
}

/// Ended by itself, with 0, 1 or 2: never 3, never a signal, never a hang.
void requireNoCrash(const CommandResult& r, const std::string& what) {
  INFO(what, " (seed ", seed(), ")\nstdout: ", r.out.substr(0, 1500),
       "\nstderr: ", r.err.substr(0, 3000));
  REQUIRE_FALSE(r.timedOut);
  REQUIRE(r.signal == 0);
  REQUIRE(r.status >= 0);
  REQUIRE(r.status <= 2);
}

/// Killed by us or ended cleanly; never 3, never another signal.
void requireKilledOrClean(const CommandResult& r, const std::string& what) {
  INFO(what, " (seed ", seed(), ")\nstderr: ", r.err.substr(0, 3000));
  REQUIRE_FALSE(r.timedOut);
  if (r.signal != 0) {
    REQUIRE(r.signal == SIGKILL);
  } else {
    REQUIRE(r.status >= 0);
    REQUIRE(r.status <= 2);
  }
}

/// Files in `dir` (not recursive), sorted, without attn's temporary files (NAME.tmp.PID.N,
/// which a kill may leave and which are never read).
std::vector<std::string> filesIn(const std::string& dir, bool withTemporaries = false) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (withTemporaries || name.find(".tmp.") == std::string::npos) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string npyOf(const std::vector<int64_t>& shape, uint32_t salt) {
  std::vector<float> values(static_cast<size_t>(shape[0] * shape[1]));
  std::mt19937 rng(salt);
  std::normal_distribution<float> normal;
  for (float& v : values) v = normal(rng);
  const io::NpyArray a = io::fromFloat32(shape, values.data(), io::DType::F32);
  const std::vector<uint8_t> bytes = io::serializeNpy(a);
  return std::string(bytes.begin(), bytes.end());
}

/// Small text documents for `attn data prepare`.
std::vector<std::string> documents(const std::string& dir, int n) {
  std::vector<std::string> files;
  for (int d = 0; d < n; ++d) {
    std::string text;
    for (int i = 0; i < 80; ++i)
      text += "Document " + std::to_string(d) + " line " + std::to_string(i) + " of the record. ";
    files.push_back(dir + "/doc" + std::to_string(d) + ".txt");
    writePlain(files.back(), text);
  }
  return files;
}

const std::string kMessy = "attention   a{\n    let x=dot(q,k)\n      out x*2   # twice\n}";
const std::string kClean = "attention a {\n  let x = dot(q, k)\n  out x * 2  # twice\n}\n";

}  // namespace

TEST_SUITE("faults") {
  TEST_CASE(
      "fmt -i: a failing write, fsync or rename leaves the source byte-identical and names it") {
    std::mt19937_64 rng(seed());
    const std::string dir = freshDir("fmt");
    const std::string path = dir + "/prog.attn";
    for (const auto& settings : failuresFor("prog.attn", rng, kClean.size())) {
      writePlain(path, kMessy);
      CommandResult r = runAttnWith({"fmt", "-i", path}, fault(settings));
      requireNoCrash(r, "fmt -i under " + describe(settings));
      INFO(describe(settings), "\n", r.err);
      CHECK(r.status == 1);
      CHECK(r.err.find(path + ": cannot ") != std::string::npos);
      CHECK(readFile(path) == kMessy);
      CHECK(filesIn(dir, true) == std::vector<std::string>{"prog.attn"});
    }
    CommandResult ok = runAttn({"fmt", "-i", path});
    CHECK(ok.status == 0);
    CHECK(readFile(path) == kClean);
  }

  TEST_CASE("fmt -i killed at a random moment: the source is the old text or the new, whole") {
    std::mt19937_64 rng(seed() + 1);
    const std::string dir = freshDir("fmt-kill");
    const std::string path = dir + "/prog.attn";
    std::uniform_real_distribution<double> when(0.0, 0.04);
    for (int round = 0; round < 5 * rounds(); ++round) {
      writePlain(path, kMessy);
      CommandOptions o;
      o.killAfterSeconds = when(rng);
      CommandResult r = runAttnWith({"fmt", "-i", path}, o);
      requireKilledOrClean(r, "fmt -i killed after " + std::to_string(o.killAfterSeconds) + " s");
      const std::string now = readFile(path);
      CHECK((now == kMessy || now == kClean));
    }
  }

  TEST_CASE(
      "data prepare: a failing shard write leaves the previous shards byte-identical and names the "
      "file") {
    std::mt19937_64 rng(seed() + 2);
    const std::string dir = freshDir("prepare");
    std::vector<std::string> args = {"data", "prepare"};
    for (const std::string& f : documents(dir, 4)) args.push_back(f);
    const std::string out = dir + "/shards";
    args.insert(args.end(), {"--out", out, "--val-fraction", "0.25", "--prefix", "t"});
    REQUIRE(runAttn(args).status == 0);
    const std::vector<std::string> names = filesIn(out);
    REQUIRE(names.size() == 3);  // t_train_000000.bin, t_val_000000.bin, t_val_documents.json
    for (const char* target : {"t_train_", "t_val_0", "t_val_documents"}) {
      for (const auto& settings : failuresFor(target, rng, 2000)) {
        std::vector<std::string> before;
        for (const auto& n : names) before.push_back(readFile(out + "/" + n));
        std::vector<std::string> again = args;
        again.insert(again.end(), {"--seed", "7"});  // another split: every file would change
        CommandResult r = runAttnWith(again, fault(settings));
        requireNoCrash(r, "data prepare under " + describe(settings));
        INFO(describe(settings), "\n", r.err);
        CHECK(r.status == 1);
        CHECK(r.err.find(out + "/" + target) != std::string::npos);
        // Nothing else in the directory but the marker of an unfinished preparation
        // (data::kWritingMarker), which makes every reader refuse the directory until a rerun.
        std::vector<std::string> expected = names;
        expected.push_back(data::kWritingMarker);
        std::sort(expected.begin(), expected.end());
        CHECK(filesIn(out, true) == expected);
        const CommandResult inspect = runAttn({"data", "inspect", out});
        CHECK(inspect.status == 1);
        CHECK(inspect.err.find("an interrupted `attn data prepare` left this directory incomplete") != std::string::npos);
        // The file that failed is the previous one; files written before it are whole new
        // ones (each shard is replaced atomically, not the set: a rerun repairs it).
        for (size_t i = 0; i < names.size(); ++i) {
          if (names[i].rfind(target, 0) == 0) CHECK(readFile(out + "/" + names[i]) == before[i]);
          if (names[i].size() > 4 && names[i].compare(names[i].size() - 4, 4, ".bin") == 0)
            CHECK_NOTHROW(data::readShard(out + "/" + names[i]));
        }
      }
    }
    // A rerun without faults completes the directory: the marker is gone, readers accept it.
    REQUIRE(runAttn(args).status == 0);
    CHECK(filesIn(out, true) == names);
    CHECK(runAttn({"data", "inspect", out}).status == 0);
  }

  TEST_CASE("data prepare killed at a random moment: every shard left is whole") {
    std::mt19937_64 rng(seed() + 3);
    const std::string dir = freshDir("prepare-kill");
    std::vector<std::string> args = {"data", "prepare"};
    for (const std::string& f : documents(dir, 6)) args.push_back(f);
    const std::string out = dir + "/shards";
    args.insert(args.end(), {"--out", out, "--val-fraction", "0.3", "--prefix", "k",
                             "--tokens-per-shard", "500"});
    std::uniform_real_distribution<double> when(0.0, 0.4);
    for (int round = 0; round < 3 * rounds(); ++round) {
      CommandOptions o;
      o.killAfterSeconds = when(rng);
      CommandResult r = runAttnWith(args, o);
      requireKilledOrClean(
          r, "data prepare killed after " + std::to_string(o.killAfterSeconds) + " s");
      if (!fs::exists(out)) continue;
      for (const std::string& name : filesIn(out)) {
        INFO(name, " after a kill at ", o.killAfterSeconds, " s (seed ", seed(), ")");
        if (name.size() > 4 && name.compare(name.size() - 4, 4, ".bin") == 0)
          CHECK_NOTHROW(data::readShard(out + "/" + name));
      }
    }
  }

  TEST_CASE("plot: a failing PNG write leaves the previous PNG byte-identical and names it") {
    std::mt19937_64 rng(seed() + 4);
    const std::string dir = freshDir("plot");
    writePlain(dir + "/a.json", "{\"1x\": 3.5, \"2x\": 3.9}");
    const std::string png = dir + "/loss.png";
    REQUIRE(runAttn({"plot", dir + "/a.json", "--out", png}).status == 0);
    const std::string before = readFile(png);
    REQUIRE(before.size() > 1000);
    writePlain(dir + "/b.json", "{\"1x\": 3.1, \"2x\": 3.3, \"4x\": 3.8}");
    for (const auto& settings : failuresFor("loss.png", rng, before.size())) {
      CommandResult r = runAttnWith({"plot", dir + "/b.json", "--out", png}, fault(settings));
      requireNoCrash(r, "plot under " + describe(settings));
      INFO(describe(settings), "\n", r.err);
      CHECK(r.status == 1);
      CHECK(r.err.find(png + ": cannot ") != std::string::npos);
      CHECK(readFile(png) == before);
    }
    CHECK(filesIn(dir, true) == std::vector<std::string>{"a.json", "b.json", "loss.png"});
  }

#ifdef ATTN_HAVE_TORCH
  TEST_CASE(
      "run: failing output writes keep the previous outputs; kills leave old or new, whole; bad "
      ".npy named") {
    std::mt19937_64 rng(seed() + 5);
    const std::string dir = freshDir("run");
    const std::string q = dir + "/q.npy", k = dir + "/k.npy", v = dir + "/v.npy",
                      dout = dir + "/do.npy";
    writePlain(q, npyOf({37, 16}, 1));
    writePlain(k, npyOf({37, 16}, 2));
    writePlain(v, npyOf({37, 16}, 3));
    writePlain(dout, npyOf({37, 16}, 4));
    const std::string lssa = std::string(ATTN_STDLIB) + "/lssa.attn",
                      softmax = std::string(ATTN_STDLIB) + "/softmax.attn";
    const std::string out = dir + "/out";
    auto runArgs = [&](const std::string& program) {
      return std::vector<std::string>{"run",    program, "--backend", "reference", "--q",
                                      q,        "--k",   k,           "--v",       v,
                                      "--dout", dout,    "--out",     out};
    };
    REQUIRE(runAttn(runArgs(lssa)).status == 0);
    const std::vector<std::string> outputs = {"dk.npy", "dq.npy", "dv.npy", "o.npy"};
    REQUIRE(filesIn(out, true) == outputs);
    std::vector<std::string> before;
    for (const auto& n : outputs) before.push_back(readFile(out + "/" + n));

    // Links planted at the names the old writer used: nothing is written through them.
    const std::string victim = dir + "/victim";
    writePlain(victim, "precious");
    for (const auto& n : outputs)
      REQUIRE(::symlink(victim.c_str(), (out + "/" + n + ".tmp").c_str()) == 0);

    for (const char* target : {"o.npy", "dv.npy"}) {
      for (const auto& settings :
           failuresFor(std::string("/out/") + target, rng, before[3].size())) {
        CommandResult r = runAttnWith(runArgs(softmax), fault(settings));
        requireNoCrash(r, std::string("run under ") + describe(settings));
        INFO(describe(settings), "\n", r.err);
        CHECK(r.status == 1);
        CHECK(r.err.find(out + "/" + target + ": cannot ") != std::string::npos);
        for (size_t i = 0; i < outputs.size(); ++i)
          if (outputs[i] == target) CHECK(readFile(out + "/" + outputs[i]) == before[i]);
        CHECK(readFile(victim) == "precious");
      }
    }
    // Kills: every output present is a whole .npy (the old or the new one).
    std::uniform_real_distribution<double> when(0.3, 2.5);
    for (int round = 0; round < rounds(); ++round) {
      CommandOptions o;
      o.killAfterSeconds = when(rng);
      CommandResult r = runAttnWith(runArgs(round % 2 ? lssa : softmax), o);
      requireKilledOrClean(r, "run killed after " + std::to_string(o.killAfterSeconds) + " s");
      for (const auto& n : outputs) {
        INFO(n, " after a kill at ", o.killAfterSeconds, " s (seed ", seed(), ")");
        CHECK_NOTHROW(io::readNpy(out + "/" + n));
      }
    }
    CHECK(readFile(victim) == "precious");

    // A link at an output itself is refused, and the file it names untouched.
    fs::remove(out + "/o.npy");
    REQUIRE(::symlink(victim.c_str(), (out + "/o.npy").c_str()) == 0);
    CommandResult linked = runAttn(runArgs(lssa));
    requireNoCrash(linked, "run onto a link");
    CHECK(linked.status == 1);
    CHECK(linked.err.find(out + "/o.npy: is a symbolic link") != std::string::npos);
    CHECK(readFile(victim) == "precious");

    // Damaged inputs: named, exit 1.
    std::string qBytes = readFile(q);
    writePlain(dir + "/short.npy", qBytes.substr(0, qBytes.size() - 100));
    std::string header = qBytes;
    header[9] = 'X';
    writePlain(dir + "/header.npy", header);
    for (const std::string& bad :
         {dir + "/short.npy", dir + "/header.npy", std::string("/dev/zero"), dir}) {
      std::vector<std::string> args = runArgs(lssa);
      args[5] = bad;  // --q
      CommandResult r = runAttn(args, 30);
      requireNoCrash(r, "run with --q " + bad);
      INFO(bad, "\n", r.err);
      CHECK(r.status == 1);
      CHECK(r.err.find(bad) != std::string::npos);
    }
  }

  TEST_CASE(
      "train: failing checkpoint and log writes are exit 1 naming the file; the previous "
      "checkpoint stays") {
    std::mt19937_64 rng(seed() + 6);
    const std::string dir = freshDir("train");
    const std::string data = dir + "/shards";
    std::vector<std::string> prepare = {"data", "prepare"};
    for (const std::string& f : documents(dir, 4)) prepare.push_back(f);
    prepare.insert(prepare.end(), {"--out", data, "--val-fraction", "0.25", "--prefix", "t"});
    REQUIRE(runAttn(prepare).status == 0);
    const std::string run = dir + "/run";
    auto trainArgs = [&](int steps, bool resume) {
      std::vector<std::string> a = {"train",
                                    "--config",
                                    "tiny",
                                    "--attn",
                                    std::string(ATTN_STDLIB) + "/lssa.attn",
                                    "--steps",
                                    std::to_string(steps),
                                    "--seq-len",
                                    "16",
                                    "--micro-batch",
                                    "1",
                                    "--data",
                                    data,
                                    "--out",
                                    run,
                                    "--threads",
                                    "1",
                                    "--quiet"};
      if (resume) a.push_back("--resume");
      return a;
    };
    CommandResult first = runAttn(trainArgs(2, false));
    requireNoCrash(first, "train");
    REQUIRE(first.status == 0);
    const std::vector<std::string> files = {"MANIFEST", "model.pt", "optimizer.pt", "state.json"};
    REQUIRE(filesIn(run + "/checkpoint", true) == files);
    std::vector<std::string> before;
    for (const auto& f : files) before.push_back(readFile(run + "/checkpoint/" + f));

    for (const auto& settings : failuresFor("/run/checkpoint", rng, before[1].size())) {
      CommandResult r = runAttnWith(trainArgs(3, true), fault(settings));
      requireNoCrash(r, "train --resume under " + describe(settings));
      INFO(describe(settings), "\n", r.err);
      CHECK(r.status == 1);
      CHECK(r.err.find(run + "/checkpoint") != std::string::npos);
      CHECK(r.err.find("the checkpoint was not written") != std::string::npos);
      for (size_t i = 0; i < files.size(); ++i)
        CHECK(readFile(run + "/checkpoint/" + files[i]) == before[i]);
      CHECK(filesIn(run, true) ==
            std::vector<std::string>{"attention.attn", "checkpoint", "config.json", "log.jsonl"});
    }
    CommandResult logFails = runAttnWith(
        trainArgs(3, true), fault({"ATTN_FAULT_PATH=log.jsonl", "ATTN_FAULT_AFTER_BYTES=0"}));
    requireNoCrash(logFails, "train with a full disk for log.jsonl");
    CHECK(logFails.status == 1);
    CHECK(logFails.err.find(run + "/log.jsonl") != std::string::npos);

    CommandResult resumed = runAttn(trainArgs(3, true));
    requireNoCrash(resumed, "train --resume");
    CHECK(resumed.status == 0);
    CHECK(readFile(run + "/checkpoint/state.json").find("\"step\":2") != std::string::npos);
  }

  TEST_CASE(
      "checkpoints: damaged, truncated, missing, swapped for a FIFO or /dev/zero: eval and "
      "--resume name the file") {
    const std::string dir = freshDir("damaged-ckpt");
    const std::string data = dir + "/shards";
    std::vector<std::string> prepare = {"data", "prepare"};
    for (const std::string& f : documents(dir, 4)) prepare.push_back(f);
    prepare.insert(prepare.end(), {"--out", data, "--val-fraction", "0.25", "--prefix", "t"});
    REQUIRE(runAttn(prepare).status == 0);
    const std::string good = dir + "/good";
    const std::vector<std::string> train = {
        "train",     "--config", "tiny",      "--attn", std::string(ATTN_STDLIB) + "/lssa.attn",
        "--steps",   "1",        "--seq-len", "16",     "--micro-batch",
        "1",         "--data",   data,        "--out",  good,
        "--threads", "1",        "--quiet"};
    REQUIRE(runAttn(train).status == 0);

    struct Damage {
      std::string what;
      std::string file;  // the file the message must name (in the copy's checkpoint/)
      std::function<void(const std::string& ckpt)> apply;
      std::string message;
      bool viaResume = false;  // checked with train --resume (else with eval, which is quicker)
    };
    auto flipBytes = [](const std::string& path, size_t count) {
      std::string bytes = readFile(path);
      std::mt19937 rng(static_cast<uint32_t>(seed()));
      for (size_t i = 0; i < count; ++i)
        bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
      writePlain(path, bytes);
    };
    const std::vector<Damage> damages = {
        {"400 flipped bytes", "model.pt",
         [&](const std::string& c) { flipBytes(c + "/model.pt", 400); }, "is damaged: its checksum",
         true},
        {"one flipped byte", "model.pt",
         [&](const std::string& c) { flipBytes(c + "/model.pt", 1); }, "is damaged: its checksum"},
        {"truncated", "model.pt",
         [&](const std::string& c) {
           writePlain(c + "/model.pt", readFile(c + "/model.pt").substr(0, 5000));
         },
         "is damaged: it has 5000 bytes"},
        {"truncated optimizer", "optimizer.pt",
         [&](const std::string& c) {
           writePlain(c + "/optimizer.pt", readFile(c + "/optimizer.pt").substr(0, 100));
         },
         "is damaged", true},
        {"missing optimizer", "optimizer.pt",
         [&](const std::string& c) { fs::remove(c + "/optimizer.pt"); },
         "cannot open: No such file or directory", true},
        {"state.json edited", "state.json",
         [&](const std::string& c) { writePlain(c + "/state.json", "{\"step\": 1e9}\n"); },
         "is damaged"},
        {"a FIFO for model.pt", "model.pt",
         [&](const std::string& c) {
           fs::remove(c + "/model.pt"), ::mkfifo((c + "/model.pt").c_str(), 0600);
         },
         "is a FIFO"},
        {"a link to /dev/zero", "model.pt",
         [&](const std::string& c) {
           fs::remove(c + "/model.pt"), fs::create_symlink("/dev/zero", c + "/model.pt");
         },
         "is a character device"},
        {"a damaged MANIFEST", "MANIFEST",
         [&](const std::string& c) {
           writePlain(c + "/MANIFEST", "attn-manifest 1\nnot a line\n");
         },
         "the manifest is damaged"},
        {"no MANIFEST, malformed state.json", "state.json",
         [&](const std::string& c) {
           fs::remove(c + "/MANIFEST"), writePlain(c + "/state.json", "{\"step\": ");
         },
         "not valid JSON"},
        {"no MANIFEST, a truncated model", "model.pt",
         [&](const std::string& c) {
           fs::remove(c + "/MANIFEST"),
               writePlain(c + "/model.pt", readFile(c + "/model.pt").substr(0, 3000));
         },
         "cannot be loaded"},
    };
    int n = 0;
    for (const Damage& d : damages) {
      const std::string copy = dir + "/copy" + std::to_string(n++);
      fs::copy(good, copy, fs::copy_options::recursive);
      d.apply(copy + "/checkpoint");
      const std::string named = copy + "/checkpoint/" + d.file;
      std::vector<std::string> resume = train;
      *(std::find(resume.begin(), resume.end(), "--out") + 1) = copy;
      *(std::find(resume.begin(), resume.end(), "--steps") + 1) = "2";
      resume.push_back("--resume");
      std::vector<std::vector<std::string>> commands;
      if (d.viaResume) commands.push_back(resume);
      if (d.file != "optimizer.pt")
        commands.push_back({"eval", "--ckpt", copy, "--data", data, "--lengths", "1x", "--max-docs",
                            "1", "--threads", "1"});
      for (const auto& args : commands) {
        CommandResult r = runAttn(args, 60);
        requireNoCrash(r, d.what + ": " + args[0]);
        INFO(d.what, ": ", args[0], "\n", r.err);
        CHECK(r.status == 1);
        CHECK(r.err.find(named + ": ") != std::string::npos);
        CHECK(r.err.find(d.message) != std::string::npos);
      }
    }
    // A checkpoint from before manifests: used, with a warning that says so.
    const std::string old = dir + "/old";
    fs::copy(good, old, fs::copy_options::recursive);
    fs::remove(old + "/checkpoint/MANIFEST");
    CommandResult r = runAttn({"eval", "--ckpt", old, "--data", data, "--lengths", "1x",
                               "--max-docs", "1", "--threads", "1"});
    requireNoCrash(r, "eval of a checkpoint without a MANIFEST");
    CHECK(r.status == 0);
    CHECK(r.err.find("has no MANIFEST (written by an older attn)") != std::string::npos);
    // A damaged config.json is named too.
    writePlain(old + "/config.json", "{\"model\": ");
    r = runAttn({"eval", "--ckpt", old, "--data", data, "--lengths", "1x"});
    requireNoCrash(r, "eval with a damaged config.json");
    CHECK(r.status == 1);
    CHECK(r.err.find(old + "/config.json: not valid JSON") != std::string::npos);
  }

  TEST_CASE(
      "train killed at random moments: it resumes from a whole checkpoint, or says there is none") {
    std::mt19937_64 rng(seed() + 7);
    const std::string dir = freshDir("train-kill");
    const std::string data = dir + "/shards";
    std::vector<std::string> prepare = {"data", "prepare"};
    for (const std::string& f : documents(dir, 4)) prepare.push_back(f);
    prepare.insert(prepare.end(), {"--out", data, "--val-fraction", "0.25", "--prefix", "t"});
    REQUIRE(runAttn(prepare).status == 0);
    std::uniform_real_distribution<double> when(1.0, 6.0);
    for (int round = 0; round < rounds(); ++round) {
      const std::string run = dir + "/run" + std::to_string(round);
      std::vector<std::string> args = {"train",
                                       "--config",
                                       "tiny",
                                       "--attn",
                                       std::string(ATTN_STDLIB) + "/lssa.attn",
                                       "--steps",
                                       "100000",
                                       "--seq-len",
                                       "16",
                                       "--micro-batch",
                                       "1",
                                       "--data",
                                       data,
                                       "--out",
                                       run,
                                       "--threads",
                                       "1",
                                       "--quiet",
                                       "--checkpoint-every",
                                       "1"};
      CommandOptions o;
      o.killAfterSeconds = when(rng);
      CommandResult killed = runAttnWith(args, o);
      requireKilledOrClean(killed,
                           "train killed after " + std::to_string(o.killAfterSeconds) + " s");
      // The newest whole checkpoint says where the run was; resuming goes two steps further.
      int64_t step = -1;
      for (const char* name : {"/checkpoint/state.json", "/checkpoint.old/state.json"}) {
        if (step < 0 && fs::exists(run + name)) step = std::stoll(readFile(run + name).substr(8));
      }
      *(std::find(args.begin(), args.end(), "--steps") + 1) = std::to_string(step + 3);
      args.push_back("--resume");
      CommandResult r = runAttn(args, 120);
      requireNoCrash(r, "train --resume after a kill");
      INFO("killed after ", o.killAfterSeconds, " s at step ", step, " (seed ", seed(), ")\n",
           r.err);
      if (step < 0) {  // killed before the first checkpoint
        CHECK(r.status == 1);
        CHECK(r.err.find("no checkpoint in") != std::string::npos);
      } else {
        CHECK(r.status == 0);
        CHECK(
            readFile(run + "/checkpoint/state.json").find("\"step\":" + std::to_string(step + 2)) !=
            std::string::npos);
        CHECK(filesIn(run + "/checkpoint", true) ==
              std::vector<std::string>{"MANIFEST", "model.pt", "optimizer.pt", "state.json"});
      }
    }
  }

  TEST_CASE(
      "caches: a damaged corpus is prepared again; cache entries that are links, FIFOs or garbage "
      "are rebuilt") {
    const std::string dir = freshDir("caches");
    const std::string cache = dir + "/cache";
    CommandOptions own;
    own.env = {"ATTN_CACHE_DIR=" + cache};
    const std::vector<std::string> train = {
        "train",   "--config", "tiny",       "--attn",    std::string(ATTN_STDLIB) + "/lssa.attn",
        "--steps", "1",        "--seq-len",  "16",        "--micro-batch",
        "1",       "--out",    dir + "/run", "--threads", "1",
        "--quiet"};
    CommandResult r = runAttnWith(train, own);
    requireNoCrash(r, "train on the built-in corpus");
    REQUIRE(r.status == 0);
    const std::string corpus = cache + "/data/sotu";
    REQUIRE(fs::exists(corpus + "/MANIFEST"));
    const std::string shard = corpus + "/sotu_train_000000.bin";
    const std::string whole = readFile(shard);
    std::string damaged = whole;
    damaged[whole.size() / 2] ^= 0x01;
    const std::vector<std::pair<std::string, std::function<void()>>> damages = {
        {"is damaged: its checksum", [&] { writePlain(shard, damaged); }},
        {"is damaged: it has", [&] { writePlain(shard, whole.substr(0, 2048)); }},
        {"is a FIFO", [&] { fs::remove(shard), ::mkfifo(shard.c_str(), 0600); }},
        {"MANIFEST: missing", [&] { fs::remove(corpus + "/MANIFEST"); }},
    };
    for (const auto& [message, apply] : damages) {
      apply();
      // What a killed preparation leaves (its process gone) is cleared by the next one.
      fs::create_directories(corpus + ".tmp.999999999.0/x");
      fs::create_directories(corpus + ".damaged.999999999.3");
      r = runAttnWith(train, own, 120);
      requireNoCrash(r, "train on a damaged corpus: " + message);
      INFO(message, "\n", r.err);
      CHECK(r.status == 0);
      CHECK(r.err.find("attn: note: the prepared built-in corpus is damaged (") !=
            std::string::npos);
      CHECK(r.err.find(message) != std::string::npos);
      CHECK(readFile(shard) == whole);
      CHECK(filesIn(cache + "/data", true) == std::vector<std::string>{"sotu"});
    }
    r = runAttnWith(train, own);
    CHECK(r.status == 0);
    CHECK(r.err.find("note") == std::string::npos);

#ifdef ATTN_HAVE_LLVM
    // CPU kernel cache entries: a link to /dev/zero, a FIFO, garbage, an older attn's entry.
    // Each is warned about (the older one: a note), rebuilt (a regular file again) and the
    // result is the same.
    const std::string q = dir + "/q.npy";
    writePlain(q, npyOf({37, 16}, 9));
    const std::vector<std::string> run = {"run",       std::string(ATTN_STDLIB) + "/lssar.attn",
                                          "--backend", "cpu",
                                          "--q",       q,
                                          "--k",       q,
                                          "--v",       q,
                                          "--out",     dir + "/out"};
    own.env = {"ATTN_CACHE_DIR=" + dir + "/kernels"};  // only this program's kernels in it
    r = runAttnWith(run, own);
    REQUIRE(r.status == 0);
    const std::string o = readFile(dir + "/out/o.npy");
    std::vector<std::string> entries;
    for (const auto& e : fs::directory_iterator(dir + "/kernels/cpu"))
      entries.push_back(e.path().string());
    REQUIRE(entries.size() == 1);
    const std::string entry = entries[0];
    const std::vector<std::pair<std::string, std::function<void()>>> bad = {
        {"is a symbolic link", [&] { fs::remove(entry), fs::create_symlink("/dev/zero", entry); }},
        {"is a FIFO", [&] { fs::remove(entry), ::mkfifo(entry.c_str(), 0600); }},
        {"not an attn cache entry", [&] { writePlain(entry, "garbage"); }},
        {"was written by an older attn (attn-cpu-kernel 2)",
         [&] { writePlain(entry, "attn-cpu-kernel 2\nkey\n0 0\n"); }},
    };
    for (const auto& [message, apply] : bad) {
      apply();
      r = runAttnWith(run, own, 60);
      requireNoCrash(r, "run with a cache entry that " + message);
      INFO(message, "\n", r.err);
      CHECK(r.status == 0);
      const std::string severity = message.find("older") == std::string::npos ? "warning" : "note";
      CHECK(r.err.find("attn: " + severity + ": the CPU kernel cache entry " + entry + " ") != std::string::npos);
      CHECK(r.err.find("; rebuilding it\n") != std::string::npos);
      CHECK(r.err.find(message) != std::string::npos);
      CHECK(readFile(dir + "/out/o.npy") == o);
      CHECK(fs::is_regular_file(fs::symlink_status(entry)));
    }
#endif
  }
#endif
}
