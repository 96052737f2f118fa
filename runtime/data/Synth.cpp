#include "runtime/data/Synth.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "runtime/data/DataError.h"
#include "runtime/data/Shards.h"
#include "runtime/data/TextTokenizer.h"

namespace attn::data {

namespace fs = std::filesystem;

std::vector<std::string> listShards(const std::string& dir, const std::string& side) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) throw DataError(dir + ": not a data directory");
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".bin") == 0 && name.find(side) != std::string::npos)
      out.push_back(dir + "/" + name);
  }
  if (error) throw DataError(dir + ": cannot list the directory: " + error.message());
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

std::string readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void copyFile(const std::string& from, const std::string& to) {
  const std::string bytes = readBytes(from);
  writeFileAtomically(to, {{bytes.data(), bytes.size()}});
}

// Documents of a token stream: each starts at an <eot> (text before the first one, if any,
// is a document too).
std::vector<std::vector<uint16_t>> splitDocuments(const std::vector<uint16_t>& tokens, uint32_t eot) {
  std::vector<std::vector<uint16_t>> docs;
  for (uint16_t t : tokens) {
    if (t == eot || docs.empty()) docs.emplace_back();
    docs.back().push_back(t);
  }
  return docs;
}

std::string prefixOf(const std::string& shardPath) {
  const std::string name = fs::path(shardPath).filename().string();
  return name.substr(0, name.find("_train_"));
}

}  // namespace

SynthResult synthesize(const SynthOptions& o) {
  if (o.task != "passkey") throw DataError("--task: unknown task '" + o.task + "' (expected passkey)");
  if (!(o.mix >= 0 && o.mix < 1)) throw DataError("--mix: the fraction of instance tokens must be in [0, 1)");
  if (o.maxLength < 1) throw DataError("--max-length: at least 1 token");
  refuseUnfinished(o.inDir);
  const std::vector<std::string> trainShards = listShards(o.inDir, "_train_");
  if (trainShards.empty()) throw DataError(o.inDir + ": no training shards (*_train_*.bin) to mix into");
  if (o.outDir.empty()) throw DataError("--out: an output directory is needed");
  if (fs::weakly_canonical(o.inDir) == fs::weakly_canonical(o.outDir))
    throw DataError("--out must be another directory than the input (" + o.inDir + ")");
  std::unique_ptr<TextTokenizer> tokenizer = loadTokenizer(o.inDir);

  std::vector<uint16_t> text;
  for (const auto& path : trainShards) {
    std::vector<uint16_t> t = readShard(path);
    text.insert(text.end(), t.begin(), t.end());
  }
  std::vector<std::vector<uint16_t>> documents = splitDocuments(text, tokenizer->endOfText());
  SynthResult r;
  r.textDocuments = static_cast<int64_t>(documents.size());
  r.textTokens = static_cast<int64_t>(text.size());

  if (o.fillers.empty()) throw DataError("--filler: at least one filler kind");
  std::vector<std::unique_ptr<PasskeyTask>> tasks;
  for (FillerKind kind : o.fillers) tasks.push_back(std::make_unique<PasskeyTask>(*tokenizer, kind, &documents, o.digits));
  const PasskeyTask& task = *tasks.front();  // every filler kind needs the same tokens besides the filler
  // Default shortest: a quarter of the longest, but never below what an instance needs.
  const int64_t minLength =
      o.minLength > 0 ? o.minLength : std::min(o.maxLength, std::max(o.maxLength / 4, task.minimumLength()));
  const std::string given = o.minLength > 0 ? "--min-length " + std::to_string(minLength) : "--max-length " + std::to_string(o.maxLength);
  if (minLength < task.minimumLength())
    throw DataError(given + ": a passkey instance needs at least " + std::to_string(task.minimumLength()) +
                    " tokens with this tokenizer (" + tokenizer->name() + ")");
  if (minLength > o.maxLength)
    throw DataError("--min-length " + std::to_string(minLength) + " is above --max-length " + std::to_string(o.maxLength));
  // Instances until they make `mix` of all tokens: I / (I + T) >= mix.
  const double wanted = o.mix / (1 - o.mix) * static_cast<double>(r.textTokens);
  std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ULL + 17);
  std::vector<std::vector<uint16_t>> instances;
  while (static_cast<double>(r.instanceTokens) < wanted) {
    const int64_t length = minLength + static_cast<int64_t>(rng() % static_cast<uint64_t>(o.maxLength - minLength + 1));
    const double depth = static_cast<double>(rng() % 1000001) / 1e6;
    const PasskeyTask& kind = *tasks[tasks.size() == 1 ? 0 : rng() % tasks.size()];
    PasskeyInstance inst = kind.make(length, depth, rng());
    instances.emplace_back(inst.tokens.begin(), inst.tokens.end());
    r.instanceTokens += length;
  }
  r.instances = static_cast<int64_t>(instances.size());
  r.fraction = r.instanceTokens + r.textTokens > 0
                   ? static_cast<double>(r.instanceTokens) / static_cast<double>(r.instanceTokens + r.textTokens)
                   : 0;

  // Every document and instance once, in an order drawn from the seed (Fisher-Yates on
  // indices with the generator's raw output: the same everywhere).
  std::vector<const std::vector<uint16_t>*> order;
  for (const auto& d : documents) order.push_back(&d);
  for (const auto& i : instances) order.push_back(&i);
  for (size_t k = order.size(); k > 1; --k) std::swap(order[k - 1], order[rng() % k]);

  std::error_code error;
  fs::create_directories(o.outDir, error);
  if (!fs::is_directory(o.outDir)) throw DataError(o.outDir + ": cannot create the directory");
  WritingMarker marker(o.outDir, "attn data synth");
  const std::string prefix = prefixOf(trainShards.front());
  const int64_t perShard = 100000000;
  std::vector<uint16_t> shard;
  int64_t index = 0;
  auto flush = [&] {
    char name[64];
    std::snprintf(name, sizeof name, "_train_%06lld.bin", static_cast<long long>(index++));
    const std::string path = o.outDir + "/" + prefix + name;
    writeShard(path, shard);
    r.files.push_back(path);
    shard.clear();
  };
  for (const auto* d : order) {
    for (uint16_t t : *d) {
      shard.push_back(t);
      if (static_cast<int64_t>(shard.size()) == perShard) flush();
    }
  }
  if (!shard.empty() || index == 0) flush();
  // Stale training shards of an earlier synth into the same directory would be read too.
  for (const auto& path : listShards(o.outDir, "_train_"))
    if (std::find(r.files.begin(), r.files.end(), path) == r.files.end()) fs::remove(path, error);

  for (const auto& entry : fs::directory_iterator(o.inDir)) {
    const std::string name = entry.path().filename().string();
    const bool validation = name.find("_val_") != std::string::npos;
    if ((validation || name == "tokenizer.json") && entry.is_regular_file()) {
      copyFile(entry.path().string(), o.outDir + "/" + name);
      r.files.push_back(o.outDir + "/" + name);
    }
  }
  // A tokenizer.json left by an earlier synth from other data would name the wrong tokenizer.
  if (!fs::exists(o.inDir + "/tokenizer.json")) fs::remove(o.outDir + "/tokenizer.json", error);
  std::string fillerList;
  for (FillerKind kind : o.fillers) fillerList += (fillerList.empty() ? "" : ",") + fillerName(kind);
  nlohmann::ordered_json manifest = {{"format", "attn-synth"},
                                     {"version", 1},
                                     {"task", o.task},
                                     {"input", o.inDir},
                                     {"mix", o.mix},
                                     {"seed", o.seed},
                                     {"min_length", minLength},
                                     {"max_length", o.maxLength},
                                     {"filler", fillerList},
                                     {"digits", o.digits},
                                     {"tokenizer", tokenizer->name()},
                                     {"text_documents", r.textDocuments},
                                     {"text_tokens", r.textTokens},
                                     {"instances", r.instances},
                                     {"instance_tokens", r.instanceTokens},
                                     {"fraction", r.fraction}};
  const std::string m = manifest.dump(2) + "\n";
  writeFileAtomically(o.outDir + "/synth.json", {{m.data(), m.size()}});
  r.files.push_back(o.outDir + "/synth.json");
  marker.remove();
  return r;
}

}  // namespace attn::data
