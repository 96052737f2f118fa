// The one error type of support/: a file that cannot be read, written or created. The
// message is complete and names the file first ("PATH: cannot write: No space left on
// device ..."); callers print it as it is ("attn: error: MESSAGE", exit 1) or turn it into
// their own error type with the same text.
#pragma once

#include <stdexcept>
#include <string>

namespace attn::support {

class FileError : public std::runtime_error {
 public:
  FileError(const std::string& path, const std::string& what)
      : std::runtime_error(path + ": " + what), path_(path) {}
  /// The file the message is about.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// strerror(error), for messages.
std::string errnoText(int error);

}  // namespace attn::support
