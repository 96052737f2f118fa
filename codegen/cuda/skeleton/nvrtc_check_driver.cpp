// nvrtc_check_driver: compiles one CUDA source with NVRTC as attn does (codegen/cuda/Nvrtc.cpp's
// options), for check_skeleton.sh and check_backward.sh, which build it with g++. Named headers
// are the files given after the source (registered by their base names); the program is named
// after the source's base name. Prints one line per entry function:
//   KERNEL name regs=R spill_stores=S spill_loads=L stack=F smem=M
// then "ms=T"; the whole log goes to stderr on failure (or with ptxas warnings).
#include <nvrtc.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

static std::string slurp(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: driver ARCH SOURCE INCLUDE_DIR [HEADER...]\n");
    return 2;
  }
  const std::string arch = std::string("--gpu-architecture=sm_") + argv[1];
  const std::string include = std::string("--include-path=") + argv[3];
  std::string source = slurp(argv[2]);
  std::vector<std::string> headerText, headerName;
  for (int a = 4; a < argc; ++a) {
    headerText.push_back(slurp(argv[a]));
    std::string n = argv[a];
    headerName.push_back(n.substr(n.find_last_of('/') + 1));
  }
  std::vector<const char*> texts, names;
  for (size_t h = 0; h < headerText.size(); ++h) {
    texts.push_back(headerText[h].c_str());
    names.push_back(headerName[h].c_str());
  }
  auto start = std::chrono::steady_clock::now();
  nvrtcProgram prog;
  const std::string sourcePath = argv[2];
  const std::string programName = sourcePath.substr(sourcePath.find_last_of('/') + 1);
  if (nvrtcCreateProgram(&prog, source.c_str(), programName.c_str(), static_cast<int>(texts.size()), texts.data(),
                         names.data()) != NVRTC_SUCCESS)
    return 2;
  const char* options[] = {arch.c_str(), "-std=c++17", "-default-device", include.c_str(), "--ptxas-options=-v"};
  nvrtcResult r = nvrtcCompileProgram(prog, 5, options);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  size_t n = 0;
  nvrtcGetProgramLogSize(prog, &n);
  std::string log(n, '\0');
  nvrtcGetProgramLog(prog, &log[0]);
  if (r != NVRTC_SUCCESS) {
    std::fprintf(stderr, "%s\n%s\n", nvrtcGetErrorString(r), log.c_str());
    std::printf("COMPILE-ERROR\n");
    return 1;
  }
  // ptxas -v, per entry: "Compiling entry function 'X' for 'sm_NN'", "Function properties
  // for X", "N bytes stack frame, N bytes spill stores, N bytes spill loads", "Used N
  // registers, ... [N bytes smem, ...]".
  const std::regex entry(R"(Compiling entry function '([^']+)')");
  const std::regex frame(R"((\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads)");
  const std::regex used(R"(Used (\d+) registers([^\n]*))");
  const std::regex smemRe(R"((\d+) bytes smem)");
  std::vector<size_t> starts;
  std::vector<std::string> kernels;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), entry); it != std::sregex_iterator(); ++it) {
    starts.push_back(static_cast<size_t>(it->position(0)));
    kernels.push_back((*it)[1]);
  }
  int found = 0;
  for (size_t k = 0; k < kernels.size(); ++k) {
    const size_t end = k + 1 < starts.size() ? starts[k + 1] : log.size();
    const std::string part = log.substr(starts[k], end - starts[k]);
    std::smatch m;
    int regs = -1, stores = -1, loads = -1, stack = -1, smem = 0;
    if (std::regex_search(part, m, frame)) {
      stack = std::stoi(m[1]);
      stores = std::stoi(m[2]);
      loads = std::stoi(m[3]);
    }
    if (std::regex_search(part, m, used)) {
      regs = std::stoi(m[1]);
      std::string rest = m[2];
      std::smatch s;
      if (std::regex_search(rest, s, smemRe)) smem = std::stoi(s[1]);
    }
    std::printf("KERNEL %s regs=%d spill_stores=%d spill_loads=%d stack=%d smem=%d\n", kernels[k].c_str(), regs, stores,
                loads, stack, smem);
    ++found;
  }
  if (found == 0) std::printf("COMPILE-ERROR\n");
  if (log.find("warning") != std::string::npos) std::fprintf(stderr, "%s\n", log.c_str());
  std::printf("ms=%.0f\n", ms);
  nvrtcDestroyProgram(&prog);
  return 0;
}
