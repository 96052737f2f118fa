// runSubprocess (Subprocess.h): posix_spawnp with three pipes, and a poll loop that feeds
// standard input while it drains standard output and error (a child that writes a lot before
// reading all its input would otherwise deadlock with us).
#include "support/Subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

extern char** environ;

namespace attn::support {

namespace {

struct Pipe {
  int read = -1, write = -1;
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read = fds[0];
    write = fds[1];
    return true;
  }
};

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

/// Blocks SIGPIPE for this thread while it lives, so that writing to a child that has exited
/// is EPIPE, not the death of attn; a SIGPIPE raised meanwhile is consumed before unblocking.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~SigpipeBlock() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    const timespec zero{0, 0};
    while (sigtimedwait(&set, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
};

}  // namespace

SubprocessResult runSubprocess(const std::vector<std::string>& argv, const std::string& input,
                               const SubprocessOptions& options) {
  SubprocessResult result;
  if (argv.empty()) {
    result.startError = "no program given";
    return result;
  }
  SigpipeBlock sigpipe;
  Pipe in, out, err;
  if (!in.open() || !out.open() || !err.open()) {
    result.startError = std::string("cannot make a pipe: ") + std::strerror(errno);
    closeFd(in.read), closeFd(in.write), closeFd(out.read), closeFd(out.write), closeFd(err.read),
        closeFd(err.write);
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read, 0);
  posix_spawn_file_actions_adddup2(&actions, out.write, 1);
  posix_spawn_file_actions_adddup2(&actions, err.write, 2);
  // The child starts with SIGPIPE at its default, whatever this thread blocks or ignores.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = ::posix_spawnp(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  closeFd(in.read);
  closeFd(out.write);
  closeFd(err.write);
  if (spawned != 0) {
    result.startError = std::strerror(spawned);
    closeFd(in.write), closeFd(out.read), closeFd(err.read);
    return result;
  }
  result.started = true;
  ::fcntl(in.write, F_SETFL, O_NONBLOCK);

  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(options.timeoutSeconds);
  size_t written = 0;
  if (input.empty()) closeFd(in.write);
  bool killed = false;
  char buffer[1 << 16];
  while (out.read >= 0 || err.read >= 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      result.timedOut = true;
      break;
    }
    const int waitMs = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1);
    pollfd fds[3];
    int n = 0;
    int inSlot = -1, outSlot = -1, errSlot = -1;
    if (in.write >= 0) fds[inSlot = n++] = {in.write, POLLOUT, 0};
    if (out.read >= 0) fds[outSlot = n++] = {out.read, POLLIN, 0};
    if (err.read >= 0) fds[errSlot = n++] = {err.read, POLLIN, 0};
    const int ready = ::poll(fds, static_cast<nfds_t>(n), waitMs);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (inSlot >= 0 && fds[inSlot].revents) {
      const ssize_t put = ::write(in.write, input.data() + written, input.size() - written);
      if (put > 0) written += static_cast<size_t>(put);
      if ((put < 0 && errno != EAGAIN && errno != EINTR) || written == input.size())
        closeFd(in.write);
    }
    auto drain = [&](int slot, int& fd, std::string& into, uint64_t cap, bool isOut) {
      if (slot < 0 || !fds[slot].revents) return;
      const ssize_t got = ::read(fd, buffer, sizeof buffer);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) return;
      if (got <= 0) {
        closeFd(fd);
        return;
      }
      const uint64_t room = cap > into.size() ? cap - into.size() : 0;
      into.append(buffer,
                  static_cast<size_t>(std::min<uint64_t>(room, static_cast<uint64_t>(got))));
      if (isOut && static_cast<uint64_t>(got) > room) result.outputTooLarge = true;
    };
    drain(outSlot, out.read, result.out, options.outCap, true);
    drain(errSlot, err.read, result.err, options.errCap, false);
    if (result.outputTooLarge) break;
  }
  closeFd(in.write), closeFd(out.read), closeFd(err.read);
  if (result.timedOut || result.outputTooLarge) {
    ::kill(pid, SIGKILL);
    killed = true;
  }
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, killed ? 0 : WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) break;
    if (!killed && std::chrono::steady_clock::now() >= deadline) {
      result.timedOut = true;
      ::kill(pid, SIGKILL);
      killed = true;
      continue;
    }
    if (!killed) ::usleep(2000);
  }
  if (WIFEXITED(status) && !killed) result.exitStatus = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

}  // namespace attn::support
