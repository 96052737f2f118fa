// `attn data synth`: a data directory with task instances mixed into its training text, so
// that a small model learns the task while it learns the language. Today one task, passkey
// retrieval (PasskeyTask.h): a model trained on the mix learns sharp long-range attention
// (copy a number said once, far back), the regime where attention's length extrapolation
// is put to the test.
//
// The output directory gets: the input's training documents and the instances, each a
// document of its own (<eot> first), in an order drawn from the seed; the input's
// validation shards, validation index and tokenizer description unchanged (validation
// loss stays a measure on text); and synth.json saying what was mixed. Training shards and
// a tokenizer.json left in the output directory by an earlier synth are removed (every
// *_train_*.bin there is read by attn train).
// Not here: other tasks, instances in the validation data (attn passkey makes its own).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/PasskeyTask.h"

namespace attn::data {

struct SynthOptions {
  std::string task = "passkey";
  std::string inDir;          ///< a data directory (attn data prepare)
  std::string outDir;
  double mix = 0.1;           ///< the fraction of the training tokens that are instances, [0, 1)
  int64_t minLength = 0;      ///< instance length in tokens, uniform in [minLength, maxLength]
  int64_t maxLength = 256;    ///< (minLength 0: maxLength / 4, at least what an instance needs)
  std::vector<FillerKind> fillers{FillerKind::Text};  ///< each instance's drawn uniformly from these
  int digits = 5;
  uint64_t seed = 1;
};

struct SynthResult {
  int64_t textDocuments = 0;
  int64_t textTokens = 0;
  int64_t instances = 0;
  int64_t instanceTokens = 0;
  double fraction = 0;             ///< instanceTokens / all training tokens
  std::vector<std::string> files;  ///< everything written
};

/// Throws DataError for a missing or malformed input, options out of range (naming the
/// option), or files that cannot be written; the output directory is created if missing.
SynthResult synthesize(const SynthOptions& options);

/// The shards in `dir` whose names hold `side` ("_train_" or "_val_") and end in .bin,
/// sorted by name.
std::vector<std::string> listShards(const std::string& dir, const std::string& side);

}  // namespace attn::data
