#include "runtime/model/Gpt2.h"

#include "runtime/model/ModelSizes.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/init.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace attn::model {

Gpt2Config Gpt2Config::named(const std::string& name) {
  const std::optional<ModelSize> size = namedModelSize(name);
  if (!size) throw UserError("unknown model config '" + name + "' (expected " + kModelSizeNames + ")");
  Gpt2Config c;
  c.name = name;
  c.layers = size->layers, c.heads = size->heads, c.width = size->width, c.seqLen = size->seqLen;
  return c;
}

std::string Gpt2Config::toJson() const {
  nlohmann::json j = {{"name", name},   {"layers", layers}, {"heads", heads},       {"width", width},
                      {"vocab", vocab}, {"seq_len", seqLen}, {"rope_base", ropeBase}};
  return j.dump(2);
}

Gpt2Config Gpt2Config::fromJson(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw UserError(std::string("model config is not valid JSON: ") + e.what());
  }
  Gpt2Config c;
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) throw UserError(std::string("model config lacks \"") + key + "\"");
    try {
      j.at(key).get_to(field);
    } catch (const nlohmann::json::exception&) {
      throw UserError(std::string("model config: \"") + key + "\" has the wrong type");
    }
  };
  get("name", c.name);
  get("layers", c.layers);
  get("heads", c.heads);
  get("width", c.width);
  get("vocab", c.vocab);
  get("seq_len", c.seqLen);
  get("rope_base", c.ropeBase);
  if (c.layers <= 0 || c.heads <= 0 || c.width <= 0 || c.vocab <= 0 || c.seqLen <= 0 || c.width % c.heads != 0 ||
      c.headDim() % 2 != 0)
    throw UserError("model config has impossible sizes (width must be a multiple of heads, head_dim even)");
  return c;
}

RopeScaling parseRopeScaling(const std::string& name) {
  if (name == "none") return RopeScaling::None;
  if (name == "ntk") return RopeScaling::NtkStatic;
  if (name == "ntk-dynamic") return RopeScaling::NtkDynamic;
  throw UserError("unknown RoPE scaling '" + name + "' (expected none, ntk or ntk-dynamic)");
}

double ntkBase(double base, double alpha, int64_t headDim) {
  if (alpha <= 1) return base;
  return base * std::pow(alpha, static_cast<double>(headDim) / static_cast<double>(headDim - 2));
}

std::pair<at::Tensor, at::Tensor> ropeTables(int64_t length, int64_t headDim, double base) {
  const int64_t half = headDim / 2;
  at::Tensor p = at::arange(half, at::kDouble);
  at::Tensor inverse = at::pow(base, -2.0 * p / static_cast<double>(headDim));
  at::Tensor t = at::arange(length, at::kDouble);
  at::Tensor angles = at::outer(t, inverse);
  return {at::cos(angles).to(at::kFloat), at::sin(angles).to(at::kFloat)};
}

at::Tensor applyRope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  at::Tensor c = cos.to(x.scalar_type()), s = sin.to(x.scalar_type());
  return at::cat({x1 * c - x2 * s, x2 * c + x1 * s}, -1);
}

namespace {

namespace F = torch::nn::functional;

struct BlockImpl : torch::nn::Module {
  BlockImpl(const Gpt2Config& c)
      : ln1(register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width})))),
        qkv(register_module("c_attn", torch::nn::Linear(c.width, 3 * c.width))),
        proj(register_module("attn_proj", torch::nn::Linear(c.width, c.width))),
        ln2(register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width})))),
        fc(register_module("c_fc", torch::nn::Linear(c.width, 4 * c.width))),
        out(register_module("mlp_proj", torch::nn::Linear(4 * c.width, c.width))) {}

  torch::nn::LayerNorm ln1;
  torch::nn::Linear qkv, proj;
  torch::nn::LayerNorm ln2;
  torch::nn::Linear fc, out;
};
TORCH_MODULE(Block);

}  // namespace

struct Gpt2::Impl : torch::nn::Module {
  Impl(const Gpt2Config& c, Program p, Backend b) : config(c), attention(std::move(p)), backend(b) {
    wte = register_module("wte", torch::nn::Embedding(c.vocab, c.width));
    for (int64_t l = 0; l < c.layers; ++l) blocks.push_back(register_module("h" + std::to_string(l), Block(c)));
    lnf = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width})));
    initialise();
  }

  // GPT-2: N(0, 0.02) weights, zero biases, residual projections scaled by 1/sqrt(2 layers).
  void initialise() {
    torch::NoGradGuard noGrad;
    const double residual = 0.02 / std::sqrt(2.0 * static_cast<double>(config.layers));
    torch::nn::init::normal_(wte->weight, 0, 0.02);
    for (auto& b : blocks) {
      for (auto* lin : {&b->qkv, &b->fc}) {
        torch::nn::init::normal_((*lin)->weight, 0, 0.02);
        torch::nn::init::zeros_((*lin)->bias);
      }
      for (auto* lin : {&b->proj, &b->out}) {
        torch::nn::init::normal_((*lin)->weight, 0, residual);
        torch::nn::init::zeros_((*lin)->bias);
      }
    }
  }

  std::pair<at::Tensor, at::Tensor> rope(int64_t length) {
    double base = config.ropeBase;
    if (scaling == RopeScaling::NtkStatic)
      base = ntkBase(base, static_cast<double>(evalLength) / static_cast<double>(config.seqLen), config.headDim());
    if (scaling == RopeScaling::NtkDynamic)
      base = ntkBase(base, static_cast<double>(length) / static_cast<double>(config.seqLen), config.headDim());
    if (cachedLength != length || cachedBase != base) {
      std::tie(cosTable, sinTable) = ropeTables(length, config.headDim(), base);
      cachedLength = length;
      cachedBase = base;
    }
    return {cosTable, sinTable};
  }

  // The final hidden states [B, T, width] (after ln_f).
  at::Tensor hidden(const at::Tensor& tokens) {
    if (tokens.dim() != 2 || tokens.scalar_type() != at::kLong)
      throw UserError("model input must be int64 token ids [B, T]");
    const int64_t B = tokens.size(0), T = tokens.size(1), H = config.heads, hd = config.headDim();
    auto [cos, sin] = rope(T);
    cos = cos.to(tokens.device());
    sin = sin.to(tokens.device());
    at::Tensor x = wte->forward(tokens);
    for (auto& b : blocks) {
      at::Tensor qkv = b->qkv->forward(b->ln1->forward(x)).view({B, T, 3, H, hd}).permute({2, 0, 3, 1, 4});
      at::Tensor q = applyRope(qkv[0], cos, sin), k = applyRope(qkv[1], cos, sin), v = qkv[2];
      at::Tensor y = attention(q.contiguous(), k.contiguous(), v.contiguous(), backend);
      x = x + b->proj->forward(y.transpose(1, 2).reshape({B, T, config.width}));
      x = x + b->out->forward(F::gelu(b->fc->forward(b->ln2->forward(x)), F::GELUFuncOptions().approximate("tanh")));
    }
    return lnf->forward(x);
  }

  at::Tensor head(const at::Tensor& x) { return at::matmul(x, wte->weight.t()); }  // tied embeddings

  at::Tensor forward(const at::Tensor& tokens) { return head(hidden(tokens)); }

  Gpt2Config config;
  Program attention;
  Backend backend;
  RopeScaling scaling = RopeScaling::None;
  int64_t evalLength = 0;
  torch::nn::Embedding wte{nullptr};
  std::vector<Block> blocks;
  torch::nn::LayerNorm lnf{nullptr};
  at::Tensor cosTable, sinTable;
  int64_t cachedLength = -1;
  double cachedBase = 0;
};

Gpt2::Gpt2(const Gpt2Config& config, Program attention, Backend backend)
    : impl_(std::make_unique<Impl>(config, std::move(attention), backend)) {}
Gpt2::~Gpt2() = default;
Gpt2::Gpt2(Gpt2&&) noexcept = default;
Gpt2& Gpt2::operator=(Gpt2&&) noexcept = default;

at::Tensor Gpt2::forward(const at::Tensor& tokens) { return impl_->forward(tokens); }

at::Tensor Gpt2::loss(const at::Tensor& tokens, const at::Tensor& targets) {
  at::Tensor logits = impl_->forward(tokens);
  // The loss in float32 at least (under bf16 autocast the logits are bf16).
  at::Tensor flat = logits.view({-1, logits.size(-1)});
  if (flat.scalar_type() != at::kDouble) flat = flat.to(at::kFloat);
  return F::cross_entropy(flat, targets.reshape({-1}));
}

at::Tensor Gpt2::tokenLosses(const at::Tensor& tokens, const at::Tensor& targets) {
  at::Tensor logits = impl_->forward(tokens);
  at::Tensor flat = logits.view({-1, logits.size(-1)});
  if (flat.scalar_type() != at::kDouble) flat = flat.to(at::kFloat);
  return F::cross_entropy(flat, targets.reshape({-1}), F::CrossEntropyFuncOptions().reduction(torch::kNone))
      .view(targets.sizes());
}

at::Tensor Gpt2::lastLogits(const at::Tensor& tokens, int64_t k) {
  at::Tensor x = impl_->hidden(tokens);
  const int64_t T = x.size(1);
  if (k < 1 || k > T) throw UserError("lastLogits: " + std::to_string(k) + " positions of " + std::to_string(T));
  return impl_->head(x.narrow(1, T - k, k));
}

void Gpt2::setAttention(Program attention, Backend backend) {
  impl_->attention = std::move(attention);
  impl_->backend = backend;
}

void Gpt2::setRopeScaling(RopeScaling scaling, int64_t evalLength) {
  impl_->scaling = scaling;
  impl_->evalLength = evalLength;
}

const Gpt2Config& Gpt2::config() const { return impl_->config; }
torch::nn::Module& Gpt2::impl() { return *impl_; }

}  // namespace attn::model
