// Fixtures the training tests share (test_torch_train_cli, _ddp, _scale_data,
// _scale_model): small corpora prepared into token shards by `attn data prepare`, and a run's
// log.jsonl read back. No LibTorch: they run build/bin/attn as a user would.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace attn::test {

/// What to prepare: documents written to tempDir()/<docPrefix><d>.txt, then
/// `attn data prepare DOCS --out tempDir()/<name> --val-fraction F --prefix P --tokenizer T`.
struct ShardRecipe {
  std::string name;                    ///< the shard directory under tempDir(); one preparation per name
  std::string docPrefix;               ///< the documents' file names: the split hashes them
  std::vector<std::string> documents;  ///< their texts
  std::string valFraction = "0.5";
  std::string prefix = "t";
  std::string tokenizer = "gpt2";
};

/// The shard directory of `recipe`, prepared on first use in this process (REQUIREs that
/// `attn data prepare` succeeds); later calls with the same name return it as it is.
const std::string& preparedShards(const ShardRecipe& recipe);

/// The lines of a run's log.jsonl (or any JSON-lines file), parsed; a missing file has none.
std::vector<nlohmann::json> logLines(const std::string& path);

/// Whether anything (a file, a directory) is at `path`.
bool pathExists(const std::string& path);

}  // namespace attn::test
