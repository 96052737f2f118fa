// One tiny bad program per diagnostic (tests/diagnostics/*.attn, Halide's test/error in
// spirit): each file starts with the diagnostics it must produce, one comment line each,
//     # expect: LINE:COL: error: MESSAGE
// (or `warning:`), and the front end (parse, then check every definition) must produce
// exactly that multiset of Diagnostic::brief() lines: nothing missing, nothing extra.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "TestUtil.h"
#include "compiler/Checker.h"
#include "compiler/Parser.h"

namespace {

const std::string kExpectPrefix = "# expect: ";

std::vector<std::string> expectationsIn(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.compare(0, kExpectPrefix.size(), kExpectPrefix) == 0) out.push_back(line.substr(kExpectPrefix.size()));
    start = end + 1;
  }
  return out;
}

std::vector<std::string> diagnosticsOf(const std::string& path, const std::string& text) {
  attn::DiagnosticEngine diags;
  auto module = attn::parseModule(std::make_shared<attn::SourceFile>(path, text), diags);
  attn::checkModule(module, diags);
  std::vector<std::string> out;
  for (const auto& d : diags.all()) out.push_back(d.brief());
  return out;
}

std::string lines(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += "  " + s + "\n";
  return out.empty() ? "  (none)\n" : out;
}

}  // namespace

TEST_SUITE("diagnostics") {
  TEST_CASE("every program of tests/diagnostics gives exactly the diagnostics it expects") {
    const std::vector<std::string> files = attn::test::attnFilesIn(std::string(ATTN_TEST_DATA) + "/diagnostics");
    REQUIRE(files.size() >= 50);
    for (const auto& path : files) {
      const std::string text = attn::test::readFile(path);
      std::vector<std::string> expected = expectationsIn(text);
      std::vector<std::string> actual = diagnosticsOf(path, text);
      std::sort(expected.begin(), expected.end());
      std::sort(actual.begin(), actual.end());
      INFO(path, "\nexpected:\n", lines(expected), "actual:\n", lines(actual));
      CHECK_MESSAGE(!expected.empty(), "a corpus file must expect at least one diagnostic");
      CHECK(actual == expected);
    }
  }
}
