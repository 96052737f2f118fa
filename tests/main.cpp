// The test binary's entry point: every tests/*.cpp is linked into one doctest binary
// (LibTorch-linked processes start slowly: one binary beats many). ctest runs it once per
// test suite (CMakeLists.txt).
//
// Compiled kernels go to a cache of the test run's own (ATTN_CACHE_DIR, unless the caller
// set one), so tests neither read a stale user cache nor fill it.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

#include "TestUtil.h"

int main(int argc, char** argv) {
  ::setenv("ATTN_CACHE_DIR", (attn::test::tempDir() + "/kernel-cache").c_str(), /*overwrite=*/0);
  doctest::Context context(argc, argv);
  return context.run();
}
