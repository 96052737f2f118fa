// The long-running front-end fuzzer, for local use (docs/TESTING.md):
//
//   cmake --preset asan && cmake --build build-asan --target attn_fuzz
//   build-asan/bin/attn_fuzz --seconds 600 --seed 1 stdlib/*.attn
//
// Mutates the given seed programs (plus random bytes) and checks the properties of
// FrontendFuzz.h on every input; prints a summary every 10 s, writes the first failing
// input to attn-fuzz-failure.attn, and exits 1 if any input failed.
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz/FrontendFuzz.h"

int main(int argc, char** argv) {
  double seconds = 60;
  uint64_t seed = 1;
  std::vector<std::string> seeds;
  for (int a = 1; a < argc; ++a) {
    if (!std::strcmp(argv[a], "--seconds") && a + 1 < argc) {
      seconds = std::atof(argv[++a]);
    } else if (!std::strcmp(argv[a], "--seed") && a + 1 < argc) {
      seed = std::strtoull(argv[++a], nullptr, 10);
    } else {
      std::ifstream in(argv[a], std::ios::binary);
      if (!in) {
        std::cerr << "attn_fuzz: cannot read " << argv[a] << '\n';
        return 2;
      }
      std::ostringstream s;
      s << in.rdbuf();
      seeds.push_back(s.str());
    }
  }
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  attn::fuzz::Stats total;
  double nextReport = 10;
  for (uint64_t round = 0; elapsed() < seconds; ++round) {
    attn::fuzz::Stats s = attn::fuzz::fuzz(seeds, 500, seed * 1000003 + round);
    total.inputs += s.inputs;
    total.parsed += s.parsed;
    total.checked += s.checked;
    if (s.failures && !total.failures) {
      total.firstFailure = s.firstFailure;
      total.firstFailingInput = s.firstFailingInput;
      std::ofstream("attn-fuzz-failure.attn", std::ios::binary) << s.firstFailingInput;
      std::cerr << "attn_fuzz: FAILURE: " << s.firstFailure << "\n(input written to attn-fuzz-failure.attn)\n";
    }
    total.failures += s.failures;
    if (elapsed() >= nextReport) {
      std::cout << "attn_fuzz: " << elapsed() << " s, " << total.inputs << " inputs, " << total.parsed
                << " parsed, " << total.checked << " checked clean, " << total.failures << " failures"
                << std::endl;
      nextReport += 10;
    }
  }
  std::cout << "attn_fuzz: done: " << total.inputs << " inputs in " << elapsed() << " s, " << total.parsed
            << " parsed, " << total.checked << " checked clean, " << total.failures << " failures\n";
  return total.failures ? 1 : 0;
}
