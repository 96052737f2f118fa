// A training run's checkpoint: RUN/checkpoint/ holds model.pt, optimizer.pt (LibTorch
// archives), state.json ({"step": s, "train_loss": l}) and MANIFEST (support/Manifest.h: each
// file's size and XXH64 checksum).
//
// Writing: the archives are serialised in memory, then every file is written with
// support::writeFileAtomically into a fresh directory RUN/checkpoint.tmp.<pid>.<n> (created
// with mkdir, so nothing planted there is reused), the manifest last; then the directory is
// swapped in: checkpoint -> checkpoint.old, the new one -> checkpoint, old removed. A write
// that fails (a full disk, an I/O error) is a UserError naming the file, the new directory is
// removed and the previous checkpoint is untouched; a kill at any moment leaves
// RUN/checkpoint (or, during the swap, RUN/checkpoint.old) whole.
//
// Reading: every file is read as a regular file (support/ReadFile.h) and checked against the
// manifest before LibTorch sees it; a missing file, a size or checksum mismatch, a malformed
// state.json or an archive LibTorch cannot load is a UserError naming the file. A checkpoint
// without a manifest (written by attn before checkpoints carried one) is still loaded, with a
// warning that it cannot be verified: refusing it would strand every older run.
#pragma once

#include <cstdint>
#include <string>

namespace torch::nn {
class Module;
}
namespace torch::optim {
class Optimizer;
}

namespace attn::train {

/// Writes RUN/checkpoint for (model, optimizer) after `step` (0-based) with `loss`.
void saveCheckpoint(const std::string& runDir, torch::nn::Module& model,
                    torch::optim::Optimizer& optimizer, int64_t step, double loss);

/// The newest whole checkpoint directory of a run (RUN/checkpoint, else RUN/checkpoint.old),
/// or "" when there is none.
std::string findCheckpoint(const std::string& runDir);

/// Loads the checkpoint in `checkpointDir` into `model` (and `optimizer` when not null,
/// which then needs optimizer.pt); returns its step. Throws UserError naming the file.
int64_t loadCheckpoint(const std::string& checkpointDir, torch::nn::Module& model,
                       torch::optim::Optimizer* optimizer);

/// Removes RUN/checkpoint.tmp* left by a run that was killed while writing one.
void removeCheckpointTemporaries(const std::string& runDir);

}  // namespace attn::train
