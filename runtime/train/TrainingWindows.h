// Where `attn train` cuts its training windows from the token stream (--windows).
//
//   random   (the default) each window starts at a uniformly drawn token of the stream, so a
//            document is entered anywhere. Nothing is read up front.
//   aligned  each window starts at a document's start: its first input is the <|endoftext|>
//            that begins every document in a shard, as the instances `attn passkey` scores
//            begin with it. A document longer than the window is cut at window boundaries
//            from its start (windows at d, d + T, d + 2T, ... for a document at d), so every
//            token of it is still a target; after a short document the window runs on into
//            the next document(s), as the stream does: no padding, no masked targets (loss
//            masking at document boundaries belongs to document masking, not to this).
//            Every such start is drawn with the same probability.
//
// Why aligned: a task instance (`attn data synth --task passkey`) shorter than the window
// is then always seen whole, its needle in the context of its answer. With random offsets,
// on the cpu scale's passkey mix (instances of 64-192 tokens, windows of 128), only 38 % of
// the answer's targets had the needle inside their window, and 12 % of windows held one
// whole instance (examples/paper/results/cpu/NOTES.md).
//
// Cost: aligned reads every training token once when the run starts, to find the document
// starts (a few seconds per billion tokens from the page cache; the pages are released as
// they are read), and holds one int64 per window start (8 bytes per T tokens and per
// document: ~160 MB for FineWeb-10B at T = 1024).
//
// Both are functions of (seed, step, micro-batch) alone, so a resumed run draws the same
// windows, and the windows of rank r of `world` are r's share of what one rank draws.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/TokenStream.h"

namespace attn::train {

enum class WindowMode { Random, Aligned };

/// "random" or "aligned"; UserError naming --windows otherwise.
WindowMode parseWindowMode(const std::string& name);
std::string windowModeName(WindowMode mode);

/// The starts aligned windows of T inputs (T + 1 tokens with the last target) may have, in
/// increasing order: for every <|endoftext|> at d, d, d + T, d + 2T, ... before the next
/// <|endoftext|>, kept when the window ends inside the stream (start + T + 1 <= size).
/// Tokens before the first <|endoftext|> (a document continued from elsewhere) start no
/// window. UserError when there is none (no <|endoftext|> at all, or none with T + 1 tokens
/// of stream after it).
std::vector<int64_t> alignedWindowStarts(const data::TokenStream& tokens, uint32_t endOfText, int64_t T);

/// The first tokens of the `count` windows of micro-batch `micro` of step `step`, drawn from
/// a generator seeded by (seed, step, micro): uniformly in [0, streamSize - T - 1] (aligned
/// null: random offsets, the draws `attn train` has always made) or uniformly among
/// `*aligned`.
std::vector<int64_t> drawWindowStarts(int64_t count, uint64_t seed, int64_t step, int64_t micro, int64_t streamSize,
                                      int64_t T, const std::vector<int64_t>* aligned);

}  // namespace attn::train
