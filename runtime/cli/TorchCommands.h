// The commands that need LibTorch (`attn run`, later train and eval) live in a shared
// library, build/lib/libattn_torch_commands.so, that build/bin/attn opens with dlopen only
// when one of them runs: LibTorch pulls in ~285 shared libraries and ~0.9 s of start-up
// that `attn check`, `fmt`, `explain` and `emit` should not pay.
//
// This header is the whole interface between the two: plain structs of options filled by
// main.cpp's command-line parser, and one C entry point per command.
#pragma once

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

}  // namespace attn::cli

extern "C" {
/// `attn run`: returns the process exit status; prints its own diagnostics.
int attn_run_command(const attn::cli::RunOptions* options);
}

/// The library's file name (looked up in ../lib next to the binary, then beside it).
#define ATTN_TORCH_COMMANDS_LIBRARY "libattn_torch_commands.so"
