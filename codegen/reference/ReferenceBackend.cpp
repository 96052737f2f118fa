#include "codegen/reference/ReferenceBackend.h"

#include <ATen/ATen.h>

#include "compiler/ScalarOps.h"

#include <cmath>
#include <limits>

namespace attn::reference {

namespace {

using ir::Node;
using ir::NodeId;
using ir::Op;

// Evaluates the live nodes of a graph, one tensor per node. The heads are split into
// groups (grouped-query attention: G query heads share one key/value head, G = 1 without
// it), so that a key head broadcasts over its group instead of being copied. Shapes by kind:
//   Constant [] (0-dim), Row [B,Hkv,G,Lq,1], Score [B,Hkv,G,Lq,Lk], QueryVec [B,Hkv,G,Lq,D],
//   KeyVec [B,Hkv,1,Lk,D]; the leaves i and j broadcast from [1,1,1,Lq,1] and [1,1,1,1,Lk]
//   (with documents, [R,1,1,Lq,1] and [R,1,1,1,Lk], R = 1 or B, and L is [R,1,1,Lq,1]).
class Evaluator {
 public:
  Evaluator(const ir::Graph& g, const at::Tensor& q, const at::Tensor& k, const at::Tensor& documents)
      : g_(g), q_(q), k_(k), values_(g.size()) {
    options_ = q.options();
    ATTN_INTERNAL_ASSERT(q.dim() == 5 && k.dim() == 5, "reference: q and k must be grouped [B,Hkv,G,L,D]");
    lq_ = q.size(3);
    lk_ = k.size(3);
    // i: absolute query positions (the queries are the last Lq of Lk positions).
    i_ = at::arange(lk_ - lq_, lk_, options_).view({1, 1, 1, lq_, 1});
    j_ = at::arange(0, lk_, options_).view({1, 1, 1, 1, lk_});
    length_ = scalar(static_cast<double>(lk_));
    if (g.perDocument && documents.defined()) useDocuments(documents);
    mask_ = buildMask();
    if (sameDocument_.defined()) mask_ = mask_.logical_and(sameDocument_);
    n_ = mask_.to(options_.dtype()).sum(-1, /*keepdim=*/true);
    maskReady_ = true;
  }

  const at::Tensor& mask() const { return mask_; }

  at::Tensor weights() {
    at::Tensor w = eval(g_.out);
    w = w.expand({q_.size(0), q_.size(1), q_.size(2), lq_, lk_});
    return at::where(mask_, w, at::zeros({}, options_));
  }

 private:
  const ir::Graph& g_;
  at::Tensor q_, k_;
  std::vector<at::Tensor> values_;
  at::TensorOptions options_;
  int64_t lq_ = 0, lk_ = 0;
  at::Tensor i_, j_, mask_, n_;
  at::Tensor length_;        // L: Lk, or per row [R,1,1,Lq,1] the length of the row's document
  at::Tensor sameDocument_;  // [R,1,1,Lq,Lk]: row and key in one document (undefined: one document)

  // `per document` (IR.h): i, j and L become the row's and key's positions in their
  // document and the document's length, and only keys of the row's document are visible.
  // Built from the ids alone, with tensor operations (the drivers' ranges are not used, so
  // this is an independent statement of the meaning). ids: [R, Lk] integers, R = 1 or B,
  // non-decreasing along each row (runtime/Attention.cpp checked that).
  void useDocuments(const at::Tensor& ids) {
    const int64_t rows = ids.size(0);
    at::Tensor pos = at::arange(0, lk_, ids.options().dtype(at::kLong)).expand({rows, lk_});
    at::Tensor id = ids.to(at::kLong);
    // A document starts where its id differs from the previous position's.
    at::Tensor starts = at::ones_like(id, at::kBool);
    if (lk_ > 1) starts.narrow(1, 1, lk_ - 1).copy_(id.narrow(1, 1, lk_ - 1) != id.narrow(1, 0, lk_ - 1));
    // Start of each position's document: the running maximum of the start positions seen.
    at::Tensor start = std::get<0>(at::cummax(at::where(starts, pos, at::zeros_like(pos)), 1));
    // End (exclusive): the same from the right, on the reversed sequence.
    at::Tensor ends = at::ones_like(id, at::kBool);
    if (lk_ > 1) ends.narrow(1, 0, lk_ - 1).copy_(id.narrow(1, 0, lk_ - 1) != id.narrow(1, 1, lk_ - 1));
    at::Tensor endRev = std::get<0>(at::cummax(at::where(ends, lk_ - pos, at::zeros_like(pos)).flip({1}), 1));
    at::Tensor end = lk_ + 1 - endRev.flip({1});
    at::Tensor length = end - start;
    at::Tensor rowPos = pos.narrow(1, lk_ - lq_, lq_);
    auto asRows = [&](const at::Tensor& t) { return t.narrow(1, lk_ - lq_, lq_).to(options_.dtype()).view({rows, 1, 1, lq_, 1}); };
    i_ = (rowPos - start.narrow(1, lk_ - lq_, lq_)).to(options_.dtype()).view({rows, 1, 1, lq_, 1});
    j_ = (pos - start).to(options_.dtype()).view({rows, 1, 1, 1, lk_});
    length_ = asRows(length);
    sameDocument_ = (id.narrow(1, lk_ - lq_, lq_).view({rows, 1, 1, lq_, 1}) == id.view({rows, 1, 1, 1, lk_}));
  }
  bool evaluatingMask_ = false;
  bool maskReady_ = false;  // mask_ and n_ are built: values can be confined to them

  // A constant in the arithmetic's precision. In float32, a folded constant beyond its
  // range is +-inf, as the arithmetic would have made it (ATen refuses to convert it).
  at::Tensor scalar(double v) const {
    return at::scalar_tensor(options_.dtype() == at::kFloat ? ir::roundToFloat32(v) : v, options_);
  }

  at::Tensor buildMask() {
    auto bool_ = [](const at::Tensor& t) { return t.to(at::kBool); };
    switch (g_.mask) {
      case ir::MaskKind::Full: return bool_(at::ones({rows(), 1, 1, lq_, lk_}, options_));
      case ir::MaskKind::Causal: return bool_(j_ <= i_).expand({rows(), 1, 1, lq_, lk_});
      case ir::MaskKind::Window: {
        at::Tensor w = eval(g_.maskExpr);
        return bool_((j_ <= i_).logical_and(j_ > i_ - w)).expand({rows(), 1, 1, lq_, lk_});
      }
      case ir::MaskKind::Expr: {
        evaluatingMask_ = true;
        at::Tensor m = eval(g_.maskExpr);
        evaluatingMask_ = false;
        values_.assign(g_.size(), at::Tensor());  // nothing computed for the mask is reused
        return (m != 0).expand({rows(), 1, 1, lq_, lk_}).contiguous();
      }
    }
    ATTN_INTERNAL_ERROR("unknown mask kind");
  }

  // Rows of the mask: 1, or B with per-batch-row documents.
  int64_t rows() const { return sameDocument_.defined() ? sameDocument_.size(0) : 1; }

  // x where the mask is set, `neutral` elsewhere; x broadcast to [B,H,Lq,Lk].
  at::Tensor masked(const at::Tensor& x, double neutral) const {
    return at::where(mask_, x, scalar(neutral));
  }

  at::Tensor eval(NodeId id) {
    at::Tensor& slot = values_.at(static_cast<size_t>(id));
    if (!slot.defined()) slot = confine(g_.node(id), compute(g_.node(id)));
    return slot;
  }

  // Every score value is 0 at masked positions and every row value 0 in a row with no
  // unmasked key, as soon as it is computed. The forward result would be the same without
  // this, but not the backward: an inf or NaN computed at a masked position (exp of a large
  // masked score, (b/m)^15 for a future key) times its zero gradient is NaN, and would flow
  // into dq and dk. where() selects in backward instead of multiplying, so it drops them.
  at::Tensor confine(const Node& n, const at::Tensor& value) const {
    if (!maskReady_) return value;
    if (n.kind == ValueKind::Score) return at::where(mask_, value, scalar(0));
    if (n.kind == ValueKind::Row) return at::where(isEmptyRow(), scalar(0), value);
    return value;
  }

  at::Tensor compute(const Node& n) {
    std::vector<at::Tensor> a;
    for (NodeId o : n.operands) a.push_back(eval(o));
    switch (n.op) {
      case Op::Const: return scalar(n.value);
      case Op::Query: return q_;
      case Op::Key: return k_;
      case Op::RowIndex: return i_;
      case Op::KeyIndex: return j_;
      case Op::RowCount:
        ATTN_INTERNAL_ASSERT(!evaluatingMask_, "n used in a mask");
        return n_;
      case Op::KeyCount: return length_;
      case Op::HeadDim: return scalar(static_cast<double>(q_.size(-1)));
      case Op::Neg: return -a[0];
      case Op::Not: return (a[0] == 0).to(options_.dtype());
      case Op::Add: return a[0] + a[1];
      case Op::Sub:
        // x - rowmax(x) (softmax's shift) is shifted by 0 where every visible x is -inf, so
        // that row's exp(x - rowmax(x)) is 0 rather than NaN (IR.h).
        if (g_.node(n.operands[1]).op == Op::RowMax && g_.node(n.operands[1]).operands[0] == n.operands[0])
          return a[0] - at::where(a[1] == -std::numeric_limits<double>::infinity(), scalar(0), a[1]);
        return a[0] - a[1];
      case Op::Mul: return a[0] * a[1];
      case Op::Div: return a[0] / a[1];
      case Op::SafeDiv: {
        return safeDivide(a[0], a[1]);
      }
      case Op::Pow: return at::pow(a[0], a[1]);
      case Op::Min: return at::minimum(a[0], a[1]);
      case Op::Max: return at::maximum(a[0], a[1]);
      case Op::Clamp: return at::minimum(at::maximum(a[0], a[1]), a[2]);
      case Op::Lt: return (a[0] < a[1]).to(options_.dtype());
      case Op::Le: return (a[0] <= a[1]).to(options_.dtype());
      case Op::Gt: return (a[0] > a[1]).to(options_.dtype());
      case Op::Ge: return (a[0] >= a[1]).to(options_.dtype());
      case Op::Eq: return (a[0] == a[1]).to(options_.dtype());
      case Op::Ne: return (a[0] != a[1]).to(options_.dtype());
      case Op::And: return ((a[0] != 0).logical_and(a[1] != 0)).to(options_.dtype());
      case Op::Or: return ((a[0] != 0).logical_or(a[1] != 0)).to(options_.dtype());
      case Op::Select: return at::where(a[0] != 0, a[1], a[2]);
      case Op::Exp: return at::exp(a[0]);
      case Op::Log: return at::log(a[0]);
      case Op::Exp2: return at::exp2(a[0]);
      case Op::Log2: return at::log2(a[0]);
      case Op::Sqrt: return at::sqrt(a[0]);
      case Op::Rsqrt: return at::rsqrt(a[0]);
      case Op::Abs: return at::abs(a[0]);
      case Op::Sign: return at::where(at::isnan(a[0]), a[0], at::sign(a[0]));  // ATen's sign(NaN) is 0
      case Op::Tanh: return at::tanh(a[0]);
      case Op::Sigmoid: return at::sigmoid(a[0]);
      case Op::Softplus: return softplus(a[0]);
      case Op::Relu: return at::relu(a[0]);
      case Op::Relu6: return at::clamp(a[0], 0.0, 6.0);
      // erfc and sigmoid: 1 + erf(x) and 1 + tanh(x) lose every digit for x < -5.
      case Op::Gelu: return a[0] * 0.5 * at::erfc(a[0] * -M_SQRT1_2);
      case Op::GeluTanh: {
        const double c = std::sqrt(2.0 / M_PI);
        return a[0] * at::sigmoid(2 * c * (a[0] + 0.044715 * a[0] * a[0] * a[0]));
      }
      case Op::Silu: return a[0] * at::sigmoid(a[0]);
      case Op::Mish: return a[0] * at::tanh(softplus(a[0]));
      case Op::L2Norm: return l2norm(a[0]);
      case Op::VecScale: return a[0] * a[1];
      case Op::Dot: return dot(a[0], a[1]);
      case Op::RowSum: return rowSum(a[0]);
      case Op::RowMean: return safeDivide(rowSum(a[0]), n_);  // an empty row's sum is 0 too
      case Op::RowMax: return rowExtreme(a[0], /*max=*/true);
      case Op::RowMin: return rowExtreme(a[0], /*max=*/false);
      case Op::Normalize: {
        return safeDivide(a[0], rowSum(at::abs(a[0])));
      }
    }
    ATTN_INTERNAL_ERROR(std::string("reference backend: unhandled op ") + ir::opName(n.op));
  }

  // q_i . k_j for every (i, j). A matmul, unless a vector holds a NaN or inf: then its
  // backward (dq = dS k, dk = dS^T q) would multiply a masked pair's zero adjoint by it and
  // carry the NaN into rows and keys that never see it. So then each product is taken only
  // where the mask lets the pair through (an Lq x Lk x D tensor: slow, but only then).
  at::Tensor dot(const at::Tensor& qv, const at::Tensor& kv) const {
    if (at::isfinite(qv).all().item<bool>() && at::isfinite(kv).all().item<bool>())
      return at::matmul(qv, kv.transpose(-1, -2));
    at::Tensor pair = mask_.unsqueeze(-1);  // [1,1,1,Lq,Lk,1]
    at::Tensor zero = scalar(0);
    return (at::where(pair, qv.unsqueeze(-2), zero) * at::where(pair, kv.unsqueeze(-3), zero)).sum(-1);
  }

  // num / den, and 0 where den is 0; the division never sees a 0, so no inf or NaN reaches
  // the gradients either.
  at::Tensor safeDivide(const at::Tensor& num, const at::Tensor& den) const {
    at::Tensor zero = den == 0;
    return at::where(zero, scalar(0), num / at::where(zero, scalar(1), den));
  }

  static at::Tensor softplus(const at::Tensor& x) { return at::relu(x) + at::log1p(at::exp(-at::abs(x))); }

  // x / |x| over the last dimension, and 0 for a zero vector. The math is scale-invariant,
  // so x is first divided by its largest |x_c|: |x|^2 then neither overflows (x ~ 1e20 in
  // float32) nor underflows (x ~ 1e-30). The scale is a constant for autograd (detached):
  // the result does not depend on it, so its exact gradient is 0.
  static at::Tensor l2norm(const at::Tensor& x) {
    at::Tensor scale = x.detach().abs().amax(-1, true);
    at::Tensor unit = x / at::where(scale == 0, at::ones_like(scale), scale);
    at::Tensor norm = unit.pow(2).sum(-1, true).sqrt();
    at::Tensor zero = norm == 0;
    return at::where(zero, at::zeros_like(unit), unit / at::where(zero, at::ones_like(norm), norm));
  }

  // Sum over unmasked j. A value of lower kind is broadcast over the row first.
  at::Tensor rowSum(const at::Tensor& x) const {
    ATTN_INTERNAL_ASSERT(!evaluatingMask_, "row reduction in a mask");
    return masked(x, 0).sum(-1, true);
  }

  at::Tensor rowExtreme(const at::Tensor& x, bool max) const {
    ATTN_INTERNAL_ASSERT(!evaluatingMask_, "row reduction in a mask");
    const double inf = std::numeric_limits<double>::infinity();
    at::Tensor filled = masked(x, max ? -inf : inf);
    at::Tensor r = max ? filled.amax(-1, true) : filled.amin(-1, true);
    // A row with no unmasked key gives 0 (LANGUAGE: reductions over nothing are 0).
    return at::where(isEmptyRow(), scalar(0), r);
  }

  at::Tensor isEmptyRow() const { return n_ == 0; }
};

at::Tensor computeInputs(const at::Tensor& t) {
  at::ScalarType compute = t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return t.to(compute);
}

// q [B,Hq,Lq,D] as [B,Hkv,G,Lq,D]: query head h is member h % G of group h / G, the group
// that key/value head h / G serves (torch's repeat_interleave order). A view unless q is
// strided oddly.
at::Tensor groupQueries(const at::Tensor& q, int64_t kvHeads) {
  ATTN_INTERNAL_ASSERT(q.size(1) % kvHeads == 0, "reference: query heads not a multiple of key heads");
  return q.reshape({q.size(0), kvHeads, q.size(1) / kvHeads, q.size(2), q.size(3)});
}

// k or v [B,Hkv,L,D] as [B,Hkv,1,L,D]: one key head broadcast over its group.
at::Tensor groupKeys(const at::Tensor& t) { return t.unsqueeze(2); }

// [B,Hkv,G,L,X] back to [B,Hq,L,X].
at::Tensor ungroup(const at::Tensor& t) { return t.flatten(1, 2); }

}  // namespace

at::Tensor weights(const ir::Graph& graph, const at::Tensor& q, const at::Tensor& k, const at::Tensor& documents) {
  Evaluator e(graph, groupQueries(computeInputs(q), k.size(1)), groupKeys(computeInputs(k)), documents);
  return ungroup(e.weights());
}

// o = w v, each row summing over its visible keys only. w is 0 at masked keys, but 0 times
// a NaN or inf in v is NaN: a matmul would carry a masked key's non-finite value into rows
// that cannot see it. So the keys with a non-finite value in v are taken out of the
// matmul (their entries zeroed) and their products added back where the key is visible.
static at::Tensor weightedValues(const at::Tensor& w, const at::Tensor& v, const at::Tensor& mask) {
  at::Tensor bad = at::logical_not(at::isfinite(v));  // [B,Hkv,1,Lk,Dv]
  if (!bad.any().item<bool>()) return at::matmul(w, v);
  at::Tensor o = at::matmul(w, at::where(bad, at::zeros({}, v.options()), v));
  at::Tensor keys = bad.any(-1).flatten(0, -2).any(0).nonzero().flatten();  // keys holding one anywhere
  at::Tensor wJ = w.index_select(-1, keys).unsqueeze(-1);                   // [B,Hkv,G,Lq,J,1]
  at::Tensor vJ = v.index_select(-2, keys).unsqueeze(-3);                   // [B,Hkv,1,1,J,Dv]
  at::Tensor seen = mask.index_select(-1, keys).unsqueeze(-1).logical_and(bad.index_select(-2, keys).unsqueeze(-3));
  return o + at::where(seen, wJ * vJ, at::zeros({}, v.options())).sum(-2);
}

at::Tensor forward(const ir::Graph& graph, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                   const at::Tensor& documents) {
  at::Tensor qc = computeInputs(q), kc = computeInputs(k), vc = v.to(qc.scalar_type());
  Evaluator e(graph, groupQueries(qc, kc.size(1)), groupKeys(kc), documents);
  return ungroup(weightedValues(e.weights(), groupKeys(vc), e.mask()));
}

}  // namespace attn::reference
