// torch.ops.attn.attention (runtime/python/TorchOps.cpp), the way Python reaches it: the
// library loaded at run time registers the operator with PyTorch's dispatcher; called
// through the dispatcher it computes what attn::Program computes, differentiates, keeps
// params, and reports a bad program as an error naming attn.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <doctest/doctest.h>
#include <dlfcn.h>

#include <string>
#include <vector>

#include "TestUtil.h"
#include "runtime/Attention.h"

using namespace attn;

namespace {

// torch.ops.attn.attention(q, k, v, source, name, params, backend) through the dispatcher.
at::Tensor callOp(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const std::string& source,
                  const std::string& params, const std::string& backend) {
  static void* handle = ::dlopen(ATTN_TORCH_OPS_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  REQUIRE_MESSAGE(handle != nullptr, ::dlerror());
  auto op = c10::Dispatcher::singleton().findSchemaOrThrow("attn::attention", "");
  // A boxed call fills in no defaults: documents and cu_seqlens are None.
  std::vector<c10::IValue> stack{q, k, v, source, std::string(""), params, backend, c10::IValue(), c10::IValue()};
  op.callBoxed(&stack);
  REQUIRE(stack.size() == 1);
  return stack[0].toTensor();
}

}  // namespace

TEST_SUITE("api") {
  TEST_CASE("torch.ops.attn.attention: registered by the op library, equal to Program, with autograd and params") {
    const std::string source = test::readFile(std::string(ATTN_STDLIB) + "/lssar.attn");
    at::manual_seed(3);
    at::Tensor q = at::randn({1, 2, 37, 16}, at::kDouble).requires_grad_(),
               k = at::randn({1, 2, 37, 16}, at::kDouble).requires_grad_(),
               v = at::randn({1, 2, 37, 8}, at::kDouble).requires_grad_();
    for (const std::string backend : {"reference", "cpu"}) {
      at::Tensor o = callOp(q, k, v, source, "p=5", backend);
      CompileOptions options;
      DiagnosticEngine diags;
      options.overrides.push_back(*parseOverride("p=5", diags));
      at::Tensor want = Program::fromSource(source, options)(q, k, v, Backend::Reference);
      INFO(backend);
      CHECK((o - want).abs().max().item<double>() < 1e-9);
      // p=5 is not the default: the override reached the program.
      at::Tensor byDefault = Program::fromSource(source)(q, k, v, Backend::Reference);
      CHECK((byDefault - want).abs().max().item<double>() > 1e-6);
      auto gradsOf = [&](const at::Tensor& out) {
        for (at::Tensor* t : {&q, &k, &v})
          if (t->grad().defined()) t->mutable_grad().zero_();
        out.sum().backward();
        return std::vector<at::Tensor>{q.grad().clone(), k.grad().clone(), v.grad().clone()};
      };
      std::vector<at::Tensor> grads = gradsOf(o), wantGrads = gradsOf(want);
      for (size_t g = 0; g < 3; ++g) CHECK((grads[g] - wantGrads[g]).abs().max().template item<double>() < 1e-8);
    }
    try {
      callOp(q, k, v, "attention a {\n  out qq\n}\n", "", "cpu");
      FAIL("a broken program was accepted");
    } catch (const c10::Error& e) {
      std::string m = e.what();
      CHECK(m.find("attn: ") != std::string::npos);
      CHECK(m.find("2:7: error: unknown name 'qq'") != std::string::npos);
    }
  }
}
