// GPT-2 whose attention is any compiled .attn program: the model of the paper's experiment
// (../shared/paper/METHOD.md, section 5), with learned absolute positions replaced by RoPE
// (and NTK-aware RoPE scaling for evaluation beyond the training length), tied embeddings,
// pre-LayerNorm blocks, GELU (tanh) MLPs and GPT-2's initialisation.
//
// The attention of every layer is `program(q, k, v, backend)` on [B, H, T, head_dim]
// tensors, after RoPE on q and k; the program carries its own mask and scaling (the stdlib
// programs are causal). Everything here is LibTorch's C++ API; the heavy torch headers stay
// in Gpt2.cpp.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <utility>

#include "runtime/Attention.h"

namespace torch::nn {
class Module;
}

namespace attn::model {

struct Gpt2Config {
  std::string name = "tiny";
  int64_t layers = 4;
  int64_t heads = 4;
  int64_t width = 128;      ///< model dimension; head_dim = width / heads
  int64_t vocab = 50304;    ///< GPT-2's 50,257 padded to a multiple of 64
  int64_t seqLen = 256;     ///< training length
  double ropeBase = 10000;  ///< RoPE's θ base

  /// "tiny" (CPU tests and demos: 4 layers, 4 heads, 128 wide, T = 256), "small" (6, 6, 384,
  /// T = 512), "45m" (6, 8, 512, T = 1024), "124m" (GPT-2 small: 12, 12, 768, T = 1024),
  /// "355m" (GPT-2 medium: 24, 16, 1024, T = 1024): runtime/model/ModelSizes.h. UserError for
  /// anything else.
  static Gpt2Config named(const std::string& name);
  int64_t headDim() const { return width / heads; }
  std::string toJson() const;
  /// The inverse of toJson; UserError naming the missing or bad field.
  static Gpt2Config fromJson(const std::string& text);
};

/// How RoPE's base is chosen for a sequence of length L (trained at length L_train):
/// None: the trained base. NtkStatic: base · α^(d / (d - 2)) with α = evalLength / L_train,
/// fixed for every sequence. NtkDynamic: the same with α = max(1, L / L_train) per forward.
enum class RopeScaling { None, NtkStatic, NtkDynamic };
RopeScaling parseRopeScaling(const std::string& name);  ///< "none", "ntk", "ntk-dynamic"

/// The NTK-aware base: base · α^(d / (d - 2)) (α <= 1 gives the base unchanged).
double ntkBase(double base, double alpha, int64_t headDim);

/// cos and sin tables [T, head_dim / 2] (float64 math, float32 result) for positions 0..T-1:
/// angle(t, p) = t · base^(-2p / head_dim).
std::pair<at::Tensor, at::Tensor> ropeTables(int64_t length, int64_t headDim, double base);

/// Rotates pairs (x_p, x_{p + d/2}) of x [B, H, T, d] by the angles of the tables
/// (GPT-NeoX layout: the first and the second half of each head).
at::Tensor applyRope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

class Gpt2 {
 public:
  /// A freshly initialised model (GPT-2 initialisation, seeded by the caller's
  /// at::manual_seed) whose attention is `attention` on `backend`.
  Gpt2(const Gpt2Config& config, Program attention, Backend backend);
  ~Gpt2();
  Gpt2(Gpt2&&) noexcept;
  Gpt2& operator=(Gpt2&&) noexcept;

  /// logits [B, T, vocab] for token ids [B, T] (int64).
  at::Tensor forward(const at::Tensor& tokens);
  /// Mean cross-entropy of predicting targets [B, T] (nats).
  at::Tensor loss(const at::Tensor& tokens, const at::Tensor& targets);
  /// Cross-entropy of every prediction [B, T] (nats, float32 at least): what evaluation
  /// averages over the positions it scores.
  at::Tensor tokenLosses(const at::Tensor& tokens, const at::Tensor& targets);
  /// logits [B, K, vocab] of the last K positions of tokens [B, T] only (the head's
  /// B·T·vocab product is the largest tensor of a long evaluation; answers need the end).
  at::Tensor lastLogits(const at::Tensor& tokens, int64_t k);

  /// The attention program (for evaluation with another program than the one trained).
  void setAttention(Program attention, Backend backend);
  void setRopeScaling(RopeScaling scaling, int64_t evalLength = 0);

  const Gpt2Config& config() const;
  /// The torch::nn::Module behind it (parameters, train/eval, save/load, to(dtype)).
  torch::nn::Module& impl();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attn::model
