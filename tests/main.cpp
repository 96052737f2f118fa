// The test binary's entry point: every tests/*.cpp is linked into one doctest binary
// (LibTorch-linked processes start slowly: one binary beats many). ctest runs it once per
// test suite (CMakeLists.txt).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
