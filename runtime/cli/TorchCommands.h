// The commands that need LibTorch (`attn run`, train, eval, passkey) live in a shared
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

#include "runtime/train/TrainOptions.h"

namespace attn::cli {

struct RunOptions {
  std::string file;
  std::string name;
  std::vector<std::string> sets;
  std::string backend = "reference";
  std::string q, k, v, dout;
  std::string outDir;
  /// Packed documents as cumulative offsets "0,37,38,539" (FlashAttention's cu_seqlens), for a
  /// program whose mask is `per document`; empty: one document.
  std::string cuSeqlens;
};

/// `attn train`: the trainer's options (runtime/train/TrainOptions.h; 0 / empty: defaults)
/// and what only the command has.
struct TrainCliOptions {
  train::TrainOptions train;
  std::string data;  ///< a directory of token shards; empty: the built-in corpus
  int threads = 0;   ///< 0: all cores
};

/// `attn eval`.
struct EvalCliOptions {
  EvalCliOptions() { eval.maxDocuments = 8; }  // the first 8 long-enough documents by default
  train::EvalOptions eval;
  std::string data;
  std::string plot;  ///< PNG (gnuplot); empty: none
  int threads = 0;
};

/// `attn passkey`.
struct PasskeyCliOptions {
  train::PasskeyOptions passkey;
  std::string data;  ///< the run's data directory (its tokenizer, its validation text as filler)
  int threads = 0;
};

}  // namespace attn::cli

extern "C" {
/// `attn train`, `attn eval`: exit statuses as attn_run_command.
int attn_train_command(const attn::cli::TrainCliOptions* options);
int attn_eval_command(const attn::cli::EvalCliOptions* options);
int attn_passkey_command(const attn::cli::PasskeyCliOptions* options);
/// `attn run`: returns the process exit status; prints its own diagnostics.
int attn_run_command(const attn::cli::RunOptions* options);
}

/// The library's file name (looked up in ../lib next to the binary, then beside it).
#define ATTN_TORCH_COMMANDS_LIBRARY "libattn_torch_commands.so"
