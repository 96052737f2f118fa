// cuda_report: what NVRTC and ptxas make of the CUDA backend's kernels, without a GPU.
// For every program, architecture and dtype: the module's cold compile (code generation +
// NVRTC + ptxas, an empty kernel cache), a disk-cache hit (what a new process pays), and per
// kernel registers per thread, spill bytes, stack frame and static shared memory (the
// tensor-core kernels' dynamic shared memory is printed as "+N dyn"). Runs with a private
// cache directory. Exits 1 if any kernel spills registers, so a script can gate on it.
//
//   build/bin/cuda_report [--arch 80,90] [--dtype f32,bf16] [--head-dim 64] [--part all|forward|backward] stdlib/*.attn
//
// --part: the tensor-core module of all kernels (default; what `attn emit` shows), or of the
// forward or backward kernels only (what the op compiles on a first call / first backward).
//
// Then, for the tensor-core kernels, their tile loops read from the PTX (codegen/cuda/
// PtxLoops.h): PTX instructions one tile iteration executes per score element a thread
// handles (blockM x blockN / threads), and per element the special-function work (ex2, lg2,
// rcp, div, sqrt), the global atomics and the mma.sync — issue 16's measure.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "codegen/cuda/CudaBackend.h"
#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/Nvrtc.h"
#include "codegen/cuda/PtxLoops.h"
#include "compiler/Diagnostics.h"
#include "compiler/Pipeline.h"

namespace {
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}
// The mma.sync one warp issues per tile iteration of a tensor-core kernel: the tile's matrix
// products (m16n8k16: 2,048 multiply-adds each) shared by the warps. Forward: S = QK^T and
// O += PV; a backward row pass: S and dP = dO V^T; the gradient kernel: S, dP, dV += P^T dO,
// dK += dS^T Q, dQ += dS K. 0 where the role is not a tile kernel.
int mmaPerTile(const std::string& role, const attn::cuda::TileConfig& t, int d, int dv) {
  const long long tile = static_cast<long long>(t.blockM) * t.blockN;
  long long macs = 0;
  if (role == "forward") macs = tile * (d + dv);
  else if (role.rfind("rows_", 0) == 0) macs = tile * (d + dv);
  else if (role == "grad") macs = tile * (3LL * d + 2LL * dv);
  return static_cast<int>(macs / 2048 / t.warps);
}

std::vector<std::string> tileLoopRows(const std::string& program, int arch, const std::string& dtype,
                                      const attn::cuda::CudaModule& module, int headDim) {
  std::vector<std::string> rows;
  const auto& tile = module.source.options.tile;
  const int threads = tile.warps * 32;
  const double elements = static_cast<double>(tile.blockM) * tile.blockN / threads;
  bool first = true;
  // The backend keeps no PTX (it loads the CUBIN): compile the module's source once more for it.
  const std::string ptx = attn::cuda::compile(module.source.source, program, arch).ptx;
  for (const attn::cuda::PtxKernel& k : attn::cuda::readPtxKernels(ptx)) {
    std::string role;
    for (const auto& e : module.source.entries)
      if (e.name == k.name) role = e.role;
    for (const attn::cuda::PtxTileLoop& loop : k.tileLoops) {
      attn::cuda::PtxCounts c;
      int trips = 0;
      const bool known = attn::cuda::tileIteration(loop, mmaPerTile(role, tile, headDim, headDim), c, trips);
      auto per = [&](int n) {
        char b[16];
        if (known) std::snprintf(b, sizeof b, "%.2f", n / elements);
        else std::snprintf(b, sizeof b, "?");
        return std::string(b);
      };
      char line[320];
      std::snprintf(line, sizeof line, "%-22s %-5s %-5s %-24s %-11s %5s %8s %6s %6s %6s %6s %6s %6s %6s",
                    first ? program.c_str() : "", ("sm" + std::to_string(arch)).c_str(), dtype.c_str(), k.name.c_str(),
                    (std::to_string(loop.firstLine) + "-" + std::to_string(loop.lastLine)).c_str(),
                    known ? std::to_string(trips).c_str() : "?", per(c.instructions).c_str(), per(c.mma).c_str(),
                    per(c.ex2).c_str(), per(c.lg2).c_str(), per(c.rcp).c_str(), per(c.div).c_str(), per(c.sqrt).c_str(),
                    per(c.atom).c_str());
      rows.push_back(line);
      first = false;
    }
  }
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> archs = {80, 90};
  std::vector<std::string> dtypes = {"f32", "bf16"};
  int headDim = 64;
  attn::cuda::ModulePart part = attn::cuda::ModulePart::All;
  std::string partName = "all";
  std::vector<std::string> files;
  for (int a = 1; a < argc; ++a) {
    std::string arg = argv[a];
    if (arg == "--arch" && a + 1 < argc) {
      archs.clear();
      for (const std::string& x : split(argv[++a])) archs.push_back(std::atoi(x.c_str()));
    } else if (arg == "--dtype" && a + 1 < argc) dtypes = split(argv[++a]);
    else if (arg == "--head-dim" && a + 1 < argc) headDim = std::atoi(argv[++a]);
    else if (arg == "--part" && a + 1 < argc) {
      partName = argv[++a];
      if (partName == "all") part = attn::cuda::ModulePart::All;
      else if (partName == "forward") part = attn::cuda::ModulePart::Forward;
      else if (partName == "backward") part = attn::cuda::ModulePart::Backward;
      else {
        std::fprintf(stderr, "cuda_report: --part %s: expected all, forward or backward\n", partName.c_str());
        return 2;
      }
    } else files.push_back(arg);
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: cuda_report [--arch 80,90] [--dtype f32,bf16] [--head-dim D] [--part all|forward|backward] PROGRAM.attn...\n");
    return 2;
  }
  const std::string dir = "/tmp/attn-cuda-report-" + std::to_string(::getpid());
  ::setenv("ATTN_CACHE_DIR", dir.c_str(), 1);
  std::printf("CUDA kernels: NVRTC %s, head dim %d, module part %s; cold = generate + NVRTC + ptxas of the module, "
              "hit = from the disk cache (%s)\n",
              attn::cuda::nvrtcVersion().c_str(), headDim, partName.c_str(), dir.c_str());
  std::printf("%-22s %-5s %-5s %-26s %5s %6s %6s %12s %9s %8s %8s\n", "program", "arch", "dtype", "kernel", "regs",
              "spill", "stack", "smem", "ptxas ms", "cold ms", "hit ms");
  int spilling = 0;
  double worst = 0, worstHit = 0, worstPtxas = 0;
  std::vector<std::string> loopRows;
  for (const std::string& file : files) {
    attn::DiagnosticEngine diags;
    auto plan = attn::compileToPlan(file, {}, diags);
    if (!plan) {
      diags.render(std::cerr);
      return 1;
    }
    std::string name = file.substr(file.rfind('/') + 1);
    for (const std::string& dtype : dtypes)
      for (int arch : archs) {
        attn::cuda::CudaOptions options;
        options.dtype = attn::cuda::parseDtype(dtype);
        options.headDim = options.valueDim = headDim;
        options.part = part;
        attn::cuda::clearModuleCache();
        auto cold = attn::cuda::compileModule(*plan, options, arch);
        attn::cuda::clearModuleCache();
        auto hit = attn::cuda::compileModule(*plan, options, arch);
        if (hit->origin != "disk") std::fprintf(stderr, "cuda_report: expected a disk-cache hit\n");
        worst = std::max(worst, cold->milliseconds);
        worstHit = std::max(worstHit, hit->milliseconds);
        bool first = true;
        for (const auto& r : attn::cuda::kernelResources(cold->binary.log)) {
          std::string smem = std::to_string(r.sharedBytes);
          for (const auto& e : cold->source.entries)
            if (e.name == r.name && e.sharedBytes > 0) smem += "+" + std::to_string(e.sharedBytes) + "dyn";
          char coldText[32] = "", hitText[32] = "";
          if (first) {
            std::snprintf(coldText, sizeof coldText, "%.0f", cold->milliseconds);
            std::snprintf(hitText, sizeof hitText, "%.2f", hit->milliseconds);
          }
          std::printf("%-22s %-5s %-5s %-26s %5d %6d %6d %12s %9.0f %8s %8s\n", first ? name.c_str() : "",
                      ("sm" + std::to_string(arch)).c_str(), dtype.c_str(), r.name.c_str(), r.registers, r.spillBytes,
                      r.stackBytes, smem.c_str(), r.ptxasMilliseconds, coldText, hitText);
          worstPtxas = std::max(worstPtxas, r.ptxasMilliseconds);
          if (r.spillBytes > 0) ++spilling;
          first = false;
        }
        if (cold->source.tensorCoreForward || cold->source.tensorCoreBackward)
          for (const std::string& row : tileLoopRows(name, arch, dtype, *cold, headDim)) loopRows.push_back(row);
      }
  }
  if (!loopRows.empty()) {
    std::printf("\ntile loops of the tensor-core kernels, per score element a thread handles per iteration "
                "(PTX statements; inner loops counted t times, t from the tile's mma.sync work)\n");
    std::printf("%-22s %-5s %-5s %-24s %-11s %5s %8s %6s %6s %6s %6s %6s %6s %6s\n", "program", "arch", "dtype", "kernel",
                "lines", "trips", "instr/el", "mma", "ex2", "lg2", "rcp", "div", "sqrt", "atom");
    for (const std::string& row : loopRows) std::printf("%s\n", row.c_str());
  }
  std::printf("slowest cold compile: %.0f ms per module (slowest kernel in ptxas: %.0f ms); slowest cache hit: %.2f ms; "
              "kernels that spill: %d\n",
              worst, worstPtxas, worstHit, spilling);
  return spilling > 0 ? 1 : 0;
}
