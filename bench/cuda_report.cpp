// cuda_report: what NVRTC and ptxas make of the CUDA backend's kernels, without a GPU.
// For every program, architecture and dtype: the cold compile time of the module (NVRTC +
// ptxas) and, per kernel, registers per thread, spill bytes, stack frame and static shared
// memory (the tensor-core forward's dynamic shared memory is printed as "dyn"). Exits 1 if
// any kernel spills registers (the "no spills"), so a script can gate on it.
//
//   build/bin/cuda_report [--arch 80,90] [--dtype f32,bf16] [--head-dim 64] stdlib/*.attn
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/Nvrtc.h"
#include "compiler/Diagnostics.h"
#include "compiler/Pipeline.h"

namespace {
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<int> archs = {80, 90};
  std::vector<std::string> dtypes = {"f32", "bf16"};
  int headDim = 64;
  std::vector<std::string> files;
  for (int a = 1; a < argc; ++a) {
    std::string arg = argv[a];
    if (arg == "--arch" && a + 1 < argc) {
      archs.clear();
      for (const std::string& x : split(argv[++a])) archs.push_back(std::atoi(x.c_str()));
    } else if (arg == "--dtype" && a + 1 < argc) dtypes = split(argv[++a]);
    else if (arg == "--head-dim" && a + 1 < argc) headDim = std::atoi(argv[++a]);
    else files.push_back(arg);
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: cuda_report [--arch 80,90] [--dtype f32,bf16] [--head-dim D] PROGRAM.attn...\n");
    return 2;
  }
  std::printf("CUDA kernels: NVRTC %s, head dim %d; cold compile of each module (all its kernels)\n",
              attn::cuda::nvrtcVersion().c_str(), headDim);
  std::printf("%-22s %-5s %-5s %-30s %5s %6s %6s %6s %8s\n", "program", "arch", "dtype", "kernel", "regs", "spill",
              "stack", "smem", "ms");
  int spilling = 0;
  double worst = 0;
  for (const std::string& file : files) {
    attn::DiagnosticEngine diags;
    auto plan = attn::compileToPlan(file, {}, diags);
    if (!plan) {
      diags.render(std::cerr);
      return 1;
    }
    const attn::BackwardPlan backward = attn::differentiate(*plan);
    std::string name = file.substr(file.rfind('/') + 1);
    for (const std::string& dtype : dtypes)
      for (int arch : archs) {
        attn::cuda::CudaOptions options;
        options.dtype = attn::cuda::parseDtype(dtype);
        options.headDim = options.valueDim = headDim;
        auto src = attn::cuda::generateCudaKernels(*plan, backward, options);
        auto k = attn::cuda::compile(src.source, plan->graph.name + ".cu", arch);
        worst = std::max(worst, k.milliseconds);
        bool first = true;
        for (const auto& r : k.kernels) {
          std::string smem = std::to_string(r.sharedBytes);
          if (src.tensorCoreForward && r.name.find("_tc") != std::string::npos)
            smem += "+" + std::to_string(src.sharedBytes) + "dyn";
          std::printf("%-22s %-5s %-5s %-30s %5d %6d %6d %6s %8s\n", first ? name.c_str() : "",
                      ("sm" + std::to_string(arch)).c_str(), dtype.c_str(), r.name.c_str(), r.registers, r.spillBytes,
                      r.stackBytes, smem.c_str(), first ? std::to_string(static_cast<int>(k.milliseconds)).c_str() : "");
          if (r.spillBytes > 0) ++spilling;
          first = false;
        }
      }
  }
  std::printf("slowest cold compile: %.0f ms per module; kernels that spill: %d\n", worst, spilling);
  return spilling > 0 ? 1 : 0;
}
