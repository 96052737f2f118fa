// Autotuning's candidates and its table of winners. See Tuning.h.
#include "codegen/cuda/Tuning.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "support/AtomicWrite.h"
#include "support/CacheRoot.h"
#include "support/FileError.h"
#include "support/ReadFile.h"

namespace attn::cuda {

namespace {
// One line per (program, dtype, dims, length, GPU): a few KB in practice.
constexpr uint64_t kMaxTableBytes = uint64_t(16) << 20;
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
  std::string text;
  try {
    support::ReadOptions options;
    options.what = "attn tune's table";
    text = support::readRegularFileIfPresent(path_, kMaxTableBytes, options).value_or("");
  } catch (const support::FileError& e) {
    if (warning) *warning = std::string(e.what()) + "; the default tiles are used";
    return;
  }
  std::istringstream in(text);
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
    const size_t slash = path_.rfind('/');
    if (slash != std::string::npos && slash > 0) support::makeDirectories(path_.substr(0, slash));
    support::WriteOptions options;
    options.links = support::LinkPolicy::Replace;  // attn's own cache file: a planted link is replaced
    support::writeFileAtomically(path_, text, options);
    return true;
  } catch (const support::FileError& e) {
    if (warning) *warning = e.what();
    return false;
  }
}

}  // namespace attn::cuda
