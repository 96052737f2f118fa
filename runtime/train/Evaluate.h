// Validation loss at multiples of the training length (`attn eval`): the measurement behind
// the paper's table 4 and figure 1, so its protocol decides what a comparison means.
//
// Protocols (docs/EVALUATION.md says why each exists):
//   same-tokens (default): every length scores the SAME target tokens. The first
//     max-documents validation documents of at least Lmax + 1 tokens (Lmax the longest
//     length asked for) each give their targets 1..Lmax; at length L they are cut into
//     windows of L tokens (when L does not divide Lmax, a last window ending at Lmax scores
//     only the targets not scored yet). So 1x and 16x differ only in the context a target
//     is predicted from, never in which text is scored.
//   stream: the validation documents concatenated (as llm.c evaluates), the first
//     max-documents chunks of Lmax + 1 tokens, cut into windows like same-tokens.
//   first-window: the first L + 1 tokens of each document at least that long: different
//     text at every length (documents' openings at 1x); kept only for comparison, lengths
//     no document reaches are left out.
// Per length: the loss (mean nats per scored target), the number of targets, of windows and
// of units (documents or chunks: the independent samples), the standard error of the loss
// over units, and with positionBucket > 0 the loss by position in the window.
//
// Not here: perplexity on other corpora, sliding-window (strided) evaluation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/train/Trainer.h"

namespace attn::train {

enum class EvalProtocol { SameTokens, Stream, FirstWindow };

/// "same-tokens", "stream", "first-window"; UserError otherwise.
EvalProtocol parseEvalProtocol(const std::string& name);
std::string protocolName(EvalProtocol protocol);

/// One length's numbers.
struct LengthLoss {
  std::string spec;      ///< "4x"
  int64_t window = 0;    ///< tokens per window: the multiple times the training length
  double loss = 0;       ///< mean cross-entropy over the scored targets (nats)
  int64_t tokens = 0;    ///< scored targets
  int64_t windows = 0;   ///< forward passes of `window` tokens
  int64_t units = 0;     ///< documents (stream: chunks) the targets came from
  /// Standard error of `loss`: the spread of the units' mean losses / sqrt(units); absent
  /// with a single unit.
  std::optional<double> standardError;
  /// Loss by position in the window: bucket b holds positions [b·B, (b+1)·B) with
  /// B = positionBucket; empty when not asked for.
  std::vector<double> positionLoss;
  std::vector<int64_t> positionTokens;
};

struct EvalResult {
  EvalProtocol protocol = EvalProtocol::SameTokens;
  int64_t trainLength = 0;
  std::string program;            ///< the program file evaluated
  std::vector<std::string> sets;  ///< its overrides
  std::string rope;
  int64_t positionBucket = 0;
  std::vector<LengthLoss> lengths;  ///< in the order asked for
  std::vector<std::string> leftOut;  ///< first-window: lengths no document reaches
};

/// Evaluates the run options.checkpoint on data.validation. UserError for bad options
/// (lengths not like "4x", an unknown protocol, a bucket < 0), no validation documents, no
/// document (same-tokens) or not enough stream (stream) for the longest length.
EvalResult evaluate(const EvalOptions& options, const TokenData& data);

/// The same on a model already loaded (tests; callers that evaluate several programs).
EvalResult evaluate(TrainedModel& model, const EvalOptions& options, const TokenData& data);

/// The result as the JSON `attn eval --out` writes:
///   {"format": "attn-eval", "version": 2, "protocol": ..., "train_length": ..., "program": ...,
///    "sets": [...], "rope": ..., "lengths": [{"length": "1x", "window": 128, "loss": ...,
///    "tokens": ..., "windows": ..., "units": ..., "stderr": ... or null,
///    "per_position": {"bucket": B, "loss": [...], "tokens": [...]}}, ...]}
/// (per_position only when asked for). Version 1 was {"1x": loss, ...}; attn plot reads both.
std::string evalResultJson(const EvalResult& result);

}  // namespace attn::train
