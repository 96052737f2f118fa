// Mutation fuzzing of the whole front end (parse, check every definition, format, and the
// formatter's round trip), shared by the bounded test in CI (tests/test_fuzz.cpp) and the
// long-running local harness (tests/fuzz/attn_fuzz.cpp).
//
// The properties checked on every input:
// - nothing escapes: no exception, no crash (the harness runs under ASan/UBSan locally);
// - when the input parses without errors, formatting it and parsing the result gives the
//   same AST (ast::dump without locations), and formatting is idempotent;
// - the checker's verdict does not change under formatting.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace attn::fuzz {

/// Returns a mutated copy of `input`: byte flips, insertions of language tokens, deletions,
/// duplications and line swaps, 1 to 4 of them.
std::string mutate(const std::string& input, std::mt19937_64& rng);

/// Random bytes (printable-biased when `printable`).
std::string randomBytes(size_t size, bool printable, std::mt19937_64& rng);

struct Outcome {
  bool parsed = false;     ///< no syntax or encoding errors
  bool checked = false;    ///< no errors at all
  std::string failure;     ///< empty when every property held
};

/// Runs the front end on `text` and checks the properties above.
Outcome runFrontend(const std::string& text);

struct Stats {
  uint64_t inputs = 0, parsed = 0, checked = 0, failures = 0;
  std::string firstFailure, firstFailingInput;
};

/// Runs `iterations` mutated inputs drawn from `seeds` (and some random byte strings).
Stats fuzz(const std::vector<std::string>& seeds, uint64_t iterations, uint64_t seed);

}  // namespace attn::fuzz
