// Host-compiled generated CUDA modules for the emulator. See EmuModule.h.
#include "emu/EmuModule.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>

#include "codegen/cuda/KernelCache.h"
#include "codegen/cuda/Skeleton.h"
#include "support/Subprocess.h"

namespace attn::emu {

const attn_emu::Api& emulatorApi();  // Emulator.cpp

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw EmuError("emu: cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw EmuError("emu: cannot write " + path);
}

std::string emuDir() { return std::string(ATTN_SOURCE_DIR) + "tests/emu/"; }

std::string cacheDir() {
  const char* env = std::getenv("ATTN_EMU_CACHE_DIR");
  return env && *env ? env : ATTN_EMU_CACHE_DEFAULT;
}

// What the compiler says of itself (part of the cache key: another compiler, another object).
const std::string& compilerIdentity() {
  static const std::string id = [] {
    const support::SubprocessResult r = support::runSubprocess({ATTN_HOST_CXX, "--version"}, "");
    return std::string(ATTN_HOST_CXX) + "\n" + r.out;
  }();
  return id;
}

// The skeleton headers: the ones built into attn (what NVRTC compiles), or, for checking that
// the suite catches a broken skeleton (docs/TESTING.md, "mutation check"), the same-named files
// in $ATTN_EMU_SKELETON_DIR where it has them.
std::vector<std::pair<std::string, std::string>> skeletonHeaders() {
  const char* dir = std::getenv("ATTN_EMU_SKELETON_DIR");
  std::vector<std::pair<std::string, std::string>> files;
  for (const cuda::SkeletonFile& f : cuda::skeletonFiles()) {
    const std::string override = dir && *dir ? std::string(dir) + "/" + f.name : "";
    files.emplace_back(f.name, !override.empty() && ::access(override.c_str(), R_OK) == 0 ? readFile(override) : f.text);
  }
  return files;
}

// Static __shared__ variables would be per-thread locals here (the headers define __shared__
// as nothing for a host compiler): refuse them rather than run something else.
void refuseStaticShared(const std::string& text, const std::string& name) {
  static const std::regex declaration(R"((^|[^\w])__shared__)");
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const auto comment = line.find("//");
    const std::string code = comment == std::string::npos ? line : line.substr(0, comment);
    if (!std::regex_search(code, declaration)) continue;
    if (std::regex_search(code, std::regex(R"(extern\s+__shared__)"))) continue;
    throw EmuError("emu: " + name + ":" + std::to_string(n) +
                   ": a static __shared__ variable, which the host emulation does not model (only extern "
                   "__shared__ arrays, the dynamic shared memory): " + line);
  }
}

std::mutex& mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, std::shared_ptr<const EmuModule>>& loaded() {
  static std::map<std::string, std::shared_ptr<const EmuModule>> modules;
  return modules;
}

attn_emu::KernelThunk findKernel(const void* module, const std::string& name) {
  for (const auto* e = static_cast<const attn_emu::Entry*>(module); e->name; ++e)
    if (name == e->name) return e->thunk;
  return nullptr;
}

}  // namespace

const std::string& emuCompileFlags() {
  static const std::string flags = "-std=c++17 -O1 -g0 -fPIC -shared -w";
  return flags;
}

std::shared_ptr<const EmuModule> EmuModule::build(const std::string& source, const std::vector<std::string>& kernels) {
  const auto start = std::chrono::steady_clock::now();
  std::string wrapper = "// attn host emulation: the generated module under tests/emu/cuda_emu.h\n"
                        "#include \"cuda_emu.h\"\n#include \"module.cu\"\n\n"
                        "extern \"C\" const attn_emu::Entry* attn_emu_entries() {\n"
                        "  static const attn_emu::Entry entries[] = {\n";
  for (const std::string& k : kernels) wrapper += "      ATTN_EMU_ENTRY(" + k + "),\n";
  wrapper += "      attn_emu::Entry{nullptr, nullptr}};\n  return entries;\n}\n";

  std::vector<std::pair<std::string, std::string>> files{{"module.cu", source}, {"emu_main.cpp", wrapper}};
  for (auto& f : skeletonHeaders()) files.push_back(std::move(f));
  for (const char* f : {"cuda_emu.h", "EmuApi.h"}) files.emplace_back(f, readFile(emuDir() + f));
  for (const auto& [name, text] : files) refuseStaticShared(text, name);
  std::string everything = compilerIdentity() + '\0' + emuCompileFlags() + '\0' + ATTN_CUDA_INCLUDE_DIR + '\0';
  for (const auto& [name, text] : files) everything += name + '\0' + text + '\0';
  const std::string hash = cuda::hashHex(everything);

  std::lock_guard<std::mutex> lock(mutex());
  if (auto it = loaded().find(hash); it != loaded().end()) {
    auto hit = std::make_shared<EmuModule>(*it->second);
    hit->origin_ = "memory";
    hit->seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return hit;
  }
  const std::string dir = cacheDir();
  ::mkdir(dir.c_str(), 0755);
  const std::string so = dir + "/" + hash + ".so";
  auto module = std::make_shared<EmuModule>();
  module->path_ = so;
  if (::access(so.c_str(), R_OK) == 0) {
    module->origin_ = "disk";
  } else {
    // Build in a directory of our own, then rename into place (atomic for concurrent tests).
    char tmpl[4096];
    std::snprintf(tmpl, sizeof tmpl, "%s/build-%s-XXXXXX", dir.c_str(), hash.c_str());
    if (!::mkdtemp(tmpl)) throw EmuError("emu: cannot create a build directory in " + dir);
    const std::string work = tmpl;
    for (const auto& [name, text] : files) writeFile(work + "/" + name, text);
    // No shell: the compiler gets an argument vector (the cache directory may hold any byte).
    std::vector<std::string> argv{ATTN_HOST_CXX};
    std::istringstream flags(emuCompileFlags());
    for (std::string f; flags >> f;) argv.push_back(f);
    for (const std::string& a : std::vector<std::string>{"-I", work, "-isystem", ATTN_CUDA_INCLUDE_DIR, "-o", work + "/module.so",
                          work + "/emu_main.cpp"})
      argv.push_back(a);
    support::SubprocessOptions options;
    options.timeoutSeconds = 600;
    const support::SubprocessResult r = support::runSubprocess(argv, "", options);
    if (!r.started || r.exitStatus != 0)
      throw EmuError("emu: the host compiler rejected the module (" + work + "):\n" +
                     (r.started ? r.out + r.err : r.startError) + (r.timedOut ? "\n(timed out)" : ""));
    if (std::rename((work + "/module.so").c_str(), so.c_str()) != 0) throw EmuError("emu: cannot move the object to " + so);
    std::error_code ignored;
    std::filesystem::remove_all(work, ignored);
    module->origin_ = "compiled";
  }
  module->handle_ = ::dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!module->handle_) throw EmuError(std::string("emu: dlopen: ") + ::dlerror());
  auto bind = reinterpret_cast<attn_emu::BindFn>(::dlsym(module->handle_, "attn_emu_bind"));
  auto entries = reinterpret_cast<attn_emu::EntriesFn>(::dlsym(module->handle_, "attn_emu_entries"));
  if (!bind || !entries) throw EmuError("emu: " + so + " is not an emulated module");
  module->builtins_ = bind(&emulatorApi());
  if (!module->builtins_.shared) throw EmuError("emu: " + so + " was built for another emulator interface version");
  module->entries_ = entries();
  module->seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  loaded()[hash] = module;
  return module;
}

ModuleView EmuModule::view() const {
  ModuleView v;
  v.builtins = builtins_;
  v.find = &findKernel;
  v.module = entries_;
  return v;
}

}  // namespace attn::emu
