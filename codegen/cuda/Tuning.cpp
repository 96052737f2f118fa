// Autotuning's candidates and its table of winners. See Tuning.h.
#include "codegen/cuda/Tuning.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "support/CacheEntry.h"
#include "support/CacheRoot.h"
#include "support/FileError.h"

namespace attn::cuda {

namespace {

// The table is one entry in attn's one cache format (support/CacheEntry.h); its payload is
// the readable lines. A table written before that format (it began "# attn tune") is stale.
const support::CacheKind& tuningKind() {
  static const support::CacheKind kind = [] {
    support::CacheKind k;
    k.name = "cuda-tuning";
    k.layout = 1;
    k.what = "attn tune's table";
    k.maxBytes = uint64_t(16) << 20;  // one line per (program, dtype, dims, length, GPU): a few KB
    k.olderFormats = {"# attn tune"};
    k.consequence = "it is ignored (the default tiles are used until `attn tune` writes it anew)";
    return k;
  }();
  return kind;
}

// The table's one key: there is one table per cache directory.
constexpr const char* kTableKey = "attn tune's table";

}  // namespace

int sharedMemoryLimit(int arch) {
  switch (arch) {
    case 80: return 163 * 1024;  // A100
    case 86: case 89: return 99 * 1024;
    case 90: return 227 * 1024;  // H100
    default: return 48 * 1024;
  }
}

std::vector<TileConfig> candidateTiles(const CudaOptions& options, int arch, int rowFloats) {
  const char* names[] = {"m64n64w4s2", "m64n64w4s3", "m64n32w4s2", "m64n128w4s2", "m64n64w4s1",
                         "m128n64w8s2", "m128n128w8s2", "m128n32w8s2"};
  std::vector<TileConfig> out;
  for (const char* name : names) {
    CudaOptions o = options;
    o.tile = TileConfig::parse(name);
    if (!tileUnsupported(o).empty()) continue;  // its backward cannot split these head dims
    const int need = std::max({tensorCoreSharedBytes(o), tensorCoreRowsSharedBytes(o),
                               tensorCoreGradientSharedBytes(o, rowFloats)});
    if (need <= sharedMemoryLimit(arch)) out.push_back(o.tile);
  }
  return out;
}

int64_t lengthBucket(int64_t length) {
  int64_t b = 256;
  while (b < length && b < 65536) b *= 2;
  return b;
}

std::string TuningKey::text() const {
  return "program=" + program + " dtype=" + dtype + " d=" + std::to_string(headDim) + " dv=" + std::to_string(valueDim) +
         " L=" + std::to_string(bucket) + " sm=" + std::to_string(arch);
}

TuningTable::TuningTable(std::string path) : path_(std::move(path)) {}

std::string TuningTable::defaultPath() { return support::cacheDirectory() + "/cuda/tuning.txt"; }

void TuningTable::load(int* skipped, std::string* warning) {
  entries_.clear();
  if (skipped) *skipped = 0;
  const support::CacheRead entry = support::readCacheEntry(tuningKind(), kTableKey, path_);
  if (entry.unusable() && warning) *warning = entry.line(tuningKind());
  if (!entry.hit()) return;
  std::istringstream in(entry.payload);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tilePos = line.find(" tile=");
    const size_t msPos = line.find(" ms=");
    bool ok = tilePos != std::string::npos && msPos != std::string::npos && msPos > tilePos;
    if (ok) {
      try {
        TileConfig t = TileConfig::parse(line.substr(tilePos + 6, msPos - tilePos - 6));
        entries_[line.substr(0, tilePos)] = {t, std::stod(line.substr(msPos + 4))};
      } catch (const std::exception&) {
        ok = false;
      }
    }
    if (!ok && skipped) ++*skipped;
  }
}

std::optional<TileConfig> TuningTable::find(const TuningKey& key) const {
  auto it = entries_.find(key.text());
  if (it == entries_.end()) return std::nullopt;
  return it->second.first;
}

void TuningTable::set(const TuningKey& key, const TileConfig& tile, double milliseconds) {
  entries_[key.text()] = {tile, milliseconds};
}

bool TuningTable::save(std::string* warning) const {
  std::string text = "# attn tune: the fastest tensor-core tile per program, dtype, head dims, length bucket, GPU\n";
  for (const auto& [key, value] : entries_) {
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.4f", value.second);
    text += key + " tile=" + value.first.name() + " ms=" + ms + "\n";
  }
  try {
    support::writeCacheEntry(tuningKind(), kTableKey, text, path_);
    return true;
  } catch (const support::FileError& e) {
    if (warning) *warning = e.what();
    return false;
  }
}

}  // namespace attn::cuda
