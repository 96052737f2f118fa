// build/bin/attn as scripts use it: exit statuses, diagnostics format, every kind of bad
// input (never a crash: no status >= 128, no signal, no hang), and the stdlib.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <random>

#ifdef ATTN_HAVE_CUDA
#include "codegen/cuda/CudaDriver.h"
#endif
#include "TestUtil.h"

using namespace attn::test;

namespace {

// Every command must end normally: 0 or 1 for input problems, 2 for a bad command line.
void requireClean(const CommandResult& r, const std::string& what) {
  INFO(what, "\nstdout: ", r.out.substr(0, 2000), "\nstderr: ", r.err.substr(0, 2000));
  REQUIRE_FALSE(r.timedOut);
  REQUIRE(r.signal == 0);
  REQUIRE(r.status >= 0);
  REQUIRE(r.status < 3);
}

const char* kTwoAttentions =
    "attention first {\n  mask causal\n  out softmax(dot(q, k) / sqrt(d))\n}\n\n"
    "attention second {\n  param p: int = 2\n  out softmax(dot(q, k)) ^ p\n}\n";

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("check: exit 0 for a valid file, 1 with located diagnostics for a bad one") {
    std::string good = writeTempFile("good.attn", "attention a {\n  mask causal\n  out dot(q, k)\n}\n");
    CommandResult ok = runAttn({"check", good});
    requireClean(ok, "check good");
    CHECK(ok.status == 0);
    CHECK(ok.err.empty());

    std::string bad = writeTempFile("bad.attn",
                                    "attention a {\n  let qn = l2norm(q)\n  out dot(qn2, k)\n}\n");
    CommandResult r = runAttn({"check", bad});
    requireClean(r, "check bad");
    CHECK(r.status == 1);
    // FILE:LINE:COL: error: MESSAGE, then the source line, then a caret under the place.
    CHECK(r.err.find(bad + ":3:11: error: unknown name 'qn2'; did you mean 'qn'?\n"
                           "  out dot(qn2, k)\n"
                           "          ^~~\n") != std::string::npos);
  }

  TEST_CASE("check reports the errors of every file, not just the first") {
    std::string a = writeTempFile("multi_a.attn", "attention a {\n  out x\n}\n");
    std::string b = writeTempFile("multi_b.attn", "attention b {\n  let = 1\n  out j\n}\n");
    CommandResult r = runAttn({"check", a, b});
    requireClean(r, "two bad files");
    CHECK(r.status == 1);
    CHECK(r.err.find(a + ":2:7: error: unknown name 'x'") != std::string::npos);
    CHECK(r.err.find(b + ":2:7: error: unexpected '='") != std::string::npos);
  }

  TEST_CASE("a missing file, a directory, and no arguments") {
    CommandResult missing = runAttn({"check", tempDir() + "/does_not_exist.attn"});
    requireClean(missing, "missing file");
    CHECK(missing.status == 1);
    CHECK(missing.err.find("cannot open '" + tempDir() + "/does_not_exist.attn': No such file or directory") !=
          std::string::npos);

    CommandResult dir = runAttn({"check", tempDir()});
    requireClean(dir, "directory");
    CHECK(dir.status == 1);
    CHECK(dir.err.find("is a directory") != std::string::npos);

    CommandResult none = runAttn({});
    requireClean(none, "no arguments");
    CHECK(none.status == 2);

    CommandResult unknown = runAttn({"frobnicate"});
    requireClean(unknown, "unknown command");
    CHECK(unknown.status == 2);
  }

  TEST_CASE("a file with several attentions needs --name") {
    std::string path = writeTempFile("two.attn", kTwoAttentions);
    CommandResult r = runAttn({"explain", path});
    requireClean(r, "explain without --name");
    CHECK(r.status == 1);
    CHECK(r.err.find("defines 2 attentions (first, second); choose one with --name") != std::string::npos);

    CommandResult named = runAttn({"explain", path, "--name", "second"});
    requireClean(named, "explain --name second");
    CHECK(named.status == 0);
    CHECK(named.out.find("second") != std::string::npos);
    CHECK(named.out.find("p: int = 2") != std::string::npos);

    CommandResult typo = runAttn({"explain", path, "--name", "secnd"});
    requireClean(typo, "explain --name secnd");
    CHECK(typo.status == 1);
    CHECK(typo.err.find("no attention 'secnd' in " + path + "; did you mean 'second'?") != std::string::npos);
  }

  TEST_CASE("--set overrides a param; unknown names and wrong types are errors") {
    std::string path = writeTempFile("setp.attn", kTwoAttentions);
    CommandResult r = runAttn({"explain", path, "--name", "second", "--set", "p=7"});
    requireClean(r, "--set p=7");
    CHECK(r.status == 0);
    CHECK(r.out.find("p: int = 7") != std::string::npos);

    CommandResult unknown = runAttn({"explain", path, "--name", "second", "--set", "pp=3"});
    requireClean(unknown, "--set pp=3");
    CHECK(unknown.status == 1);
    CHECK(unknown.err.find("unknown param 'pp' of attention 'second'; did you mean 'p'?") != std::string::npos);

    CommandResult wrongType = runAttn({"explain", path, "--name", "second", "--set", "p=abc"});
    requireClean(wrongType, "--set p=abc");
    CHECK(wrongType.status == 1);
    CHECK(wrongType.err.find("--set p=abc: expected an int") != std::string::npos);

    CommandResult fractional = runAttn({"explain", path, "--name", "second", "--set", "p=1.5"});
    requireClean(fractional, "--set p=1.5");
    CHECK(fractional.status == 1);

    CommandResult noEquals = runAttn({"explain", path, "--name", "second", "--set", "p"});
    requireClean(noEquals, "--set p");
    CHECK(noEquals.status == 1);
    CHECK(noEquals.err.find("--set expects NAME=VALUE, got 'p'") != std::string::npos);
  }

  TEST_CASE("emit --target ast prints the tree with locations") {
    std::string path = writeTempFile("emit.attn", "attention a {\n  out -j ^ 2\n}\n");
    CommandResult r = runAttn({"emit", path, "--target", "ast"});
    requireClean(r, "emit ast");
    CHECK(r.status == 0);
    CHECK(r.out.find("  attention a @1:1\n") != std::string::npos);
    CHECK(r.out.find("    out @2:3\n      = (- (^ j 2)) @2:7\n") != std::string::npos);

    CommandResult bad = runAttn({"emit", path, "--target", "nonsense"});
    requireClean(bad, "emit nonsense");
    CHECK(bad.status == 2);

    CommandResult ir = runAttn({"emit", path, "--target", "ir"});
    requireClean(ir, "emit ir");
    CHECK(ir.status == 0);
    CHECK(ir.out.find("= pow %") != std::string::npos);
    CHECK(ir.out.find("out %") != std::string::npos);

#ifdef ATTN_HAVE_LLVM
    CommandResult llvm = runAttn({"emit", path, "--target", "llvm"});
    requireClean(llvm, "emit llvm");
    CHECK(llvm.status == 0);
    CHECK(llvm.out.find("define void @attn_forward(ptr noalias %args)") != std::string::npos);
    CHECK(llvm.out.find("define void @attn_backward_gradient(ptr noalias %args)") != std::string::npos);
    CHECK(llvm.out.find("double") == std::string::npos);
    CommandResult f64 = runAttn({"emit", path, "--target", "llvm", "--f64"});
    CHECK(f64.status == 0);
    // Exact IEEE arithmetic: no fast-math flags (TextIR.cpp says why).
    CHECK(f64.out.find("fmul double") != std::string::npos);
    CHECK(f64.out.find("reassoc") == std::string::npos);
    CHECK(f64.out.find("contract") == std::string::npos);
    // After O3 for this host the head-dimension loops are vectorised.
    CommandResult optimised = runAttn({"emit", path, "--target", "llvm", "--optimised"});
    CHECK(optimised.status == 0);
    CHECK(optimised.out.find(" x float>") != std::string::npos);
#else
    CommandResult llvm = runAttn({"emit", path, "--target", "llvm"});
    CHECK(llvm.status == 1);
    CHECK(llvm.err.find("built without LLVM") != std::string::npos);
#endif

    CommandResult cuda = runAttn({"emit", path, "--target", "cuda"});
    requireClean(cuda, "emit cuda");
#ifdef ATTN_HAVE_CUDA
    CHECK(cuda.status == 0);
    CHECK(cuda.out.find("#include \"tc_backward.cuh\"") != std::string::npos);
    CHECK(cuda.out.find("attn_tc::backwardGradient<Variant, Config>(p)") != std::string::npos);
    CHECK(cuda.out.find("attn_tc::forward<Variant, Config>(p)") != std::string::npos);  // bf16 by default
    CommandResult f32 = runAttn({"emit", path, "--target", "cuda", "--dtype", "f32"});
    CHECK(f32.out.find("extern \"C\" __global__ void attn_forward_f32(AttnScalarParams p)") != std::string::npos);
    CommandResult ptx = runAttn({"emit", path, "--target", "ptx", "--arch", "sm_80", "--dtype", "f32"});
    CHECK(ptx.status == 0);
    CHECK(ptx.out.find(".target sm_80") != std::string::npos);
    CHECK(ptx.out.find(".entry attn_forward_f32") != std::string::npos);
    CommandResult badArch = runAttn({"emit", path, "--target", "ptx", "--arch", "sm_75"});
    requireClean(badArch, "emit ptx --arch sm_75");
    CHECK(badArch.status == 1);
    CHECK(badArch.err.find("--arch sm_75: not an architecture attn compiles for") != std::string::npos);
    CHECK(badArch.err.find("sm_80, sm_86, sm_89 or sm_90") != std::string::npos);
    CommandResult tile = runAttn({"emit", path, "--target", "cuda", "--tile", "m128n32w8s3", "--head-dim", "128"});
    CHECK(tile.status == 0);
    CHECK(tile.out.find("kBlockM = 128, kBlockN = 32, kWarps = 8, kStages = 3") != std::string::npos);
    CHECK(tile.out.find("kD = 128, kDv = 128") != std::string::npos);
    CHECK(tile.out.find("ATTN_EXACT_MATH") == std::string::npos);  // approximate math by default
    CommandResult exact = runAttn({"emit", path, "--target", "cuda", "--exact-math"});
    CHECK(exact.status == 0);
    CHECK(exact.out.find("#define ATTN_EXACT_MATH 1") != std::string::npos);
    CHECK(exact.out.find("attn_fast_") == std::string::npos);
    CommandResult badTile = runAttn({"emit", path, "--target", "cuda", "--tile", "m64n64w8s2"});
    CHECK(badTile.status == 1);
    CHECK(badTile.err.find("blockM must be 16 x warps (128)") != std::string::npos);
    // A tile whose backward cannot split these head dims (found by the emu suite: NVRTC used to
    // fail on the skeleton's static_assert, an internal error).
    CommandResult splitTile =
        runAttn({"emit", path, "--target", "cuda", "--dtype", "bf16", "--tile", "m64n32w4s2", "--head-dim", "48"});
    CHECK(splitTile.status == 1);
    CHECK(splitTile.err.find("--tile: tile m64n32w4s2 needs head dims that are multiples of 32") != std::string::npos);
    // attn tune: the candidates compile without a GPU; timing them needs one.
    CommandResult tuneCompile = runAttn({"tune", path, "--compile-only", "--arch", "sm_80"}, 600);
    CHECK(tuneCompile.status == 0);
    CHECK(tuneCompile.out.find("m64n64w4s2") != std::string::npos);
    CHECK(tuneCompile.out.find("sm_80") != std::string::npos);
    CommandResult tuneF32 = runAttn({"tune", path, "--dtype", "f32"});
    CHECK(tuneF32.status == 1);
    CHECK(tuneF32.err.find("only the tensor-core kernels have a tile to tune") != std::string::npos);
    if (!attn::cuda::Driver::get().available()) {
      CommandResult tuneNoGpu = runAttn({"tune", path});
      CHECK(tuneNoGpu.status == 1);
      CHECK(tuneNoGpu.err.find("attn tune needs a GPU to time the candidates: no CUDA driver") != std::string::npos);
      CHECK(tuneNoGpu.err.find("--compile-only") != std::string::npos);
    }
    CommandResult badDtype = runAttn({"emit", path, "--target", "cuda", "--dtype", "f8"});
    CHECK(badDtype.status == 1);
    CHECK(badDtype.err.find("unknown dtype 'f8'") != std::string::npos);
#else
    CHECK(cuda.status == 1);
    CHECK(cuda.err.find("built without the CUDA toolkit") != std::string::npos);
#endif
  }

  TEST_CASE("ATTN_DUMP prints the named stages to stderr, the derived backward included") {
    const std::string lssar = std::string(ATTN_STDLIB) + "/lssar.attn";
    ::setenv("ATTN_DUMP", "plan,backward", 1);
    CommandResult r = runAttn({"emit", lssar, "--target", "plan"});
    ::unsetenv("ATTN_DUMP");
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("=== plan (") != std::string::npos);
    CHECK(r.err.find("=== backward (") != std::string::npos);
    CHECK(r.err.find("pass 1:    sums T = sum_j adj(w) w for w = l1norm(softplus(s))") != std::string::npos);
    CHECK(r.err.find("=== ir (") == std::string::npos);
  }

  TEST_CASE("fmt: prints canonical text, --check, -i rewrites, a broken file is never touched") {
    std::string messy = "attention   a{\n    let x=dot(q,k)\n      out x*2   # twice\n}";
    std::string path = writeTempFile("messy.attn", messy);
    CommandResult printed = runAttn({"fmt", path});
    requireClean(printed, "fmt");
    CHECK(printed.status == 0);
    CHECK(printed.out == "attention a {\n  let x = dot(q, k)\n  out x * 2  # twice\n}\n");

    CommandResult check = runAttn({"fmt", "--check", path});
    requireClean(check, "fmt --check");
    CHECK(check.status == 1);
    CHECK(check.out.find("not formatted") != std::string::npos);
    CHECK(readFile(path) == messy);

    CommandResult inPlace = runAttn({"fmt", "-i", path});
    requireClean(inPlace, "fmt -i");
    CHECK(inPlace.status == 0);
    CHECK(readFile(path) == printed.out);
    CommandResult checkAgain = runAttn({"fmt", "--check", path});
    CHECK(checkAgain.status == 0);

    std::string broken = "attention a {\n  let x = (1 +\n  out x\n}\n";
    std::string brokenPath = writeTempFile("broken.attn", broken);
    CommandResult r = runAttn({"fmt", "-i", brokenPath});
    requireClean(r, "fmt -i broken");
    CHECK(r.status == 1);
    CHECK(readFile(brokenPath) == broken);
  }
}

TEST_SUITE("badinput") {
  TEST_CASE("empty file: valid for check, no attention for explain") {
    std::string path = writeTempFile("empty.attn", "");
    CommandResult check = runAttn({"check", path});
    requireClean(check, "check empty");
    CHECK(check.status == 0);
    CommandResult explain = runAttn({"explain", path});
    requireClean(explain, "explain empty");
    CHECK(explain.status == 1);
    CHECK(explain.err.find(path + " defines no attention") != std::string::npos);
  }

  TEST_CASE("invalid UTF-8 and binary garbage") {
    std::string utf = writeTempFile("bad_utf8.attn", "attention a {\n  out j\xC3\x28\n}\n");
    CommandResult r = runAttn({"check", utf});
    requireClean(r, "invalid utf-8");
    CHECK(r.status == 1);
    CHECK(r.err.find(utf + ":2:8: error: invalid UTF-8 (byte 0xC3)") != std::string::npos);

    std::mt19937 rng(12345);
    for (int round = 0; round < 5; ++round) {
      std::string garbage(4096, '\0');
      for (auto& c : garbage) c = static_cast<char>(rng());
      std::string path = writeTempFile("garbage" + std::to_string(round) + ".attn", garbage);
      for (const char* cmd : {"check", "fmt", "explain"}) {
        CommandResult g = runAttn({cmd, path});
        requireClean(g, std::string(cmd) + " garbage");
        CHECK(g.status == 1);
      }
    }
    // Printable garbage that is valid UTF-8 reaches the lexer and parser ('#' starts a
    // comment, so lines are short enough that most of it is not comment).
    std::string printable;
    for (int k = 0; k < 20000; ++k) printable += k % 20 == 19 ? '\n' : static_cast<char>(32 + rng() % 95);
    std::string path = writeTempFile("printable.attn", printable);
    CommandResult p = runAttn({"check", path});
    requireClean(p, "printable garbage");
    CHECK(p.status == 1);
    CHECK(p.err.find("more error(s) not shown") != std::string::npos);
  }

  TEST_CASE("a device, a pipe or a link to one as the program: refused at once, never read") {
    // /dev/zero never ends and a FIFO with no writer blocks on open: both must be refused by
    // their type before any read. The 20 s limit of runAttn turns a hang into a failure.
    std::string fifo = writeTempFile("fifo.attn", "");
    std::remove(fifo.c_str());
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    std::string link = writeTempFile("zero_link.attn", "");
    std::remove(link.c_str());
    REQUIRE(::symlink("/dev/zero", link.c_str()) == 0);
    struct Case {
      std::string path, what;
    };
    for (const Case& c : {Case{"/dev/zero", "a character device"}, Case{fifo, "a pipe"},
                          Case{link, "a character device"}}) {
      for (const char* cmd : {"check", "fmt", "explain"}) {
        CommandResult r = runAttn({cmd, c.path}, 20);
        requireClean(r, std::string(cmd) + " " + c.path);
        CHECK(r.status == 1);
        CHECK_MESSAGE(r.err.find("'" + c.path + "' is " + c.what + ", not a .attn file") != std::string::npos, r.err);
      }
    }
    // A link to a regular file is still read.
    std::string target = writeTempFile("real.attn", "attention a {\n  out dot(q, k)\n}\n");
    std::string good = writeTempFile("good_link.attn", "");
    std::remove(good.c_str());
    REQUIRE(::symlink(target.c_str(), good.c_str()) == 0);
    CHECK(runAttn({"check", good}).status == 0);
  }

  TEST_CASE("a 10 MB file is handled in reasonable time") {
    // 10 MB of valid definitions: many fns and one attention using a few of them.
    std::string text;
    for (int k = 0; text.size() < 10u << 20; ++k)
      text += "fn helper_" + std::to_string(k) + "(x) = relu(x) * 0.5 + softplus(x) / 3\n";
    text += "attention big {\n  out helper_7(dot(q, k))\n}\n";
    std::string path = writeTempFile("big.attn", text);
    CommandResult r = runAttn({"check", path}, 300);
    requireClean(r, "10 MB valid");
    CHECK(r.status == 0);

    // 10 MB on one line of nonsense tokens.
    std::string line;
    while (line.size() < 10u << 20) line += "a + ( ";
    std::string linePath = writeTempFile("bigline.attn", line);
    CommandResult l = runAttn({"check", linePath}, 300);
    requireClean(l, "10 MB one line");
    CHECK(l.status == 1);
  }

  TEST_CASE("100,000 nested parentheses: a located error, not a stack overflow") {
    std::string text = "attention a {\n  out " + std::string(100000, '(') + "j" + std::string(100000, ')') + "\n}\n";
    std::string path = writeTempFile("nested.attn", text);
    for (const char* cmd : {"check", "fmt", "explain"}) {
      CommandResult r = runAttn({cmd, path});
      requireClean(r, std::string(cmd) + " nested");
      CHECK(r.status == 1);
      CHECK(r.err.find(path + ":2:263: error: expression nested too deeply (more than 256 levels)") !=
            std::string::npos);
    }
  }

  TEST_CASE("a chain of 300 fns, each calling the next, is deep after inlining but legal") {
    // A chain of fns each calling the next is deep after inlining, but legal.
    std::string text;
    for (int k = 0; k < 300; ++k) text += "fn f" + std::to_string(k) + "(x) = f" + std::to_string(k + 1) + "(x) + 1\n";
    text += "fn f300(x) = x\nattention a {\n  out f0(dot(q, k))\n}\n";
    std::string path = writeTempFile("fnchain.attn", text);
    CommandResult r = runAttn({"explain", path});
    requireClean(r, "fn chain");
    CHECK(r.status == 0);
  }
}

TEST_SUITE("stdlib") {
  TEST_CASE("every stdlib program checks, explains and is already formatted") {
    std::vector<std::string> files = attnFilesIn(ATTN_STDLIB);
    REQUIRE(files.size() >= 25);
    std::vector<std::string> args = {"check"};
    args.insert(args.end(), files.begin(), files.end());
    CommandResult check = runAttn(args);
    requireClean(check, "check stdlib");
    CHECK_MESSAGE(check.status == 0, check.err);
    CHECK_MESSAGE(check.err.empty(), check.err);  // not even a warning

    for (const auto& f : files) {
      CommandResult e = runAttn({"explain", f});
      requireClean(e, "explain " + f);
      CHECK_MESSAGE(e.status == 0, f, e.err);
    }
    std::vector<std::string> fmtArgs = {"fmt", "--check"};
    fmtArgs.insert(fmtArgs.end(), files.begin(), files.end());
    CommandResult fmt = runAttn(fmtArgs);
    requireClean(fmt, "fmt --check stdlib");
    CHECK_MESSAGE(fmt.status == 0, fmt.out, fmt.err);
  }

  TEST_CASE("the paper's programs have the names and params the spec gives") {
    CommandResult lssar = runAttn({"explain", std::string(ATTN_STDLIB) + "/lssar.attn"});
    REQUIRE(lssar.status == 0);
    CHECK(lssar.out.find("attention lssar") != std::string::npos);
    CHECK(lssar.out.find("p: int = 15") != std::string::npos);
    CHECK(lssar.out.find("causal") != std::string::npos);
    for (const char* name : {"softmax", "lssa"}) {
      CommandResult r = runAttn({"explain", std::string(ATTN_STDLIB) + "/" + name + ".attn"});
      REQUIRE(r.status == 0);
      CHECK(r.out.find(std::string("attention ") + name) != std::string::npos);
    }
  }
}
