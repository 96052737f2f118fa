#include "support/Manifest.h"

#include <cstdlib>
#include <sstream>

#include "support/ContentHash.h"
#include "support/FileError.h"

namespace attn::support {

namespace {
constexpr const char* kHeader = "attn-manifest 1";
}  // namespace

ManifestEntry manifestEntry(const std::string& name, std::string_view contents) {
  return {name, contents.size(), checksum64(contents)};
}

std::string formatManifest(const std::vector<ManifestEntry>& entries) {
  std::string text = std::string(kHeader) + "\n";
  for (const ManifestEntry& e : entries)
    text += hex16(e.checksum) + " " + std::to_string(e.bytes) + " " + e.name + "\n";
  return text;
}

std::vector<ManifestEntry> parseManifest(const std::string& path, const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kHeader) {
    throw FileError(
        path, "is not an attn manifest (its first line should be '" + std::string(kHeader) + "')");
  }
  std::vector<ManifestEntry> entries;
  int number = 1;
  while (std::getline(in, line)) {
    ++number;
    const size_t a = line.find(' ');
    const size_t b = a == std::string::npos ? a : line.find(' ', a + 1);
    bool ok = a == 16 && b != std::string::npos && b + 1 < line.size();
    ManifestEntry e;
    if (ok) {
      const std::string hex = line.substr(0, 16), size = line.substr(a + 1, b - a - 1);
      e.name = line.substr(b + 1);
      ok = hex.find_first_not_of("0123456789abcdef") == std::string::npos && !size.empty() &&
           size.size() <= 19 && size.find_first_not_of("0123456789") == std::string::npos &&
           e.name.find('/') == std::string::npos;
      if (ok) {
        e.checksum = std::strtoull(hex.c_str(), nullptr, 16);
        e.bytes = std::strtoull(size.c_str(), nullptr, 10);
      }
    }
    if (!ok)
      throw FileError(path, "line " + std::to_string(number) +
                                " is not '<checksum> <size> <name>': the manifest is damaged");
    entries.push_back(e);
  }
  return entries;
}

const ManifestEntry* findEntry(const std::vector<ManifestEntry>& entries, const std::string& name) {
  for (const ManifestEntry& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

void checkAgainstManifest(const std::string& path, const ManifestEntry& entry,
                          std::string_view contents) {
  if (contents.size() != entry.bytes) {
    throw FileError(path, "is damaged: it has " + std::to_string(contents.size()) +
                              " bytes, its manifest records " + std::to_string(entry.bytes));
  }
  const uint64_t sum = checksum64(contents);
  if (sum != entry.checksum) {
    throw FileError(path, "is damaged: its checksum is " + hex16(sum) + ", its manifest records " +
                              hex16(entry.checksum));
  }
}

}  // namespace attn::support
