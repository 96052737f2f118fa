// attn's programs as PyTorch operators: a shared library (libattn_torch_ops.so) that
// registers `torch.ops.attn.attention` with TORCH_LIBRARY, so Python loads it with
// torch.ops.load_library and calls any .attn program on tensors, with autograd, on the
// reference, cpu or cuda backend (python/attn_torch.py wraps it):
//
//   torch.ops.attn.attention(q, k, v, source, name="", params="", backend="cuda") -> Tensor
//
// `source` is the program's .attn text; `params` are param overrides "NAME=VALUE,NAME=VALUE"
// (a string: TorchScript schemas take no default for a list of strings). Compiled programs
// are kept per (source, name, params), so a training loop compiles once. The op is
// CompositeImplicitAutograd: its autograd is the backend's own (runtime/CudaOp.cpp,
// CpuOp.cpp, or ATen's for the reference). Errors are attn::UserError messages, raised in
// Python as RuntimeError.
//
// What it is not: a second implementation — it only calls attn::Program.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "compiler/Diagnostics.h"
#include "runtime/Attention.h"

namespace {

const attn::Program& programFor(const std::string& source, const std::string& name, const std::string& params) {
  static std::mutex mutex;
  static std::map<std::tuple<std::string, std::string, std::string>, std::unique_ptr<attn::Program>> cache;
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
    slot = std::make_unique<attn::Program>(attn::Program::fromSource(source, options, "<torch.ops.attn>"));
  }
  return *slot;
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, c10::string_view source,
                     c10::string_view name, c10::string_view params, c10::string_view backend) {
  try {
    const attn::Program& program = programFor(std::string(source), std::string(name), std::string(params));
    return program(q, k, v, attn::parseBackend(std::string(backend)));
  } catch (const attn::UserError& e) {
    TORCH_CHECK(false, "attn: ", e.what());
  } catch (const attn::InternalError& e) {
    TORCH_CHECK(false, "attn internal error (please report it with the program): ", e.what(), " at ", e.where());
  }
}

}  // namespace

TORCH_LIBRARY(attn, m) {
  m.def("attention(Tensor q, Tensor k, Tensor v, str source, str name=\"\", str params=\"\", str backend=\"cuda\") -> Tensor");
}

TORCH_LIBRARY_IMPL(attn, CompositeImplicitAutograd, m) { m.impl("attention", attention); }
