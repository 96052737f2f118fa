// The library API: compile an .attn program once, call it on tensors.
//
//   attn::Program p = attn::Program::fromFile("stdlib/lssar.attn", {.overrides = {{"p", "3"}}});
//   at::Tensor o = p(q, k, v);                       // reference backend, autograd-enabled
//   o.backward(dout);                                // dq, dk, dv in q.grad() etc.
//
// Tensors: q [B,Hq,Lq,D], k [B,Hkv,Lk,D], v [B,Hkv,Lk,Dv] (or all three [L,D]); Lq <= Lk, the
// queries being the last Lq positions; Hq a multiple of Hkv (grouped-query attention: query
// head h reads key/value head h / (Hq/Hkv), as repeat_interleave would; MQA is Hkv = 1); float16, bfloat16, float32 or float64, all the
// same dtype and on the same device. The result has q's dtype and rank. Arithmetic is
// float32 inside (float64 for float64 inputs). Any violation is an attn::UserError whose
// message says what was expected and what was given.
//
// This file deliberately includes only ATen's Tensor header: users' translation units
// stay cheap to compile.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "compiler/IR.h"
#include "compiler/Pipeline.h"

namespace attn {

/// An error in what the user gave (a program, a tensor, a flag). The message is complete.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Backend { Reference, Cpu, Cuda };
const char* backendName(Backend b);
/// "reference", "cpu", "cuda"; throws UserError for anything else.
Backend parseBackend(const std::string& name);

/// The documents of a packed batch, for a program whose mask is `per document`
/// (docs/LANGUAGE-NOTES.md, "Documents"). Give one of:
///   ids      int32 or int64, [Lk] (every batch row) or [B, Lk]: the document of each key
///            position, non-decreasing along the sequence (each document one contiguous run);
///   offsets  cumulative sequence lengths (FlashAttention's cu_seqlens), int32 or int64,
///            [D + 1]: 0 = c_0 <= c_1 <= ... <= c_D = Lk, document d spanning [c_d, c_{d+1}).
/// Neither: the whole sequence is one document.
struct Documents {
  at::Tensor ids;
  at::Tensor offsets;
  bool given() const { return ids.defined() || offsets.defined(); }
};

/// The ids of `docs` checked against validated 4-D inputs (Lk = k.size(2), B = k.size(0)) and
/// `graph` (whose mask must be `per document`): int64 [1 or B, Lk] on the CPU, non-decreasing
/// along each row; offsets turned into ids. Undefined when no documents were given. Throws
/// UserError naming the problem.
at::Tensor validateDocuments(const Documents& docs, const ir::Graph& graph, const at::Tensor& q, const at::Tensor& k);

/// cu_seqlens [D + 1] -> document ids [Lk] (document d's positions hold d). Throws UserError
/// unless 0 = c_0 <= ... <= c_D = length.
at::Tensor documentIdsFromOffsets(const at::Tensor& offsets, int64_t length);

class Program {
 public:
  /// Compiles the attention `options.name` (or the only one) of an .attn file. Throws
  /// UserError carrying the rendered diagnostics.
  static Program fromFile(const std::string& path, const CompileOptions& options = {});
  /// The same from source text; `path` names it in diagnostics.
  static Program fromSource(const std::string& source, const CompileOptions& options = {},
                            const std::string& path = "<source>");

  /// o = attention(q, k, v) on `backend`.
  at::Tensor operator()(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        Backend backend = Backend::Reference) const;
  /// The same on a packed batch: each row sees only its own document's keys.
  at::Tensor operator()(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, Backend backend,
                        const Documents& documents) const;

  const std::string& name() const { return graph_->name; }
  const ir::Graph& graph() const { return *graph_; }

 private:
  explicit Program(ir::Graph graph);
  std::shared_ptr<const ir::Graph> graph_;
  std::shared_ptr<struct CpuProgramState> cpu_;  ///< the CPU backend's kernels, compiled on first use
  std::shared_ptr<struct CudaProgramState> cuda_;  ///< the CUDA backend's kernels, compiled on first use
};

/// Checks q, k, v as the header describes; throws UserError naming the tensor and the
/// problem. Returns them as 4-D tensors.
struct AttentionInputs {
  at::Tensor q, k, v;
  bool wasTwoDimensional = false;
};
AttentionInputs validateInputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

}  // namespace attn
