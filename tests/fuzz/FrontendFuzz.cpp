#include "fuzz/FrontendFuzz.h"

#include <exception>

#include "compiler/Checker.h"
#include "compiler/Formatter.h"
#include "compiler/Parser.h"

namespace attn::fuzz {

namespace {

const char* const kTokens[] = {
    "attention", "fn", "param", "let", "mask", "out", "causal", "full", "window", "true",
    "false", "q", "k", "i", "j", "n", "L", "d", "p", "x", "s", "softmax(", "l1norm(",
    "rowsum(", "rowmax(", "dot(", "l2norm(", "exp(", "log(", "relu(", "min(", "clamp(",
    "(", ")", "{", "}", ",", ";", ":", "?", "=", "==", "!=", "<", "<=", ">", ">=", "&&",
    "||", "!", "+", "-", "*", "/", "^", "0", "1", "15", ".5", "1e-3", "1e999", "\n", "\n\n",
    " ", "# c\n", "// c\n", "int", "float", "bool", "\xC3\xA9", "\t", "\r\n",
};

}  // namespace

std::string mutate(const std::string& input, std::mt19937_64& rng) {
  std::string s = input;
  int count = 1 + static_cast<int>(rng() % 4);
  for (int m = 0; m < count; ++m) {
    size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 7) {
      case 0:  // flip a byte
        if (!s.empty()) s[rng() % s.size()] = static_cast<char>(rng());
        break;
      case 1:
      case 2: {  // insert a token
        const char* t = kTokens[rng() % (sizeof kTokens / sizeof kTokens[0])];
        s.insert(pos, t);
        break;
      }
      case 3: {  // delete a range
        size_t len = 1 + rng() % 12;
        if (pos < s.size()) s.erase(pos, len);
        break;
      }
      case 4: {  // duplicate a range
        if (s.empty()) break;
        size_t from = rng() % s.size();
        size_t len = 1 + rng() % 40;
        s.insert(pos, s.substr(from, len));
        break;
      }
      case 5: {  // swap two lines
        std::vector<std::string> lines;
        size_t start = 0;
        for (size_t k = 0; k <= s.size(); ++k)
          if (k == s.size() || s[k] == '\n') {
            lines.push_back(s.substr(start, k - start));
            start = k + 1;
          }
        if (lines.size() < 2) break;
        std::swap(lines[rng() % lines.size()], lines[rng() % lines.size()]);
        std::string joined;
        for (size_t k = 0; k < lines.size(); ++k) joined += (k ? "\n" : "") + lines[k];
        s = joined;
        break;
      }
      default: {  // replace a range with a token
        size_t len = 1 + rng() % 6;
        if (pos < s.size()) s.replace(pos, len, kTokens[rng() % (sizeof kTokens / sizeof kTokens[0])]);
        break;
      }
    }
  }
  return s;
}

std::string randomBytes(size_t size, bool printable, std::mt19937_64& rng) {
  std::string s(size, '\0');
  for (auto& c : s) c = printable ? static_cast<char>(rng() % 8 == 0 ? '\n' : 32 + rng() % 95)
                                  : static_cast<char>(rng());
  return s;
}

Outcome runFrontend(const std::string& text) {
  Outcome outcome;
  try {
    DiagnosticEngine diags;
    auto file = std::make_shared<SourceFile>("fuzz.attn", text);
    ast::Module module = parseModule(file, diags);
    outcome.parsed = !diags.hasErrors();
    checkModule(module, diags);
    diags.renderToString();  // rendering must cope with every location
    outcome.checked = !diags.hasErrors();
    if (!outcome.parsed) return outcome;

    std::string formatted = formatModule(module);
    DiagnosticEngine again;
    ast::Module reparsed = parseModule(std::make_shared<SourceFile>("fuzz.attn", formatted), again);
    if (again.hasErrors()) {
      outcome.failure = "formatted text does not parse:\n" + again.renderToString() + "\n--- formatted:\n" + formatted;
      return outcome;
    }
    if (ast::dump(reparsed, false) != ast::dump(module, false)) {
      outcome.failure = "formatting changed the AST\n--- formatted:\n" + formatted;
      return outcome;
    }
    if (formatModule(reparsed) != formatted) {
      outcome.failure = "formatting is not idempotent\n--- formatted:\n" + formatted;
      return outcome;
    }
    checkModule(reparsed, again);
    if (again.hasErrors() != !outcome.checked) {
      outcome.failure = "the checker's verdict changed under formatting";
      return outcome;
    }
  } catch (const std::exception& e) {
    outcome.failure = std::string("exception escaped the front end: ") + e.what();
  }
  return outcome;
}

Stats fuzz(const std::vector<std::string>& seeds, uint64_t iterations, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Stats stats;
  for (uint64_t it = 0; it < iterations; ++it) {
    std::string input;
    if (seeds.empty() || rng() % 10 == 0) {
      input = randomBytes(rng() % 600, rng() % 2 == 0, rng);
    } else {
      input = seeds[rng() % seeds.size()];
      int rounds = 1 + static_cast<int>(rng() % 3);
      for (int r = 0; r < rounds; ++r) input = mutate(input, rng);
    }
    Outcome o = runFrontend(input);
    ++stats.inputs;
    stats.parsed += o.parsed;
    stats.checked += o.checked;
    if (!o.failure.empty()) {
      if (stats.failures == 0) {
        stats.firstFailure = o.failure;
        stats.firstFailingInput = input;
      }
      ++stats.failures;
    }
  }
  return stats;
}

}  // namespace attn::fuzz
