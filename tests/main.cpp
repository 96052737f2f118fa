// The test binary's entry point: every tests/*.cpp is linked into one doctest binary
// (LibTorch-linked processes start slowly: one binary beats many). ctest runs it once per
// test suite (CMakeLists.txt).
//
// Compiled kernels go to a cache of the test run's own (ATTN_CACHE_DIR, unless the caller
// set one), so tests neither read a stale user cache nor fill it.
//
// Skips are visible: a case that cannot run here (no GPU) calls test::skip(why); when every
// case of the run skipped, the process exits with test::kSkipExitCode, which ctest reports as
// "Skipped" (SKIP_RETURN_CODE), never as "Passed".
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "TestUtil.h"

namespace {

// Counts the test cases that start, and tells TestUtil which one is running.
struct CaseCounter : doctest::IReporter {
  static std::set<std::string>& started() {
    static std::set<std::string> names;
    return names;
  }
  explicit CaseCounter(const doctest::ContextOptions&) {}
  void test_case_start(const doctest::TestCaseData& data) override {
    started().insert(data.m_name);
    attn::test::enteringTestCase(data.m_name);
  }
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("case-counter", 1, CaseCounter);

}  // namespace

int main(int argc, char** argv) {
  ::setenv("ATTN_CACHE_DIR", (attn::test::tempDir() + "/kernel-cache").c_str(), /*overwrite=*/0);
  doctest::Context context(argc, argv);
  const int failed = context.run();
  if (context.shouldExit()) return failed;
  const int skipped = attn::test::skippedCases();
  const int started = static_cast<int>(CaseCounter::started().size());
  if (skipped > 0) std::printf("%d of %d test cases skipped (see SKIPPED lines above)\n", skipped, started);
  if (failed == 0 && started > 0 && skipped == started) return attn::test::kSkipExitCode;
  return failed;
}
