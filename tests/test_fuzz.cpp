// Bounded fuzzing in CI: mutated stdlib programs and random bytes through the whole front
// end (tests/fuzz/FrontendFuzz.h says which properties are checked). The long-running
// harness for local use is tests/fuzz/attn_fuzz.cpp (docs/TESTING.md).
#include <doctest/doctest.h>

#include "TestUtil.h"
#include "fuzz/FrontendFuzz.h"

TEST_SUITE("fuzz") {
  TEST_CASE("mutated stdlib programs and random bytes: no failure") {
    std::vector<std::string> seeds;
    for (const auto& f : attn::test::attnFilesIn(ATTN_STDLIB)) seeds.push_back(attn::test::readFile(f));
    REQUIRE(seeds.size() >= 25);
    attn::fuzz::Stats stats = attn::fuzz::fuzz(seeds, 4000, 20261122);
    MESSAGE("fuzz: ", stats.inputs, " inputs, ", stats.parsed, " parsed, ", stats.checked,
            " checked clean, ", stats.failures, " failures");
    CHECK(stats.inputs == 4000);
    // The mutations must reach every stage, or the test proves nothing.
    CHECK(stats.parsed > 200);
    CHECK(stats.checked > 50);
    CHECK_MESSAGE(stats.failures == 0, stats.firstFailure, "\n--- input:\n", stats.firstFailingInput);
  }
}
