// The options of training and evaluation (runtime/train/Trainer.h), in a header without
// LibTorch so that the light CLI binary fills them directly from its flags.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attn::train {

struct TrainOptions {
  std::string config = "tiny";
  std::string attnFile;                 ///< the attention program
  std::string attnName;                 ///< --name
  std::vector<std::string> sets;        ///< --set K=V
  std::string backend = "cpu";
  std::string device = "cpu";           ///< where the model lives: cpu, or cuda (bf16 autocast)
  int64_t steps = 0;                    ///< 0: the config's default
  int64_t seqLen = 0;                   ///< 0: the config's training length
  int64_t vocab = 0;                    ///< 0: the config's (GPT-2's, padded); smaller for tests on toy data
  int64_t microBatch = 0;               ///< sequences per forward; 0: the config's default
  int64_t batchTokens = 0;              ///< tokens per optimiser step (accumulation); 0: one micro-batch
  double lr = 0;                        ///< 0: the config's default
  double minLrRatio = 0.1;
  int64_t warmup = -1;                  ///< -1: the config's default
  double weightDecay = 0.1;
  double clip = 1.0;
  uint64_t seed = 1;
  /// Checkpoints are written every checkpointEvery steps and after checkpointMinutes of
  /// training since the last one, whichever comes first, and at the end (0 turns a trigger off).
  int64_t checkpointEvery = 1000;
  double checkpointMinutes = 10;
  int64_t stopAfter = 0;                ///< stop (with a checkpoint) after this many steps; 0: run to `steps`
  std::string out;                      ///< the run directory
  bool resume = false;                  ///< continue from out/checkpoint
  bool quiet = false;                   ///< no progress line
};

struct EvalOptions {
  std::string checkpoint;           ///< a run directory
  std::string attnFile;             ///< another program than the one trained (empty: the trained one)
  std::string attnName;
  std::vector<std::string> sets;
  std::string backend = "cpu";
  std::string device = "cpu";
  std::vector<std::string> lengths = {"1x", "2x", "4x", "8x", "16x"};
  std::string rope = "ntk";         ///< none, ntk (static, α = L / L_train), ntk-dynamic
  int64_t maxDocuments = 0;         ///< per length; 0: all that are long enough
  std::string out;                  ///< JSON file {"1x": loss, ...}
};

}  // namespace attn::train
