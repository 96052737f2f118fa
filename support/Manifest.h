// A manifest: the names, sizes and checksums (XXH64, support/ContentHash.h) of the files of
// a directory attn wrote as a whole, so that a later read can tell a damaged file (a flipped
// byte, a truncation, a file from elsewhere) from a good one before using it. Checkpoints
// (runtime/train) and the prepared built-in corpus (runtime/data/CorpusCache) carry one.
//
// The format, one text file written last (so its presence says the directory is complete):
//
//     attn-manifest 1
//     <16 hex digits: XXH64> <size in bytes> <file name>
//     ...
//
// File names are plain names inside the directory (no '/', no newline).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attn::support {

struct ManifestEntry {
  std::string name;
  uint64_t bytes = 0;
  uint64_t checksum = 0;
};

/// The entry of a file named `name` holding `contents`.
ManifestEntry manifestEntry(const std::string& name, std::string_view contents);

/// The manifest's text.
std::string formatManifest(const std::vector<ManifestEntry>& entries);

/// Parses the manifest read from `path`; throws FileError naming `path` when it is not one.
std::vector<ManifestEntry> parseManifest(const std::string& path, const std::string& text);

/// The entry named `name`, or nullptr.
const ManifestEntry* findEntry(const std::vector<ManifestEntry>& entries, const std::string& name);

/// Throws FileError naming `path` (the file that was read) when `contents` is not what
/// `entry` records: a size or checksum mismatch, said plainly ("is damaged: ...").
void checkAgainstManifest(const std::string& path, const ManifestEntry& entry,
                          std::string_view contents);

}  // namespace attn::support
