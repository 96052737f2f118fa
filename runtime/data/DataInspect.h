// What a data directory holds (`attn data inspect`, and the shard lists `attn train` and
// `attn eval` read): its *_train_*.bin and *_val_*.bin shards, their token counts from the
// headers, and the lengths of the validation documents.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/TextTokenizer.h"

namespace attn::data {

/// The shards of a data directory, each list sorted by name (the order of the stream).
struct ShardFiles {
  std::vector<std::string> train;  ///< paths of *_train_*.bin
  std::vector<std::string> val;    ///< paths of *_val_*.bin
};

/// Lists `dir`'s shards (not its subdirectories). DataError when it cannot be listed.
ShardFiles listShards(const std::string& dir);

struct DataSummary {
  ShardFiles shards;
  TokenizerInfo tokenizer;
  int64_t trainTokens = 0;
  int64_t valTokens = 0;
  /// Each validation document's token count, in order: the validation tokens cut before
  /// every end-of-text token (tokens before the first one, if any, form a document too),
  /// as `attn eval` cuts them.
  std::vector<int64_t> documentLengths;
};

/// Reads the headers of every shard (MappedShard checks) and scans the validation tokens
/// through a memory map. DataError naming a bad shard.
DataSummary summarizeDataDir(const std::string& dir);

}  // namespace attn::data
