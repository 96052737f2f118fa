// Helpers shared by the tests: temporary files, running build/bin/attn as a user would.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace attn::test {

/// What a finished command left: its exit status (or the signal that killed it), and
/// what it printed.
struct CommandResult {
  int status = -1;     ///< exit status, -1 if killed by a signal or timed out
  int signal = 0;      ///< the signal that ended it, 0 if it exited
  bool timedOut = false;
  std::string out;
  std::string err;
};

/// Runs build/bin/attn with `args`; kills it after `timeoutSeconds`.
CommandResult runAttn(const std::vector<std::string>& args, double timeoutSeconds = 120);
/// Runs `program` (a path) with `args` the same way.
CommandResult runProgram(const std::string& program, const std::vector<std::string>& args, double timeoutSeconds = 120);

/// How runAttnWith runs it.
struct CommandOptions {
  /// "NAME=VALUE" entries added to (or replacing those of) this process's environment.
  std::vector<std::string> env;
  /// A file opened as its standard output instead of a capture ("/dev/full": a full disk).
  std::string stdoutPath;
  /// Kill it with SIGKILL after this many seconds (< 0: never; the result then has
  /// signal == SIGKILL and timedOut == false if it had not finished).
  double killAfterSeconds = -1;
  /// With killAfterSeconds >= 0: count those seconds from the moment this path first exists
  /// (polled), not from the start, so a test can kill a run at a point it reached rather
  /// than at a time that a loaded machine may not reach.
  std::string killOnceExists;
};

/// runProgram and runAttn with the options above.
CommandResult runProgramWith(const std::string& program, const std::vector<std::string>& args,
                             const CommandOptions& options, double timeoutSeconds = 120);
CommandResult runAttnWith(const std::vector<std::string>& args, const CommandOptions& options,
                          double timeoutSeconds = 120);

/// A fresh directory for this test process (removed at exit).
const std::string& tempDir();
/// Writes `content` to tempDir()/name and returns the path.
std::string writeTempFile(const std::string& name, const std::string& content);
std::string readFile(const std::string& path);
/// Runs fn with this process's stderr going to a file; returns what was written there.
std::string captureStderr(const std::function<void()>& fn);

/// Marks the running test case as skipped because `why` (no GPU, say): prints it, and the
/// run counts it. The case must return right after. A ctest suite in which every case that
/// ran was skipped exits with kSkipExitCode, which ctest reports as "Skipped", never as
/// "Passed" (tests/main.cpp, CMakeLists.txt).
void skip(const std::string& why);
constexpr int kSkipExitCode = 77;
/// How many test cases of this run called skip().
int skippedCases();
/// Called by the run's listener (tests/main.cpp) as each test case starts.
void enteringTestCase(const std::string& name);

/// Every *.attn file directly under `dir`, sorted.
std::vector<std::string> attnFilesIn(const std::string& dir);

}  // namespace attn::test
