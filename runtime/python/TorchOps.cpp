// attn's programs as PyTorch operators: a shared library (libattn_torch_ops.so) that
// registers, with TORCH_LIBRARY, the operators the Python package (python/attn) calls:
//
//   attn::attention(q, k, v, source, name="", params="", backend="auto", documents=None,
//                   cu_seqlens=None) -> Tensor
//   attn::attention_backward(dout, q, k, v, source, name, params, backend, documents=None,
//                            cu_seqlens=None) -> (dq, dk, dv)
//   attn::check(source, name="", params="", path="<source>") -> str   (the attention's name)
//
// `source` is the program's .attn text; `params` are param overrides "NAME=VALUE,NAME=VALUE"
// (a string: TorchScript schemas take no default for a list of strings); `backend` is
// reference, cpu, cuda, or auto (cuda for CUDA tensors, cpu otherwise). Compiled programs
// are kept per (source, name, params), so a training loop compiles once. `documents` (ids
// [Lk] or [B, Lk]) or `cu_seqlens` (offsets [D + 1]): packed documents, for a program whose
// mask is `per document` (runtime/Attention.h, Documents).
//
// How it is registered, and why so:
// - CPU and CUDA kernels run attn::Program below autograd.
// - An Autograd kernel (a torch::autograd::Function) saves q, k, v and calls
//   attention_backward through the dispatcher, so the backward is one opaque operator too:
//   torch.compile's AOTAutograd traces forward and backward as two graph nodes instead of
//   descending into attn's kernels. attention_backward recomputes the forward with the
//   backend's own autograd (runtime/CpuOp.cpp, CudaOp.cpp, or ATen's for the reference):
//   one extra forward per backward, the price of going through the public Program API.
// - Meta kernels give output shapes and dtypes without running anything (fake tensors,
//   tracing). They are registered here when the LibTorch we are built against is older than
//   2.4 (which has no torch.library.register_fake); with 2.4 or newer they are left out and
//   python/attn/_registration.py registers the same shapes with register_fake, the API
//   that torch.compile documents (register_fake refuses an operator with a Meta kernel).
// - Gradients of gradients are refused with an error rather than silently zero.
// Errors: attn::UserError becomes a RuntimeError "attn: MESSAGE" (python/attn maps it to
// attn.AttnError / attn.CompileError).
//
// What it is not: a second implementation — it only calls attn::Program.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>
#include <torch/version.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "compiler/Diagnostics.h"
#include "runtime/Attention.h"

// Where register_fake exists (PyTorch >= 2.4), Python registers the fake kernels.
#if TORCH_VERSION_MAJOR < 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 4)
#define ATTN_REGISTER_META_IN_CPP 1
#else
#define ATTN_REGISTER_META_IN_CPP 0
#endif

namespace {

std::shared_ptr<const attn::Program> programFor(const std::string& source, const std::string& name,
                                                const std::string& params, const std::string& path) {
  static std::mutex mutex;
  static std::map<std::tuple<std::string, std::string, std::string>, std::shared_ptr<const attn::Program>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[{source, name, params}];
  if (!slot) {
    attn::CompileOptions options;
    options.name = name;
    attn::DiagnosticEngine diags;
    size_t start = 0;
    while (start < params.size()) {
      size_t comma = params.find(',', start);
      if (comma == std::string::npos) comma = params.size();
      const std::string item = params.substr(start, comma - start);
      if (!item.empty())
        if (auto o = attn::parseOverride(item, diags)) options.overrides.push_back(*o);
      start = comma + 1;
    }
    if (diags.hasErrors()) throw attn::UserError(diags.renderToString());
    slot = std::make_shared<const attn::Program>(attn::Program::fromSource(source, options, path));
  }
  return slot;
}

attn::Backend backendFor(const std::string& backend, const at::Tensor& q) {
  if (backend == "auto") return q.is_cuda() ? attn::Backend::Cuda : attn::Backend::Cpu;
  return attn::parseBackend(backend);
}

// Runs f, turning attn's exceptions into PyTorch's (RuntimeError in Python).
template <typename F>
auto reportingErrors(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const attn::UserError& e) {
    TORCH_CHECK(false, "attn: ", e.what());
  } catch (const attn::InternalError& e) {
    TORCH_CHECK(false, "attn internal error (please report it with the program): ", e.what(), " at ", e.where());
  }
}

std::string str(c10::string_view s) { return std::string(s.data(), s.size()); }

using OptionalTensor = c10::optional<at::Tensor>;

attn::Documents documentsOf(const OptionalTensor& ids, const OptionalTensor& offsets) {
  attn::Documents d;
  if (ids && ids->defined()) d.ids = *ids;
  if (offsets && offsets->defined()) d.offsets = *offsets;
  return d;
}

at::Tensor attentionKernel(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, c10::string_view source,
                           c10::string_view name, c10::string_view params, c10::string_view backend,
                           const OptionalTensor& documents, const OptionalTensor& cuSeqlens) {
  return reportingErrors([&] {
    auto program = programFor(str(source), str(name), str(params), "<torch.ops.attn>");
    return (*program)(q, k, v, backendFor(str(backend), q), documentsOf(documents, cuSeqlens));
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attentionBackwardKernel(
    const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, c10::string_view source,
    c10::string_view name, c10::string_view params, c10::string_view backend, const OptionalTensor& documents,
    const OptionalTensor& cuSeqlens) {
  return reportingErrors([&] {
    auto program = programFor(str(source), str(name), str(params), "<torch.ops.attn>");
    // We are called below autograd (the dispatcher excluded its keys) and usually with grad
    // mode off (inside the engine's backward): the recompute needs both back.
    c10::impl::LocalDispatchKeySet tls = c10::impl::tls_local_dispatch_key_set();
    c10::impl::PODLocalDispatchKeySet keys;
    keys.set_included(tls.included_);
    keys.set_excluded(tls.excluded_ - c10::autograd_dispatch_keyset_with_ADInplaceOrView);
    c10::impl::ForceDispatchKeyGuard withAutograd(keys);
    at::AutoGradMode gradMode(true);
    at::Tensor qd = q.detach().requires_grad_(), kd = k.detach().requires_grad_(), vd = v.detach().requires_grad_();
    at::Tensor o = (*program)(qd, kd, vd, backendFor(str(backend), q), documentsOf(documents, cuSeqlens));
    auto grads = torch::autograd::grad({o}, {qd, kd, vd}, {dout}, /*retain_graph=*/false, /*create_graph=*/false,
                                       /*allow_unused=*/true);
    for (size_t i = 0; i < 3; ++i)
      if (!grads[i].defined()) grads[i] = at::zeros_like(i == 0 ? q : i == 1 ? k : v);
    return std::make_tuple(grads[0], grads[1], grads[2]);
  });
}

std::string checkKernel(c10::string_view source, c10::string_view name, c10::string_view params,
                        c10::string_view path) {
  return reportingErrors([&] { return programFor(str(source), str(name), str(params), str(path))->name(); });
}

// ---- autograd -------------------------------------------------------------------------

using AttentionSignature = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, c10::string_view,
                                      c10::string_view, c10::string_view, c10::string_view, const OptionalTensor&,
                                      const OptionalTensor&);
using BackwardSignature = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, c10::string_view, c10::string_view,
    c10::string_view, c10::string_view, const OptionalTensor&, const OptionalTensor&);

const c10::TypedOperatorHandle<AttentionSignature>& attentionOp() {
  static auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("attn::attention", "").typed<AttentionSignature>();
  return op;
}

const c10::TypedOperatorHandle<BackwardSignature>& attentionBackwardOp() {
  static auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("attn::attention_backward", "").typed<BackwardSignature>();
  return op;
}

class AttentionFunction : public torch::autograd::Function<AttentionFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, const std::string& source, const std::string& name,
                            const std::string& params, const std::string& backend, const OptionalTensor& documents,
                            const OptionalTensor& cuSeqlens) {
    at::AutoDispatchBelowADInplaceOrView below;
    at::Tensor o = attentionOp().call(q, k, v, source, name, params, backend, documents, cuSeqlens);
    ctx->save_for_backward({q, k, v});
    // Integer tensors without gradients: kept as they are (undefined when not given).
    ctx->saved_data["documents"] = documents ? *documents : at::Tensor();
    ctx->saved_data["cu_seqlens"] = cuSeqlens ? *cuSeqlens : at::Tensor();
    ctx->saved_data["source"] = source;
    ctx->saved_data["name"] = name;
    ctx->saved_data["params"] = params;
    ctx->saved_data["backend"] = backend;
    return o;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto text = [&](const char* key) { return ctx->saved_data[key].toStringRef(); };
    auto optional = [&](const char* key) -> OptionalTensor {
      at::Tensor t = ctx->saved_data[key].toTensor();
      return t.defined() ? OptionalTensor(t) : c10::nullopt;
    };
    auto [dq, dk, dv] =
        attentionBackwardOp().call(grads[0], saved[0], saved[1], saved[2], text("source"), text("name"),
                                   text("params"), text("backend"), optional("documents"), optional("cu_seqlens"));
    return {dq, dk, dv, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor attentionAutograd(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, c10::string_view source,
                             c10::string_view name, c10::string_view params, c10::string_view backend,
                             const OptionalTensor& documents, const OptionalTensor& cuSeqlens) {
  return AttentionFunction::apply(q, k, v, str(source), str(name), str(params), str(backend), documents, cuSeqlens);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attentionBackwardAutograd(
    const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, c10::string_view source,
    c10::string_view name, c10::string_view params, c10::string_view backend, const OptionalTensor& documents,
    const OptionalTensor& cuSeqlens) {
  if (at::GradMode::is_enabled())
    for (const at::Tensor* t : {&dout, &q, &k, &v})
      TORCH_CHECK(!t->requires_grad(),
                  "attn: gradients of gradients (double backward, create_graph=True) are not supported");
  at::AutoDispatchBelowADInplaceOrView below;
  return attentionBackwardOp().call(dout, q, k, v, source, name, params, backend, documents, cuSeqlens);
}

// ---- shapes without data (Meta) ---------------------------------------------------------

#if ATTN_REGISTER_META_IN_CPP
at::Tensor attentionMeta(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, c10::string_view,
                         c10::string_view, c10::string_view, c10::string_view backend, const OptionalTensor&,
                         const OptionalTensor&) {
  return reportingErrors([&] {
    if (str(backend) != "auto") attn::parseBackend(str(backend));
    attn::validateInputs(q, k, v);  // shapes, dtypes, devices only: no data is read
    if (q.dim() == 2) return at::empty({q.size(0), v.size(1)}, q.options());
    return at::empty({q.size(0), q.size(1), q.size(2), v.size(3)}, q.options());
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attentionBackwardMeta(const at::Tensor&, const at::Tensor& q,
                                                                     const at::Tensor& k, const at::Tensor& v,
                                                                     c10::string_view, c10::string_view,
                                                                     c10::string_view, c10::string_view,
                                                                     const OptionalTensor&, const OptionalTensor&) {
  return std::make_tuple(at::empty_like(q), at::empty_like(k), at::empty_like(v));
}
#endif

}  // namespace

TORCH_LIBRARY(attn, m) {
  m.def("attention(Tensor q, Tensor k, Tensor v, str source, str name=\"\", str params=\"\", str backend=\"auto\", "
        "Tensor? documents=None, Tensor? cu_seqlens=None) -> Tensor");
  m.def("attention_backward(Tensor dout, Tensor q, Tensor k, Tensor v, str source, str name, str params, str backend, "
        "Tensor? documents=None, Tensor? cu_seqlens=None) -> (Tensor, Tensor, Tensor)");
  m.def("check(str source, str name=\"\", str params=\"\", str path=\"<source>\") -> str", &checkKernel);
}

TORCH_LIBRARY_IMPL(attn, CPU, m) {
  m.impl("attention", attentionKernel);
  m.impl("attention_backward", attentionBackwardKernel);
}

TORCH_LIBRARY_IMPL(attn, CUDA, m) {
  m.impl("attention", attentionKernel);
  m.impl("attention_backward", attentionBackwardKernel);
}

TORCH_LIBRARY_IMPL(attn, Autograd, m) {
  m.impl("attention", attentionAutograd);
  m.impl("attention_backward", attentionBackwardAutograd);
}

#if ATTN_REGISTER_META_IN_CPP
TORCH_LIBRARY_IMPL(attn, Meta, m) {
  m.impl("attention", attentionMeta);
  m.impl("attention_backward", attentionBackwardMeta);
}
#endif
