// The one on-disk format of attn's caches: the CPU backend's object files (<cache>/cpu), the
// CUDA backend's modules (<cache>/cuda) and the tuning table (<cache>/cuda/tuning.txt). Each
// is one file holding one payload under a short text header:
//
//     ATTNCACHE 1 <kind> <layout>\n          magic, this format's version, which cache, the
//                                           version of that cache's payload layout
//     key <16 hex: FNV-1a of the key> <key>\n the whole key, percent-encoded to one line
//     payload <bytes> <16 hex: XXH64>\n      the payload's length and checksum
//     \n
//     <payload bytes>                        the file ends exactly here
//
// so `head -3` says what an entry is, and any accident (a flipped byte, a truncation, another
// key's entry, a foreign file) is detected before the payload is used.
//
// Entries are read only as regular files of a capped size, never through a link
// (support/ReadFile.h: a FIFO or a link to /dev/zero is an error at once, never a hang), and
// written atomically with a link, FIFO or device at the name replaced (support/AtomicWrite.h).
// A cache is rebuildable, so nothing here is an error for the caller: a read says hit, miss,
// stale (written by an older attn: ignored with a one-line note) or damaged (a one-line
// warning); the caller compiles again and writes the entry anew.
//
// What it is not: a lock, an eviction policy, or protection against someone who can write the
// cache directory (docs/SECURITY.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attn::support {

/// This format's version (the number after ATTNCACHE).
constexpr int kCacheFormatVersion = 1;

/// Which cache an entry belongs to, and how it is named in messages.
struct CacheKind {
  std::string name;          ///< one word in the header: "cpu-kernel", "cuda-kernel", "cuda-tuning"
  int layout = 1;            ///< the payload layout's version; another one is stale
  std::string what;          ///< for messages: "the CPU kernel cache entry"
  uint64_t maxBytes = 0;     ///< the largest file read (header included)
  /// First-line prefixes of the files this cache wrote before it used this format: such a
  /// file is stale (a note), not damaged (a warning).
  std::vector<std::string> olderFormats;
  /// What the caller does about an unusable entry, ending the note or warning ("rebuilding it").
  std::string consequence = "rebuilding it";
};

/// The outcome of reading an entry.
struct CacheRead {
  enum class Status {
    Hit,      ///< `payload` holds the entry's payload
    Missing,  ///< no file (or no directory): a plain miss, nothing to say
    Stale,    ///< written by an older attn or in another layout: ignored, with a note
    Damaged,  ///< not usable (truncated, checksum, another key, not a regular file, ...)
  };
  Status status = Status::Missing;
  std::string payload;
  std::string path;
  std::string problem;  ///< Stale, Damaged: what is wrong, a phrase after the path

  bool hit() const { return status == Status::Hit; }
  /// Stale or Damaged: the caller should say so (line()) and rebuild.
  bool unusable() const { return status == Status::Stale || status == Status::Damaged; }
  /// The one line to print for a stale or damaged entry, e.g. "attn: warning: the CPU kernel
  /// cache entry PATH has a checksum mismatch (...); rebuilding it", or "attn: note: ... was
  /// written by an older attn (attn-cpu-kernel 2); rebuilding it". Empty otherwise.
  std::string line(const CacheKind& kind) const;
  /// line() without the "attn: warning: " / "attn: note: " prefix.
  std::string message(const CacheKind& kind) const;
};

/// The whole file (header and payload) of the entry for `key` holding `payload`.
std::string formatCacheEntry(const CacheKind& kind, std::string_view key, std::string_view payload);

/// What the bytes of a file read from `path` hold for `key` (never Missing).
CacheRead parseCacheEntry(const CacheKind& kind, std::string_view key, std::string_view bytes,
                          const std::string& path);

/// Reads the entry at `path` for `key`. Never throws (a failure to read is Damaged), except
/// std::bad_alloc.
CacheRead readCacheEntry(const CacheKind& kind, std::string_view key, const std::string& path);

/// Writes the entry atomically, creating its directory; a link, FIFO or device at `path` is
/// replaced. Throws FileError naming `path` (a read-only directory, a full disk): callers
/// of a cache treat that as "not cached", never as an error of the command.
void writeCacheEntry(const CacheKind& kind, std::string_view key, std::string_view payload,
                     const std::string& path);

}  // namespace attn::support
