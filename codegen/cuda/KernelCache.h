// The CUDA backend's disk cache of compiled kernels: one file per (program, generated source,
// dtype, head sizes, tile config, GPU architecture, NVRTC version), holding NVRTC's CUBIN, PTX,
// log and ptxas's resource report, so that a later process loads a kernel in microseconds
// instead of compiling it again for hundreds of milliseconds.
//
// What it is: a store of bytes keyed by KernelKey, safe against crashes, concurrent writers
// (processes and threads) and damaged files. Every entry echoes its whole key and carries a
// checksum; a truncated, corrupted, foreign or other-version file is reported (a warning
// naming the file and what is wrong) and treated as a miss, so the caller compiles again and
// store() repairs it. A directory that cannot be written is not an error either: the kernels
// still run, they are only compiled again next time.
//
// What it is not: it compiles nothing (Nvrtc.h does), loads nothing onto a GPU
// (CudaDriver.h does), keeps nothing in memory, and never evicts or cleans up old entries.
// It needs no GPU and no NVRTC. The model is the CPU backend's cache (codegen/llvm/CpuBackend.cpp).
#pragma once

#include <optional>
#include <string>

namespace attn::cuda {

/// Everything a compiled kernel depends on. Readable: every field appears in fileName().
/// Two keys that differ in any field name different files; the file also echoes the whole
/// key (text()), so a renamed file or a file-name collision is detected, never used.
struct KernelKey {
  std::string program;     ///< the program's name, e.g. "lssar"
  std::string sourceHash;  ///< hashHex() of the generated CUDA source (which encodes params and config) and the skeleton headers
  std::string dtype;       ///< "f16" | "bf16" | "f32"
  int headDim = 0;         ///< d
  int valueDim = 0;        ///< dv
  std::string config;      ///< tile config, e.g. "m64n64w4s2"
  int arch = 0;            ///< 80, 86, 89, 90
  std::string nvrtc;       ///< nvrtcVersion(), e.g. "13.0"

  /// The entry's file name, e.g.
  /// "lssar-bf16-d64-dv64-m64n64w4s2-sm90-nvrtc13.0-0123456789abcdef.cubin".
  /// Text fields are sanitised to [A-Za-z0-9_-] ('.' is also kept, except in program); a
  /// field that had to be changed (or was empty, or over 40 characters) gets "_" and 8 hex
  /// digits of its hash appended, so that sanitising does not merge keys. The last part is
  /// sourceHash itself when it is 1 to 16 lower-case hex digits, else hashHex(sourceHash).
  std::string fileName() const;

  /// The whole key on one line, as echoed in the entry's header: "program=lssar source=...
  /// dtype=bf16 d=64 dv=64 config=... sm=90 nvrtc=13.0", with '%', '=', spaces and bytes
  /// outside printable ASCII percent-encoded.
  std::string text() const;

  bool operator==(const KernelKey& o) const { return text() == o.text(); }
  bool operator!=(const KernelKey& o) const { return !(*this == o); }
};

/// What the cache keeps of one compile (Nvrtc.h's CompiledKernel, less the compile time).
struct CachedKernel {
  std::string cubin;     ///< the ELF for sm_<arch>; binary, may hold NULs
  std::string ptx;       ///< PTX text
  std::string log;       ///< NVRTC's log (ptxas -v's report)
  int registers = -1;    ///< per thread; -1 when unknown
  int spillBytes = -1;   ///< spill stores + loads; -1 when unknown
  int sharedBytes = -1;  ///< static shared memory per block; -1 when unknown

  bool operator==(const CachedKernel& o) const {
    return cubin == o.cubin && ptx == o.ptx && log == o.log && registers == o.registers &&
           spillBytes == o.spillBytes && sharedBytes == o.sharedBytes;
  }
};

/// A directory of cache entries. Entry format (version kFormatVersion), a text header then
/// the payload:
///
///     ATTNCUDA 2\n
///     key <KernelKey::text()>\n
///     sections cubin=<bytes> ptx=<bytes> log=<bytes>\n
///     resources registers=<n> spill=<n> shared=<n>\n
///     checksum <16 hex digits>\n
///     \n
///     <cubin bytes><ptx bytes><log bytes>
///
/// The checksum is XXH64 (support/ContentHash.h) over the sections line, the resources line
/// (each with its "\n") and the payload. The file must end exactly where the sections end.
/// (Version 1 entries, checksummed with FNV-1a, are reported as another version and rebuilt.)
///
/// Entries are read only when they are regular files (not links, FIFOs or devices) of at
/// most 1 GiB, and written with support::writeFileAtomically: a temporary file in the same
/// directory, "<entry>.tmp.<pid>.<n>", created O_EXCL | O_NOFOLLOW and renamed over the entry
/// (a link planted at the entry's name is replaced, never followed). Readers see the old entry
/// or the whole new one, never a part, and of concurrent writers of one key the last rename
/// wins, leaving one valid entry. A temporary file left by a crash never ends in ".cubin" and
/// is never read. The object is immutable; its methods may be called from any thread.
class KernelCache {
 public:
  static constexpr int kFormatVersion = 2;

  /// A cache in `directory`, which need not exist (store() creates it).
  explicit KernelCache(std::string directory);

  /// <cache root>/cuda, the root being support::cacheDirectory() ($ATTN_CACHE_DIR, else
  /// $XDG_CACHE_HOME/attn, else $HOME/.cache/attn, else /tmp/attn-cache-UID; the CPU
  /// backend's rule too). Read from the environment per call.
  static std::string defaultDirectory();

  const std::string& directory() const { return directory_; }

  /// directory()/key.fileName().
  std::string path(const KernelKey& key) const;

  /// The entry for `key`, or nullopt. A missing entry (or directory) is a plain miss: no
  /// warning. An entry that cannot be used (empty, truncated, bad magic, another format
  /// version, another key's entry, a checksum mismatch, section lengths beyond the file,
  /// trailing bytes, unreadable) is a miss too, and `*warning` (when given) is set to one
  /// line naming the file and what is wrong; store() will overwrite it. Never throws.
  std::optional<CachedKernel> load(const KernelKey& key, std::string* warning = nullptr) const;

  /// Writes the entry for `key` atomically, creating the directory if needed. Returns false
  /// and sets `*warning` (when given) to one line naming the path and the reason when it
  /// cannot write (a read-only or impossible directory, a full disk); nothing half-written
  /// is left behind. Never throws.
  bool store(const KernelKey& key, const CachedKernel& kernel, std::string* warning = nullptr) const;

 private:
  std::string directory_;
};

/// A stable 64-bit hash (FNV-1a, support::hashHex) of `text` as 16 lower-case hex digits:
/// the same on every machine and in every process, so usable in file names.
std::string hashHex(const std::string& text);

}  // namespace attn::cuda
