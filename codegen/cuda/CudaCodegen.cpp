// The CUDA backend's code generator. See CudaCodegen.h.
#include "codegen/cuda/CudaCodegen.h"

#include <stdexcept>

#include "codegen/cuda/CudaWriter.h"
#include "compiler/Diagnostics.h"

namespace attn::cuda {

namespace {

using namespace attn::kernels;

// The argument indices of the generated source, in the order of kernels::Arg.
const char* const kArgNames[] = {"kQ",  "kK",  "kV",  "kO",  "kStats", "kRq", "kRk",    "kDout",
                                 "kAdj", "kDq", "kDk", "kDv", "kRqBar", "kRkBar", "kR0", "kR1",
                                 "kJ0", "kJ1", "kLq", "kLk", "kD",     "kDvDim", "kFlags"};
static_assert(sizeof(kArgNames) / sizeof(kArgNames[0]) == kArgCount, "kArgNames must follow kernels::Arg");
static_assert(kQ == 0 && kStats == 4 && kR0 == 14 && kFlags == 22, "kArgNames must follow kernels::Arg");

std::string argEnum() {
  std::string s = "enum AttnArg : int {";
  for (int a = 0; a < kArgCount; ++a) s += std::string(a % 8 == 0 ? "\n  " : " ") + kArgNames[a] + " = " + std::to_string(a) + ",";
  return s + "\n  kArgCount = " + std::to_string(kArgCount) + "\n};\n";
}

// A __global__ wrapper: one thread per query row (or per key), blockIdx.y the head.
std::string rowWrapper(const std::string& entry, const std::string& body, const std::string& extra = "") {
  return "extern \"C\" __global__ void " + entry + "(AttnScalarParams p) {\n"
         "  long long r;\n"
         "  if (!attn_thread(p.args[kLq], &r)) return;\n"
         "  long long a[kArgCount];\n"
         "  attn_head_args(p, blockIdx.y, a);\n"
         "  a[kR0] = r;\n  a[kR1] = r + 1;\n" + extra +
         "  " + body + "(a);\n}\n";
}

}  // namespace

const char* dtypeName(Dtype dtype) {
  switch (dtype) {
    case Dtype::F32: return "f32";
    case Dtype::F16: return "f16";
    case Dtype::BF16: return "bf16";
  }
  return "?";
}

Dtype parseDtype(const std::string& text) {
  if (text == "f32" || text == "float32" || text == "float") return Dtype::F32;
  if (text == "f16" || text == "float16" || text == "half") return Dtype::F16;
  if (text == "bf16" || text == "bfloat16") return Dtype::BF16;
  throw std::invalid_argument("unknown dtype '" + text + "': expected f32, f16 or bf16");
}

std::string TileConfig::name() const {
  return "m" + std::to_string(blockM) + "n" + std::to_string(blockN) + "w" + std::to_string(warps) + "s" +
         std::to_string(stages);
}

bool tensorCoresApply(const CudaOptions& o) {
  return o.dtype != Dtype::F32 && o.headDim % 16 == 0 && o.valueDim % 16 == 0 && o.headDim > 0 && o.valueDim > 0 &&
         o.headDim <= 256 && o.valueDim <= 256;
}

kernels::ScalarKernels generateScalarCuda(const KernelPlan& plan, const BackwardPlan& backward, const std::string& real) {
  return generateScalarKernels(plan, backward, real, {}, [](const std::string& name, const std::string& type) {
    return std::make_unique<CudaWriter>(name, type);
  });
}

std::string scalarPreamble() { return argEnum() + "#include \"scalar_prelude.cuh\"\n\n"; }

CudaKernelSource generateCudaKernels(const KernelPlan& plan, const BackwardPlan& backward, const CudaOptions& options) {
  CudaKernelSource out;
  out.options = options;
  out.scalar = generateScalarCuda(plan, backward, "float");
  const ScalarKernels& k = out.scalar;

  std::string s;
  s += "// attn CUDA kernels for '" + plan.graph.name + "': float32 path (one thread per query row or key)\n";
  s += "// inputs " + std::string(dtypeName(options.dtype)) + ", d = " + std::to_string(options.headDim) +
       ", dv = " + std::to_string(options.valueDim) + "; stats: " + std::to_string(k.statSlots) +
       " reals per row, adjoints: " + std::to_string(k.adjointSlots) + " per row\n";
  s += scalarPreamble();
  for (const KernelFunction& f : k.functions) s += f.text + "\n";
  s += "#ifdef __CUDACC__\n";
  s += rowWrapper(k.forward + "_f32", k.forward);
  out.entries.push_back({k.forward + "_f32", "forward", "thread per query row"});
  if (k.backwardUnsupported.empty()) {
    for (size_t p = 0; p < k.rowPasses.size(); ++p) {
      s += rowWrapper(k.rowPasses[p] + "_f32", k.rowPasses[p]);
      out.entries.push_back({k.rowPasses[p] + "_f32", "rows_" + std::to_string(p + 1), "thread per query row"});
    }
    s += rowWrapper("attn_backward_dq_f32", k.gradient, "  a[kJ0] = 0;\n  a[kJ1] = a[kLk];\n  a[kFlags] = 1;\n");
    out.entries.push_back({"attn_backward_dq_f32", "dq", "thread per query row"});
    s += "extern \"C\" __global__ void attn_backward_dkdv_f32(AttnScalarParams p) {\n"
         "  long long j;\n"
         "  if (!attn_thread(p.args[kLk], &j)) return;\n"
         "  long long a[kArgCount];\n"
         "  attn_head_args(p, blockIdx.y, a);\n"
         "  a[kR0] = 0;\n  a[kR1] = a[kLq];\n  a[kJ0] = j;\n  a[kJ1] = j + 1;\n  a[kFlags] = 2;\n"
         "  " + k.gradient + "(a);\n}\n";
    out.entries.push_back({"attn_backward_dkdv_f32", "dkdv", "thread per key"});
  }
  s += "#endif  // __CUDACC__\n";
  out.source = s;
  return out;
}

}  // namespace attn::cuda
