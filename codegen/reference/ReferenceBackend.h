// The reference backend: the score IR executed with LibTorch (ATen) tensor operations,
// materialising every score-kind value as a [B, H, Lq, Lk] tensor.
//
// It is the oracle every other backend is tested against and the "what the paper's
// authors did" baseline in benchmarks. It is deliberately not fast: it builds the L×L
// matrix for every score value. Backward is LibTorch autograd through the same ops.
//
// Numerics: arithmetic is float32 (float64 when the inputs are float64). Overflow of
// normalised exponentials and powers (softmax written as exp(s) / rowsum(exp(s)), LSSAR's
// relu(n·a - 1)^15) is removed before this backend runs, by the StabiliseNormalize pass,
// which rescales by a row maximum; softplus is computed as max(x, 0) + log1p(exp(-|x|)).
// Masked positions never contribute, forward or backward: every score value is replaced by
// where(mask, x, 0) as soon as it is computed (and every row value by 0 in a row with no
// unmasked key), never multiplied by the mask. where() selects in backward too, so an inf
// or NaN computed at a masked position cannot leak into o, dq, dk or dv.
#pragma once

#include <ATen/core/Tensor.h>

#include "compiler/IR.h"

namespace attn::reference {

/// Output o [B, Hq, Lq, Dv] of `graph` on q [B, Hq, Lq, D], k [B, Hkv, Lk, D], v [B, Hkv, Lk, Dv].
/// Shapes must already be valid (runtime/Attention.cpp checks them); Lq <= Lk, query row r
/// has absolute position i = Lk - Lq + r. Grouped-query attention: Hq = G·Hkv, query head h
/// reads key/value head h / G (broadcast, not copied; autograd sums dk, dv over the group). The result is in the compute dtype (float32, or
/// float64 for float64 inputs) and carries autograd history when the inputs require grad.
///
/// `documents` (for a program whose mask is `per document`; ignored otherwise, and an
/// undefined tensor is one document): integer ids [1, Lk] (every batch row) or [B, Lk], on
/// q's device, non-decreasing along each row (runtime/Attention.cpp checks): each row sees
/// only its own document's keys, with i, j and L taken within the document (IR.h).
at::Tensor forward(const ir::Graph& graph, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                   const at::Tensor& documents = {});

/// The weights w [B, Hq, Lq, Lk] (0 at masked positions), for tests and `attn explain`.
at::Tensor weights(const ir::Graph& graph, const at::Tensor& q, const at::Tensor& k, const at::Tensor& documents = {});

}  // namespace attn::reference
