// The seed of the randomised suites: rotating, so that every CI run tries new programs and
// inputs, and reproducible: ATTN_TEST_SEED=<n> replays a run (every failure message of a
// randomised test prints the seed and the case's index).
#pragma once

#include <cstdint>
#include <random>

namespace attn::test {

/// ATTN_TEST_SEED when set (a decimal number), else the time of the process's first call;
/// the same value for the whole process.
uint64_t testSeed();

/// A generator for case `index` of a randomised test called `name` under testSeed(): each
/// case replays alone from the seed and its index.
std::mt19937_64 caseRng(const char* name, uint64_t index);

}  // namespace attn::test
