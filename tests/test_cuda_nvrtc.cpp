// The CUDA backend's foundations that need no GPU: NVRTC compiles hand-written kernels
// (fp16, warp shuffles, tensor-core mma.sync) to PTX and CUBIN for Ampere and Hopper, the
// ptxas resource report is parsed, compile errors name the source line, and the driver,
// opened lazily, says cleanly why it is unavailable on a machine without one.
#include <doctest/doctest.h>

#include <dlfcn.h>

#include <regex>
#include <string>

#include "codegen/cuda/CudaDriver.h"
#include "codegen/cuda/Nvrtc.h"
#include "compiler/Diagnostics.h"

namespace {

const char* kSaxpy = R"(
extern "C" __global__ void saxpy(float a, const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}
)";

// One warp: a 16x8x16 tensor-core product on fp16 fragments, then a warp-wide sum.
const char* kHalfMma = R"(
#include <cuda_fp16.h>
extern "C" __global__ void half_mma(const __half* a, const __half* b, float* c) {
  unsigned lane = threadIdx.x & 31;
  const unsigned* a32 = reinterpret_cast<const unsigned*>(a);
  const unsigned* b32 = reinterpret_cast<const unsigned*>(b);
  unsigned a0 = a32[lane * 4 + 0], a1 = a32[lane * 4 + 1], a2 = a32[lane * 4 + 2], a3 = a32[lane * 4 + 3];
  unsigned b0 = b32[lane * 2 + 0], b1 = b32[lane * 2 + 1];
  float d0 = 0.f, d1 = 0.f, d2 = 0.f, d3 = 0.f;
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d0), "+f"(d1), "+f"(d2), "+f"(d3)
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  float s = d0 + d1 + d2 + d3 + __half2float(a[lane]);
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  c[lane] = s;
}
)";

// 256 floats of static shared memory: ptxas reports 1024 bytes smem.
const char* kShared = R"(
extern "C" __global__ void reverse256(float* x) {
  __shared__ float tile[256];
  tile[threadIdx.x] = x[threadIdx.x];
  __syncthreads();
  x[threadIdx.x] = tile[255 - threadIdx.x];
}
)";

bool isElf(const std::string& bytes) { return bytes.size() > 4 && bytes.compare(0, 4, "\x7f" "ELF") == 0; }

void checkCompiled(const attn::cuda::CompiledKernel& k, const std::string& entry, int arch) {
  INFO("log:\n", k.log);
  CHECK(!k.ptx.empty());
  CHECK(k.ptx.find(".entry " + entry) != std::string::npos);
  CHECK(k.ptx.find(".target sm_" + std::to_string(arch)) != std::string::npos);
  CHECK(isElf(k.cubin));
  CHECK(k.registers > 0);
  CHECK(k.spillBytes == 0);
  CHECK(k.sharedBytes == 0);
  CHECK(k.milliseconds > 0);
}

}  // namespace

TEST_SUITE("cuda") {
  // First in the file, so that its first compile is the process's first NVRTC call.
  TEST_CASE("NVRTC cold and warm compile time of a small kernel") {
    auto cold = attn::cuda::compile(kSaxpy, "saxpy.cu", 90);
    auto warm = attn::cuda::compile(kSaxpy, "saxpy.cu", 90);
    MESSAGE("NVRTC ", attn::cuda::nvrtcVersion(), " compile of saxpy for sm_90: cold ", cold.milliseconds,
            " ms, warm ", warm.milliseconds, " ms");
    auto mma = attn::cuda::compile(kHalfMma, "half_mma.cu", 90);
    MESSAGE("NVRTC compile of half_mma (cuda_fp16.h, mma.sync) for sm_90: ", mma.milliseconds, " ms");
    CHECK(cold.ptx == warm.ptx);
  }

  TEST_CASE("saxpy compiles to PTX and CUBIN for sm_80 and sm_90") {
    for (int arch : {80, 86, 89, 90}) {
      CAPTURE(arch);
      checkCompiled(attn::cuda::compile(kSaxpy, "saxpy.cu", arch), "saxpy", arch);
    }
  }

  TEST_CASE("fp16, warp shuffles and mma.sync compile for sm_80 and sm_90") {
    for (int arch : {80, 90}) {
      CAPTURE(arch);
      auto k = attn::cuda::compile(kHalfMma, "half_mma.cu", arch);
      checkCompiled(k, "half_mma", arch);
      CHECK(k.ptx.find("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32") != std::string::npos);
      CHECK(k.ptx.find("shfl.sync.bfly") != std::string::npos);
    }
  }

  TEST_CASE("static shared memory is read from the ptxas report") {
    auto k = attn::cuda::compile(kShared, "reverse256.cu", 90);
    INFO("log:\n", k.log);
    CHECK(k.sharedBytes == 1024);
    CHECK(k.registers > 0);
    CHECK(k.spillBytes == 0);
    CHECK(isElf(k.cubin));
  }

  TEST_CASE("a syntax error is an InternalError naming the source and the line") {
    const std::string bad = "extern \"C\" __global__ void broken(float* x) {\n"  // line 1
                            "  float y = 2.0f;\n"                                 // line 2
                            "  x[0] = y * ;\n"                                    // line 3
                            "}\n";
    try {
      attn::cuda::compile(bad, "broken_kernel.cu", 90);
      FAIL("expected an InternalError");
    } catch (const attn::InternalError& e) {
      std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find("broken_kernel.cu(3)") != std::string::npos);
      CHECK(msg.find("error") != std::string::npos);
    }
  }

  TEST_CASE("an unsupported architecture is a clear error") {
    CHECK_FALSE(attn::cuda::supportedArch(20));
    CHECK(attn::cuda::supportedArch(90));
    try {
      attn::cuda::compile(kSaxpy, "saxpy.cu", 20);
      FAIL("expected an InternalError");
    } catch (const attn::InternalError& e) {
      std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find("sm_20") != std::string::npos);
      CHECK(msg.find("sm_90") != std::string::npos);
    }
  }

  TEST_CASE("nvrtcVersion is MAJOR.MINOR") {
    std::string v = attn::cuda::nvrtcVersion();
    MESSAGE("NVRTC version ", v);
    CHECK(std::regex_match(v, std::regex(R"(\d+\.\d+)")));
    CHECK(v.rfind("13.", 0) == 0);
  }

  TEST_CASE("the CUDA driver is opened lazily and its absence is a clean error") {
    auto& driver = attn::cuda::Driver::get();
    CHECK(&driver == &attn::cuda::Driver::get());
    void* probe = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!probe) {
      // The dev and CI machines: the toolkit but no driver.
      CHECK_FALSE(driver.available());
      CHECK(driver.whyNot().find("libcuda.so.1") != std::string::npos);
      CHECK(driver.whyNot().find('\n') == std::string::npos);
      CHECK_THROWS_AS(driver.deviceCount(), attn::cuda::CudaError);
      CHECK_THROWS_WITH_AS(driver.computeCapability(0), driver.whyNot().c_str(), attn::cuda::CudaError);
    } else {
      dlclose(probe);
      MESSAGE("CUDA driver: ", driver.available() ? "available" : driver.whyNot());
      if (driver.available()) {
        CHECK(driver.whyNot().empty());
        CHECK(driver.deviceCount() > 0);
        int cc = driver.computeCapability(0);
        MESSAGE("device 0: compute capability ", cc);
        CHECK(cc >= 30);
        CHECK_THROWS_AS(driver.computeCapability(driver.deviceCount()), attn::cuda::CudaError);
      } else {
        CHECK_FALSE(driver.whyNot().empty());
        CHECK_THROWS_AS(driver.deviceCount(), attn::cuda::CudaError);
      }
    }
  }
}
