// The one way attn writes a file: whole or not at all, never through a link planted in the
// output directory, never over the previous contents until the new ones are on disk.
//
//   1. the bytes go to a new temporary file in the target's directory, created with
//      O_CREAT | O_EXCL | O_NOFOLLOW (so a file or link already at that name is never
//      opened: a fresh name is tried instead) and a name no other writer uses;
//   2. every write, the fsync and the close are checked: a full disk or an I/O error is a
//      FileError naming the target, the temporary file is removed and the previous file is
//      untouched;
//   3. the temporary file takes the previous file's permission bits (new files get 0666
//      less the umask) and is renamed over the target; the directory is fsynced.
//
// A target that is a symbolic link is handled as `links` says (the caller decides, because
// the right answer depends on who made the link): refused with a FileError by default;
// replaced by the new file (a link inside a cache attn owns); or followed to the file it
// names, which is then written atomically in its own directory (`attn fmt -i` on a linked
// source file keeps the link). A target that is a directory is always refused, and so is
// another non-regular file (a FIFO, a device) except under Replace, where it is replaced.
//
// What it is not: a lock. Two processes writing one target concurrently each write a whole
// file; the last rename wins.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

namespace attn::support {

/// A range of bytes to write.
struct ByteSpan {
  const void* data;
  size_t size;
};

/// What to do when the target is a symbolic link.
enum class LinkPolicy {
  Refuse,   ///< a FileError ("is a symbolic link ..."); the default for user outputs
  Replace,  ///< the link itself is replaced by the new file, as is a FIFO or device (attn's own
            ///< caches)
  WriteThrough,  ///< the file the link names is written (atomically, in its directory); the link
                 ///< stays
};

struct WriteOptions {
  LinkPolicy links = LinkPolicy::Refuse;
};

/// Writes `pieces`, one after another, as the whole new contents of `path`, as described
/// above. Throws FileError naming `path`.
void writeFileAtomically(const std::string& path, std::initializer_list<ByteSpan> pieces,
                         WriteOptions options = {});

/// The same for one piece of bytes.
void writeFileAtomically(const std::string& path, std::string_view bytes,
                         WriteOptions options = {});

/// Creates `dir` and its missing parents (mode 0777 less the umask). Throws FileError
/// naming the first part that cannot be created or exists and is not a directory.
void makeDirectories(const std::string& dir);

}  // namespace attn::support
