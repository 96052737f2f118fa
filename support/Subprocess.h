// Running another program without a shell: `attn plot` and `attn eval --plot` run gnuplot
// this way. The program is found on PATH and given an argument vector, never a command
// line, so no byte of any argument or input is ever interpreted by a shell. Its standard
// input is the bytes given (a script, say), its standard output and error are captured (each
// up to a cap), and it is killed when it runs past a deadline.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attn::support {

struct SubprocessResult {
  bool started = false;         ///< false: the program could not be run (startError says why)
  std::string startError;       ///< e.g. "No such file or directory" when it is not installed
  int exitStatus = -1;          ///< when it exited; -1 otherwise
  int signal = 0;               ///< the signal that ended it, 0 when it exited
  bool timedOut = false;        ///< killed at the deadline
  bool outputTooLarge = false;  ///< killed because its standard output passed the cap
  std::string out;              ///< its standard output
  std::string err;              ///< its standard error (the first errCap bytes)
};

struct SubprocessOptions {
  double timeoutSeconds = 60;
  uint64_t outCap = uint64_t(256) << 20;
  uint64_t errCap = uint64_t(64) << 10;
};

/// Runs argv[0] (looked up on PATH) with `argv`, `input` on its standard input; waits for
/// it. Never throws for what the program does; throws std::bad_alloc only.
SubprocessResult runSubprocess(const std::vector<std::string>& argv, const std::string& input,
                               const SubprocessOptions& options = {});

}  // namespace attn::support
