// The test kit itself: golden files that never pass while being rewritten (and are never
// rewritten under CI), and skips that ctest sees as skips.
#include <doctest/doctest.h>

#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string>

#include "GoldenFile.h"
#include "TestUtil.h"

using namespace attn;

namespace {

// Sets (or unsets, for nullptr) an environment variable for the scope.
struct ScopedEnv {
  std::string name;
  std::string old;
  bool had;
  ScopedEnv(const std::string& n, const char* value) : name(n) {
    const char* o = std::getenv(n.c_str());
    had = o != nullptr;
    if (had) old = o;
    if (value) ::setenv(n.c_str(), value, 1);
    else ::unsetenv(n.c_str());
  }
  ~ScopedEnv() {
    if (had) ::setenv(name.c_str(), old.c_str(), 1);
    else ::unsetenv(name.c_str());
  }
};

std::string selfExe() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  REQUIRE(n > 0);
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

TEST_SUITE("testkit") {
  TEST_CASE("golden files: a difference fails, a rewrite fails too, and CI refuses to rewrite") {
    const std::string path = test::writeTempFile("golden.txt", "one\ntwo\n");
    {
      ScopedEnv update("UPDATE_GOLDEN", nullptr);
      CHECK(test::compareWithGoldenFile(path, "one\ntwo\n") == "");
      const std::string diff = test::compareWithGoldenFile(path, "one\nthree\n");
      CHECK(diff.find(":2: golden differs") != std::string::npos);
      CHECK(diff.find("actual:   three") != std::string::npos);
    }
    {
      ScopedEnv update("UPDATE_GOLDEN", "1");
      ScopedEnv ci("CI", "1");
      CHECK(test::compareWithGoldenFile(path, "one\nthree\n").find("refused under CI") != std::string::npos);
      CHECK(test::readFile(path) == "one\ntwo\n");  // untouched
    }
    {
      ScopedEnv update("UPDATE_GOLDEN", "1");
      ScopedEnv ci("CI", nullptr);
      CHECK(test::compareWithGoldenFile(path, "one\ntwo\n") == "");  // equal: nothing to rewrite
      CHECK(test::compareWithGoldenFile(path, "one\nthree\n").find("rewrote golden file") != std::string::npos);
      CHECK(test::readFile(path) == "one\nthree\n");
      CHECK(test::compareWithGoldenFile(path, "one\nthree\n") == "");
    }
  }

  // Runs this very binary on one case of the suite below: the exit status ctest would see.
  TEST_CASE("a run whose every case skipped exits 77 (ctest: Skipped); a run with a real case does not") {
    ScopedEnv enable("ATTN_TESTKIT_SELFTEST", "1");
    const std::string exe = selfExe();
    const test::CommandResult onlySkip = test::runProgram(exe, {"-ts=testkit-selftest", "-tc=*skips*", "--no-intro=true"});
    INFO(onlySkip.out, onlySkip.err);
    CHECK(onlySkip.status == test::kSkipExitCode);
    CHECK(onlySkip.out.find("SKIPPED: selftest: skips: a reason given by the test") != std::string::npos);
    const test::CommandResult mixed = test::runProgram(exe, {"-ts=testkit-selftest", "-tc=*skips*,*runs*", "--no-intro=true"});
    INFO(mixed.out, mixed.err);
    CHECK(mixed.status == 0);
    CHECK(mixed.out.find("1 of 2 test cases skipped") != std::string::npos);
    const test::CommandResult failing = test::runProgram(exe, {"-ts=testkit-selftest", "-tc=*fails*", "--no-intro=true"});
    CHECK(failing.status == 1);
  }
}

// Cases run only by the test above (ATTN_TESTKIT_SELFTEST set); not a ctest suite of their own.
TEST_SUITE("testkit-selftest") {
  TEST_CASE("selftest: skips") {
    if (std::getenv("ATTN_TESTKIT_SELFTEST") == nullptr) return;
    test::skip("a reason given by the test");
  }
  TEST_CASE("selftest: runs") {
    CHECK(1 + 1 == 2);
  }
  TEST_CASE("selftest: fails" * doctest::skip(std::getenv("ATTN_TESTKIT_SELFTEST") == nullptr)) {
    CHECK(1 + 1 == 3);
  }
}
