// writeFileAtomically and makeDirectories (AtomicWrite.h). POSIX calls only, so that every
// failure has an errno to report and nothing is buffered where an error could hide.
#include "support/AtomicWrite.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "support/FileError.h"

namespace attn::support {

std::string errnoText(int error) {
  return std::strerror(error);
}

namespace {

/// Closes a descriptor on every way out of a function.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }
  /// Closes now; returns 0 or the errno of the failure.
  int close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

std::string directoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

/// Writes all of `size` bytes; returns 0 or the errno of the failure.
int writeAll(int fd, const void* data, size_t size) {
  const auto* in = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t put = ::write(fd, in, size);
    if (put < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (put == 0) return EIO;  // no progress and no error: do not loop for ever
    in += put;
    size -= static_cast<size_t>(put);
  }
  return 0;
}

/// Flushes the directory holding `path`, so that the rename itself survives a crash. Best
/// effort: some file systems refuse to fsync a directory, and the data is already safe.
void syncDirectoryOf(const std::string& path) {
  const int fd = ::open(directoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

/// The file to write in place of `path`, after the link policy; throws for what is refused.
/// `existing` is set to the permission bits of the file that will be replaced, or -1 when
/// there is none.
std::string resolveTarget(const std::string& path, LinkPolicy links, int* existing) {
  *existing = -1;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return path;
    // ENOTDIR, EACCES ...: the create below reports it with the directory hint.
    return path;
  }
  std::string target = path;
  if (S_ISLNK(st.st_mode)) {
    if (links == LinkPolicy::Refuse) {
      throw FileError(
          path,
          "is a symbolic link; attn does not write through links here (remove it, or give "
          "the path of the file it names)");
    }
    if (links == LinkPolicy::Replace) return path;  // rename replaces the link, not what it names
    char resolved[PATH_MAX];
    if (::realpath(path.c_str(), resolved) == nullptr) {
      throw FileError(path, "is a symbolic link that cannot be followed: " + errnoText(errno));
    }
    target = resolved;
    if (::stat(target.c_str(), &st) != 0)
      throw FileError(path, "cannot examine " + target + ": " + errnoText(errno));
  }
  if (S_ISDIR(st.st_mode)) throw FileError(path, "is a directory; expected a file to write");
  // In a directory attn owns (Replace), a FIFO or device planted at the name is replaced too.
  if (!S_ISREG(st.st_mode) && links == LinkPolicy::Replace) return path;
  if (!S_ISREG(st.st_mode)) {
    throw FileError(
        path, "is not a regular file (a device, FIFO or socket); attn writes only regular files");
  }
  *existing = static_cast<int>(st.st_mode & 0777);
  return target;
}

/// A name next to `path` for the temporary file: never the same twice in this process, and
/// the pid keeps processes apart. O_EXCL turns a collision (or a planted file) into a retry.
std::string temporaryName(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

}  // namespace

void writeFileAtomically(const std::string& path, std::initializer_list<ByteSpan> pieces,
                         WriteOptions options) {
  if (path.empty()) throw FileError("(empty path)", "cannot write a file with an empty name");
  int existingMode = -1;
  const std::string target = resolveTarget(path, options.links, &existingMode);

  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = temporaryName(target);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    throw FileError(path, "cannot create the temporary file " + tmp + ": " + errnoText(errno) +
                              " (does the directory exist, and is it writable?)");
  }
  Descriptor file(fd);
  int error = 0;
  std::string failed = "write";
  for (const ByteSpan& piece : pieces) {
    if (error == 0) error = writeAll(fd, piece.data, piece.size);
  }
  if (error == 0 && existingMode >= 0 && ::fchmod(fd, static_cast<mode_t>(existingMode)) != 0) {
    error = errno;
    failed = "set the permissions of";
  }
  if (error == 0 && ::fsync(fd) != 0) {
    error = errno;
    failed = "flush";
  }
  if (const int closed = file.close(); closed != 0 && error == 0) error = closed;
  if (error != 0) {
    ::unlink(tmp.c_str());
    throw FileError(path, "cannot " + failed + " " + tmp + ": " + errnoText(error) +
                              (existingMode >= 0 ? " (the previous file is untouched)" : ""));
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    error = errno;
    ::unlink(tmp.c_str());
    throw FileError(path, "cannot rename " + tmp + " to " + target + ": " + errnoText(error));
  }
  syncDirectoryOf(target);
}

void writeFileAtomically(const std::string& path, std::string_view bytes, WriteOptions options) {
  writeFileAtomically(path, {{bytes.data(), bytes.size()}}, options);
}

void makeDirectories(const std::string& dir) {
  if (dir.empty()) throw FileError("(empty path)", "cannot create a directory with an empty name");
  std::string partial;
  for (size_t pos = 0; pos != std::string::npos;) {
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (partial.empty() || partial.back() == '/') continue;
    if (::mkdir(partial.c_str(), 0777) == 0) continue;
    const int error = errno;
    struct stat st {};
    if (::stat(partial.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    if (error == EEXIST) throw FileError(partial, "exists and is not a directory");
    throw FileError(partial, "cannot create the directory: " + errnoText(error));
  }
}

}  // namespace attn::support
