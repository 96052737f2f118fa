#include "TestUtil.h"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <set>
#include <thread>

extern char** environ;

namespace attn::test {

namespace {
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/attn-test-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};
}  // namespace

namespace {
std::set<std::string>& skipped() {
  static std::set<std::string> names;
  return names;
}
std::string& currentCase() {
  static std::string name;
  return name;
}
}  // namespace

void enteringTestCase(const std::string& name) { currentCase() = name; }

void skip(const std::string& why) {
  skipped().insert(currentCase());
  std::printf("SKIPPED: %s: %s\n", currentCase().c_str(), why.c_str());
  std::fflush(stdout);
}

int skippedCases() { return static_cast<int>(skipped().size()); }

const std::string& tempDir() {
  static TempDir dir;
  return dir.path;
}

std::string writeTempFile(const std::string& name, const std::string& content) {
  std::string path = tempDir() + "/" + name;
  std::ofstream out(path, std::ios::binary);
  out << content;
  return path;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> attnFilesIn(const std::string& dir) {
  std::vector<std::string> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.size() > 5 && name.compare(name.size() - 5, 5, ".attn") == 0) files.push_back(dir + "/" + name);
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  return files;
}

CommandResult runAttn(const std::vector<std::string>& args, double timeoutSeconds) {
  return runProgramWith(ATTN_BINARY, args, CommandOptions{}, timeoutSeconds);
}

CommandResult runProgram(const std::string& program, const std::vector<std::string>& args, double timeoutSeconds) {
  return runProgramWith(program, args, CommandOptions{}, timeoutSeconds);
}

CommandResult runAttnWith(const std::vector<std::string>& args, const CommandOptions& options, double timeoutSeconds) {
  return runProgramWith(ATTN_BINARY, args, options, timeoutSeconds);
}

CommandResult runProgramWith(const std::string& program, const std::vector<std::string>& args,
                             const CommandOptions& options, double timeoutSeconds) {
  static std::atomic<int> counter{0};
  std::string base = tempDir() + "/cmd" + std::to_string(counter++);
  std::string outPath = options.stdoutPath.empty() ? base + ".out" : options.stdoutPath, errPath = base + ".err";

  std::vector<std::string> envStrings;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const std::string& extra : options.env) replaced = replaced || extra.substr(0, extra.find('=')) == name;
    if (!replaced) envStrings.push_back(entry);
  }
  envStrings.insert(envStrings.end(), options.env.begin(), options.env.end());
  std::vector<char*> envp;
  for (auto& e : envStrings) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argvStrings = {program};
  argvStrings.insert(argvStrings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argvStrings) argv.push_back(s.data());
  argv.push_back(nullptr);

  CommandResult result;
  pid_t pid;
  if (posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), envp.data()) != 0) {
    posix_spawn_file_actions_destroy(&actions);
    throw std::runtime_error("cannot start " + program);
  }
  posix_spawn_file_actions_destroy(&actions);

  const auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::duration<double>(timeoutSeconds);
  const auto killDelay = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(options.killAfterSeconds));
  bool killArmed = options.killAfterSeconds >= 0 && options.killOnceExists.empty();
  auto killAt = start + killDelay;
  int wstatus = 0;
  while (true) {
    pid_t r = waitpid(pid, &wstatus, WNOHANG);
    if (r == pid) break;
    if (!killArmed && options.killAfterSeconds >= 0 && ::access(options.killOnceExists.c_str(), F_OK) == 0) {
      killArmed = true;
      killAt = std::chrono::steady_clock::now() + killDelay;
    }
    if (killArmed && std::chrono::steady_clock::now() >= killAt) {
      kill(pid, SIGKILL);
      waitpid(pid, &wstatus, 0);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &wstatus, 0);
      result.timedOut = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options.killAfterSeconds >= 0 ? 1 : 5));
  }
  if (!result.timedOut && WIFEXITED(wstatus)) result.status = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) result.signal = WTERMSIG(wstatus);
  result.out = options.stdoutPath.empty() ? readFile(outPath) : std::string();
  result.err = readFile(errPath);
  return result;
}

std::string captureStderr(const std::function<void()>& fn) {
  static int counter = 0;
  const std::string path = tempDir() + "/stderr" + std::to_string(counter++) + ".txt";
  std::fflush(stderr);
  const int saved = ::dup(2);
  FILE* f = std::fopen(path.c_str(), "w");
  ::dup2(::fileno(f), 2);
  fn();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::fclose(f);
  return readFile(path);
}

}  // namespace attn::test
