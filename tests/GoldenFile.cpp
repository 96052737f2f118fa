#include "GoldenFile.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace attn::test {

std::string compareWithGolden(const std::string& relativePath, const std::string& actual) {
  std::string path = std::string(ATTN_TEST_DATA) + "/golden/" + relativePath;
  const char* update = std::getenv("UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream out(path, std::ios::binary);
    out << actual;
    return out ? "" : "could not write golden file " + path;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return "missing golden file " + path + " (run with UPDATE_GOLDEN=1 to create it)";
  std::ostringstream s;
  s << in.rdbuf();
  std::string expected = s.str();
  if (expected == actual) return "";
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
