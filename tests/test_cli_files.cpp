// The CLI's files and processes (issue 13): `attn plot` runs gnuplot with no shell and no
// user string as code, writes through no planted link; `fmt -i` keeps a file's mode and a
// source that is a link; results printed to a full standard output are an error (exit 1);
// every numeric flag rejects junk, nan, inf, out-of-range values with exit 2 naming the flag.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "TestUtil.h"

namespace fs = std::filesystem;
using namespace attn::test;

namespace {

std::string freshDir(const std::string& name) {
  const std::string dir = tempDir() + "/clifiles-" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void writePlain(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool isPng(const std::string& path) {
  const std::string bytes = readFile(path);
  return bytes.size() > 1000 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

void requireEnded(const CommandResult& r, const std::string& what) {
  INFO(what, "\nstdout: ", r.out.substr(0, 2000), "\nstderr: ", r.err.substr(0, 2000));
  REQUIRE_FALSE(r.timedOut);
  REQUIRE(r.signal == 0);
  REQUIRE(r.status >= 0);
  REQUIRE(r.status < 3);
}

const std::string kEval = "{\"1x\": 3.5, \"2x\": 3.75, \"4x\": 4.25}\n";

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE(
      "plot: titles and file names that are shell or gnuplot code are drawn as text, never run") {
    REQUIRE_MESSAGE(
        std::system("command -v gnuplot > /dev/null") == 0,
        "gnuplot is not installed (scripts/setup.sh installs gnuplot-nox, which attn plot needs)");
    const std::string dir = freshDir("plot-injection");
    const std::string trap = dir + "/traps";  // every payload would create a file here
    fs::create_directories(trap);
    auto touch = [&](const std::string& name) { return "touch " + trap + "/" + name; };
    const std::vector<std::string> payloads = {
        "x'.system('" + touch("A") + "').'",  // breaks out of a single-quoted gnuplot string
        "$(" + touch("B") + ")",              // shell command substitution
        "`" + touch("C") + "`",               // shell and gnuplot backquotes
        "@x",                                 // a gnuplot macro
        "it's",                               // an apostrophe
        "a\nset output '" + trap + "/D'\nprint system('" + touch("E") +
            "')",                                           // newlines end a command
        "say \"" + touch("F") + "\" `" + touch("G") + "`",  // double quotes
        "{/Symbol a}^2_3 & \\\\",                           // enhanced-text markup and backslashes
    };
    for (size_t i = 0; i < payloads.size(); ++i) {
      INFO("payload ", i, ": ", payloads[i]);
      // As the title, and as an input's file name (the curve's label); the PNG's name too
      // where a file name can hold it (no '/' or newline).
      const std::string input =
          dir + "/in" + std::to_string(i) + "_" +
          (payloads[i].find('/') == std::string::npos && payloads[i].find('\n') == std::string::npos
               ? payloads[i]
               : std::string("plain")) +
          ".json";
      writePlain(input, kEval);
      const std::string png = dir + "/out" + std::to_string(i) + ".png";
      writePlain(dir + "/plain.json", kEval);
      CommandResult r =
          runAttn({"plot", input, dir + "/plain.json", "--title", payloads[i], "--out", png});
      requireEnded(r, "plot");
      CHECK(r.status == 0);
      CHECK(isPng(png));
      CHECK(listing(trap).empty());
    }
    // A PNG whose own name is a payload (no '/' in a file name: the commands would touch
    // files in the working directory, which is checked too).
    const std::string png = dir + "/p'$(touch attn-trap-H)`touch attn-trap-I`@x.png";
    CommandResult r = runAttn({"plot", dir + "/plain.json", "--out", png});
    requireEnded(r, "plot to a strange name");
    CHECK(r.status == 0);
    CHECK(isPng(png));
    CHECK_FALSE(fs::exists("attn-trap-H"));
    CHECK_FALSE(fs::exists("attn-trap-I"));
    CHECK(listing(trap).empty());
  }

  TEST_CASE(
      "plot: no write through a planted link; bad inputs, a missing directory and no gnuplot are "
      "exit 1") {
    const std::string dir = freshDir("plot-files");
    const std::string victim = dir + "/victim";
    writePlain(victim, "precious");
    writePlain(dir + "/a.json", kEval);
    // The old temporary data file's name, and the output itself, as links to the victim.
    REQUIRE(::symlink(victim.c_str(), (dir + "/out.png.dat").c_str()) == 0);
    CommandResult r = runAttn({"plot", dir + "/a.json", "--out", dir + "/out.png"});
    requireEnded(r, "plot");
    CHECK(r.status == 0);
    CHECK(isPng(dir + "/out.png"));
    CHECK(readFile(victim) == "precious");
    REQUIRE(::symlink(victim.c_str(), (dir + "/linked.png").c_str()) == 0);
    r = runAttn({"plot", dir + "/a.json", "--out", dir + "/linked.png"});
    requireEnded(r, "plot onto a link");
    CHECK(r.status == 1);
    CHECK(r.err.find(dir + "/linked.png: is a symbolic link") != std::string::npos);
    CHECK(readFile(victim) == "precious");

    struct Case {
      std::vector<std::string> args;
      std::string message;
    };
    REQUIRE(::mkfifo((dir + "/fifo.json").c_str(), 0600) == 0);
    writePlain(dir + "/bad-key.json", "{\"abcx\": 3.5}");
    writePlain(dir + "/zero.json", "{\"0x\": 3.5}");
    writePlain(dir + "/string.json", "{\"1x\": \"3.5\"}");
    writePlain(dir + "/list.json", "[1, 2]");
    writePlain(dir + "/huge.json", "{\"1x\": 1e999}");
    writePlain(dir + "/broken.json", "{\"1x\": ");
    const std::vector<Case> cases = {
        {{"plot", dir, "--out", dir + "/x.png"},
         dir + ": is a directory (expected an attn eval JSON file)"},
        {{"plot", dir + "/fifo.json", "--out", dir + "/x.png"}, dir + "/fifo.json: is a FIFO"},
        {{"plot", dir + "/missing.json", "--out", dir + "/x.png"},
         dir + "/missing.json: cannot open"},
        {{"plot", dir + "/bad-key.json", "--out", dir + "/x.png"},
         "bad-key.json: entry 'abcx' is not like"},
        {{"plot", dir + "/zero.json", "--out", dir + "/x.png"},
         "zero.json: entry '0x' is not like"},
        {{"plot", dir + "/string.json", "--out", dir + "/x.png"},
         "string.json: entry '1x' is not like"},
        {{"plot", dir + "/list.json", "--out", dir + "/x.png"},
         "list.json: not an attn eval JSON file"},
        {{"plot", dir + "/huge.json", "--out", dir + "/x.png"}, "huge.json"},
        {{"plot", dir + "/broken.json", "--out", dir + "/x.png"},
         "broken.json: not an attn eval JSON file"},
        {{"plot", dir + "/a.json", "--out", dir + "/no/such/dir/x.png"},
         dir + "/no/such/dir/x.png: cannot create"},
        {{"plot", dir + "/a.json", "--out", dir},
         dir + ": is a directory; expected a file to write"},
    };
    for (const Case& c : cases) {
      r = runAttn(c.args, 20);
      requireEnded(r, c.message);
      INFO(c.message, "\n", r.err);
      CHECK(r.status == 1);
      CHECK(r.err.find(c.message) != std::string::npos);
    }
    CHECK_FALSE(fs::exists(dir + "/x.png"));

    CommandOptions noGnuplot;
    noGnuplot.env = {"PATH=" + dir + "/empty-path"};
    r = runAttnWith({"plot", dir + "/a.json", "--out", dir + "/y.png"}, noGnuplot);
    requireEnded(r, "no gnuplot");
    CHECK(r.status == 1);
    CHECK(r.err.find("cannot run gnuplot: No such file or directory (install gnuplot-nox") !=
          std::string::npos);
    CHECK_FALSE(fs::exists(dir + "/y.png"));
  }

  TEST_CASE(
      "fmt -i keeps the file's permission bits, and a source that is a symbolic link stays one") {
    const std::string dir = freshDir("fmt-modes");
    const std::string messy = "attention   a{\n    let x=dot(q,k)\n      out x*2\n}";
    const std::string clean = "attention a {\n  let x = dot(q, k)\n  out x * 2\n}\n";
    const std::string plain = dir + "/plain.attn";
    writePlain(plain, messy);
    ::chmod(plain.c_str(), 0750);
    CommandResult r = runAttn({"fmt", "-i", plain});
    requireEnded(r, "fmt -i");
    CHECK(r.status == 0);
    CHECK(readFile(plain) == clean);
    struct stat st {};
    REQUIRE(::stat(plain.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0750);

    fs::create_directories(dir + "/real");
    const std::string target = dir + "/real/target.attn";
    writePlain(target, messy);
    ::chmod(target.c_str(), 0604);
    const std::string link = dir + "/link.attn";
    REQUIRE(::symlink("real/target.attn", link.c_str()) == 0);
    r = runAttn({"fmt", "-i", link});
    requireEnded(r, "fmt -i on a link");
    CHECK(r.status == 0);
    CHECK(fs::is_symlink(link));
    CHECK(fs::read_symlink(link) == "real/target.attn");
    CHECK(readFile(target) == clean);
    REQUIRE(::stat(target.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0604);
    CHECK(listing(dir + "/real") == std::vector<std::string>{"target.attn"});
    CHECK(listing(dir) == std::vector<std::string>{"link.attn", "plain.attn", "real"});
  }

  TEST_CASE("results to a full standard output: exit 1 with the reason, never 0") {
    const std::string lssa = std::string(ATTN_STDLIB) + "/lssa.attn";
    const std::string messy =
        writeTempFile("full-stdout-messy.attn", "attention a{\nout dot(q,k)}\n");
    const std::vector<std::vector<std::string>> commands = {
        {"fmt", lssa},
        {"fmt", "--check", messy},
        {"explain", lssa},
        {"emit", lssa, "--target", "ast"},
        {"emit", lssa, "--target", "checked"},
        {"emit", lssa, "--target", "ir"},
        {"emit", lssa, "--target", "plan"},
#ifdef ATTN_HAVE_LLVM
        {"emit", lssa, "--target", "llvm"},
#endif
#ifdef ATTN_HAVE_CUDA
        {"emit", lssa, "--target", "cuda"},
#endif
    };
    CommandOptions full;
    full.stdoutPath = "/dev/full";
    for (const auto& args : commands) {
      CommandResult r = runAttnWith(args, full);
      requireEnded(r, args[0] + " " + args[1]);
      INFO(args[0], " ", args.back(), "\n", r.err);
      CHECK(r.status == 1);
      CHECK(r.err.find("attn: error: standard output: cannot write: No space left on device") !=
            std::string::npos);
    }
    // The same commands to a working stdout still exit 0 (fmt --check: 1 for the messy file).
    CommandResult ok = runAttn({"explain", lssa});
    CHECK(ok.status == 0);
    CHECK_FALSE(ok.out.empty());
  }

  TEST_CASE(
      "every numeric flag: junk, nan, inf, zero or negative where meaningless, huge: exit 2 naming "
      "the flag") {
    const std::string lssa = std::string(ATTN_STDLIB) + "/lssa.attn";
    const std::string out = tempDir() + "/flags-out";
    struct Flag {
      std::vector<std::string> command;  // everything the command needs but the flag
      std::string flag;
      std::vector<std::string> bad;  // besides the values every flag rejects
    };
    const std::vector<std::string> never = {
        "nan", "inf", "-inf", "5x", " 7", "0x10", "", "1e400", "99999999999999999999", "--"};
    const std::vector<std::string> train = {"train", "--attn", lssa, "--out", out};
    const std::vector<std::string> eval = {"eval", "--ckpt", out};
    const std::vector<std::string> emit = {"emit", lssa, "--target", "llvm"};
    const std::vector<std::string> tune = {"tune", lssa, "--compile-only"};
    const std::vector<std::string> prepare = {"data", "prepare", "--out", out};
    const std::vector<Flag> flags = {
        {emit, "--head-dim", {"0", "-3", "1.5", "4097"}},
        {emit, "--value-dim", {"0", "-1"}},
        {tune, "--head-dim", {"0", "-3"}},
        {tune, "--value-dim", {"0"}},
        {tune, "--repeats", {"0", "-1", "100000"}},
        {tune, "--lengths", {"0", "1024,,4096", "1024,-1", "1024,abc", "1024,", "99999999999"}},
        {prepare, "--val-fraction", {"0", "1", "-0.5", "1.5"}},
        {prepare, "--seed", {"-1", "1.5"}},
        {prepare, "--tokens-per-shard", {"0", "-5", "2147483648"}},
        {train, "--steps", {"0", "-1", "1e29", "1.5"}},
        {train, "--seq-len", {"0", "-16", "2097152"}},
        {train, "--micro-batch", {"0", "-2"}},
        {train, "--batch-tokens", {"0", "-1"}},
        {train, "--lr", {"0", "-1", "1e9"}},
        {train, "--min-lr-ratio", {"-0.1", "1.5"}},
        {train, "--warmup", {"-1", "2.5"}},
        {train, "--weight-decay", {"-0.1"}},
        {train, "--clip", {"0", "-1"}},
        {train, "--seed", {"-1"}},
        {train, "--checkpoint-every", {"0", "-1"}},
        {train, "--checkpoint-minutes", {"0", "-1"}},
        {train, "--stop-after", {"0", "-1"}},
        {train, "--threads", {"0", "-1", "100000"}},
        {eval, "--max-docs", {"-1"}},
        {eval, "--threads", {"0"}},
    };
    int checked = 0;
    for (const Flag& f : flags) {
      std::vector<std::string> values = never;
      values.insert(values.end(), f.bad.begin(), f.bad.end());
      for (const std::string& value : values) {
        std::vector<std::string> args = f.command;
        args.push_back(f.flag + "=" + value);
        CommandResult r = runAttn(args, 30);
        requireEnded(r, f.flag + "=" + value);
        INFO(f.command[0], " ", f.flag, "='", value, "'\n", r.err);
        CHECK(r.status == 2);
        CHECK(r.err.find(f.flag) != std::string::npos);
        ++checked;
      }
    }
    CHECK(checked > 250);
    CHECK_FALSE(fs::exists(out));  // nothing ran
    // Values inside the ranges are accepted.
    CommandResult r = runAttn({"emit", lssa, "--target", "plan", "--head-dim", "64"});
    CHECK(r.status == 0);
  }
}
