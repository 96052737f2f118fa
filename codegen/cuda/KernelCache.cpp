// The CUDA backend's disk cache of compiled kernels. See KernelCache.h for the entry format
// and the guarantees. Plain POSIX file I/O (open/read/write/rename), so that every failure
// has an errno to report, and nothing here throws out of load() or store().
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

#include "runtime/data/DataDir.h"

namespace attn::cuda {

namespace {

constexpr const char* kMagic = "ATTNCUDA";
constexpr size_t kMagicLength = 8;
// An entry is a few MB at most; anything far larger is not ours (and is not read into memory).
constexpr uint64_t kMaxEntryBytes = uint64_t(1) << 30;

// FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
uint64_t fnv1a(const char* data, size_t size, uint64_t h = 14695981039346656037ULL) {
  for (size_t i = 0; i < size; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 1099511628211ULL;
  }
  return h;
}

uint64_t fnv1a(const std::string& s, uint64_t h = 14695981039346656037ULL) { return fnv1a(s.data(), s.size(), h); }

std::string hex16(uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(v));
  return text;
}

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

std::string errnoText(int e) { return std::strerror(e); }


// ---- reading an entry --------------------------------------------------------------------

enum class ReadStatus { ok, missing, failed };

// The whole file, or why not.
ReadStatus readWholeFile(const std::string& path, std::string* bytes, std::string* problem) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR) return ReadStatus::missing;
    *problem = "cannot be opened: " + errnoText(e);
    return ReadStatus::failed;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    *problem = "cannot be examined: " + errnoText(errno);
    ::close(fd);
    return ReadStatus::failed;
  }
  if (!S_ISREG(st.st_mode)) {
    *problem = "is not a regular file";
    ::close(fd);
    return ReadStatus::failed;
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxEntryBytes) {
    *problem = "is " + std::to_string(static_cast<long long>(st.st_size)) + " bytes, far more than any entry";
    ::close(fd);
    return ReadStatus::failed;
  }
  bytes->clear();
  bytes->reserve(static_cast<size_t>(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      *problem = "cannot be read: " + errnoText(errno);
      ::close(fd);
      return ReadStatus::failed;
    }
    if (n == 0) break;
    if (bytes->size() + static_cast<size_t>(n) > kMaxEntryBytes) {
      *problem = "is far larger than any entry";
      ::close(fd);
      return ReadStatus::failed;
    }
    bytes->append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return ReadStatus::ok;
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

  uint64_t sum = fnv1a(sectionsLine + "\n");
  sum = fnv1a(resourcesLine + "\n", sum);
  sum = fnv1a(data.data() + pos, data.size() - pos, sum);
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
  uint64_t sum = fnv1a(sections + "\n");
  sum = fnv1a(resources + "\n", sum);
  sum = fnv1a(k.cubin, sum);
  sum = fnv1a(k.ptx, sum);
  sum = fnv1a(k.log, sum);
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

// A name no other writer (thread or process) uses at the same time; never ends in ".cubin".
std::string temporaryPath(const std::string& path) {
  static std::atomic<unsigned long long> counter{0};
  return path + ".tmp." + std::to_string(static_cast<long long>(::getpid())) + "." + std::to_string(counter++);
}

bool writeAll(int fd, const std::string& bytes, int* error) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = errno;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string hashHex(const std::string& text) { return hex16(fnv1a(text)); }

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

std::string KernelCache::defaultDirectory() { return data::cacheDirectory() + "/cuda"; }

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
    std::error_code ec;
    std::filesystem::create_directories(directory_, ec);
    if (ec) return fail("cannot create the directory " + directory_ + ": " + ec.message());

    const std::string bytes = serialise(key.text(), kernel);
    const std::string tmp = temporaryPath(entryPath);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return fail("cannot create " + tmp + ": " + errnoText(errno));
    int error = 0;
    bool ok = writeAll(fd, bytes, &error);
    if (::close(fd) != 0 && ok) {
      ok = false;
      error = errno;
    }
    if (!ok) {
      ::unlink(tmp.c_str());
      return fail("writing " + tmp + " failed: " + errnoText(error));
    }
    if (::rename(tmp.c_str(), entryPath.c_str()) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      return fail("renaming " + tmp + " failed: " + errnoText(e));
    }
    return true;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace attn::cuda
