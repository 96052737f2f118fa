// llm.c token shards (Shards.h): the header check every reader goes through, the writer
// (support/AtomicWrite.h does the atomic part), and whole-file reads with POSIX calls (pread, so a short read is noticed and
// named, not hidden in a stream's state).
#include "runtime/data/Shards.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "runtime/data/DataError.h"
#include "support/FileError.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "attn::data assumes a little-endian host: shard headers and tokens are not byte-swapped"
#endif

namespace attn::data {

namespace {

// Other magic numbers of llm.c's data files, recognised to say what the file is.
constexpr int32_t kLlama3ShardMagic = 20240801;
constexpr int32_t kHellaswagMagic = 20240522;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw DataError(path + ": " + what);
}

std::string errnoText(int error) { return std::strerror(error); }

/// Closes a file descriptor on every path out of a function.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  FileDescriptor& operator=(FileDescriptor&&) = delete;
  int get() const { return fd_; }
  /// Closes now and returns close's result (0, or -1 with errno set).
  int close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

// ---- reading ----------------------------------------------------------------------------

/// Reads up to `size` bytes at `offset`; fewer only at the end of the file. Throws on an
/// I/O error.
size_t readAt(const std::string& path, int fd, void* buffer, size_t size, uint64_t offset) {
  auto* out = static_cast<char*>(buffer);
  size_t done = 0;
  while (done < size) {
    const ssize_t got = ::pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      fail(path, "cannot read: " + errnoText(errno));
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

/// An open shard: its descriptor and its size in bytes.
struct OpenShard {
  FileDescriptor fd;
  uint64_t size;
};

OpenShard openShard(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) fail(path, "cannot open: " + errnoText(errno));
  if (S_ISDIR(info.st_mode)) fail(path, "cannot read: it is a directory (expected a token shard)");
  if (!S_ISREG(info.st_mode)) fail(path, "cannot read: not a regular file (expected a token shard)");
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));  // never waits on a FIFO swapped in
  if (fd.get() < 0) fail(path, "cannot open: " + errnoText(errno));
  // The size of what was opened, which may not be what stat saw a moment ago.
  if (::fstat(fd.get(), &info) != 0) fail(path, "cannot read: " + errnoText(errno));
  return OpenShard{std::move(fd), static_cast<uint64_t>(info.st_size)};
}

std::string byteCount(uint64_t n) { return std::to_string(n) + (n == 1 ? " byte" : " bytes"); }
std::string tokenCount(int64_t n) { return std::to_string(n) + (n == 1 ? " token" : " tokens"); }

/// What a wrong magic number probably means, for the message.
std::string magicHint(int32_t magic) {
  if (magic == kLlama3ShardMagic) return " (that is llm.c's Llama 3 shard, with uint32 tokens; attn trains GPT-2)";
  if (magic == kHellaswagMagic) return " (that is llm.c's HellaSwag evaluation file, not a token shard)";
  if (magic == static_cast<int32_t>(__builtin_bswap32(static_cast<uint32_t>(kShardMagic)))) {
    return " (byte-swapped: the header was written big-endian)";
  }
  return "";
}

/// Checks the header of a file of `fileSize` bytes (the first kShardHeaderBytes of which
/// are in `header`); returns the token count.
int64_t checkHeader(const std::string& path, const int32_t* header, uint64_t fileSize) {
  if (header[0] != kShardMagic) {
    fail(path, "not a GPT-2 token shard: the magic number is " + std::to_string(header[0]) +
                   ", expected " + std::to_string(kShardMagic) + magicHint(header[0]));
  }
  if (header[1] != kShardVersion) {
    fail(path, "unsupported shard version " + std::to_string(header[1]) + " (attn reads version " +
                   std::to_string(kShardVersion) + ")");
  }
  const int64_t count = header[2];
  if (count < 0) fail(path, "corrupt header: the token count is " + std::to_string(count));
  const uint64_t expected = static_cast<uint64_t>(count) * sizeof(uint16_t);
  const uint64_t held = fileSize - kShardHeaderBytes;
  if (held < expected) {
    fail(path, "truncated: the header says " + tokenCount(count) + " (" + byteCount(expected) +
                   " after the " + std::to_string(kShardHeaderBytes) + "-byte header), the file holds " +
                   byteCount(held) + " of tokens");
  }
  if (held > expected) {
    fail(path, byteCount(held - expected) + " of trailing data after the " + tokenCount(count) +
                   " the header declares (the file holds " + byteCount(held) + " of tokens, expected " +
                   std::to_string(expected) + ")");
  }
  return count;
}

/// Opens `path`, reads and checks its header; returns the open file and the token count.
std::pair<OpenShard, int64_t> openAndCheck(const std::string& path) {
  OpenShard shard = openShard(path);
  if (shard.size == 0) fail(path, "not a token shard: the file is empty");
  if (shard.size < kShardHeaderBytes) {
    fail(path, "not a token shard: the file has " + byteCount(shard.size) + ", less than the " +
                   std::to_string(kShardHeaderBytes) + "-byte header");
  }
  int32_t header[kShardHeaderInts];
  if (readAt(path, shard.fd.get(), header, kShardHeaderBytes, 0) != kShardHeaderBytes) {
    fail(path, "truncated: the file ended while its header was read");
  }
  const int64_t count = checkHeader(path, header, shard.size);
  return {std::move(shard), count};
}

}  // namespace

// ---- public API ---------------------------------------------------------------------------

void writeFileAtomically(const std::string& path, std::initializer_list<ByteSpan> pieces) {
  try {
    support::writeFileAtomically(path, pieces);
  } catch (const support::FileError& e) {
    throw DataError(e.what());
  }
}

WritingMarker::WritingMarker(const std::string& dir, const std::string& command)
    : path_(dir + "/" + kWritingMarker) {
  const std::string text = command + " is writing this directory; if no such run is going on, it was interrupted: run it again\n";
  writeFileAtomically(path_, {{text.data(), text.size()}});
}

void WritingMarker::remove() {
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
    throw DataError(path_ + ": cannot remove the marker of an unfinished write: " + std::strerror(errno));
}

void refuseUnfinished(const std::string& dir) {
  const std::string marker = dir + "/" + kWritingMarker;
  struct stat st {};
  if (::lstat(marker.c_str(), &st) != 0) return;
  std::string who = "attn data prepare or synth";
  if (FILE* f = std::fopen(marker.c_str(), "r")) {
    char line[200] = {0};
    if (std::fgets(line, sizeof line, f)) {
      std::string text = line;
      const size_t end = text.find(" is writing");
      if (end != std::string::npos && end < 60) who = text.substr(0, end);
    }
    std::fclose(f);
  }
  throw DataError(dir + ": an interrupted `" + who + "` left this directory incomplete (its shards may mix two preparations; " +
                  kWritingMarker + " is still there): run it again, or remove the directory");
}

void writeShard(const std::string& path, const std::vector<uint16_t>& tokens) {
  if (static_cast<uint64_t>(tokens.size()) > static_cast<uint64_t>(kMaxShardTokens)) {
    fail(path, std::to_string(tokens.size()) + " tokens do not fit in one shard (at most " +
                   std::to_string(kMaxShardTokens) + ")");
  }
  int32_t header[kShardHeaderInts] = {};
  header[0] = kShardMagic;
  header[1] = kShardVersion;
  header[2] = static_cast<int32_t>(tokens.size());
  writeFileAtomically(path, {{header, sizeof header}, {tokens.data(), tokens.size() * sizeof(uint16_t)}});
}

void writeShard(const std::string& path, const std::vector<uint32_t>& tokens) {
  std::vector<uint16_t> narrow(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] > UINT16_MAX) {
      fail(path, "token " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                     " does not fit in a shard (shards hold uint16 token ids, at most 65535)");
    }
    narrow[i] = static_cast<uint16_t>(tokens[i]);
  }
  writeShard(path, narrow);
}

std::vector<uint16_t> readShard(const std::string& path) {
  auto [shard, count] = openAndCheck(path);
  std::vector<uint16_t> tokens(static_cast<size_t>(count));
  const size_t want = tokens.size() * sizeof(uint16_t);
  const size_t got = readAt(path, shard.fd.get(), tokens.data(), want, kShardHeaderBytes);
  if (got != want) {
    fail(path, "truncated: the header says " + tokenCount(count) + ", the file ended after " +
                   byteCount(got) + " of tokens (did it shrink while it was read?)");
  }
  return tokens;
}

MappedShard MappedShard::open(const std::string& path) {
  auto [shard, count] = openAndCheck(path);
  MappedShard mapped;
  mapped.path_ = path;
  mapped.bytes_ = static_cast<size_t>(shard.size);
  mapped.tokens_ = count;
  // MAP_PRIVATE, read-only: the tokens cannot be changed through the mapping. The
  // descriptor can be closed once mapped (the mapping keeps the file).
  void* base = ::mmap(nullptr, mapped.bytes_, PROT_READ, MAP_PRIVATE, shard.fd.get(), 0);
  if (base == MAP_FAILED) fail(path, "cannot map the shard into memory: " + errnoText(errno));
  mapped.base_ = base;
  // Windows are drawn at random places: reading ahead around each would only fill memory.
  ::madvise(base, mapped.bytes_, MADV_RANDOM);
  return mapped;
}

MappedShard::MappedShard(MappedShard&& other) noexcept
    : path_(std::move(other.path_)), base_(other.base_), bytes_(other.bytes_), tokens_(other.tokens_) {
  other.base_ = nullptr;
  other.bytes_ = 0;
  other.tokens_ = 0;
}

MappedShard& MappedShard::operator=(MappedShard&& other) noexcept {
  if (this != &other) {
    if (base_) ::munmap(base_, bytes_);
    path_ = std::move(other.path_);
    base_ = other.base_;
    bytes_ = other.bytes_;
    tokens_ = other.tokens_;
    other.base_ = nullptr;
    other.bytes_ = 0;
    other.tokens_ = 0;
  }
  return *this;
}

MappedShard::~MappedShard() {
  if (base_) ::munmap(base_, bytes_);
}

const uint16_t* MappedShard::tokens() const {
  if (!base_ || tokens_ == 0) return nullptr;
  return reinterpret_cast<const uint16_t*>(static_cast<const char*>(base_) + kShardHeaderBytes);
}

void MappedShard::release(int64_t begin, int64_t end) const {
  if (!base_ || begin >= end) return;
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t first = (kShardHeaderBytes + static_cast<uint64_t>(begin) * sizeof(uint16_t)) / page * page;
  uint64_t last = kShardHeaderBytes + static_cast<uint64_t>(end) * sizeof(uint16_t);
  last = std::min<uint64_t>((last + page - 1) / page * page, (bytes_ + page - 1) / page * page);
  // Advice only: a failure leaves the pages resident, which costs memory, not correctness.
  ::madvise(static_cast<char*>(base_) + first, last - first, MADV_DONTNEED);
}

ShardInfo inspectShard(const std::string& path) {
  ShardInfo info;
  info.tokens = openAndCheck(path).second;
  return info;
}

}  // namespace attn::data
