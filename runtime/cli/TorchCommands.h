// The commands that need LibTorch (`attn run`, later train and eval) live in a shared
// library, build/lib/libattn_torch_commands.so, that build/bin/attn opens with dlopen only
// when one of them runs: LibTorch pulls in ~285 shared libraries and ~0.9 s of start-up
// that `attn check`, `fmt`, `explain` and `emit` should not pay.
//
// This header is the whole interface between the two: plain structs of options filled by
// main.cpp's command-line parser, and one C entry point per command.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attn::cli {

struct RunOptions {
  std::string file;
  std::string name;
  std::vector<std::string> sets;
  std::string backend = "reference";
  std::string q, k, v, dout;
  std::string outDir;
};

/// `attn train` (runtime/train/Trainer.h says what each field means; 0 / empty: defaults).
struct TrainCliOptions {
  std::string config = "tiny";
  std::string attn, name;
  std::vector<std::string> sets;
  std::string backend = "cpu";
  std::string device = "cpu";
  std::string data;  ///< a directory of token shards; empty: the built-in corpus
  int64_t steps = 0, seqLen = 0, microBatch = 0, batchTokens = 0, warmup = -1, checkpointEvery = 0, stopAfter = 0;
  int64_t vocab = 0;
  double lr = 0, weightDecay = 0.1, clip = 1.0, minLrRatio = 0.1;
  uint64_t seed = 1;
  bool resume = false, quiet = false;
  std::string out;
  int threads = 0;
};

/// `attn eval`.
struct EvalCliOptions {
  std::string checkpoint;
  std::string attn, name;
  std::vector<std::string> sets;
  std::string backend = "cpu";
  std::string device = "cpu";
  std::string data;
  std::string lengths = "1x,2x,4x,8x,16x";
  std::string rope = "ntk";
  int64_t maxDocuments = 8;
  std::string out;   ///< JSON
  std::string plot;  ///< PNG (gnuplot); empty: none
  int threads = 0;
};

}  // namespace attn::cli

extern "C" {
/// `attn train`, `attn eval`: exit statuses as attn_run_command.
int attn_train_command(const attn::cli::TrainCliOptions* options);
int attn_eval_command(const attn::cli::EvalCliOptions* options);
/// `attn run`: returns the process exit status; prints its own diagnostics.
int attn_run_command(const attn::cli::RunOptions* options);
}

/// The library's file name (looked up in ../lib next to the binary, then beside it).
#define ATTN_TORCH_COMMANDS_LIBRARY "libattn_torch_commands.so"
