// readRegularFile (ReadFile.h).
#include "support/ReadFile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "support/FileError.h"

namespace attn::support {

namespace {

std::string byteCount(uint64_t n) {
  return std::to_string(n) + (n == 1 ? " byte" : " bytes");
}

std::optional<std::string> read(const std::string& path, uint64_t maxBytes,
                                const ReadOptions& options, bool missingIsEmpty) {
  const int flags =
      O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (options.followLinks ? 0 : O_NOFOLLOW);
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) {
    const int error = errno;
    if (missingIsEmpty && (error == ENOENT || error == ENOTDIR)) return std::nullopt;
    if (error == ELOOP && !options.followLinks) {
      throw FileError(path, "is a symbolic link (expected " + options.what +
                                ", which attn never makes as a link)");
    }
    throw FileError(path, "cannot open: " + errnoText(error));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw FileError(path, "cannot examine: " + errnoText(errno));
  if (S_ISDIR(st.st_mode)) throw FileError(path, "is a directory (expected " + options.what + ")");
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISFIFO(st.st_mode)   ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    throw FileError(path,
                    std::string("is ") + kind + " (expected " + options.what + ", a regular file)");
  }
  if (static_cast<uint64_t>(st.st_size) > maxBytes) {
    throw FileError(path, "is " + byteCount(static_cast<uint64_t>(st.st_size)) +
                              ", more than the " + byteCount(maxBytes) + " " + options.what +
                              " may have");
  }
  std::string bytes;
  bytes.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  for (;;) {
    if (done == bytes.size()) {
      // The file may have grown since fstat: read on, but never past the cap.
      if (done >= maxBytes) {
        char probe;
        ssize_t more;
        do more = ::read(fd, &probe, 1);
        while (more < 0 && errno == EINTR);
        if (more > 0)
          throw FileError(
              path, "grew past the " + byteCount(maxBytes) + " " + options.what + " may have");
        break;
      }
      bytes.resize(static_cast<size_t>(std::min<uint64_t>(maxBytes, done + (uint64_t(1) << 16))));
    }
    const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw FileError(path, "cannot read: " + errnoText(errno));
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  bytes.resize(done);
  return bytes;
}

}  // namespace

std::string readRegularFile(const std::string& path, uint64_t maxBytes,
                            const ReadOptions& options) {
  return *read(path, maxBytes, options, false);
}

std::optional<std::string> readRegularFileIfPresent(const std::string& path, uint64_t maxBytes,
                                                    const ReadOptions& options) {
  return read(path, maxBytes, options, true);
}

}  // namespace attn::support
