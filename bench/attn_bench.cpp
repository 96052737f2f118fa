// attn_bench: times .attn programs on a backend and reports a table of medians and peak
// memory. Each (program, L) configuration runs in a fresh child process (this binary
// re-executed with --child), so that one configuration's peak memory cannot hide
// another's and allocator caches do not carry over.
//
//   build/bin/attn_bench --backend reference,cpu --lengths 512,1024,2048,4096 --d 64 \
//       --batch 1 --heads 4 --repeats 5 stdlib/softmax.attn stdlib/lssa.attn stdlib/lssar.attn
//
// With several backends (comma-separated), each configuration runs on each, side by side,
// and a line gives the first backend's times divided by each other's (the speed-up).
//
// Columns: forward and forward+backward time (median of --repeats runs after one warm-up),
// the process's peak resident memory, and its peak above the resident memory just before
// the first call (the inputs already allocated): what the attention itself needed.
// This is a benchmark, not a test: it asserts nothing, it measures.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/Attention.h"

extern char** environ;

namespace {

struct Config {
  std::vector<std::string> programs;
  std::vector<int64_t> lengths = {512, 1024, 2048, 4096};
  int64_t d = 64, batch = 1, heads = 4;
  int repeats = 5;
  std::string backend = "reference";
  std::vector<std::string> sets;
  bool forwardOnly = false;
  std::vector<std::string> backends() const {
    std::vector<std::string> out;
    std::stringstream ss(backend);
    std::string item;
    while (std::getline(ss, item, ',')) out.push_back(item);
    return out;
  }
};

double medianOf(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double residentMiB() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// One configuration, in this (child) process. Prints one line: fwd_ms fwdbwd_ms base_mib.
int runChild(const Config& c, const std::string& program, int64_t L) {
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  attn::CompileOptions options;
  attn::DiagnosticEngine diags;
  for (const auto& s : c.sets)
    if (auto o = attn::parseOverride(s, diags)) options.overrides.push_back(*o);
  attn::Program p = attn::Program::fromFile(program, options);
  attn::Backend backend = attn::parseBackend(c.backend);
  at::manual_seed(0);
  at::Tensor q = at::randn({c.batch, c.heads, L, c.d}), k = at::randn({c.batch, c.heads, L, c.d}),
             v = at::randn({c.batch, c.heads, L, c.d}), dout = at::randn({c.batch, c.heads, L, c.d});
  double base = residentMiB();
  auto now = [] { return std::chrono::steady_clock::now(); };
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };

  std::vector<double> fwd, both;
  for (int r = 0; r <= c.repeats; ++r) {  // r = 0 is the warm-up
    c10::NoGradGuard noGrad;
    auto t0 = now();
    at::Tensor o = p(q, k, v, backend);
    auto t1 = now();
    if (r > 0) fwd.push_back(ms(t0, t1));
  }
  if (!c.forwardOnly) {
    q.requires_grad_(true);
    k.requires_grad_(true);
    v.requires_grad_(true);
    for (int r = 0; r <= c.repeats; ++r) {
      auto t0 = now();
      at::Tensor o = p(q, k, v, backend);
      o.backward(dout);
      auto t1 = now();
      q.mutable_grad().reset();
      k.mutable_grad().reset();
      v.mutable_grad().reset();
      if (r > 0) both.push_back(ms(t0, t1));
    }
  }
  std::printf("%.3f %.3f %.1f\n", medianOf(fwd), medianOf(both), base);
  return 0;
}

std::vector<int64_t> parseList(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  bool child = false;
  for (int a = 1; a < argc; ++a) {
    std::string arg = argv[a];
    auto next = [&]() -> std::string {
      if (a + 1 >= argc) {
        std::cerr << "attn_bench: " << arg << " needs a value\n";
        std::exit(2);
      }
      return argv[++a];
    };
    if (arg == "--child") child = true;
    else if (arg == "--lengths") c.lengths = parseList(next());
    else if (arg == "--d") c.d = std::stoll(next());
    else if (arg == "--batch") c.batch = std::stoll(next());
    else if (arg == "--heads") c.heads = std::stoll(next());
    else if (arg == "--repeats") c.repeats = std::stoi(next());
    else if (arg == "--backend") c.backend = next();
    else if (arg == "--set") c.sets.push_back(next());
    else if (arg == "--forward-only") c.forwardOnly = true;
    else if (arg.rfind("--", 0) == 0) {
      std::cerr << "attn_bench: unknown option " << arg << '\n';
      return 2;
    } else c.programs.push_back(arg);
  }
  if (c.programs.empty()) {
    std::cerr << "usage: attn_bench [--backend B] [--lengths 512,1024] [--d 64] [--batch 1] [--heads 4]\n"
                 "                  [--repeats 5] [--set K=V]... [--forward-only] PROGRAM.attn...\n";
    return 2;
  }
  try {
    if (child) return runChild(c, c.programs.at(0), c.lengths.at(0));
  } catch (const std::exception& e) {
    std::cerr << "attn_bench: " << e.what() << '\n';
    return 1;
  }

  std::printf("backends %s, B=%lld H=%lld d=%lld, float32, %u threads, median of %d runs\n", c.backend.c_str(),
              static_cast<long long>(c.batch), static_cast<long long>(c.heads), static_cast<long long>(c.d),
              std::max(1u, std::thread::hardware_concurrency()), c.repeats);
  std::printf("%-24s %7s %-10s %12s %14s %10s %12s\n", "program", "L", "backend", "fwd ms", "fwd+bwd ms", "peak MiB",
              "extra MiB");
  int status = 0;
  for (const auto& program : c.programs) {
    for (int64_t L : c.lengths) {
      std::vector<std::pair<double, double>> times;
      for (const std::string& backend : c.backends()) {
      std::vector<std::string> args = {"/proc/self/exe", "--child", "--lengths", std::to_string(L),
                                       "--d", std::to_string(c.d), "--batch", std::to_string(c.batch),
                                       "--heads", std::to_string(c.heads), "--repeats", std::to_string(c.repeats),
                                       "--backend", backend};
      for (const auto& s : c.sets) args.insert(args.end(), {"--set", s});
      if (c.forwardOnly) args.push_back("--forward-only");
      args.push_back(program);
      std::vector<char*> argvChild;
      for (auto& s : args) argvChild.push_back(s.data());
      argvChild.push_back(nullptr);

      int fds[2];
      if (pipe(fds) != 0) return 1;
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
      posix_spawn_file_actions_addclose(&actions, fds[0]);
      pid_t pid;
      if (posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argvChild.data(), environ) != 0) {
        std::cerr << "attn_bench: cannot start a child\n";
        return 1;
      }
      posix_spawn_file_actions_destroy(&actions);
      close(fds[1]);
      std::string output;
      char buffer[256];
      ssize_t got;
      while ((got = read(fds[0], buffer, sizeof buffer)) > 0) output.append(buffer, static_cast<size_t>(got));
      close(fds[0]);
      int wstatus = 0;
      struct rusage usage {};
      wait4(pid, &wstatus, 0, &usage);
      std::string name = program.substr(program.rfind('/') + 1);
      double fwd = 0, both = 0, base = 0;
      if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0 ||
          std::sscanf(output.c_str(), "%lf %lf %lf", &fwd, &both, &base) != 3) {
        std::printf("%-24s %7lld %-10s  failed (see stderr)\n", name.c_str(), static_cast<long long>(L),
                    backend.c_str());
        status = 1;
        times.push_back({0, 0});
        continue;
      }
      times.push_back({fwd, both});
      double peak = static_cast<double>(usage.ru_maxrss) / 1024.0;
      char bothText[32] = "-";
      if (!c.forwardOnly) std::snprintf(bothText, sizeof bothText, "%.2f", both);
      std::printf("%-24s %7lld %-10s %12.2f %14s %10.0f %12.0f\n", name.c_str(), static_cast<long long>(L),
                  backend.c_str(), fwd, bothText, peak, peak - base);
      std::fflush(stdout);
      }
      for (size_t b = 1; b < times.size(); ++b) {
        if (times[b].first <= 0 || times[0].first <= 0) continue;
        std::printf("%-24s %7s %-10s %11.1fx %13.1fx   (%s / %s)\n", "", "", "speed-up", times[0].first / times[b].first,
                    times[b].second > 0 ? times[0].second / times[b].second : 0.0, c.backends()[0].c_str(),
                    c.backends()[b].c_str());
      }
    }
  }
  return status;
}
