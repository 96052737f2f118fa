// The cache entry format (CacheEntry.h): writing, and reading with every way a file can fail
// to be the entry asked for said in one phrase.
#include "support/CacheEntry.h"

#include <cstdio>
#include <cstdlib>
#include <optional>

#include "support/AtomicWrite.h"
#include "support/ContentHash.h"
#include "support/FileError.h"
#include "support/ReadFile.h"

namespace attn::support {

namespace {

constexpr std::string_view kMagic = "ATTNCACHE";

// The key on one line: '%', control bytes, DEL and non-ASCII bytes as %XX (space is kept:
// the key is the rest of its line).
std::string escapeKey(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f || c == '%') {
      char code[4];
      std::snprintf(code, sizeof code, "%%%02X", c);
      out += code;
    } else {
      out += ch;
    }
  }
  return out;
}

std::string firstLine(const CacheKind& kind) {
  return std::string(kMagic) + " " + std::to_string(kCacheFormatVersion) + " " + kind.name + " " +
         std::to_string(kind.layout);
}

std::string keyLine(std::string_view key) {
  return "key " + hashHex(key) + " " + escapeKey(key);
}

std::string header(const CacheKind& kind, std::string_view key, std::string_view payload) {
  return firstLine(kind) + "\n" + keyLine(key) + "\npayload " + std::to_string(payload.size()) + " " +
         checksumHex(payload) + "\n\n";
}

// Shortens what is quoted from a file in a message.
std::string clip(std::string_view s, size_t n = 120) {
  std::string out;
  for (char c : s.substr(0, n)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return s.size() <= n ? out : out + "...";
}

bool allDigits(std::string_view s, size_t maxDigits) {
  if (s.empty() || s.size() > maxDigits) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

bool lowerHex16(std::string_view s) {
  if (s.size() != 16) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= line.size()) {
    const size_t space = line.find(' ', pos);
    const size_t end = space == std::string_view::npos ? line.size() : space;
    out.push_back(line.substr(pos, end - pos));
    if (space == std::string_view::npos) break;
    pos = space + 1;
  }
  return out;
}

CacheRead failed(CacheRead::Status status, const std::string& path, std::string problem) {
  CacheRead r;
  r.status = status;
  r.path = path;
  r.problem = std::move(problem);
  return r;
}

}  // namespace

std::string CacheRead::message(const CacheKind& kind) const {
  if (!unusable()) return "";
  return kind.what + " " + path + " " + problem + "; " + kind.consequence;
}

std::string CacheRead::line(const CacheKind& kind) const {
  if (!unusable()) return "";
  return std::string("attn: ") + (status == Status::Stale ? "note" : "warning") + ": " + message(kind);
}

std::string formatCacheEntry(const CacheKind& kind, std::string_view key, std::string_view payload) {
  std::string out = header(kind, key, payload);
  out.append(payload);
  return out;
}

CacheRead parseCacheEntry(const CacheKind& kind, std::string_view key, std::string_view data,
                          const std::string& path) {
  using S = CacheRead::Status;
  if (data.empty()) return failed(S::Damaged, path, "is empty (not a file attn wrote: it writes whole files)");

  size_t pos = 0;
  std::string_view line;
  auto nextLine = [&] {
    const size_t end = data.find('\n', pos);
    if (end == std::string_view::npos) return false;
    line = data.substr(pos, end - pos);
    pos = end + 1;
    return true;
  };
  const std::string truncated = "is truncated inside its header (" + std::to_string(data.size()) + " bytes)";

  // An older attn's file (its own magic) is stale, not damaged: the user did nothing wrong.
  const std::string_view opening = data.substr(0, data.find('\n'));
  for (const std::string& older : kind.olderFormats)
    if (data.compare(0, older.size(), older) == 0)
      return failed(S::Stale, path, "was written by an older attn (" + clip(opening, 60) + ")");

  if (data.compare(0, std::min(data.size(), kMagic.size()), kMagic.substr(0, std::min(data.size(), kMagic.size()))) != 0)
    return failed(S::Damaged, path, "does not start with " + std::string(kMagic) + ": not an attn cache entry");
  if (!nextLine()) return failed(S::Damaged, path, truncated);

  // ATTNCACHE <format> <kind> <layout>
  const std::vector<std::string_view> first = words(line);
  if (first.size() != 4 || first[0] != kMagic || !allDigits(first[1], 9) || !allDigits(first[3], 9))
    return failed(S::Damaged, path, "has a malformed first line (" + clip(line, 60) + ")");
  if (first[1] != std::to_string(kCacheFormatVersion))
    return failed(S::Stale, path,
                  "was written in cache format version " + std::string(first[1]) + "; this attn reads version " +
                      std::to_string(kCacheFormatVersion));
  if (first[2] != kind.name)
    return failed(S::Damaged, path, "holds a " + clip(first[2], 40) + " entry, not a " + kind.name + " entry");
  if (first[3] != std::to_string(kind.layout))
    return failed(S::Stale, path,
                  "holds layout " + std::string(first[3]) + " of " + kind.name + " entries; this attn reads layout " +
                      std::to_string(kind.layout));

  if (!nextLine()) return failed(S::Damaged, path, truncated);
  if (line.substr(0, 4) != "key ") return failed(S::Damaged, path, "has a malformed header (no key line)");
  if (line != keyLine(key))
    return failed(S::Damaged, path,
                  "holds the entry of another key (" + clip(line.substr(4)) + "), not of (" + clip(keyLine(key).substr(4)) +
                      ")");

  if (!nextLine()) return failed(S::Damaged, path, truncated);
  const std::vector<std::string_view> sizes = words(line);
  // 18 digits at most: a size we could have written, and no overflow below.
  if (sizes.size() != 3 || sizes[0] != "payload" || !allDigits(sizes[1], 18) || !lowerHex16(sizes[2]))
    return failed(S::Damaged, path, "has a malformed header (payload line: " + clip(line, 60) + ")");
  const uint64_t declared = std::strtoull(std::string(sizes[1]).c_str(), nullptr, 10);
  const uint64_t stored = std::strtoull(std::string(sizes[2]).c_str(), nullptr, 16);

  if (!nextLine()) return failed(S::Damaged, path, truncated);
  if (!line.empty()) return failed(S::Damaged, path, "has a malformed header (no blank line after it)");

  const uint64_t present = data.size() - pos;
  if (declared > present)
    return failed(S::Damaged, path,
                  "is truncated: its header declares " + std::to_string(declared) + " payload bytes, " +
                      std::to_string(present) + " follow");
  if (declared < present)
    return failed(S::Damaged, path,
                  "has " + std::to_string(present - declared) + " bytes after the " + std::to_string(declared) +
                      " payload bytes its header declares");
  const std::string_view payload = data.substr(pos);
  const uint64_t sum = checksum64(payload);
  if (sum != stored)
    return failed(S::Damaged, path,
                  "has a checksum mismatch (" + hex16(sum) + " computed, " + hex16(stored) +
                      " stored): its contents are damaged");

  CacheRead r;
  r.status = S::Hit;
  r.path = path;
  r.payload.assign(payload);
  return r;
}

CacheRead readCacheEntry(const CacheKind& kind, std::string_view key, const std::string& path) {
  std::optional<std::string> bytes;
  try {
    ReadOptions options;
    options.followLinks = false;  // attn never makes an entry as a link
    options.what = "a cache entry";
    bytes = readRegularFileIfPresent(path, kind.maxBytes, options);
  } catch (const FileError& e) {
    // FileError's text starts with the path; the message puts it after kind.what.
    const std::string what = e.what();
    const std::string prefix = path + ": ";
    return failed(CacheRead::Status::Damaged, path,
                  what.compare(0, prefix.size(), prefix) == 0 ? what.substr(prefix.size()) : what);
  }
  if (!bytes) return failed(CacheRead::Status::Missing, path, "");
  return parseCacheEntry(kind, key, *bytes, path);
}

void writeCacheEntry(const CacheKind& kind, std::string_view key, std::string_view payload,
                     const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) makeDirectories(path.substr(0, slash));
  const std::string head = header(kind, key, payload);
  WriteOptions options;
  options.links = LinkPolicy::Replace;  // a link planted at the entry's name is replaced, never followed
  writeFileAtomically(path, {{head.data(), head.size()}, {payload.data(), payload.size()}}, options);
}

}  // namespace attn::support
