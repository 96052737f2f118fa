// The options of training and evaluation (runtime/train/Trainer.h), in a header without
// LibTorch so that the light CLI binary fills them directly from its flags.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace attn::train {

/// Where this process sits in a data-parallel run (runtime/train/Distributed.h): what
/// torchrun (--no-python) or srun set as RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
/// MASTER_PORT; the CLI reads them. worldSize 1: a run of its own.
struct DistributedOptions {
  int64_t rank = 0;
  int64_t worldSize = 1;
  int64_t localRank = 0;
  std::string masterAddr = "127.0.0.1";
  int64_t masterPort = 29500;
  /// How long a collective or the rendezvous waits for the other ranks before the run
  /// ends with an error (a rank that died, hangs, or never started).
  double timeoutSeconds = 120;
  /// Started by a launcher (the variables were set): a process group is made even for one
  /// rank, as torchrun --nproc_per_node=1 expects (NCCL with one rank on a GPU machine).
  bool launched = false;
};

struct TrainOptions {
  std::string config = "tiny";
  /// The model's size; 0: the config's (runtime/model/ModelSizes.h).
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t width = 0;
  /// The parameters' dtype on the CPU: float32, or float64 (tests: losses exact to 1e-9).
  std::string dtype = "float32";
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
  /// Where training windows start: "random" offsets or "aligned" with documents
  /// (runtime/train/TrainingWindows.h).
  std::string windows = "random";
  /// Checkpoints are written every checkpointEvery steps and after checkpointMinutes of
  /// training since the last one, whichever comes first, and at the end (0 turns a trigger off).
  int64_t checkpointEvery = 1000;
  double checkpointMinutes = 10;
  int64_t stopAfter = 0;                ///< stop (with a checkpoint) after this many steps; 0: run to `steps`
  /// Validation loss every evalEvery steps (and after the last) on evalWindows windows of
  /// the training length from the validation documents, into log.jsonl ("val_loss"); 0: never.
  int64_t evalEvery = 0;
  int64_t evalWindows = 8;
  /// The losses are read from the device every logEvery steps (one synchronisation for all
  /// of them; every step still gets its log line); 0: 1 on the CPU, 10 on a GPU.
  int64_t logEvery = 0;
  DistributedOptions distributed;
  std::string out;                      ///< the run directory
  bool resume = false;                  ///< continue from out/checkpoint
  bool quiet = false;                   ///< no progress line
};

/// The targets one window of an evaluation scores, as the model saw them (for tests: that
/// every length scores the same tokens is asserted from these, not assumed).
struct ScoredWindow {
  std::string length;            ///< "4x"
  int64_t unit = 0;              ///< the document (or stream chunk) it came from
  int64_t start = 0;             ///< where the window's first input token sits in the unit
  std::vector<int64_t> offsets;  ///< each scored target's place in the unit
  std::vector<int64_t> targets;  ///< its token id, read from the tensor given to the model
  std::vector<int64_t> positions;  ///< its position in the window (0 = predicted from one token)
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
  /// same-tokens (default), stream or first-window (runtime/train/Evaluate.h)
  std::string protocol = "same-tokens";
  int64_t maxDocuments = 0;         ///< units (documents; stream: chunks of the longest length); 0: all
  int64_t positionBucket = 0;       ///< > 0: also the loss by position in the window, in buckets this wide
  std::string out;                  ///< JSON file (Evaluate.h: evalResultJson)
  /// Called with every window as it is scored; tests only.
  std::function<void(const ScoredWindow&)> onScored;
};

/// `attn passkey` (runtime/train/Passkey.h).
struct PasskeyOptions {
  std::string checkpoint;
  std::string attnFile;
  std::string attnName;
  std::vector<std::string> sets;
  std::string backend = "cpu";
  std::string device = "cpu";
  std::vector<std::string> lengths = {"1x", "2x", "4x", "8x", "16x"};
  std::vector<double> depths = {0, 0.25, 0.5, 0.75, 1};
  int64_t trials = 20;              ///< instances per (length, depth)
  uint64_t seed = 1;
  std::string rope = "ntk";
  std::string filler = "text";      ///< text (validation documents) or repeat
  int digits = 5;
  std::string out;
};

}  // namespace attn::train
