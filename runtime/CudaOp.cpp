#include "runtime/CudaOp.h"

#include <ATen/ATen.h>

#include <map>
#include <mutex>
#include <optional>
#include <tuple>

#include "runtime/Attention.h"
#include "runtime/HeadShape.h"
#include "runtime/RowScaling.h"

#ifdef ATTN_HAVE_CUDA
#include <torch/csrc/autograd/custom_function.h>

#include "codegen/cuda/CudaBackend.h"
#include "codegen/cuda/CudaDriver.h"
#include "codegen/cuda/Nvrtc.h"
#include "codegen/cuda/Tuning.h"
#endif

namespace attn {

#ifdef ATTN_HAVE_CUDA

void requireCudaBackend() {
  const cuda::Driver& driver = cuda::Driver::get();
  if (!driver.available())
    throw UserError("the cuda backend needs an NVIDIA GPU: " + driver.whyNot() + "; use --backend cpu or reference");
}

struct CudaProgramState {
  std::shared_ptr<const ir::Graph> graph;
  std::mutex mutex;
  std::optional<KernelPlan> plan;
  std::optional<std::string> backwardUnsupported;  // why the derivative cannot be scheduled ("" if it can)
  // (dtype, d, dv, device, part, tile, exact math) -> the loaded module
  std::map<std::tuple<int, int, int, int, int, std::string, bool>, std::shared_ptr<const cuda::LoadedModule>> modules;

  // The loaded module for (dtype, d, dv) on `device`: with tensor cores, the forward or the
  // backward kernels (`part`), compiled when first needed.
  // The tile: `attn tune`'s winner for this length bucket and GPU, else the default.
  // `tensorCores` false: the float32 kernels whatever the dtype (inputs holding NaN or inf).
  const cuda::LoadedModule& get(cuda::Dtype dtype, int64_t d, int64_t dv, int device, cuda::ModulePart part,
                                int64_t length, bool tensorCores = true) {
    std::lock_guard<std::mutex> lock(mutex);
    cuda::CudaOptions options;
    options.part = part;
    options.dtype = dtype;
    options.headDim = static_cast<int>(d);
    options.valueDim = static_cast<int>(dv);
    if (!tensorCores || !cuda::tensorCoresApply(options)) {  // one float32 module (all kernels) serves every dtype
      options.dtype = cuda::Dtype::F32;
      options.part = cuda::ModulePart::All;
    }
    if (!plan) plan = schedule(*graph);
    const int cc = cuda::Driver::get().computeCapability(device);
    const int target = cuda::targetArch(cc);
    if (!target)
      throw UserError("the cuda backend needs a GPU of compute capability 8.0 or newer (Ampere, Ada, Hopper); "
                      "device " + std::to_string(device) + " is " + std::to_string(cc / 10) + "." +
                      std::to_string(cc % 10));
    if (cuda::tensorCoresApply(options)) {
      static const cuda::TuningTable table = [] {
        cuda::TuningTable t(cuda::TuningTable::defaultPath());
        t.load();
        return t;
      }();
      cuda::TuningKey key{cuda::programKey(*graph), cuda::dtypeName(options.dtype), options.headDim,
                          options.valueDim, cuda::lengthBucket(length), target};
      if (auto tuned = table.find(key)) options.tile = *tuned;
    }
    auto& m = modules[{static_cast<int>(options.dtype), options.headDim, options.valueDim, device,
                       static_cast<int>(options.part), options.tile.name(), options.exactMath}];
    if (!m) m = cuda::load(cuda::compileModule(*plan, options, target), device);
    return *m;
  }
};

// A UserError, before any work, when `state`'s program has no backward.
void requireBackward(CudaProgramState& state) {
  std::lock_guard<std::mutex> lock(state.mutex);
  if (!state.plan) state.plan = schedule(*state.graph);
  if (!state.backwardUnsupported) state.backwardUnsupported = differentiate(*state.plan).unsupported;
  if (!state.backwardUnsupported->empty())
    throw UserError("the cuda backend cannot differentiate '" + state.graph->name + "': " + *state.backwardUnsupported +
                    "; use --backend reference for gradients");
}

std::shared_ptr<CudaProgramState> makeCudaProgramState(std::shared_ptr<const ir::Graph> graph) {
  auto state = std::make_shared<CudaProgramState>();
  state->graph = std::move(graph);
  return state;
}

namespace {

// Are all of these finite? The tensor-core kernels multiply a masked pair's zero weight by
// its v (and, in backward, k, q, dO) inside the mma, so a NaN or inf there would reach rows
// that cannot see it (IR.h); such inputs run on the float32 kernels, which skip masked
// pairs. One reduction and a device sync per call.
bool allFinite(std::initializer_list<at::Tensor> tensors) {
  at::Tensor ok;
  for (const at::Tensor& t : tensors) {
    at::Tensor f = at::isfinite(t).all();
    ok = ok.defined() ? ok.logical_and(f) : f;
  }
  return ok.item<bool>();
}

uint64_t devicePtr(const at::Tensor& t) {
  return t.defined() ? static_cast<uint64_t>(reinterpret_cast<uintptr_t>(t.data_ptr())) : 0;
}

cuda::Dtype dtypeOf(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kHalf: return cuda::Dtype::F16;
    case at::kBFloat16: return cuda::Dtype::BF16;
    default: return cuda::Dtype::F32;
  }
}

class CudaAttentionFunction : public torch::autograd::Function<CudaAttentionFunction> {
 public:
  // q, k, v: contiguous, on one CUDA device, float16/bfloat16 (tensor cores) or float32.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, CudaProgramState* state) {
    const cuda::Shape s = headShape(q, k, v);
    const int device = q.device().index();
    const bool finite = allFinite({q, k, v});
    const cuda::LoadedModule& m = state->get(dtypeOf(q), s.d, s.dv, device, cuda::ModulePart::Forward, s.lk, finite);
    const auto& src = m.module->source;
    // The float32 kernels take float32 inputs; the tensor-core forward the inputs' own type.
    at::Tensor qc = q, kc = k, vc = v;
    if (!src.tensorCoreForward) {
      qc = q.to(at::kFloat).contiguous();
      kc = k.to(at::kFloat).contiguous();
      vc = v.to(at::kFloat).contiguous();
    }
    auto f32 = q.options().dtype(at::kFloat);
    at::Tensor o = at::empty({q.size(0), q.size(1), s.lq, s.dv}, qc.options());
    at::Tensor stats = at::empty({q.size(0), q.size(1), s.lq, std::max(src.scalar.statSlots, 1)}, f32);
    at::Tensor rq = src.scalar.needsQueryNorm ? at::empty({s.heads * s.lq}, f32) : at::Tensor();
    at::Tensor rk = src.scalar.needsKeyNorm ? at::empty({s.heads * s.lk}, f32) : at::Tensor();
    cuda::DeviceBuffers b;
    b.q = devicePtr(qc);
    b.k = devicePtr(kc);
    b.v = devicePtr(vc);
    b.o = devicePtr(o);
    b.stats = devicePtr(stats);
    b.rq = devicePtr(rq);
    b.rk = devicePtr(rk);
    cuda::forward(m, s, b, nullptr);
    ctx->save_for_backward({q, k, v, o, stats});
    ctx->saved_data["state"] = reinterpret_cast<int64_t>(state);
    ctx->saved_data["finite"] = finite;
    return o.to(q.scalar_type());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &o = saved[3], &stats = saved[4];
    auto* state = reinterpret_cast<CudaProgramState*>(ctx->saved_data["state"].toInt());
    const cuda::Shape s = headShape(q, k, v);
    const int device = q.device().index();
    requireBackward(*state);
    // The tensor-core backward on fp16/bf16 inputs where the forward had tensor cores; the
    // float32 kernels otherwise.
    const bool finite = ctx->saved_data["finite"].toBool() && allFinite({grads[0]});
    const cuda::LoadedModule* m = &state->get(dtypeOf(q), s.d, s.dv, device, cuda::ModulePart::Backward, s.lk, finite);
    const bool tensorCores = m->module->source.tensorCoreBackward;
    if (!tensorCores) m = &state->get(cuda::Dtype::F32, s.d, s.dv, device, cuda::ModulePart::All, s.lk);
    const auto& src = m->module->source.scalar;
    auto f32 = q.options().dtype(at::kFloat);
    const auto inputType = tensorCores ? q.scalar_type() : at::kFloat;
    at::Tensor qc = q.to(inputType).contiguous(), kc = k.to(inputType).contiguous(), vc = v.to(inputType).contiguous();
    at::Tensor oc = o.to(inputType).contiguous(), dout = grads[0].to(inputType).contiguous();
    at::Tensor dq = at::zeros(qc.sizes(), f32), dk = at::zeros(kc.sizes(), f32), dv = at::zeros(vc.sizes(), f32);
    at::Tensor adj = at::zeros({s.heads * s.lq * std::max(src.adjointSlots, 1)}, f32);
    at::Tensor rq, rk, rqBar, rkBar;
    if (src.needsQueryNorm) {
      rq = at::empty({s.heads * s.lq}, f32);
      rqBar = at::zeros({s.heads * s.lq}, f32);
    }
    if (src.needsKeyNorm) {
      rk = at::empty({s.heads * s.lk}, f32);
      rkBar = at::zeros({s.heads * s.lk}, f32);
    }
    cuda::DeviceBuffers b;
    b.q = devicePtr(qc);
    b.k = devicePtr(kc);
    b.v = devicePtr(vc);
    b.o = devicePtr(oc);
    b.stats = devicePtr(stats);
    b.rq = devicePtr(rq);
    b.rk = devicePtr(rk);
    b.dout = devicePtr(dout);
    b.adj = devicePtr(adj);
    b.dq = devicePtr(dq);
    b.dk = devicePtr(dk);
    b.dv = devicePtr(dv);
    b.rqBar = devicePtr(rqBar);
    b.rkBar = devicePtr(rkBar);
    cuda::backward(*m, s, b, nullptr);
    return {dq.to(q.scalar_type()), dk.to(k.scalar_type()), dv.to(v.scalar_type()), at::Tensor()};
  }
};

}  // namespace

at::Tensor cudaAttention(CudaProgramState& state, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  requireCudaBackend();
  if (!q.is_cuda())
    throw UserError("the cuda backend takes tensors on a CUDA device; q is on " + q.device().str() +
                    " (move q, k and v with .cuda())");
  if (q.scalar_type() == at::kDouble)
    throw UserError("the cuda backend computes in float32 and takes float16, bfloat16 or float32 tensors; "
                    "q is float64 (float64 runs on --backend cpu or reference)");
  // Refused before the forward pass, not in the middle of backward.
  if (q.requires_grad() || k.requires_grad() || v.requires_grad()) requireBackward(state);
  // Rows used only through l2norm, brought near 1 (RowScaling.h): no overflow at 1e20.
  at::Tensor qs = ir::usedOnlyNormalised(*state.graph, ir::Op::Query) ? scaleRowsToUnit(q) : q;
  at::Tensor ks = ir::usedOnlyNormalised(*state.graph, ir::Op::Key) ? scaleRowsToUnit(k) : k;
  return CudaAttentionFunction::apply(qs.contiguous(), ks.contiguous(), v.contiguous(), &state);
}

#else

void requireCudaBackend() {
  throw UserError("this attn was built without the CUDA toolkit (NVRTC): the cuda backend is unavailable; "
                  "use --backend cpu or reference");
}
struct CudaProgramState {};
std::shared_ptr<CudaProgramState> makeCudaProgramState(std::shared_ptr<const ir::Graph>) {
  return std::make_shared<CudaProgramState>();
}
at::Tensor cudaAttention(CudaProgramState&, const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  requireCudaBackend();
  return {};
}

#endif

}  // namespace attn
