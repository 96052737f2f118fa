// NVRTC: compile CUDA C++ to PTX and CUBIN, and read ptxas's resource report. See Nvrtc.h.
#include "codegen/cuda/Nvrtc.h"

#include <nvrtc.h>

#include <chrono>
#include <memory>
#include <regex>
#include <vector>

#include "codegen/cuda/Skeleton.h"
#include "compiler/Diagnostics.h"

#ifndef ATTN_CUDA_INCLUDE_DIR
#error "ATTN_CUDA_INCLUDE_DIR must name the CUDA toolkit's include directory (CMakeLists.txt)"
#endif

namespace attn::cuda {
namespace {

std::string describe(nvrtcResult r) { return nvrtcGetErrorString(r); }

void check(nvrtcResult r, const char* what, const std::string& name) {
  if (r != NVRTC_SUCCESS)
    ATTN_INTERNAL_ERROR(std::string("NVRTC ") + what + " failed for '" + name + "': " + describe(r));
}

struct ProgramDeleter {
  void operator()(nvrtcProgram p) const { nvrtcDestroyProgram(&p); }
};
using Program = std::unique_ptr<_nvrtcProgram, ProgramDeleter>;

// ptxas -v writes, per kernel:
//   ptxas info    : Function properties for NAME
//       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
//   ptxas info    : Used 40 registers, used 1 barriers, 4096 bytes smem, 368 bytes cmem[0]
// We take the first match of each, i.e. the first kernel's figures.
void parseResources(CompiledKernel& k) {
  std::smatch m;
  static const std::regex used(R"(Used (\d+) registers([^\n]*))");
  if (std::regex_search(k.log, m, used)) {
    k.registers = std::stoi(m[1]);
    std::string rest = m[2];
    std::smatch s;
    static const std::regex smem(R"((\d+) bytes smem)");
    k.sharedBytes = std::regex_search(rest, s, smem) ? std::stoi(s[1]) : 0;
  }
  static const std::regex spill(R"((\d+) bytes spill stores, (\d+) bytes spill loads)");
  if (std::regex_search(k.log, m, spill)) k.spillBytes = std::stoi(m[1]) + std::stoi(m[2]);
  k.kernels = kernelResources(k.log);
}

}  // namespace

std::vector<KernelResources> kernelResources(const std::string& log) {
  std::vector<KernelResources> out;
  static const std::regex used(R"(Used (\d+) registers([^\n]*))");
  // Per kernel: "Function properties for NAME" then its frame line, then "Used N registers".
  static const std::regex props(R"(Function properties for (\S+)\s*\n[^\n]*?(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), props); it != std::sregex_iterator(); ++it) {
    KernelResources r;
    r.name = (*it)[1];
    r.stackBytes = std::stoi((*it)[2]);
    r.spillBytes = std::stoi((*it)[3]) + std::stoi((*it)[4]);
    std::string after = log.substr(static_cast<size_t>(it->position(0) + it->length(0)));
    std::smatch u;
    if (std::regex_search(after, u, used)) {
      r.registers = std::stoi(u[1]);
      std::string rest = u[2];
      std::smatch sm;
      static const std::regex smem(R"((\d+) bytes smem)");
      r.sharedBytes = std::regex_search(rest, sm, smem) ? std::stoi(sm[1]) : 0;
    }
    // ptxas's time for this kernel: the first "Compile time" after its report.
    static const std::regex time(R"(Compile time = ([0-9.]+) ms)");
    std::smatch tm;
    if (std::regex_search(after, tm, time)) r.ptxasMilliseconds = std::stod(tm[1]);
    out.push_back(r);
  }
  return out;
}

bool supportedArch(int arch) { return arch == 80 || arch == 86 || arch == 89 || arch == 90; }

int targetArch(int cc) { return cc >= 90 ? 90 : cc >= 89 ? 89 : cc >= 86 ? 86 : cc >= 80 ? 80 : 0; }

CompiledKernel compile(const std::string& source, const std::string& name, int arch) {
  if (!supportedArch(arch))
    ATTN_INTERNAL_ERROR("unsupported CUDA architecture sm_" + std::to_string(arch) + " for '" + name +
                        "': attn compiles for sm_80, sm_86, sm_89 and sm_90");
  auto start = std::chrono::steady_clock::now();

  nvrtcProgram raw = nullptr;
  std::vector<const char*> headerTexts, headerNames;
  for (const SkeletonFile& f : skeletonFiles()) {
    headerTexts.push_back(f.text);
    headerNames.push_back(f.name);
  }
  check(nvrtcCreateProgram(&raw, source.c_str(), name.c_str(), static_cast<int>(headerTexts.size()),
                           headerTexts.data(), headerNames.data()),
        "create program", name);
  Program program(raw);

  const std::string archOption = "--gpu-architecture=sm_" + std::to_string(arch);
  const std::string includeOption = std::string("--include-path=") + ATTN_CUDA_INCLUDE_DIR;
  const std::vector<const char*> options = {archOption.c_str(), "-std=c++17", "-default-device",
                                            includeOption.c_str(), "--ptxas-options=-v"};
  nvrtcResult compiled = nvrtcCompileProgram(raw, static_cast<int>(options.size()), options.data());

  CompiledKernel k;
  size_t logSize = 0;
  check(nvrtcGetProgramLogSize(raw, &logSize), "get log size", name);
  if (logSize > 1) {
    k.log.resize(logSize);
    check(nvrtcGetProgramLog(raw, k.log.data()), "get log", name);
    k.log.resize(logSize - 1);  // the terminating NUL
  }
  if (compiled != NVRTC_SUCCESS)
    ATTN_INTERNAL_ERROR("NVRTC could not compile the generated CUDA source '" + name + "' for sm_" +
                        std::to_string(arch) + " (" + describe(compiled) + "):\n" + k.log);

  size_t ptxSize = 0;
  check(nvrtcGetPTXSize(raw, &ptxSize), "get PTX size", name);
  k.ptx.resize(ptxSize);
  check(nvrtcGetPTX(raw, k.ptx.data()), "get PTX", name);
  while (!k.ptx.empty() && k.ptx.back() == '\0') k.ptx.pop_back();

  size_t cubinSize = 0;
  check(nvrtcGetCUBINSize(raw, &cubinSize), "get CUBIN size", name);
  k.cubin.resize(cubinSize);
  if (cubinSize > 0) check(nvrtcGetCUBIN(raw, k.cubin.data()), "get CUBIN", name);

  parseResources(k);
  k.milliseconds =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return k;
}

std::string nvrtcVersion() {
  int major = 0, minor = 0;
  if (::nvrtcVersion(&major, &minor) != NVRTC_SUCCESS) ATTN_INTERNAL_ERROR("nvrtcVersion failed");
  return std::to_string(major) + "." + std::to_string(minor);
}

}  // namespace attn::cuda
