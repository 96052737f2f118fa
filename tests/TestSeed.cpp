#include "TestSeed.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace attn::test {

uint64_t testSeed() {
  static const uint64_t seed = [] {
    if (const char* s = std::getenv("ATTN_TEST_SEED"); s && *s) {
      char* end = nullptr;
      const unsigned long long v = std::strtoull(s, &end, 10);
      if (*end != '\0') throw std::runtime_error(std::string("ATTN_TEST_SEED is not a number: ") + s);
      return static_cast<uint64_t>(v);
    }
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  }();
  return seed;
}

std::mt19937_64 caseRng(const char* name, uint64_t index) {
  // FNV-1a of the name, mixed with the seed and the index by a SplitMix64 step.
  uint64_t h = 1469598103934665603ull;
  for (const char* c = name; *c; ++c) h = (h ^ static_cast<unsigned char>(*c)) * 1099511628211ull;
  uint64_t x = testSeed() ^ h ^ (index * 0x9e3779b97f4a7c15ull);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  return std::mt19937_64(x);
}

}  // namespace attn::test
