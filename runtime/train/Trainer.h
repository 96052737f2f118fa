// Training and evaluation of the GPT-2 runtime (runtime/model/Gpt2.h) on token data: the
// loop behind `attn train` and `attn eval`.
//
// On `device = cuda` the model and batches live on the GPU and forward runs under bf16
// autocast (LayerNorm, softmax and the loss stay float32, as autocast decides; attention
// programs compute in float32 inside whatever their input dtype).
//
// Training: AdamW (0.9, 0.95, eps 1e-8), weight decay on 2-D weights only, linear warmup
// then cosine decay to min_lr_ratio · lr, gradient clipping, gradient accumulation,
// deterministic (batch k of step s depends only on the seed, s and k, so a resumed run sees
// the same batches), a progress line with loss, tokens/s and ETA on stderr, and
// DIR/log.jsonl with one JSON object per step. Checkpoints (runtime/train/Checkpoint.h:
// verified by a manifest of checksums, written beside the live one and swapped in by rename,
// so a run killed at any moment leaves DIR/checkpoint or DIR/checkpoint.old whole) every
// 1,000 steps or 10 minutes of training, whichever comes first, and at the end.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "runtime/data/TokenStream.h"
#include "runtime/model/Gpt2.h"
#include "runtime/train/TrainOptions.h"

namespace attn::train {

/// Tokens to train on, and whole validation documents to evaluate on.
struct TokenData {
  /// The training shards, memory-mapped (runtime/data/TokenStream.h), or tokens in memory.
  data::TokenStream train;
  std::vector<std::vector<uint16_t>> validation;  ///< one token vector per document
  std::string description;                         ///< for the log: where it came from
  int64_t vocab = 0;  ///< the tokenizer's vocabulary when the data says it (0: GPT-2's)
  uint32_t endOfText = 50256;  ///< the token that starts each document (--windows aligned)
};


/// The defaults a config implies for the fields left 0 above (also the llm.c recipe for 124m:
/// 524,288 tokens a step as 8 × 64 × 1024, lr 6e-4, warmup 700, 18,865 steps).
TrainOptions resolveDefaults(TrainOptions options);

/// The model `attn train` builds for `options`: the named config, with --layers, --heads,
/// --width (named "custom" when one changes it), --seq-len and vocab applied. UserError
/// naming the flag for an impossible size (runtime/model/ModelSizes.h).
model::Gpt2Config trainedModelConfig(const TrainOptions& options);

/// Learning rate at `step` (0-based): linear warmup over `warmup` steps, then cosine from
/// lr down to minLrRatio · lr at the last step.
double learningRate(const TrainOptions& o, int64_t step);

/// Runs (or resumes) training; returns the last step's loss. Throws UserError for bad input.
/// With options.distributed.worldSize > 1 this process is one rank of a data-parallel run
/// (runtime/train/Distributed.h): --batch-tokens is the global batch, each rank trains on
/// its share of every micro-batch's windows, gradients are averaged over the ranks, and
/// rank 0 alone writes log.jsonl, config.json and the checkpoints.
double train(const TrainOptions& options, const TokenData& data);

/// A trained run loaded for evaluation (runtime/train/Evaluate.h, Passkey.h), in eval mode on
/// its device.
struct TrainedModel {
  model::Gpt2 model;
  c10::Device device;
  std::string attnFile;           ///< the program it runs: the trained one or another
  std::vector<std::string> sets;  ///< and its overrides
};

/// Loads the run in `runDir` (config.json and its newest whole checkpoint) with the program
/// it was trained with (attnFile empty) or another one (attnFile, attnName, sets).
/// UserError for a directory that is not a run, a broken program, a missing checkpoint.
TrainedModel loadTrainedModel(const std::string& runDir, const std::string& attnFile, const std::string& attnName,
                              const std::vector<std::string>& sets, const std::string& backend,
                              const std::string& device);

}  // namespace attn::train
