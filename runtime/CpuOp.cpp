#include "runtime/CpuOp.h"

#include <ATen/ATen.h>

#include <map>
#include <optional>
#include <mutex>
#include <tuple>

#include "runtime/Attention.h"
#include "runtime/HeadShape.h"
#include "runtime/RowScaling.h"

#ifdef ATTN_HAVE_LLVM
#include <torch/csrc/autograd/custom_function.h>

#include "codegen/llvm/CpuBackend.h"
#endif

namespace attn {

#ifdef ATTN_HAVE_LLVM

struct CpuProgramState {
  std::shared_ptr<const ir::Graph> graph;
  std::mutex mutex;
  std::optional<KernelPlan> plan;  // scheduled on first use: reference-only users never pay for it
  // by (float64?, d, dv): kernels specialised for the head dimensions they run on
  std::map<std::tuple<bool, int64_t, int64_t>, std::shared_ptr<const cpu::CpuKernels>> kernels;

  const cpu::CpuKernels& get(bool f64, int64_t d, int64_t dv) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!plan) plan = schedule(*graph);
    auto& k = kernels[{f64, d, dv}];
    if (!k) k = cpu::compile(*plan, f64, d, dv);
    return *k;
  }

  // The kernels, when their program has a backward; a UserError saying why otherwise.
  const cpu::CpuKernels& getWithBackward(bool f64, int64_t d, int64_t dv) {
    const cpu::CpuKernels& k = get(f64, d, dv);
    if (!k.source.backwardUnsupported.empty())
      throw UserError("the cpu backend cannot differentiate '" + graph->name + "': " + k.source.backwardUnsupported +
                      "; use --backend reference for gradients");
    return k;
  }
};

std::shared_ptr<CpuProgramState> makeCpuProgramState(std::shared_ptr<const ir::Graph> graph) {
  auto state = std::make_shared<CpuProgramState>();
  state->graph = std::move(graph);
  return state;
}

namespace {

template <typename T>
T* ptr(const at::Tensor& t) {
  return t.data_ptr<T>();
}

// Validated ids [R, Lk] (int64, CPU, non-decreasing) -> the drivers' document boundaries.
std::optional<documents::Ranges> rangesOf(const at::Tensor& ids, int64_t headsPerRow) {
  if (!ids.defined()) return std::nullopt;
  documents::Ranges r;
  r.headsPerRow = headsPerRow;
  const int64_t rows = ids.size(0), lk = ids.size(1);
  const int64_t* p = ids.data_ptr<int64_t>();
  for (int64_t row = 0; row < rows; ++row) {
    std::vector<int64_t> b{0};
    for (int64_t x = 1; x < lk; ++x)
      if (p[row * lk + x] != p[row * lk + x - 1]) b.push_back(x);
    b.push_back(lk);
    r.bounds.push_back(std::move(b));
  }
  return r;
}

class CpuAttentionFunction : public torch::autograd::Function<CpuAttentionFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, CpuProgramState* state,
                            const c10::optional<at::Tensor>& documents) {
    const bool f64 = q.scalar_type() == at::kDouble;
    const cpu::Shape s = headShape(q, k, v);
    const at::Tensor ids = documents ? *documents : at::Tensor();
    const auto ranges = rangesOf(ids, q.size(1));
    const documents::Ranges* docs = ranges ? &*ranges : nullptr;
    const cpu::CpuKernels& kernels = state->get(f64, s.d, s.dv);
    at::Tensor o = at::empty({q.size(0), q.size(1), s.lq, s.dv}, q.options());
    at::Tensor stats = at::empty({q.size(0), q.size(1), s.lq, std::max(kernels.source.statSlots, 1)}, q.options());
    if (f64)
      cpu::forward<double>(kernels, s, ptr<double>(q), ptr<double>(k), ptr<double>(v), ptr<double>(o),
                           ptr<double>(stats), docs);
    else
      cpu::forward<float>(kernels, s, ptr<float>(q), ptr<float>(k), ptr<float>(v), ptr<float>(o), ptr<float>(stats),
                          docs);
    ctx->save_for_backward({q, k, v, o, stats});
    ctx->saved_data["documents"] = ids;
    ctx->saved_data["state"] = reinterpret_cast<int64_t>(state);
    return o;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &o = saved[3], &stats = saved[4];
    auto* state = reinterpret_cast<CpuProgramState*>(ctx->saved_data["state"].toInt());
    const bool f64 = q.scalar_type() == at::kDouble;
    const cpu::CpuKernels& kernels = state->getWithBackward(f64, q.size(3), v.size(3));
    at::Tensor dout = grads[0].to(q.scalar_type()).contiguous();
    const cpu::Shape s = headShape(q, k, v);
    const auto ranges = rangesOf(ctx->saved_data["documents"].toTensor(), q.size(1));
    const documents::Ranges* docs = ranges ? &*ranges : nullptr;
    at::Tensor dq = at::empty_like(q), dk = at::empty_like(k), dv = at::empty_like(v);
    if (f64)
      cpu::backward<double>(kernels, s, ptr<double>(q), ptr<double>(k), ptr<double>(v), ptr<double>(o),
                            ptr<double>(stats), ptr<double>(dout), ptr<double>(dq), ptr<double>(dk), ptr<double>(dv),
                            docs);
    else
      cpu::backward<float>(kernels, s, ptr<float>(q), ptr<float>(k), ptr<float>(v), ptr<float>(o), ptr<float>(stats),
                           ptr<float>(dout), ptr<float>(dq), ptr<float>(dk), ptr<float>(dv), docs);
    return {dq, dk, dv, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor cpuAttention(CpuProgramState& state, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        const at::Tensor& documents) {
  if (!q.device().is_cpu())
    throw UserError("the cpu backend takes tensors on the CPU; q is on " + q.device().str());
  const auto compute = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  // Refused before the forward pass, not in the middle of backward.
  if (q.requires_grad() || k.requires_grad() || v.requires_grad())
    state.getWithBackward(q.scalar_type() == at::kDouble, q.size(3), v.size(3));
  at::Tensor qc = q.to(compute), kc = k.to(compute), vc = v.to(compute).contiguous();
  // Rows used only through l2norm, brought near 1 (RowScaling.h): no overflow at 1e20.
  if (ir::usedOnlyNormalised(*state.graph, ir::Op::Query)) qc = scaleRowsToUnit(qc);
  if (ir::usedOnlyNormalised(*state.graph, ir::Op::Key)) kc = scaleRowsToUnit(kc);
  // An optional, not an undefined tensor: autograd takes every tensor argument for an input
  // and asks an undefined one for its device.
  const c10::optional<at::Tensor> ids = documents.defined() ? c10::optional<at::Tensor>(documents) : c10::nullopt;
  return CpuAttentionFunction::apply(qc.contiguous(), kc.contiguous(), vc, &state, ids);
}

#else

struct CpuProgramState {};
std::shared_ptr<CpuProgramState> makeCpuProgramState(std::shared_ptr<const ir::Graph>) {
  return std::make_shared<CpuProgramState>();
}
at::Tensor cpuAttention(CpuProgramState&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  throw UserError("this attn was built without LLVM (ATTN_WITH_LLVM=OFF): the cpu backend is unavailable; "
                  "use --backend reference");
}

#endif

}  // namespace attn
