// Constants at the edge of float32 through `attn run`: a param beyond float32's range is a
// located exit-1 error on every backend (it once ended in exit 3 on the reference backend),
// one just inside it runs with a defined result, the same on every backend.
#include <ATen/ATen.h>
#include <doctest/doctest.h>

#include <cstring>

#include "TestUtil.h"
#include "runtime/io/Npy.h"

using namespace attn;
using namespace attn::test;

namespace {

std::string saveFloat32(const std::string& name, const at::Tensor& t) {
  at::Tensor c = t.to(at::kFloat).contiguous();
  io::NpyArray a;
  a.dtype = io::DType::F32;
  a.shape = c.sizes().vec();
  a.data.resize(static_cast<size_t>(c.numel()) * sizeof(float));
  std::memcpy(a.data.data(), c.data_ptr(), a.data.size());
  std::string path = tempDir() + "/" + name;
  io::writeNpy(path, a);
  return path;
}

at::Tensor loadFloat32(const std::string& path) {
  io::NpyArray a = io::readNpy(path);
  REQUIRE(a.dtype == io::DType::F32);
  at::Tensor out = at::empty(a.shape, at::kFloat);
  std::memcpy(out.data_ptr(), a.data.data(), a.data.size());
  return out;
}

}  // namespace

TEST_SUITE("run") {
  TEST_CASE("--set beyond float32's range: exit 1 naming the param on every backend; just inside: a defined result") {
    at::manual_seed(39);
    const int64_t L = 37, D = 16;
    at::Tensor q = at::randn({L, D}), k = at::randn({L, D}), v = at::randn({L, D});
    const std::string qp = saveFloat32("c_q.npy", q), kp = saveFloat32("c_k.npy", k), vp = saveFloat32("c_v.npy", v);
    const std::string alibi = std::string(ATTN_STDLIB) + "/alibi.attn";
    for (const char* backend : {"reference", "cpu", "cuda"}) {
      CAPTURE(backend);
      for (const char* value : {"1e39", "-1e39", "1e400"}) {
        CAPTURE(value);
        CommandResult r = runAttn({"run", alibi, "--set", std::string("slope=") + value, "--backend", backend, "--q", qp,
                                   "--k", kp, "--v", vp, "--out", tempDir() + "/c_out_bad"});
        INFO(r.err);
        CHECK(r.status == 1);
        CHECK(r.err.find(std::string("--set slope=") + value + ": float param 'slope'") != std::string::npos);
        CHECK(r.err.find("out of range") != std::string::npos);
      }
    }
    // slope = 3e38: slope * (i - j) overflows to inf for every earlier key, so each row's
    // softmax keeps only its own key (i - j = 0): o = v, row by row.
    for (const char* backend : {"reference", "cpu"}) {
      CAPTURE(backend);
      const std::string out = tempDir() + "/c_out_" + backend;
      CommandResult r = runAttn({"run", alibi, "--set", "slope=3e38", "--backend", backend, "--q", qp, "--k", kp, "--v",
                                 vp, "--out", out});
      INFO(r.err);
      REQUIRE(r.status == 0);
      at::Tensor o = loadFloat32(out + "/o.npy");
      CHECK(at::allclose(o, v, 1e-6, 1e-6));
    }
  }
}
