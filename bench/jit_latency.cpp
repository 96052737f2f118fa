// jit_latency: how long the CPU backend takes to make its kernels, per program:
//   cold   generate the LLVM IR, optimise at O3 for this CPU, emit machine code, load it
//          (an empty disk cache)
//   disk   a new process's path: generate the IR, find the object in the disk cache, load it
// Each median of --repeats; "per kernel" divides by the module's kernels (forward, the
// backward row passes, the gradient pass). Runs with a private cache directory.
//
//   build/bin/jit_latency [--repeats 5] stdlib/*.attn
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "codegen/llvm/CpuBackend.h"
#include "compiler/Diagnostics.h"
#include "compiler/Pipeline.h"

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  int repeats = 5;
  std::vector<std::string> files;
  for (int a = 1; a < argc; ++a) {
    std::string arg = argv[a];
    if (arg == "--repeats" && a + 1 < argc) repeats = std::atoi(argv[++a]);
    else files.push_back(arg);
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: jit_latency [--repeats N] PROGRAM.attn...\n");
    return 2;
  }
  std::string dir = "/tmp/attn-jit-latency-" + std::to_string(::getpid());
  ::setenv("ATTN_CACHE_DIR", dir.c_str(), 1);
  std::printf("CPU backend kernel latency (float32 kernels), median of %d; cache in %s\n", repeats, dir.c_str());
  std::printf("%-30s %8s %10s %10s %14s %14s\n", "program", "kernels", "cold ms", "disk ms", "cold/kernel", "disk/kernel");
  std::vector<double> allCold, allDisk;
  for (const std::string& file : files) {
    attn::DiagnosticEngine diags;
    auto plan = attn::compileToPlan(file, {}, diags);
    if (!plan) {
      diags.render(std::cerr);
      return 1;
    }
    std::vector<double> cold, disk;
    size_t kernels = 0;
    for (int r = 0; r < repeats; ++r) {
      std::remove(attn::cpu::cacheEntryPath(*plan, false).c_str());
      attn::cpu::clearMemoryCache();
      auto t0 = std::chrono::steady_clock::now();
      auto k = attn::cpu::compile(*plan, false);
      auto t1 = std::chrono::steady_clock::now();
      cold.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      kernels = 2 + k->rowPasses.size();
      attn::cpu::clearMemoryCache();
      t0 = std::chrono::steady_clock::now();
      k = attn::cpu::compile(*plan, false);
      t1 = std::chrono::steady_clock::now();
      if (k->origin != "disk") std::fprintf(stderr, "jit_latency: expected a disk-cache hit\n");
      disk.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    double c = median(cold), d = median(disk);
    allCold.push_back(c / static_cast<double>(kernels));
    allDisk.push_back(d / static_cast<double>(kernels));
    std::string name = file.substr(file.rfind('/') + 1);
    std::printf("%-30s %8zu %10.1f %10.2f %14.1f %14.2f\n", name.c_str(), kernels, c, d, c / static_cast<double>(kernels),
                d / static_cast<double>(kernels));
  }
  std::printf("%-30s %8s %10s %10s %14.1f %14.2f\n", "max per kernel", "", "", "",
              *std::max_element(allCold.begin(), allCold.end()), *std::max_element(allDisk.begin(), allDisk.end()));
  return 0;
}
