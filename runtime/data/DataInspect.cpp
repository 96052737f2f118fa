#include "runtime/data/DataInspect.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "runtime/data/DataError.h"
#include "runtime/data/Shards.h"

namespace attn::data {

ShardFiles listShards(const std::string& dir) {
  refuseUnfinished(dir);
  ShardFiles files;
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw DataError(dir + ": cannot open the data directory: " + std::strerror(errno));
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() < 5 || name.substr(name.size() - 4) != ".bin") continue;
    if (name.find("_train_") != std::string::npos) files.train.push_back(dir + "/" + name);
    else if (name.find("_val_") != std::string::npos) files.val.push_back(dir + "/" + name);
  }
  ::closedir(d);
  std::sort(files.train.begin(), files.train.end());
  std::sort(files.val.begin(), files.val.end());
  return files;
}

DataSummary summarizeDataDir(const std::string& dir) {
  DataSummary s;
  s.shards = listShards(dir);
  s.tokenizer = readTokenizerInfo(dir);
  for (const std::string& path : s.shards.train) s.trainTokens += inspectShard(path).tokens;
  const uint16_t endOfText = static_cast<uint16_t>(s.tokenizer.endOfText);
  for (const std::string& path : s.shards.val) {
    const MappedShard shard = MappedShard::open(path);
    const uint16_t* t = shard.tokens();
    constexpr int64_t kChunk = int64_t(1) << 20;  // released as scanned: memory stays flat
    for (int64_t from = 0; from < shard.size(); from += kChunk) {
      const int64_t to = std::min(shard.size(), from + kChunk);
      for (int64_t i = from; i < to; ++i) {
        // A document may continue from one shard into the next, as in llm.c.
        if (t[i] == endOfText || s.documentLengths.empty()) s.documentLengths.push_back(0);
        ++s.documentLengths.back();
      }
      shard.release(from, to);
    }
    s.valTokens += shard.size();
  }
  return s;
}

}  // namespace attn::data
