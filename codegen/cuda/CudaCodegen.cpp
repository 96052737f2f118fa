// The CUDA backend's code generator. See CudaCodegen.h.
#include "codegen/cuda/CudaCodegen.h"

#include <cmath>
#include <cstdio>
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


// A float literal for the generated source (shortest exact decimal; infinities by name).
std::string floatLiteral(double v) {
  if (std::isinf(v)) return v < 0 ? "(-ATTN_INF_F)" : "ATTN_INF_F";
  const float f = static_cast<float>(v);
  char text[40];
  for (int p = 1; p <= 9; ++p) {
    std::snprintf(text, sizeof text, "%.*g", p, static_cast<double>(f));
    if (std::strtof(text, nullptr) == f) break;
  }
  std::string s = text;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s + "f";
}

const char* statName(RowStatistic::Kind k) {
  using K = RowStatistic::Kind;
  switch (k) {
    case K::Sum: return "Sum";
    case K::Mean: return "Mean";
    case K::Max: return "Max";
    case K::Min: return "Min";
    case K::Count: return "Count";
    case K::OnlineExp: return "OnlineExp";
    case K::OnlinePower: return "OnlinePower";
    case K::Normaliser: return "Normaliser";
  }
  return "?";
}

// `return s == 0 ? a : s == 1 ? b : ... ;` over a per-statistic table.
std::string table(const std::vector<std::string>& values, const std::string& otherwise) {
  std::string s;
  for (size_t k = 0; k < values.size(); ++k) s += "s == " + std::to_string(k) + " ? " + values[k] + " : ";
  return s + otherwise;
}

double constantOf(const ir::Graph& g, ir::NodeId id) {
  ATTN_INTERNAL_ASSERT(id >= 0 && g.node(id).op == ir::Op::Const, "cuda codegen: expected a constant");
  return g.node(id).value;
}

// The tensor-core forward: the skeleton's Config and Variant for this program, its hooks,
// and the __global__ entry (plus an Elem-typed inverse-norm kernel for l2norm programs).
std::string tensorCoreForward(const KernelPlan& plan, const BackwardPlan& backward, const CudaOptions& o,
                              const kernels::ScalarKernels& layout, int sharedBytes) {
  const ir::Graph& g = plan.graph;
  const char* elem = o.dtype == Dtype::F16 ? "__half" : "__nv_bfloat16";
  const TileConfig& t = o.tile;
  std::string s;
  s += "#include \"tc_forward.cuh\"\n#include \"attn_math.cuh\"\n\n";
  s += "struct Config {\n  static constexpr int kBlockM = " + std::to_string(t.blockM) +
       ", kBlockN = " + std::to_string(t.blockN) + ", kWarps = " + std::to_string(t.warps) +
       ", kStages = " + std::to_string(t.stages) + ";\n  using Elem = " + elem +
       ";\n  static constexpr int kD = " + std::to_string(o.headDim) + ", kDv = " + std::to_string(o.valueDim) +
       ";\n};\n";
  s += "static_assert(attn_tc::forwardSharedBytes<Config>() == " + std::to_string(sharedBytes) +
       ", \"the host's shared-memory size (CudaCodegen.cpp) disagrees with tc_forward.cuh\");\n\n";
  // The hooks: the scalar generator's per-element code for each forward pass.
  kernels::KernelSizes sizes{o.headDim, o.valueDim};
  for (const kernels::KernelFunction& f : kernels::generateElementHooks(
           plan, backward, "float", sizes,
           [](const std::string& name, const std::string& real) { return std::make_unique<CudaWriter>(name, real); }))
    s += f.text + "\n";
  // The Variant: the plan as data.
  const size_t n = plan.statistics.size();
  std::vector<std::string> kinds, passes, powers;
  int outStat = -1;
  for (size_t k = 0; k < n; ++k) {
    const RowStatistic& st = plan.statistics[k];
    kinds.push_back(std::string("attn_tc::Stat::") + statName(st.kind));
    passes.push_back(std::to_string(st.pass));
    double p = 0;
    if (st.kind == RowStatistic::Kind::OnlinePower) p = constantOf(g, normalizeForm(g, st.node).power);
    powers.push_back(floatLiteral(p));
    if (st.kind == RowStatistic::Kind::Normaliser) outStat = static_cast<int>(k);
  }
  const OutputAccumulation& out = plan.output;
  const char* form = out.form == OutputAccumulation::Form::Direct             ? "Direct"
                     : out.form == OutputAccumulation::Form::DeferredDivision ? "DeferredDivision"
                     : out.form == OutputAccumulation::Form::OnlineExp        ? "OnlineExp"
                                                                              : "OnlinePower";
  const char* mask = g.mask == ir::MaskKind::Full ? "Full" : g.mask == ir::MaskKind::Causal ? "Causal"
                   : g.mask == ir::MaskKind::Window ? "Window" : "Expr";
  long long windowLow = 0;
  if (g.mask == ir::MaskKind::Window) windowLow = static_cast<long long>(std::ceil(constantOf(g, g.maskExpr))) - 1;
  const double outPower = out.form == OutputAccumulation::Form::OnlinePower ? constantOf(g, out.power) : 0;
  const std::string ns = std::to_string(n);
  s += "struct Variant {\n";
  s += "  static constexpr int kPasses = " + std::to_string(plan.passes.size()) + ";\n";
  s += "  static constexpr int kStats = " + ns + ";\n";
  s += "  static __host__ __device__ constexpr attn_tc::Stat kind(int s) { return " +
       table(kinds, "attn_tc::Stat::Sum") + "; }\n";
  s += "  static __host__ __device__ constexpr int pass(int s) { return " + table(passes, "0") + "; }\n";
  s += "  static __host__ __device__ constexpr float power(int s) { return " + table(powers, "0.0f") + "; }\n";
  s += std::string("  static constexpr attn_tc::OutForm kOutForm = attn_tc::OutForm::") + form + ";\n";
  s += "  static constexpr int kOutStat = " + std::to_string(outStat) + ";\n";
  s += "  static constexpr float kOutScale = " + floatLiteral(out.scale) + ";\n";
  s += "  static constexpr float kOutPower = " + floatLiteral(outPower) + ";\n";
  s += std::string("  static constexpr attn_tc::Mask kMask = attn_tc::Mask::") + mask + ";\n";
  s += "  static constexpr long long kWindowLow = " + std::to_string(windowLow) + ";\n";
  s += std::string("  static constexpr bool kQueryNorm = ") + (layout.needsQueryNorm ? "true" : "false") + ";\n";
  s += std::string("  static constexpr bool kKeyNorm = ") + (layout.needsKeyNorm ? "true" : "false") + ";\n";
  s += "  template <int P>\n  static __device__ __forceinline__ bool operands(const attn_tc::Row& row, float s, "
       "long long j, float rk, float* x) {\n";
  s += "    float y[kStats + 2] = {};\n";
  for (size_t p = 1; p <= plan.passes.size(); ++p)
    s += "    " + std::string(p == 1 ? "if" : "else if") + " constexpr (P == " + std::to_string(p) + ") attn_hook_" +
         std::to_string(p) + "(const_cast<float*>(row.stats), row.i, row.n, row.lk, row.rq, s, j, rk, y);\n";
  s += "#pragma unroll\n    for (int k = 0; k <= kStats; ++k) x[k] = y[k];\n";
  s += "    return y[kStats + 1] != 0.0f;\n  }\n};\n\n";
  s += "extern \"C\" __global__ void __launch_bounds__(Config::kWarps * 32, 1) attn_forward_tc(attn_tc::FwdParams p) {\n"
       "  attn_tc::forward<Variant, Config>(p);\n}\n\n";
  s += "// 1/|x_r| (0 for a zero row), for l2norm: rows = heads * L.\n"
       "extern \"C\" __global__ void attn_inverse_norms(const Config::Elem* x, float* out, long long rows, long long d) {\n"
       "  const long long r = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;\n"
       "  if (r >= rows) return;\n  float s = 0.f;\n"
       "  for (long long c = 0; c < d; ++c) {\n    const float e = static_cast<float>(x[r * d + c]);\n    s += e * e;\n  }\n"
       "  out[r] = s == 0.f ? 0.f : 1.f / sqrtf(s);\n}\n";
  return s;
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

int tensorCoreSharedBytes(const CudaOptions& o) {
  auto width = [](int c) { return c % 64 == 0 ? c : c + 8; };  // tc_forward.cuh's SmemTile rows
  const TileConfig& t = o.tile;
  return 2 * (t.blockM * width(std::max(o.headDim, o.valueDim)) + t.stages * t.blockN * (width(o.headDim) + width(o.valueDim)));
}

TileConfig TileConfig::parse(const std::string& text) {
  TileConfig t;
  char tail = 0;
  if (std::sscanf(text.c_str(), "m%dn%dw%ds%d%c", &t.blockM, &t.blockN, &t.warps, &t.stages, &tail) != 4)
    throw std::invalid_argument("tile '" + text + "' is not of the form mMnNwWsS (e.g. m64n64w4s2)");
  if (t.warps != 4 && t.warps != 8) throw std::invalid_argument("tile '" + text + "': warps must be 4 or 8");
  if (t.blockM != 16 * t.warps)
    throw std::invalid_argument("tile '" + text + "': blockM must be 16 x warps (" + std::to_string(16 * t.warps) + ")");
  if (t.blockN < 16 || t.blockN > 128 || t.blockN % 16 != 0)
    throw std::invalid_argument("tile '" + text + "': blockN must be a multiple of 16 from 16 to 128");
  if (t.stages < 1 || t.stages > 3) throw std::invalid_argument("tile '" + text + "': stages must be 1, 2 or 3");
  return t;
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
  if (tensorCoresApply(options)) {
    out.tensorCoreForward = true;
    out.sharedBytes = tensorCoreSharedBytes(options);
    s += "// attn CUDA kernels for '" + plan.graph.name + "': tensor-core forward, " + dtypeName(options.dtype) +
         " inputs, d = " + std::to_string(options.headDim) + ", dv = " + std::to_string(options.valueDim) +
         ", tile " + options.tile.name() + ", " + std::to_string(out.sharedBytes) + " bytes of shared memory\n";
    s += "// (backward: the float32 kernels of the same program)\n";
    s += tensorCoreForward(plan, backward, options, k, out.sharedBytes);
    out.entries.push_back({"attn_forward_tc", "forward", "CTA per (head, " + std::to_string(options.tile.blockM) + " query rows)"});
    out.source = s;
    return out;
  }
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
