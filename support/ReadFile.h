// The one way attn reads a whole file it did not just make: cache entries (CPU objects,
// cubins, the tuning table), checkpoint files, corpus manifests, `attn plot`'s inputs.
//
// The file must be a regular file no larger than a cap the caller states. It is opened with
// O_NONBLOCK, so a FIFO planted where a file should be is an error at once instead of a
// read that waits for a writer for ever, and examined with fstat on the open descriptor (so
// what is checked is what is read): a directory, a FIFO, a device such as /dev/zero (whose
// size says 0 and whose reads never end), a socket or a file over the cap is a FileError
// naming it. At most cap bytes are ever read, even from a file that grows while it is read.
//
// What it is not: a reader of streams (pipes, /dev/stdin) or of files larger than memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace attn::support {

struct ReadOptions {
  /// A symbolic link at the path itself is followed (true) or is a FileError (false: for
  /// cache entries, which attn never makes as links).
  bool followLinks = true;
  /// What the file is, for messages: "is a directory (expected WHAT)".
  std::string what = "a file";
};

/// The whole contents of the regular file at `path`, at most `maxBytes` of them. Throws
/// FileError naming `path`: missing, unreadable, not a regular file, larger than maxBytes.
std::string readRegularFile(const std::string& path, uint64_t maxBytes,
                            const ReadOptions& options = {});

/// The same, but a missing file (ENOENT, or a missing directory on the way: ENOTDIR) is
/// nullopt instead of an error: for caches, where a miss is normal.
std::optional<std::string> readRegularFileIfPresent(const std::string& path, uint64_t maxBytes,
                                                    const ReadOptions& options = {});

}  // namespace attn::support
