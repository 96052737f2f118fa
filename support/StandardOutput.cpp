#include "support/StandardOutput.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <iostream>

#include "support/FileError.h"

namespace attn::support {

void writeStandardOutput(std::string_view text) {
  flushStandardOutput();
  const char* data = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t put = ::write(1, data, left);
    if (put < 0) {
      if (errno == EINTR) continue;
      throw FileError("standard output", "cannot write: " + errnoText(errno));
    }
    if (put == 0) throw FileError("standard output", "cannot write: no progress");
    data += put;
    left -= static_cast<size_t>(put);
  }
}

void flushStandardOutput() {
  errno = 0;
  std::cout.flush();
  const bool streamFailed = !std::cout;
  const int streamErrno = errno;
  errno = 0;
  const bool fileFailed = std::fflush(stdout) != 0 || std::ferror(stdout);
  const int fileErrno = errno;
  if (streamFailed || fileFailed) {
    const int error = streamFailed ? streamErrno : fileErrno;
    throw FileError("standard output",
                    "cannot write: " +
                        (error != 0 ? errnoText(error) : std::string("the output stream failed")));
  }
}

}  // namespace attn::support
