// The CUDA backend's disk cache of compiled kernels. See KernelCache.h for the entry format
// and the guarantees. Files are read and written through support/ (regular files only, size
// capped; atomic writes), and nothing here throws out of load() or store().
#include "codegen/cuda/KernelCache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "support/AtomicWrite.h"
#include "support/CacheRoot.h"
#include "support/ContentHash.h"
#include "support/FileError.h"
#include "support/ReadFile.h"

namespace attn::cuda {

namespace {

constexpr const char* kMagic = "ATTNCUDA";
constexpr size_t kMagicLength = 8;
// An entry is a few MB at most; anything far larger is not ours (and is not read into memory).
constexpr uint64_t kMaxEntryBytes = uint64_t(1) << 30;

using support::hex16;

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

// ---- reading an entry --------------------------------------------------------------------

enum class ReadStatus { ok, missing, failed };

// The whole file, or why not: only a regular file (never a link, FIFO or device) of at most
// kMaxEntryBytes is read (support/ReadFile.h).
ReadStatus readWholeFile(const std::string& path, std::string* bytes, std::string* problem) {
  try {
    support::ReadOptions options;
    options.followLinks = false;
    options.what = "a CUDA kernel cache entry";
    std::optional<std::string> read = support::readRegularFileIfPresent(path, kMaxEntryBytes, options);
    if (!read) return ReadStatus::missing;
    *bytes = std::move(*read);
    return ReadStatus::ok;
  } catch (const support::FileError& e) {
    const std::string what = e.what();
    *problem = what.compare(0, path.size() + 2, path + ": ") == 0 ? what.substr(path.size() + 2) : what;
    return ReadStatus::failed;
  }
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

// Shortens a key echoed in a warning.
std::string clip(const std::string& s, size_t n = 160) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

// The entry in `data`, or nullopt with `*problem` saying what is wrong.
std::optional<CachedKernel> parseEntry(const std::string& data, const std::string& keyText, std::string* problem) {
  if (data.empty()) {
    *problem = "is empty (a crash while it was written?)";
    return std::nullopt;
  }
  const std::string magic = kMagic;
  if (data.size() < kMagicLength ? magic.compare(0, data.size(), data) != 0 : data.compare(0, kMagicLength, magic) != 0) {
    *problem = "does not start with the magic ATTNCUDA: not an attn CUDA kernel cache entry";
    return std::nullopt;
  }

  size_t pos = 0;
  std::string line;
  auto nextLine = [&]() {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) return false;
    line.assign(data, pos, end - pos);
    pos = end + 1;
    return true;
  };
  const std::string truncatedHeader = "is truncated inside its header (" + std::to_string(data.size()) + " bytes)";

  if (!nextLine()) {
    *problem = truncatedHeader;
    return std::nullopt;
  }
  const std::string expectedFirst = magic + " " + std::to_string(KernelCache::kFormatVersion);
  if (line != expectedFirst) {
    std::string version = line.size() > kMagicLength + 1 && line[kMagicLength] == ' ' ? line.substr(kMagicLength + 1) : "";
    if (!version.empty() && version.size() <= 9 && version.find_first_not_of("0123456789") == std::string::npos)
      *problem = "was written in cache format version " + version + "; this attn reads version " +
                 std::to_string(KernelCache::kFormatVersion);
    else
      *problem = "has a malformed first line: not an attn CUDA kernel cache entry";
    return std::nullopt;
  }

  if (!nextLine()) {
    *problem = truncatedHeader;
    return std::nullopt;
  }
  if (line.compare(0, 4, "key ") != 0) {
    *problem = "has a malformed header (no key line)";
    return std::nullopt;
  }
  if (line.compare(4, std::string::npos, keyText) != 0) {
    *problem = "holds the entry of another key (" + clip(line.substr(4)) + "), not of " + clip(keyText);
    return std::nullopt;
  }

  if (!nextLine()) {
    *problem = truncatedHeader;
    return std::nullopt;
  }
  const std::string sectionsLine = line;
  std::vector<long long> sizes;
  if (!parseFields(sectionsLine, "sections", {"cubin", "ptx", "log"}, &sizes) || sizes[0] < 0 || sizes[1] < 0 ||
      sizes[2] < 0) {
    *problem = "has a malformed header (sections line)";
    return std::nullopt;
  }

  if (!nextLine()) {
    *problem = truncatedHeader;
    return std::nullopt;
  }
  const std::string resourcesLine = line;
  std::vector<long long> resources;
  if (!parseFields(resourcesLine, "resources", {"registers", "spill", "shared"}, &resources)) {
    *problem = "has a malformed header (resources line)";
    return std::nullopt;
  }
  for (long long r : resources)
    if (r < -1 || r > 0x7fffffff) {
      *problem = "has a malformed header (resources out of range)";
      return std::nullopt;
    }

  if (!nextLine()) {
    *problem = truncatedHeader;
    return std::nullopt;
  }
  if (line.size() != 9 + 16 || line.compare(0, 9, "checksum ") != 0 || !isLowerHex(line.substr(9))) {
    *problem = "has a malformed header (checksum line)";
    return std::nullopt;
  }
  const uint64_t storedChecksum = std::strtoull(line.c_str() + 9, nullptr, 16);

  if (!nextLine()) {
    *problem = truncatedHeader;
    return std::nullopt;
  }
  if (!line.empty()) {
    *problem = "has a malformed header (no blank line after it)";
    return std::nullopt;
  }

  // Each size has at most 18 digits, so the sum cannot overflow.
  const unsigned long long declared = static_cast<unsigned long long>(sizes[0]) +
                                      static_cast<unsigned long long>(sizes[1]) +
                                      static_cast<unsigned long long>(sizes[2]);
  const unsigned long long present = data.size() - pos;
  if (declared > present) {
    *problem = "is truncated: its header declares " + std::to_string(declared) + " payload bytes, " +
               std::to_string(present) + " follow";
    return std::nullopt;
  }
  if (declared < present) {
    *problem = "has " + std::to_string(present - declared) + " bytes after the " + std::to_string(declared) +
               " payload bytes its header declares";
    return std::nullopt;
  }

  const uint64_t sum = support::checksum64(sectionsLine + "\n" + resourcesLine + "\n" + data.substr(pos));
  if (sum != storedChecksum) {
    *problem = "has a checksum mismatch (" + hex16(sum) + " computed, " + hex16(storedChecksum) +
               " stored): its contents are damaged";
    return std::nullopt;
  }

  CachedKernel k;
  k.cubin.assign(data, pos, static_cast<size_t>(sizes[0]));
  pos += static_cast<size_t>(sizes[0]);
  k.ptx.assign(data, pos, static_cast<size_t>(sizes[1]));
  pos += static_cast<size_t>(sizes[1]);
  k.log.assign(data, pos, static_cast<size_t>(sizes[2]));
  k.registers = static_cast<int>(resources[0]);
  k.spillBytes = static_cast<int>(resources[1]);
  k.sharedBytes = static_cast<int>(resources[2]);
  return k;
}

// ---- writing an entry --------------------------------------------------------------------

std::string serialise(const std::string& keyText, const CachedKernel& k) {
  const std::string sections = "sections cubin=" + std::to_string(k.cubin.size()) +
                               " ptx=" + std::to_string(k.ptx.size()) + " log=" + std::to_string(k.log.size());
  const std::string resources = "resources registers=" + std::to_string(k.registers) +
                                " spill=" + std::to_string(k.spillBytes) + " shared=" + std::to_string(k.sharedBytes);
  const uint64_t sum = support::checksum64(sections + "\n" + resources + "\n" + k.cubin + k.ptx + k.log);
  std::string out = std::string(kMagic) + " " + std::to_string(KernelCache::kFormatVersion) + "\n";
  out += "key " + keyText + "\n";
  out += sections + "\n";
  out += resources + "\n";
  out += "checksum " + hex16(sum) + "\n\n";
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
    std::string data, problem;
    ReadStatus status = readWholeFile(entryPath, &data, &problem);
    if (status == ReadStatus::missing) return std::nullopt;
    std::optional<CachedKernel> kernel;
    if (status == ReadStatus::ok) kernel = parseEntry(data, key.text(), &problem);
    if (!kernel && warning) *warning = "the CUDA kernel cache entry " + entryPath + " " + problem;
    return kernel;
  } catch (const std::exception& e) {  // std::bad_alloc, in practice
    if (warning) *warning = "the CUDA kernel cache entry " + entryPath + " could not be read: " + e.what();
    return std::nullopt;
  }
}

bool KernelCache::store(const KernelKey& key, const CachedKernel& kernel, std::string* warning) const {
  std::string entryPath;
  auto fail = [&](const std::string& why) {
    if (warning) *warning = "cannot write the CUDA kernel cache entry " + entryPath + ": " + why;
    return false;
  };
  try {
    entryPath = path(key);
    support::makeDirectories(directory_);
    const std::string bytes = serialise(key.text(), kernel);
    support::WriteOptions options;
    options.links = support::LinkPolicy::Replace;  // a link planted at the entry's name is replaced, not followed
    support::writeFileAtomically(entryPath, bytes, options);
    return true;
  } catch (const support::FileError& e) {
    return fail(e.what());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace attn::cuda
