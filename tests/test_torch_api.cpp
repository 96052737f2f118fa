// The library API (runtime/Attention.h): input validation and its messages, shapes and
// dtypes of the result, compile errors as attn::UserError, the cuda backend without a GPU.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <functional>
#include <string>

#ifdef ATTN_HAVE_CUDA
#include "codegen/cuda/CudaDriver.h"
#endif
#include "runtime/Attention.h"

// LibTorch brings glog, whose CHECK(cond) aborts the process on failure: doctest's CHECK must
// win, so LibTorch is included first and its CHECK removed before doctest defines its own.
#undef CHECK
#include <doctest/doctest.h>

using namespace attn;

namespace {

// The message of the attn::UserError that `f` throws; "<no error>" when it returns, and
// "<other exception: ...>" when it throws something else.
std::string userErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<other exception: ") + e.what() + ">";
  }
  return "<no error>";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const Program& softmaxProgram() {
  static const Program p = Program::fromFile(std::string(ATTN_STDLIB) + "/softmax.attn");
  return p;
}

at::Tensor rnd(at::IntArrayRef shape, at::ScalarType dtype = at::kFloat) {
  static auto gen = at::make_generator<at::CPUGeneratorImpl>(31);
  return at::randn(shape, gen, at::kDouble).to(dtype);
}

// The same error from validateInputs and from Program::operator().
void expectInvalid(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const std::string& message) {
  CHECK(userErrorOf([&] { validateInputs(q, k, v); }) == message);
  CHECK(userErrorOf([&] { softmaxProgram()(q, k, v); }) == message);
}

}  // namespace

TEST_SUITE("api") {
  TEST_CASE("validation: dtype") {
    at::Tensor f = rnd({1, 2, 3, 4});
    expectInvalid(f.to(at::kInt), f, f, "q has dtype Int; attn takes float16, bfloat16, float32 or float64");
    expectInvalid(f, f.to(at::kLong), f, "k has dtype Long; attn takes float16, bfloat16, float32 or float64");
    expectInvalid(f, f, f.to(at::kBool), "v has dtype Bool; attn takes float16, bfloat16, float32 or float64");
  }

  TEST_CASE("validation: mixed dtypes") {
    at::Tensor f = rnd({1, 2, 3, 4});
    expectInvalid(f, f.to(at::kDouble), f, "q, k and v must have the same dtype; got Float, Double, Float");
    expectInvalid(f.to(at::kHalf), f.to(at::kHalf), f, "q, k and v must have the same dtype; got Half, Half, Float");
  }

  TEST_CASE("validation: rank") {
    at::Tensor f4 = rnd({1, 2, 3, 4});
    expectInvalid(rnd({2, 3, 4}), f4, f4, "q has shape [2, 3, 4]; expected [B, H, L, D] or [L, D]");
    expectInvalid(f4, f4, rnd({4}), "v has shape [4]; expected [B, H, L, D] or [L, D]");
    expectInvalid(f4, rnd({1, 1, 2, 3, 4}), f4, "k has shape [1, 1, 2, 3, 4]; expected [B, H, L, D] or [L, D]");
    expectInvalid(rnd({3, 4}), f4, f4,
                  "q, k and v must have the same rank; got [3, 4], [1, 2, 3, 4], [1, 2, 3, 4]");
  }

  TEST_CASE("validation: batch, heads and head dimension") {
    at::Tensor q = rnd({2, 3, 5, 4});
    expectInvalid(q, rnd({1, 3, 5, 4}), rnd({2, 3, 5, 4}),
                  "q, k and v must agree on batch; got [2, 3, 5, 4], [1, 3, 5, 4], [2, 3, 5, 4]");
    expectInvalid(q, rnd({2, 3, 5, 4}), rnd({2, 2, 5, 4}),
                  "k and v must have the same number of heads; got [2, 3, 5, 4] and [2, 2, 5, 4]");
    expectInvalid(q, rnd({2, 2, 5, 4}), rnd({2, 2, 5, 4}),
                  "q's heads (H_q = 3) must be a multiple of k and v's (H_kv = 2): grouped-query attention shares "
                  "each key/value head among H_q / H_kv query heads; got [2, 3, 5, 4], [2, 2, 5, 4], [2, 2, 5, 4]");
    expectInvalid(q, rnd({2, 3, 5, 8}), rnd({2, 3, 5, 4}),
                  "q and k must have the same head dimension; got [2, 3, 5, 4] and [2, 3, 5, 8]");
    expectInvalid(rnd({5, 4}), rnd({5, 6}), rnd({5, 4}),
                  "q and k must have the same head dimension; got [5, 4] and [5, 6]");
  }

  TEST_CASE("validation: k and v lengths, Lq > Lk") {
    expectInvalid(rnd({1, 2, 5, 4}), rnd({1, 2, 5, 4}), rnd({1, 2, 6, 4}),
                  "k and v must have the same length; got [1, 2, 5, 4] and [1, 2, 6, 4]");
    expectInvalid(rnd({1, 2, 6, 4}), rnd({1, 2, 5, 4}), rnd({1, 2, 5, 4}),
                  "q has more rows than k (6 > 5); the queries must be the last rows of the key sequence");
    expectInvalid(rnd({6, 4}), rnd({5, 4}), rnd({5, 4}),
                  "q has more rows than k (6 > 5); the queries must be the last rows of the key sequence");
  }

  TEST_CASE("validation: empty and undefined tensors") {
    expectInvalid(rnd({1, 2, 0, 4}), rnd({1, 2, 5, 4}), rnd({1, 2, 5, 4}), "q is empty: shape [1, 2, 0, 4]");
    expectInvalid(rnd({1, 2, 0, 4}), rnd({1, 2, 0, 4}), rnd({1, 2, 0, 4}), "q is empty: shape [1, 2, 0, 4]");
    expectInvalid(rnd({1, 2, 3, 4}), rnd({1, 2, 3, 4}), rnd({1, 2, 3, 0}), "v is empty: shape [1, 2, 3, 0]");
    expectInvalid(rnd({0, 2, 3, 4}), rnd({0, 2, 3, 4}), rnd({0, 2, 3, 4}), "q is empty: shape [0, 2, 3, 4]");
    expectInvalid(rnd({3, 0}), rnd({3, 0}), rnd({3, 2}), "q is empty: shape [3, 0]");
    at::Tensor f = rnd({1, 2, 3, 4});
    expectInvalid(at::Tensor(), f, f, "q is an undefined tensor");
    expectInvalid(f, f, at::Tensor(), "v is an undefined tensor");
  }

  TEST_CASE("valid inputs: shapes and dtypes of the result") {
    const Program& p = softmaxProgram();
    // [B,H,Lq,D] x [B,H,Lk,Dv] -> [B,H,Lq,Dv], Dv != D, Lq < Lk.
    at::Tensor o = p(rnd({2, 3, 4, 8}), rnd({2, 3, 9, 8}), rnd({2, 3, 9, 5}));
    CHECK(o.sizes() == at::IntArrayRef({2, 3, 4, 5}));
    CHECK((o.scalar_type() == at::kFloat));
    // The result has q's dtype.
    for (auto dtype : {at::kHalf, at::kBFloat16, at::kFloat, at::kDouble}) {
      at::Tensor od = p(rnd({1, 1, 3, 4}, dtype), rnd({1, 1, 3, 4}, dtype), rnd({1, 1, 3, 4}, dtype));
      CHECK((od.scalar_type() == dtype));
    }
    // validateInputs returns 4-D views and says whether the inputs were [L, D].
    AttentionInputs in = validateInputs(rnd({3, 4}), rnd({5, 4}), rnd({5, 2}));
    CHECK(in.wasTwoDimensional);
    CHECK(in.q.sizes() == at::IntArrayRef({1, 1, 3, 4}));
    CHECK(in.v.sizes() == at::IntArrayRef({1, 1, 5, 2}));
    CHECK_FALSE(validateInputs(rnd({1, 1, 3, 4}), rnd({1, 1, 3, 4}), rnd({1, 1, 3, 4})).wasTwoDimensional);
  }

  TEST_CASE("[L, D] inputs give [L, Dv] outputs equal to the [1, 1, L, D] call") {
    const Program& p = softmaxProgram();
    at::Tensor q = rnd({4, 6}), k = rnd({7, 6}), v = rnd({7, 3});
    at::Tensor o = p(q, k, v);
    CHECK(o.sizes() == at::IntArrayRef({4, 3}));
    at::Tensor o4 = p(q.view({1, 1, 4, 6}), k.view({1, 1, 7, 6}), v.view({1, 1, 7, 3}));
    CHECK(at::equal(o, o4.view({4, 3})));
    // Non-contiguous [L, D] inputs (transposed views) work too.
    at::Tensor qt = rnd({6, 4}).t(), kt = rnd({6, 7}).t(), vt = rnd({3, 7}).t();
    std::string err = userErrorOf([&] { p(qt, kt, vt); });
    CHECK_MESSAGE(err == "<no error>", err);
  }

  TEST_CASE("non-contiguous [B, H, L, D] inputs (a permuted [B, L, H, D] layout) give the contiguous result") {
    const Program& p = softmaxProgram();
    at::Tensor base = rnd({2, 7, 3, 5}, at::kDouble);  // [B, L, H, D]
    at::Tensor x = base.permute({0, 2, 1, 3});
    REQUIRE_FALSE(x.is_contiguous());
    CHECK(at::equal(p(x, x, x), p(x.contiguous(), x.contiguous(), x.contiguous())));
  }

  TEST_CASE("compile errors are attn::UserError with rendered diagnostics") {
    // A syntax error.
    std::string err = userErrorOf([] { Program::fromSource("attention broken {\n  out dot(q, k\n}\n"); });
    CHECK(contains(err, "error:"));
    CHECK(contains(err, "<source>:"));
    // The path given names the source.
    err = userErrorOf([] { Program::fromSource("attention a {\n  out dot(q, k) +\n}\n", {}, "mine.attn"); });
    CHECK(contains(err, "mine.attn:"));
    CHECK(contains(err, "error:"));
    // A semantic error: an unknown name.
    err = userErrorOf([] { Program::fromSource("attention a {\n  out dot(q, kk)\n}\n"); });
    CHECK(contains(err, "error:"));
    CHECK(contains(err, "kk"));
    // A file that does not exist.
    err = userErrorOf([] { Program::fromFile("/nonexistent/dir/x.attn"); });
    CHECK(contains(err, "error:"));
    CHECK(contains(err, "/nonexistent/dir/x.attn"));
    // An unknown param override.
    CompileOptions bad;
    bad.overrides = {{"nope", "3"}};
    err = userErrorOf([&] { Program::fromFile(std::string(ATTN_STDLIB) + "/lssar.attn", bad); });
    CHECK(contains(err, "error:"));
    CHECK(contains(err, "nope"));
    // Several attentions and no name; then the name selects one.
    const std::string two = "attention a {\n  out dot(q, k)\n}\nattention b {\n  out softmax(dot(q, k))\n}\n";
    err = userErrorOf([&] { Program::fromSource(two); });
    CHECK(contains(err, "error:"));
    CompileOptions pickB;
    pickB.name = "b";
    CHECK(Program::fromSource(two, pickB).name() == "b");
  }

  TEST_CASE("params: overrides change the program") {
    CompileOptions p3;
    p3.overrides = {{"p", "3"}};
    Program a = Program::fromFile(std::string(ATTN_STDLIB) + "/lssar.attn");
    Program b = Program::fromFile(std::string(ATTN_STDLIB) + "/lssar.attn", p3);
    CHECK(a.name() == "lssar");
    at::Tensor q = rnd({1, 1, 8, 4}), k = rnd({1, 1, 8, 4}), v = rnd({1, 1, 8, 4});
    CHECK_FALSE(at::allclose(a(q, k, v), b(q, k, v)));
  }

  TEST_CASE("backends: cpu computes what reference computes; cuda without a GPU (or on CPU tensors) is a clear UserError") {
    at::Tensor f = rnd({1, 1, 3, 4});
    at::Tensor q = rnd({2, 3, 37, 16}), k = rnd({2, 3, 37, 16}), v = rnd({2, 3, 37, 16});
    at::Tensor ref = softmaxProgram()(q, k, v, Backend::Reference), cpu = softmaxProgram()(q, k, v, Backend::Cpu);
    CHECK(cpu.sizes() == ref.sizes());
    CHECK((cpu.scalar_type() == at::kFloat));
    CHECK((cpu - ref).abs().max().item<double>() < 1e-5);
    std::string err = userErrorOf([&] { softmaxProgram()(f, f, f, Backend::Cuda); });
#ifdef ATTN_HAVE_CUDA
    if (!cuda::Driver::get().available())  // this machine: no driver, said once, clearly
      CHECK(err == "the cuda backend needs an NVIDIA GPU: " + cuda::Driver::get().whyNot() +
                       "; use --backend cpu or reference");
    else
      CHECK(err == "the cuda backend takes tensors on a CUDA device; q is on cpu (move q, k and v with .cuda())");
#else
    CHECK(contains(err, "built without the CUDA toolkit"));
#endif
    // Invalid inputs are reported before the backend.
    err = userErrorOf([&] { softmaxProgram()(f.to(at::kInt), f, f, Backend::Cpu); });
    CHECK(contains(err, "q has dtype Int"));
    // Backend names.
    CHECK(parseBackend("reference") == Backend::Reference);
    CHECK(parseBackend("cpu") == Backend::Cpu);
    CHECK(parseBackend("cuda") == Backend::Cuda);
    CHECK(std::string(backendName(Backend::Cuda)) == "cuda");
    CHECK(userErrorOf([] { parseBackend("gpu"); }) == "unknown backend 'gpu' (expected reference, cpu or cuda)");
  }
}
