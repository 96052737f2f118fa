// The CUDA backend's disk cache of compiled kernels. See KernelCache.h for the guarantees.
// Entries are in attn's one cache format (support/CacheEntry.h), whose reads and writes do
// the checking; this file names the entries and lays out the payload. Nothing here throws
// out of load() or store().
#include "codegen/cuda/KernelCache.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "support/CacheEntry.h"
#include "support/CacheRoot.h"
#include "support/ContentHash.h"

namespace attn::cuda {

namespace {

// An entry is a few MB at most; anything far larger is not ours (and is not read into memory).
constexpr uint64_t kMaxEntryBytes = uint64_t(1) << 30;

bool isLowerHex(const std::string& s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// A field as a file-name part: [A-Za-z0-9_-] (and '.' when allowDot). A value that had to be
// changed, was empty or was cut to maxLength gets "_" + 8 hex digits of its hash appended, so
// that distinct values stay distinct (barring a 32-bit collision, which the echoed key catches).
std::string sanitise(const std::string& value, bool allowDot, size_t maxLength) {
  std::string out;
  bool changed = value.empty() || value.size() > maxLength;
  for (char c : value) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              (allowDot && c == '.');
    out += ok ? c : '_';
    changed = changed || !ok;
  }
  if (out.size() > maxLength) out.resize(maxLength);
  if (changed) out += "_" + hashHex(value).substr(0, 8);
  return out;
}

// Percent-encodes what would break the one-line "name=value name=value" key text.
std::string escape(const std::string& value) {
  std::string out;
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || c == '%' || c == '=') {
      char code[4];
      std::snprintf(code, sizeof code, "%%%02X", c);
      out += code;
    } else {
      out += ch;
    }
  }
  return out;
}

// ---- the payload -------------------------------------------------------------------------
//
// The entry is in attn's one cache format (support/CacheEntry.h, kind "cuda-kernel"); its
// payload is
//
//     sections cubin=<bytes> ptx=<bytes> log=<bytes>\n
//     resources registers=<n> spill=<n> shared=<n>\n
//     <cubin bytes><ptx bytes><log bytes>
//
// The checksum has already covered all of it when it is parsed, so a payload that does not
// parse is a bug or a forged file; it is still only a miss.

const support::CacheKind& cudaCacheKind() {
  static const support::CacheKind kind = [] {
    support::CacheKind k;
    k.name = "cuda-kernel";
    k.layout = KernelCache::kLayoutVersion;
    k.what = "the CUDA kernel cache entry";
    k.maxBytes = kMaxEntryBytes;
    k.olderFormats = {"ATTNCUDA "};  // formats 1 and 2, before support/CacheEntry
    return k;
  }();
  return kind;
}

// Parses "PREFIX name1=V1 name2=V2 ..." exactly (decimal integers, optional '-'), no more, no less.
bool parseFields(const std::string& line, const std::string& prefix, const std::vector<std::string>& names,
                 std::vector<long long>* values) {
  if (line.compare(0, prefix.size(), prefix) != 0) return false;
  size_t pos = prefix.size();
  values->clear();
  for (const std::string& name : names) {
    std::string expect = " " + name + "=";
    if (line.compare(pos, expect.size(), expect) != 0) return false;
    pos += expect.size();
    size_t start = pos;
    if (pos < line.size() && line[pos] == '-') ++pos;
    size_t digits = pos;
    while (pos < line.size() && line[pos] >= '0' && line[pos] <= '9') ++pos;
    if (pos == digits || pos - digits > 18) return false;  // no digits, or beyond what we write
    values->push_back(std::strtoll(line.c_str() + start, nullptr, 10));
  }
  return pos == line.size();
}

// The kernel in `payload`, or nullopt with `*problem` saying what is wrong.
std::optional<CachedKernel> parsePayload(const std::string& payload, std::string* problem) {
  size_t pos = 0;
  std::string line;
  auto nextLine = [&]() {
    size_t end = payload.find('\n', pos);
    if (end == std::string::npos) return false;
    line.assign(payload, pos, end - pos);
    pos = end + 1;
    return true;
  };
  std::vector<long long> sizes, resources;
  if (!nextLine() || !parseFields(line, "sections", {"cubin", "ptx", "log"}, &sizes) || sizes[0] < 0 ||
      sizes[1] < 0 || sizes[2] < 0) {
    *problem = "has a malformed payload (sections line)";
    return std::nullopt;
  }
  if (!nextLine() || !parseFields(line, "resources", {"registers", "spill", "shared"}, &resources)) {
    *problem = "has a malformed payload (resources line)";
    return std::nullopt;
  }
  for (long long r : resources)
    if (r < -1 || r > 0x7fffffff) {
      *problem = "has a malformed payload (resources out of range)";
      return std::nullopt;
    }
  // Each size has at most 18 digits, so the sum cannot overflow.
  const unsigned long long declared = static_cast<unsigned long long>(sizes[0]) +
                                      static_cast<unsigned long long>(sizes[1]) +
                                      static_cast<unsigned long long>(sizes[2]);
  if (declared != payload.size() - pos) {
    *problem = "has a malformed payload (its sections hold " + std::to_string(payload.size() - pos) +
               " bytes, not the " + std::to_string(declared) + " declared)";
    return std::nullopt;
  }
  CachedKernel k;
  k.cubin.assign(payload, pos, static_cast<size_t>(sizes[0]));
  pos += static_cast<size_t>(sizes[0]);
  k.ptx.assign(payload, pos, static_cast<size_t>(sizes[1]));
  pos += static_cast<size_t>(sizes[1]);
  k.log.assign(payload, pos, static_cast<size_t>(sizes[2]));
  k.registers = static_cast<int>(resources[0]);
  k.spillBytes = static_cast<int>(resources[1]);
  k.sharedBytes = static_cast<int>(resources[2]);
  return k;
}

std::string serialisePayload(const CachedKernel& k) {
  std::string out = "sections cubin=" + std::to_string(k.cubin.size()) + " ptx=" + std::to_string(k.ptx.size()) +
                    " log=" + std::to_string(k.log.size()) + "\n";
  out += "resources registers=" + std::to_string(k.registers) + " spill=" + std::to_string(k.spillBytes) +
         " shared=" + std::to_string(k.sharedBytes) + "\n";
  out.reserve(out.size() + k.cubin.size() + k.ptx.size() + k.log.size());
  out += k.cubin;
  out += k.ptx;
  out += k.log;
  return out;
}

}  // namespace

std::string hashHex(const std::string& text) { return support::hashHex(text); }

std::string KernelKey::fileName() const {
  std::string hash = !sourceHash.empty() && sourceHash.size() <= 16 && isLowerHex(sourceHash) ? sourceHash
                                                                                                 : hashHex(sourceHash);
  return sanitise(program, /*allowDot=*/false, 32) + "-" + sanitise(dtype, true, 24) + "-d" +
         std::to_string(headDim) + "-dv" + std::to_string(valueDim) + "-" + sanitise(config, true, 24) + "-sm" +
         std::to_string(arch) + "-nvrtc" + sanitise(nvrtc, true, 24) + "-" + hash + ".cubin";
}

std::string KernelKey::text() const {
  return "program=" + escape(program) + " source=" + escape(sourceHash) + " dtype=" + escape(dtype) +
         " d=" + std::to_string(headDim) + " dv=" + std::to_string(valueDim) + " config=" + escape(config) +
         " sm=" + std::to_string(arch) + " nvrtc=" + escape(nvrtc);
}

KernelCache::KernelCache(std::string directory) : directory_(std::move(directory)) {}

std::string KernelCache::defaultDirectory() { return support::cacheDirectory() + "/cuda"; }

std::string KernelCache::path(const KernelKey& key) const { return directory_ + "/" + key.fileName(); }

std::optional<CachedKernel> KernelCache::load(const KernelKey& key, std::string* warning) const {
  std::string entryPath;
  try {
    entryPath = path(key);
    support::CacheRead entry = support::readCacheEntry(cudaCacheKind(), key.text(), entryPath);
    if (entry.status == support::CacheRead::Status::Missing) return std::nullopt;
    if (entry.hit()) {
      std::optional<CachedKernel> kernel = parsePayload(entry.payload, &entry.problem);
      if (kernel) return kernel;
      entry.status = support::CacheRead::Status::Damaged;
    }
    if (warning) *warning = entry.line(cudaCacheKind());
    return std::nullopt;
  } catch (const std::exception& e) {  // std::bad_alloc, in practice
    if (warning)
      *warning = "attn: warning: the CUDA kernel cache entry " + entryPath + " could not be read: " + e.what();
    return std::nullopt;
  }
}

bool KernelCache::store(const KernelKey& key, const CachedKernel& kernel, std::string* warning) const {
  std::string entryPath;
  try {
    entryPath = path(key);
    support::writeCacheEntry(cudaCacheKind(), key.text(), serialisePayload(kernel), entryPath);
    return true;
  } catch (const std::exception& e) {  // support::FileError, or std::bad_alloc
    if (warning) *warning = "cannot write the CUDA kernel cache entry " + entryPath + ": " + e.what();
    return false;
  }
}

}  // namespace attn::cuda
