// An LD_PRELOAD library that makes file writes fail on demand, for the faults suite
// (tests/faults/test_faults.cpp): a full disk or a failing device without root, without a
// small file system, and at exactly the point a test chooses. It wraps write, pwrite, writev,
// fsync, fdatasync and rename; only regular files are affected (a pipe or a terminal, such as
// the stderr that carries attn's error message, never is), and only files whose path holds
// ATTN_FAULT_PATH when that is set.
//
//   ATTN_FAULT_AFTER_BYTES=N   writes succeed for N bytes in all (the last one partly), then
//                              fail with ATTN_FAULT_ERRNO (default ENOSPC: "No space left on
//                              device")
//   ATTN_FAULT_WRITE_CALL=K    the K-th write call (1-based) to a matching file fails
//   ATTN_FAULT_FSYNC=1         fsync and fdatasync of a matching file fail with EIO
//   ATTN_FAULT_RENAME=1        rename onto a matching path fails with EIO
//   ATTN_FAULT_ERRNO=EIO       the errno of failed writes (ENOSPC, EIO, EDQUOT or EFBIG)
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>

namespace {

struct Settings {
  bool loaded = false;
  long long afterBytes = -1;
  long long writeCall = -1;
  bool fsyncFails = false;
  bool renameFails = false;
  int writeErrno = ENOSPC;
  const char* path = nullptr;
};

Settings& settings() {
  static Settings s;
  if (!s.loaded) {
    if (const char* v = getenv("ATTN_FAULT_AFTER_BYTES")) s.afterBytes = atoll(v);
    if (const char* v = getenv("ATTN_FAULT_WRITE_CALL")) s.writeCall = atoll(v);
    s.fsyncFails = getenv("ATTN_FAULT_FSYNC") != nullptr;
    s.renameFails = getenv("ATTN_FAULT_RENAME") != nullptr;
    if (const char* v = getenv("ATTN_FAULT_ERRNO")) {
      if (strcmp(v, "EIO") == 0) s.writeErrno = EIO;
      if (strcmp(v, "EDQUOT") == 0) s.writeErrno = EDQUOT;
      if (strcmp(v, "EFBIG") == 0) s.writeErrno = EFBIG;
    }
    const char* p = getenv("ATTN_FAULT_PATH");
    s.path = p && *p ? p : nullptr;
    s.loaded = true;
  }
  return s;
}

std::atomic<long long> bytesWritten{0};
std::atomic<long long> writeCalls{0};

template <typename Fn>
Fn next(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

bool matchingFile(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  const char* want = settings().path;
  if (!want) return true;
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0) return false;
  target[n] = '\0';
  return strstr(target, want) != nullptr;
}

// How many of `count` bytes may be written now; -1 with errno set when none.
ssize_t allowance(int fd, size_t count) {
  Settings& s = settings();
  if ((s.afterBytes < 0 && s.writeCall < 0) || !matchingFile(fd))
    return static_cast<ssize_t>(count);
  if (s.writeCall >= 0 && ++writeCalls == s.writeCall) {
    errno = s.writeErrno;
    return -1;
  }
  if (s.afterBytes < 0) return static_cast<ssize_t>(count);
  const long long left = s.afterBytes - bytesWritten.load();
  if (left <= 0) {
    errno = s.writeErrno;
    return -1;
  }
  const size_t allowed = static_cast<size_t>(left) < count ? static_cast<size_t>(left) : count;
  bytesWritten += static_cast<long long>(allowed);
  return static_cast<ssize_t>(allowed);
}

}  // namespace

extern "C" {

ssize_t write(int fd, const void* buffer, size_t count) {
  static auto real = next<ssize_t (*)(int, const void*, size_t)>("write");
  const ssize_t allowed = allowance(fd, count);
  if (allowed < 0) return -1;
  return real(fd, buffer, static_cast<size_t>(allowed));
}

ssize_t pwrite(int fd, const void* buffer, size_t count, off_t offset) {
  static auto real = next<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  const ssize_t allowed = allowance(fd, count);
  if (allowed < 0) return -1;
  return real(fd, buffer, static_cast<size_t>(allowed), offset);
}

ssize_t pwrite64(int fd, const void* buffer, size_t count, off_t offset) {
  return pwrite(fd, buffer, count, offset);
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  static auto real = next<ssize_t (*)(int, const struct iovec*, int)>("writev");
  size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  const ssize_t allowed = allowance(fd, total);
  if (allowed < 0) return -1;
  if (static_cast<size_t>(allowed) == total) return real(fd, iov, iovcnt);
  // A partial write: only the first `allowed` bytes, as a full disk would take them.
  size_t done = 0;
  for (int i = 0; i < iovcnt && done < static_cast<size_t>(allowed); ++i) {
    const size_t take = iov[i].iov_len < static_cast<size_t>(allowed) - done
                            ? iov[i].iov_len
                            : static_cast<size_t>(allowed) - done;
    static auto realWrite = next<ssize_t (*)(int, const void*, size_t)>("write");
    const ssize_t put = realWrite(fd, iov[i].iov_base, take);
    if (put < 0) return done ? static_cast<ssize_t>(done) : -1;
    done += static_cast<size_t>(put);
    if (static_cast<size_t>(put) < take) break;
  }
  return static_cast<ssize_t>(done);
}

int fsync(int fd) {
  static auto real = next<int (*)(int)>("fsync");
  if (settings().fsyncFails && matchingFile(fd)) {
    errno = EIO;
    return -1;
  }
  return real(fd);
}

int fdatasync(int fd) {
  static auto real = next<int (*)(int)>("fdatasync");
  if (settings().fsyncFails && matchingFile(fd)) {
    errno = EIO;
    return -1;
  }
  return real(fd);
}

int rename(const char* from, const char* to) {
  static auto real = next<int (*)(const char*, const char*)>("rename");
  const Settings& s = settings();
  if (s.renameFails && (!s.path || strstr(to, s.path) != nullptr)) {
    errno = EIO;
    return -1;
  }
  return real(from, to);
}

}  // extern "C"
