// `attn passkey`: retrieval accuracy of a trained run by length and by the depth of the key
// (the task: runtime/data/PasskeyTask.h). Each instance is exactly L + 1 tokens for L a
// multiple of the training length; the model reads the first L and is right when, at each
// of the key's positions, its most likely next token (argmax, teacher-forced: the true
// earlier key digits are in its input) is the key's. No sampling loop: one forward pass per
// batch of instances. Filler text comes from the validation documents (text never trained
// on) or is the repeated sentences.
//
// The same seed gives the same instances whatever program or checkpoint is tested, so two
// programs are compared on identical inputs.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/TextTokenizer.h"
#include "runtime/train/Trainer.h"

namespace attn::train {

/// Exact match by teacher-forced argmax, per instance: logits [B, K, V] of the K positions
/// that predict the key, answer [B, K] its ids; true where every position's argmax is the
/// answer's id (ties count as wrong unless the answer is the first maximum: argmax's rule).
std::vector<bool> exactMatches(const at::Tensor& logits, const at::Tensor& answer);

struct PasskeyCell {
  double depth = 0;
  int64_t trials = 0;
  int64_t correct = 0;
  double digitAccuracy = 0;  ///< the fraction of key tokens predicted right
  double answerLoss = 0;     ///< mean cross-entropy of the key tokens (nats)
};

struct PasskeyLength {
  std::string spec;  ///< "8x"
  int64_t window = 0;
  std::vector<PasskeyCell> depths;
  int64_t trials = 0;
  int64_t correct = 0;
};

struct PasskeyResult {
  int64_t trainLength = 0;
  std::string program;
  std::vector<std::string> sets;
  std::string rope, filler, tokenizer;
  uint64_t seed = 0;
  std::vector<PasskeyLength> lengths;
};

/// UserError for bad options (lengths, depths outside [0, 1], trials < 1), a tokenizer
/// whose ids the model cannot take, no filler text.
PasskeyResult passkey(TrainedModel& model, const PasskeyOptions& options, const TokenData& data,
                      const data::TextTokenizer& tokenizer);

/// {"format": "attn-passkey", "version": 1, "train_length", "program", "sets", "rope", "filler",
///  "tokenizer", "seed", "lengths": [{"length": "1x", "window": 128, "accuracy", "trials",
///  "correct", "depths": [{"depth", "accuracy", "trials", "correct", "digit_accuracy",
///  "answer_loss"}]}]}
std::string passkeyResultJson(const PasskeyResult& result);

}  // namespace attn::train
