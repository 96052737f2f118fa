#include "GoldenFile.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace attn::test {

std::string compareWithGolden(const std::string& relativePath, const std::string& actual) {
  return compareWithGoldenFile(std::string(ATTN_TEST_DATA) + "/golden/" + relativePath, actual);
}

std::string compareWithGoldenFile(const std::string& path, const std::string& actual) {
  std::string expected;
  bool found = false;
  if (std::ifstream in{path, std::ios::binary}) {
    std::ostringstream s;
    s << in.rdbuf();
    expected = s.str();
    found = true;
  }
  if (found && expected == actual) return "";
  const char* update = std::getenv("UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    // Rewriting is never a pass: the run that rewrites fails, the next one compares. Under CI
    // nothing is rewritten at all.
    if (const char* ci = std::getenv("CI"); ci && *ci)
      return path + ": golden differs, and UPDATE_GOLDEN is refused under CI (CI is set)";
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream out(path, std::ios::binary);
    out << actual;
    if (!out) return "could not write golden file " + path;
    return "rewrote golden file " + path + " (UPDATE_GOLDEN=1): review the diff, then run again without it";
  }
  if (!found) return "missing golden file " + path + " (run with UPDATE_GOLDEN=1 to create it)";
  std::istringstream e(expected), a(actual);
  std::string el, al;
  for (int line = 1;; ++line) {
    bool he = static_cast<bool>(std::getline(e, el)), ha = static_cast<bool>(std::getline(a, al));
    if (!he && !ha) break;
    if (el != al || he != ha)
      return path + ":" + std::to_string(line) + ": golden differs\n  expected: " + (he ? el : "<end>") +
             "\n  actual:   " + (ha ? al : "<end>") + "\n(UPDATE_GOLDEN=1 rewrites the golden files)";
  }
  return path + ": golden differs (line endings?)";
}

}  // namespace attn::test
