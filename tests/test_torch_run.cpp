// `attn run` as a script uses it: .npy in, .npy out, on every stdlib program with --dout;
// the files it writes must equal what the library computes in this process, and every bad
// input is a clear error with exit status 1.
#include <ATen/ATen.h>
#include <doctest/doctest.h>

#include <cstring>

#ifdef ATTN_HAVE_CUDA
#include "codegen/cuda/CudaDriver.h"
#endif
#include "TestUtil.h"
#include "runtime/Attention.h"
#include "runtime/io/Npy.h"

using namespace attn;
using namespace attn::test;

namespace {

io::DType npyType(at::ScalarType t) {
  if (t == at::kHalf) return io::DType::F16;
  if (t == at::kDouble) return io::DType::F64;
  return io::DType::F32;
}

std::string saveTensor(const std::string& name, const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  io::NpyArray a;
  a.dtype = npyType(c.scalar_type());
  a.shape = c.sizes().vec();
  a.data.resize(static_cast<size_t>(c.numel()) * c.element_size());
  std::memcpy(a.data.data(), c.data_ptr(), a.data.size());
  std::string path = tempDir() + "/" + name;
  io::writeNpy(path, a);
  return path;
}

at::Tensor loadTensor(const std::string& path) {
  io::NpyArray a = io::readNpy(path);
  at::ScalarType t = a.dtype == io::DType::F16 ? at::kHalf : a.dtype == io::DType::F64 ? at::kDouble : at::kFloat;
  at::Tensor out = at::empty(a.shape, at::TensorOptions().dtype(t));
  std::memcpy(out.data_ptr(), a.data.data(), a.data.size());
  return out;
}

double maxRelativeError(const at::Tensor& got, const at::Tensor& want) {
  at::Tensor g = got.to(at::kDouble), w = want.to(at::kDouble);
  double scale = std::max(w.abs().max().item<double>(), 1e-30);
  return (g - w).abs().max().item<double>() / scale;
}

}  // namespace

TEST_SUITE("run") {
  TEST_CASE("every stdlib program: o, dq, dk, dv written, equal to the library's") {
    at::manual_seed(7);
    const int64_t B = 2, H = 2, Lq = 5, Lk = 37, D = 16;
    at::Tensor q = at::randn({B, H, Lq, D}), k = at::randn({B, H, Lk, D}), v = at::randn({B, H, Lk, D}),
               dout = at::randn({B, H, Lq, D});
    std::string qp = saveTensor("q.npy", q), kp = saveTensor("k.npy", k), vp = saveTensor("v.npy", v),
                dp = saveTensor("do.npy", dout);
    auto files = attnFilesIn(ATTN_STDLIB);
    REQUIRE(files.size() >= 25);
    for (const auto& file : files) {
      std::string out = tempDir() + "/run_" + file.substr(file.rfind('/') + 1);
      CommandResult r = runAttn({"run", file, "--backend", "reference", "--q", qp, "--k", kp, "--v", vp, "--dout", dp,
                                 "--out", out});
      INFO(file, "\n", r.err);
      REQUIRE(r.signal == 0);
      REQUIRE(r.status == 0);

      Program p = Program::fromFile(file);
      at::Tensor qg = q.clone().requires_grad_(true), kg = k.clone().requires_grad_(true),
                 vg = v.clone().requires_grad_(true);
      at::Tensor o = p(qg, kg, vg);
      o.backward(dout);
      CHECK(maxRelativeError(loadTensor(out + "/o.npy"), o.detach()) == 0.0);
      CHECK(maxRelativeError(loadTensor(out + "/dq.npy"), qg.grad()) == 0.0);
      CHECK(maxRelativeError(loadTensor(out + "/dk.npy"), kg.grad()) == 0.0);
      CHECK(maxRelativeError(loadTensor(out + "/dv.npy"), vg.grad()) == 0.0);
      CHECK(at::isfinite(loadTensor(out + "/o.npy")).all().item<bool>());
    }
  }

  TEST_CASE("--backend cpu: every stdlib program's o, dq, dk, dv within 1e-4 of the reference") {
    at::manual_seed(8);
    const int64_t B = 1, H = 2, Lq = 7, Lk = 37, D = 16;
    at::Tensor q = at::randn({B, H, Lq, D}), k = at::randn({B, H, Lk, D}), v = at::randn({B, H, Lk, D}),
               dout = at::randn({B, H, Lq, D});
    std::string qp = saveTensor("cq.npy", q), kp = saveTensor("ck.npy", k), vp = saveTensor("cv.npy", v),
                dp = saveTensor("cdo.npy", dout);
    for (const auto& file : attnFilesIn(ATTN_STDLIB)) {
      std::string out = tempDir() + "/cpu_" + file.substr(file.rfind('/') + 1);
      CommandResult r =
          runAttn({"run", file, "--backend", "cpu", "--q", qp, "--k", kp, "--v", vp, "--dout", dp, "--out", out});
      INFO(file, "\n", r.err);
      REQUIRE(r.signal == 0);
      REQUIRE(r.status == 0);
      Program p = Program::fromFile(file);
      at::Tensor qg = q.to(at::kDouble).requires_grad_(true), kg = k.to(at::kDouble).requires_grad_(true),
                 vg = v.to(at::kDouble).requires_grad_(true);
      at::Tensor o = p(qg, kg, vg);
      o.backward(dout.to(at::kDouble));
      at::Tensor got = loadTensor(out + "/o.npy");
      CHECK((got.scalar_type() == at::kFloat));
      CHECK(maxRelativeError(got, o.detach()) < 1e-4);
      CHECK(maxRelativeError(loadTensor(out + "/dq.npy"), qg.grad()) < 1e-4);
      CHECK(maxRelativeError(loadTensor(out + "/dk.npy"), kg.grad()) < 1e-4);
      CHECK(maxRelativeError(loadTensor(out + "/dv.npy"), vg.grad()) < 1e-4);
    }
  }

  TEST_CASE("grouped-query attention: k, v with fewer heads; dk, dv of their shape, summed over each group") {
    at::manual_seed(18);
    const int64_t B = 2, Lq = 5, Lk = 37, D = 16;
    for (int64_t kvHeads : {2, 1}) {  // G = 2, and MQA with G = 4
      at::Tensor q = at::randn({B, 4, Lq, D}), k = at::randn({B, kvHeads, Lk, D}), v = at::randn({B, kvHeads, Lk, D}),
                 dout = at::randn({B, 4, Lq, D});
      std::string tag = "gqa" + std::to_string(kvHeads);
      std::string qp = saveTensor(tag + "q.npy", q), kp = saveTensor(tag + "k.npy", k),
                  vp = saveTensor(tag + "v.npy", v), dp = saveTensor(tag + "do.npy", dout);
      std::string lssar = std::string(ATTN_STDLIB) + "/lssar.attn";
      std::string out = tempDir() + "/" + tag;
      CommandResult r =
          runAttn({"run", lssar, "--backend", "cpu", "--q", qp, "--k", kp, "--v", vp, "--dout", dp, "--out", out});
      REQUIRE_MESSAGE(r.status == 0, r.err);
      // The oracle: k and v repeated over each group (copies), dk and dv summed over it.
      const int64_t G = 4 / kvHeads;
      at::Tensor kr = k.to(at::kDouble).repeat_interleave(G, 1).requires_grad_(true),
                 vr = v.to(at::kDouble).repeat_interleave(G, 1).requires_grad_(true),
                 qg = q.to(at::kDouble).requires_grad_(true);
      at::Tensor o = Program::fromFile(lssar)(qg, kr, vr);
      o.backward(dout.to(at::kDouble));
      INFO("kv heads ", kvHeads);
      at::Tensor dk = loadTensor(out + "/dk.npy"), dv = loadTensor(out + "/dv.npy");
      CHECK(dk.sizes().vec() == k.sizes().vec());
      CHECK(dv.sizes().vec() == v.sizes().vec());
      CHECK(maxRelativeError(loadTensor(out + "/o.npy"), o.detach()) < 1e-4);
      CHECK(maxRelativeError(loadTensor(out + "/dq.npy"), qg.grad()) < 1e-4);
      CHECK(maxRelativeError(dk, kr.grad().view({B, kvHeads, G, Lk, D}).sum(2)) < 1e-4);
      CHECK(maxRelativeError(dv, vr.grad().view({B, kvHeads, G, Lk, D}).sum(2)) < 1e-4);
    }
  }

  TEST_CASE("--cu-seqlens: packed documents, each equal to its document run alone; bad offsets are errors") {
    at::manual_seed(19);
    const int64_t B = 2, H = 2, L = 39, D = 8;
    at::Tensor q = at::randn({B, H, L, D}), k = at::randn({B, H, L, D}), v = at::randn({B, H, L, D}),
               dout = at::randn({B, H, L, D});
    std::string qp = saveTensor("docq.npy", q), kp = saveTensor("dock.npy", k), vp = saveTensor("docv.npy", v),
                dp = saveTensor("docdo.npy", dout);
    const std::string plainPath = std::string(ATTN_STDLIB) + "/lssa.attn";
    std::string text = readFile(plainPath);
    const size_t at = text.find("  mask causal\n");
    REQUIRE(at != std::string::npos);
    text.replace(at, 14, "  mask causal per document\n");
    const std::string scoped = writeTempFile("lssa_doc.attn", text);
    for (const char* backend : {"reference", "cpu"}) {
      const std::string out = tempDir() + "/docs_" + backend;
      CommandResult r = runAttn({"run", scoped, "--backend", backend, "--q", qp, "--k", kp, "--v", vp, "--dout", dp,
                                 "--cu-seqlens", "0,1,38,39", "--out", out});
      REQUIRE_MESSAGE(r.status == 0, r.err);
      // The oracle: the plain program on each document's slice, in this process.
      Program plain = Program::fromFile(plainPath);
      at::Tensor o = at::zeros({B, H, L, D}, at::kDouble), dq = at::zeros_like(o), dk = at::zeros_like(o),
                 dv = at::zeros_like(o);
      for (auto [s, e] : {std::pair<int64_t, int64_t>{0, 1}, {1, 38}, {38, 39}}) {
        at::Tensor qs = q.slice(2, s, e).to(at::kDouble).requires_grad_(true),
                   ks = k.slice(2, s, e).to(at::kDouble).requires_grad_(true),
                   vs = v.slice(2, s, e).to(at::kDouble).requires_grad_(true);
        at::Tensor os = plain(qs, ks, vs);
        os.backward(dout.slice(2, s, e).to(at::kDouble));
        o.slice(2, s, e).copy_(os.detach());
        dq.slice(2, s, e).copy_(qs.grad());
        dk.slice(2, s, e).copy_(ks.grad());
        dv.slice(2, s, e).copy_(vs.grad());
      }
      INFO(backend);
      CHECK(maxRelativeError(loadTensor(out + "/o.npy"), o) < 1e-4);
      CHECK(maxRelativeError(loadTensor(out + "/dq.npy"), dq) < 1e-4);
      CHECK(maxRelativeError(loadTensor(out + "/dk.npy"), dk) < 1e-4);
      CHECK(maxRelativeError(loadTensor(out + "/dv.npy"), dv) < 1e-4);
    }
    struct Case {
      std::string file, offsets, message;
    };
    for (const Case& c : {Case{scoped, "0,1,x", "--cu-seqlens: 'x' is not a whole number"},
                          Case{scoped, "0,-1,39", "--cu-seqlens: '-1' is not a whole number"},
                          Case{scoped, "0,1,30", "document offsets (cu_seqlens) end at 30 but the sequence has 39"},
                          Case{scoped, "0,20,10,39", "must be non-decreasing; entry 2 is 10 after 20"},
                          Case{plainPath, "0,39", "the mask of 'lssa' is not per document"}}) {
      CommandResult r = runAttn({"run", c.file, "--backend", "cpu", "--q", qp, "--k", kp, "--v", vp, "--cu-seqlens",
                                 c.offsets, "--out", tempDir() + "/docs_bad"});
      INFO(c.offsets, "\n", r.err);
      CHECK(r.signal == 0);
      CHECK(r.status == 1);
      CHECK(r.err.find(c.message) != std::string::npos);
    }
  }

  TEST_CASE("--dout with weights independent of q or k: zero gradients written, never an internal error") {
    // Autograd leaves the gradient of an input the output does not depend on undefined; attn
    // run wrote it anyway and stopped with "undefined Tensor" (exit 3).
    at::manual_seed(11);
    at::Tensor q = at::randn({7, 4}), k = at::randn({7, 4}), v = at::randn({7, 3}), dout = at::randn({7, 3});
    std::string qp = saveTensor("indep_q.npy", q), kp = saveTensor("indep_k.npy", k), vp = saveTensor("indep_v.npy", v),
                dp = saveTensor("indep_do.npy", dout);
    struct Case {
      const char* body;
      bool dependsOnQ, dependsOnK;
    };
    const Case cases[] = {{"mask causal\n  out softmax(j / L - i)", false, false},
                          {"out l1norm(relu(j - i) + (dot(q, k) > 0.3 ? 1 : 2))", false, false},
                          {"mask causal\n  out l1norm(softplus(dot(q, k)) + j)", true, true}};
    int index = 0;
    for (const Case& c : cases) {
      const std::string file =
          writeTempFile("indep" + std::to_string(index) + ".attn", std::string("attention a {\n  ") + c.body + "\n}\n");
      for (const char* backend : {"reference", "cpu"}) {
        std::string out = tempDir() + "/indep" + std::to_string(index) + backend;
        CommandResult r = runAttn({"run", file, "--backend", backend, "--q", qp, "--k", kp, "--v", vp, "--dout", dp,
                                   "--out", out});
        INFO(c.body, " on ", backend, "\n", r.err);
        REQUIRE(r.signal == 0);
        REQUIRE(r.status == 0);
        at::Tensor dq = loadTensor(out + "/dq.npy"), dk = loadTensor(out + "/dk.npy"), dv = loadTensor(out + "/dv.npy");
        CHECK(dq.sizes() == q.sizes());
        CHECK(dk.sizes() == k.sizes());
        CHECK(dv.sizes() == v.sizes());
        CHECK((dq.abs().max().item<double>() > 0.0) == c.dependsOnQ);
        CHECK((dk.abs().max().item<double>() > 0.0) == c.dependsOnK);
        // dv = w^T dout is never 0 here: every weight row is positive somewhere.
        CHECK(dv.abs().max().item<double>() > 0.0);
      }
      ++index;
    }
  }

  TEST_CASE("[L, D] inputs, float16 in gives float16 out, --set and --name reach the program") {
    at::manual_seed(8);
    at::Tensor q = at::randn({37, 8}), k = at::randn({37, 8}), v = at::randn({37, 8});
    std::string qp = saveTensor("q2.npy", q), kp = saveTensor("k2.npy", k), vp = saveTensor("v2.npy", v);
    std::string out = tempDir() + "/run2d";
    std::string lssar = std::string(ATTN_STDLIB) + "/lssar.attn";
    CommandResult r = runAttn({"run", lssar, "--set", "p=3", "--backend", "reference", "--q", qp, "--k", kp, "--v", vp,
                               "--out", out});
    REQUIRE_MESSAGE(r.status == 0, r.err);
    at::Tensor o = loadTensor(out + "/o.npy");
    CHECK(o.sizes().vec() == std::vector<int64_t>{37, 8});
    CompileOptions p3;
    p3.overrides = {{"p", "3"}};
    CHECK(maxRelativeError(o, Program::fromFile(lssar, p3)(q, k, v)) == 0.0);
    CHECK(maxRelativeError(o, Program::fromFile(lssar)(q, k, v)) > 1e-3);  // p=15 differs

    std::string qh = saveTensor("qh.npy", q.to(at::kHalf)), kh = saveTensor("kh.npy", k.to(at::kHalf)),
                vh = saveTensor("vh.npy", v.to(at::kHalf));
    std::string outh = tempDir() + "/runhalf";
    CommandResult h = runAttn({"run", lssar, "--backend", "reference", "--q", qh, "--k", kh, "--v", vh, "--out", outh});
    REQUIRE_MESSAGE(h.status == 0, h.err);
    at::Tensor oh = loadTensor(outh + "/o.npy");
    CHECK((oh.scalar_type() == at::kHalf));
    CHECK(maxRelativeError(oh, Program::fromFile(lssar)(q, k, v)) < 1e-2);
  }

  TEST_CASE("bad inputs are clear errors with exit status 1") {
    at::Tensor t = at::randn({2, 3, 10, 8});
    std::string good = saveTensor("good.npy", t), small = saveTensor("small.npy", at::randn({2, 3, 10, 4})),
                longer = saveTensor("longer.npy", at::randn({2, 3, 20, 8})),
                twoHeads = saveTensor("twoheads.npy", at::randn({2, 2, 10, 8})),
                ints = tempDir() + "/ints.npy";
    {
      io::NpyArray a;
      a.dtype = io::DType::F32;
      a.shape = {4};
      a.data.assign(16, 0);
      io::writeNpy(ints, a);
    }
    std::string garbage = writeTempFile("garbage.npy", "not a numpy file at all");
    std::string softmax = std::string(ATTN_STDLIB) + "/softmax.attn";
    struct Case {
      std::vector<std::string> args;
      std::string message;
    };
    std::vector<Case> cases = {
        {{"--q", good, "--k", small, "--v", good}, "q and k must have the same head dimension"},
        {{"--q", longer, "--k", good, "--v", good}, "q has more rows than k (20 > 10)"},
        {{"--q", good, "--k", good, "--v", longer}, "k and v must have the same length"},
        {{"--q", good, "--k", twoHeads, "--v", twoHeads}, "q's heads (H_q = 3) must be a multiple of k and v's (H_kv = 2)"},
        {{"--q", good, "--k", good, "--v", twoHeads}, "k and v must have the same number of heads"},
        {{"--q", ints, "--k", good, "--v", good}, "expected [B, H, L, D] or [L, D]"},
        {{"--q", garbage, "--k", good, "--v", good}, "not a .npy file"},
        {{"--q", tempDir() + "/missing.npy", "--k", good, "--v", good}, "missing.npy"},
        {{"--q", good, "--k", good, "--v", good, "--dout", small}, "--dout has shape"},
    };
    for (const auto& c : cases) {
      std::vector<std::string> args = {"run", softmax, "--backend", "reference", "--out", tempDir() + "/bad"};
      args.insert(args.end(), c.args.begin(), c.args.end());
      CommandResult r = runAttn(args);
      INFO(c.message, "\n", r.err);
      CHECK(r.signal == 0);
      CHECK(r.status == 1);
      CHECK(r.err.find(c.message) != std::string::npos);
    }
    std::string broken = writeTempFile("broken.attn", "attention a {\n  out qq\n}\n");
    CommandResult r = runAttn({"run", broken, "--backend", "reference", "--q", good, "--k", good, "--v", good, "--out",
                               tempDir() + "/bad"});
    CHECK(r.status == 1);
    CHECK(r.err.find("broken.attn:2:7: error: unknown name 'qq'") != std::string::npos);

    CommandResult cuda = runAttn({"run", softmax, "--backend", "cuda", "--q", good, "--k", good, "--v", good,
                                  "--out", tempDir() + "/bad"});
    CHECK(cuda.signal == 0);
    CHECK(cuda.status == 1);
#ifdef ATTN_HAVE_CUDA
    if (!cuda::Driver::get().available())
      CHECK(cuda.err.find("the cuda backend needs an NVIDIA GPU: no CUDA") != std::string::npos);
#else
    CHECK(cuda.err.find("built without the CUDA toolkit") != std::string::npos);
#endif
  }
}
