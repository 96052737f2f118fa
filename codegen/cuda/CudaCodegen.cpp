// The CUDA backend's code generator. See CudaCodegen.h.
#include "codegen/cuda/CudaCodegen.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "codegen/cuda/CudaWriter.h"
#include "compiler/Diagnostics.h"
#include "compiler/ScalarOps.h"

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


// A float literal for the generated source (shortest exact decimal; infinities and NaN by
// name; beyond float32's range, an infinity).
std::string floatLiteral(double v) {
  v = ir::roundToFloat32(v);
  if (std::isinf(v)) return v < 0 ? "(-ATTN_INF_F)" : "ATTN_INF_F";
  if (std::isnan(v)) return "ATTN_NAN_F";
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

const char* partComment(ModulePart part) {
  switch (part) {
    case ModulePart::All: return "";
    case ModulePart::Forward: return "; forward kernels only";
    case ModulePart::Backward: return "; backward kernels only";
  }
  return "";
}

// The hook call of one pass inside a Variant member: `if constexpr (P == 1) fn_1(args);`
// for each pass 1..n.
std::string dispatch(int n, const std::string& fn, const std::string& args) {
  std::string s;
  for (int p = 1; p <= n; ++p)
    s += "    " + std::string(p == 1 ? "if" : "else if") + " constexpr (P == " + std::to_string(p) + ") " + fn +
         std::to_string(p) + "(" + args + ");\n";
  return s;
}

// The tensor-core kernels: the skeletons' Config and Variant for this program, its hooks,
// the __global__ entries, and Elem-typed support kernels (inverse norms for l2norm, dO·o for
// identity adjoints, the l2norm's gradient). `out` gets the entries.
std::string tensorCoreKernels(const KernelPlan& plan, const BackwardPlan& backward, const CudaOptions& o,
                              const kernels::ScalarKernels& layout, CudaKernelSource& out) {
  const ir::Graph& g = plan.graph;
  const char* elem = o.dtype == Dtype::F16 ? "__half" : "__nv_bfloat16";
  const TileConfig& t = o.tile;
  const bool withForward = o.part != ModulePart::Backward;
  const bool withBackward = backward.unsupported.empty() && o.part != ModulePart::Forward;
  const int threads = 32 * t.warps;
  std::string s;
  if (o.exactMath) s += "#define ATTN_EXACT_MATH 1  // libm-exact exp, log and division (ATTN_CUDA_EXACT_MATH)\n";
  s += withBackward ? "#include \"tc_backward.cuh\"\n" : "#include \"tc_forward.cuh\"\n";
  s += "#include \"attn_math.cuh\"\n\n";
  s += "struct Config {\n  static constexpr int kBlockM = " + std::to_string(t.blockM) +
       ", kBlockN = " + std::to_string(t.blockN) + ", kWarps = " + std::to_string(t.warps) +
       ", kStages = " + std::to_string(t.stages) + ";\n  using Elem = " + elem +
       ";\n  static constexpr int kD = " + std::to_string(o.headDim) + ", kDv = " + std::to_string(o.valueDim) +
       ";\n};\n";
  const int forwardBytes = tensorCoreSharedBytes(o);
  s += "static_assert(attn_tc::forwardSharedBytes<Config>() == " + std::to_string(forwardBytes) +
       ", \"the host's shared-memory size (CudaCodegen.cpp) disagrees with tc_forward.cuh\");\n\n";
  // The hooks: the scalar generator's per-element code.
  kernels::KernelSizes sizes{o.headDim, o.valueDim};
  // fp16/bf16 operands: the hooks' exp and division are the hardware's approximations
  // unless exact math is asked for.
  const CudaWriter::Math math = o.exactMath ? CudaWriter::Math::Exact : CudaWriter::Math::Approximate;
  auto writer = [math](const std::string& name, const std::string& real) {
    return std::make_unique<CudaWriter>(name, real, math);
  };
  if (withForward)
    for (const kernels::KernelFunction& f : kernels::generateElementHooks(plan, backward, "float", sizes, writer))
      s += f.text + "\n";
  if (withBackward)
    for (const kernels::KernelFunction& f : kernels::generateBackwardHooks(plan, backward, "float", sizes, writer))
      s += f.text + "\n";
  // The Variant: the plan as data.
  const size_t n = plan.statistics.size();
  std::vector<std::string> kinds, passes, powers, levels;
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
  for (const RowAdjoint& a : backward.adjoints) levels.push_back(std::to_string(a.level));
  const OutputAccumulation& acc = plan.output;
  const char* form = acc.form == OutputAccumulation::Form::Direct             ? "Direct"
                     : acc.form == OutputAccumulation::Form::DeferredDivision ? "DeferredDivision"
                     : acc.form == OutputAccumulation::Form::OnlineExp        ? "OnlineExp"
                                                                              : "OnlinePower";
  const char* mask = g.mask == ir::MaskKind::Full ? "Full" : g.mask == ir::MaskKind::Causal ? "Causal"
                   : g.mask == ir::MaskKind::Window ? "Window" : "Expr";
  long long windowLow = 0;
  if (g.mask == ir::MaskKind::Window) windowLow = static_cast<long long>(std::ceil(constantOf(g, g.maskExpr))) - 1;
  const double outPower = acc.form == OutputAccumulation::Form::OnlinePower ? constantOf(g, acc.power) : 0;
  const int passCount = static_cast<int>(plan.passes.size());
  s += "struct Variant {\n";
  s += "  // forward: the plan's passes, row statistics and output\n";
  s += "  static constexpr int kPasses = " + std::to_string(passCount) + ";\n";
  s += "  static constexpr int kStats = " + std::to_string(n) + ";\n";
  s += "  static __host__ __device__ constexpr attn_tc::Stat kind(int s) { return " +
       table(kinds, "attn_tc::Stat::Sum") + "; }\n";
  s += "  static __host__ __device__ constexpr int pass(int s) { return " + table(passes, "0") + "; }\n";
  s += "  static __host__ __device__ constexpr float power(int s) { return " + table(powers, "0.0f") + "; }\n";
  s += std::string("  static constexpr attn_tc::OutForm kOutForm = attn_tc::OutForm::") + form + ";\n";
  s += "  static constexpr int kOutStat = " + std::to_string(outStat) + ";\n";
  s += "  static constexpr float kOutScale = " + floatLiteral(acc.scale) + ";\n";
  s += "  static constexpr float kOutPower = " + floatLiteral(outPower) + ";\n";
  s += std::string("  static constexpr attn_tc::Mask kMask = attn_tc::Mask::") + mask + ";\n";
  s += "  static constexpr long long kWindowLow = " + std::to_string(windowLow) + ";\n";
  s += std::string("  static constexpr bool kQueryNorm = ") + (layout.needsQueryNorm ? "true" : "false") + ";\n";
  s += std::string("  static constexpr bool kKeyNorm = ") + (layout.needsKeyNorm ? "true" : "false") + ";\n";
  if (withForward) {
    s += "  template <int P>\n  static __device__ __forceinline__ bool operands(const attn_tc::Row& row, float s, "
         "long long j, float rk, float* x) {\n";
    s += "    float y[kStats + 2] = {};\n";
    s += dispatch(passCount, "attn_hook_", "const_cast<float*>(row.stats), row.i, row.n, row.lk, row.rq, s, j, rk, y");
    s += "#pragma unroll\n    for (int k = 0; k <= kStats; ++k) x[k] = y[k];\n";
    s += "    return y[kStats + 1] != 0.0f;\n  }\n";
  }
  if (withBackward) {
    const std::string rowArgs = "const_cast<float*>(row.stats), const_cast<float*>(row.adj), row.i, row.n, row.lk, row.rq";
    s += "  // backward: the row adjoints, the row passes that sum them, the gradient terms\n";
    s += "  static constexpr int kAdjoints = " + std::to_string(backward.adjoints.size()) + ";\n";
    s += "  static constexpr int kRowPasses = " + std::to_string(backward.rowPasses) + ";\n";
    s += "  static __host__ __device__ constexpr int level(int s) { return " + table(levels, "0") + "; }\n";
    s += "  template <int P>\n  static __device__ __forceinline__ bool rowTerms(const attn_tc::BwdRow& row, float s, "
         "float g, long long j, float rk, float* x) {\n";
    s += "    float y[kAdjoints + 1] = {};\n";
    s += dispatch(backward.rowPasses, "attn_bwd_rows_", rowArgs + ", s, g, j, rk, y");
    s += "#pragma unroll\n    for (int k = 0; k < kAdjoints; ++k) x[k] = y[k];\n";
    s += "    return y[kAdjoints] != 0.0f;\n  }\n";
    s += "  static constexpr bool kRowFinish = true;\n";
    s += "  template <int P>\n  static __device__ __forceinline__ void rowFinish(const attn_tc::BwdRow& row, float* adj) {\n";
    s += dispatch(backward.rowPasses, "attn_bwd_rowfinish_",
                  "const_cast<float*>(row.stats), adj, row.i, row.n, row.lk, row.rq");
    s += "  }\n";
    s += "  static __device__ __forceinline__ bool gradTerms(const attn_tc::BwdRow& row, float s, float g, long long j, "
         "float rk, float* x) {\n";
    s += "    float y[5] = {};\n    attn_bwd_grad(" + rowArgs + ", s, g, j, rk, y);\n";
    s += "#pragma unroll\n    for (int k = 0; k < 4; ++k) x[k] = y[k];\n";
    s += "    return y[4] != 0.0f;\n  }\n";
  }
  s += "};\n\n";
  const std::string tile = "CTA per (head, " + std::to_string(t.blockM) + " query rows)";
  if (withForward) {
    s += "extern \"C\" __global__ void __launch_bounds__(Config::kWarps * 32, 1) attn_forward_tc(attn_tc::FwdParams p) {\n"
         "  attn_tc::forward<Variant, Config>(p);\n}\n\n";
    out.entries.push_back({"attn_forward_tc", "forward", tile, threads, forwardBytes});
  }
  if (withBackward) {
    const int rowsBytes = tensorCoreRowsSharedBytes(o);
    const int rowFloats = 2 * static_cast<int>(n) + static_cast<int>(backward.adjoints.size()) + (layout.needsQueryNorm ? 1 : 0);
    const int gradBytes = tensorCoreGradientSharedBytes(o, rowFloats);
    s += "static_assert(attn_tc::backwardRowsSharedBytes<Config>() == " + std::to_string(rowsBytes) +
         ", \"the host's shared-memory size (CudaCodegen.cpp) disagrees with tc_backward.cuh\");\n";
    s += "static_assert(attn_tc::backwardGradientSharedBytes<Config, Variant>() == " + std::to_string(gradBytes) +
         ", \"the host's shared-memory size (CudaCodegen.cpp) disagrees with tc_backward.cuh\");\n\n";
    for (int p = 1; p <= backward.rowPasses; ++p) {
      const std::string name = "attn_backward_rows_tc_" + std::to_string(p);
      s += "extern \"C\" __global__ void __launch_bounds__(Config::kWarps * 32, 1) " + name +
           "(attn_tc::BwdParams p) {\n  attn_tc::backwardRows<Variant, Config, " + std::to_string(p) + ">(p);\n}\n\n";
      out.entries.push_back({name, "rows_" + std::to_string(p), tile, threads, rowsBytes});
    }
    s += "extern \"C\" __global__ void __launch_bounds__(Config::kWarps * 32, 1) attn_backward_grad_tc(attn_tc::BwdParams p) {\n"
         "  attn_tc::backwardGradient<Variant, Config>(p);\n}\n\n";
    out.entries.push_back({"attn_backward_grad_tc", "grad",
                           "CTA per (head, " + std::to_string(t.blockN) + " keys)", threads, gradBytes});
  }
  s += "// Support kernels, one thread per row (rows = heads * L).\n"
       "// 1/|x_r| (0 for a zero row), for l2norm: squares of x / max |x|, which neither overflow\n"
       "// nor underflow at any scale bf16 holds (l2norm is scale-invariant).\n"
       "extern \"C\" __global__ void attn_inverse_norms_tc(const Config::Elem* x, float* out, long long rows, long long d) {\n"
       "  const long long r = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;\n"
       "  if (r >= rows) return;\n  float m = 0.f, s = 0.f;\n"
       "  for (long long c = 0; c < d; ++c) m = fmaxf(m, fabsf(static_cast<float>(x[r * d + c])));\n"
       "  for (long long c = 0; c < d; ++c) {\n    const float e = static_cast<float>(x[r * d + c]) / (m == 0.f ? 1.f : m);\n"
       "    s += e * e;\n  }\n"
       "  out[r] = s == 0.f ? 0.f : 1.f / (m * sqrtf(s));\n}\n\n";
  out.entries.push_back({"attn_inverse_norms_tc", "norms", "thread per row"});
  if (withBackward) {
    s += "// adj[r][slot] = dO_r . o_r: the row adjoints the FlashAttention identity gives.\n"
         "extern \"C\" __global__ void attn_identity_adjoint_tc(const Config::Elem* dout, const Config::Elem* o, float* adj,\n"
         "                                                    long long rows, long long dv, long long slots, long long slot) {\n"
         "  const long long r = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;\n"
         "  if (r >= rows) return;\n  float s = 0.f;\n"
         "  for (long long c = 0; c < dv; ++c) s += static_cast<float>(dout[r * dv + c]) * static_cast<float>(o[r * dv + c]);\n"
         "  adj[r * slots + slot] = s;\n}\n\n"
         "// dx_r += -bar_r rinv_r^3 x_r: the l2norm's share of the gradient.\n"
         "extern \"C\" __global__ void attn_finish_norm_tc(const float* rinv, const float* bar, const Config::Elem* x, float* dx,\n"
         "                                               long long rows, long long d) {\n"
         "  const long long r = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;\n"
         "  if (r >= rows) return;\n"
         "  const float f = -bar[r] * rinv[r] * rinv[r];  // (-bar r) r (r x): r^3 alone over- or underflows\n"
         "  for (long long c = 0; c < d; ++c) dx[r * d + c] += f * (rinv[r] * static_cast<float>(x[r * d + c]));\n}\n";
    out.entries.push_back({"attn_identity_adjoint_tc", "identity", "thread per row"});
    out.entries.push_back({"attn_finish_norm_tc", "finish_norm", "thread per row"});
  }
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

namespace {
int smemWidth(int c) { return c % 64 == 0 ? c : c + 8; }  // tc_forward.cuh's SmemTile rows
}  // namespace

int tensorCoreSharedBytes(const CudaOptions& o) {
  const TileConfig& t = o.tile;
  return 2 * (t.blockM * smemWidth(std::max(o.headDim, o.valueDim)) +
              t.stages * t.blockN * (smemWidth(o.headDim) + smemWidth(o.valueDim)));
}

int tensorCoreRowsSharedBytes(const CudaOptions& o) {
  const TileConfig& t = o.tile;
  return 2 * (t.blockM + t.stages * t.blockN) * (smemWidth(o.headDim) + smemWidth(o.valueDim));
}

int tensorCoreGradientSharedBytes(const CudaOptions& o, int rowFloats) {
  const TileConfig& t = o.tile;
  const int dims = smemWidth(o.headDim) + smemWidth(o.valueDim);
  return 2 * (t.blockN * (dims + smemWidth(t.blockM)) + t.stages * t.blockM * dims) + 4 * t.stages * t.blockM * rowFloats;
}

const CudaEntry& CudaKernelSource::entry(const std::string& role) const {
  for (const CudaEntry& e : entries)
    if (e.role == role) return e;
  ATTN_INTERNAL_ERROR("cuda codegen: the module has no kernel for " + role);
}

TileConfig TileConfig::parse(const std::string& text) {
  TileConfig t;
  char tail = 0;
  if (std::sscanf(text.c_str(), "m%dn%dw%ds%d%c", &t.blockM, &t.blockN, &t.warps, &t.stages, &tail) != 4)
    throw std::invalid_argument("tile '" + text + "' is not of the form mMnNwWsS (e.g. m64n64w4s2)");
  if (t.warps != 4 && t.warps != 8) throw std::invalid_argument("tile '" + text + "': warps must be 4 or 8");
  if (t.blockM != 16 * t.warps)
    throw std::invalid_argument("tile '" + text + "': blockM must be 16 x warps (" + std::to_string(16 * t.warps) + ")");
  if (t.blockN != 32 && t.blockN != 64 && t.blockN != 128)
    throw std::invalid_argument("tile '" + text + "': blockN must be 32, 64 or 128");
  if (t.stages < 1 || t.stages > 3) throw std::invalid_argument("tile '" + text + "': stages must be 1, 2 or 3");
  return t;
}

bool exactMathRequested() {
  const char* v = std::getenv("ATTN_CUDA_EXACT_MATH");
  return v && *v && std::string(v) != "0";
}

bool tensorCoresApply(const CudaOptions& o) {
  return o.dtype != Dtype::F32 && o.headDim % 16 == 0 && o.valueDim % 16 == 0 && o.headDim > 0 && o.valueDim > 0 &&
         o.headDim <= 256 && o.valueDim <= 256;
}

std::string tileUnsupported(const CudaOptions& o) {
  const TileConfig& t = o.tile;
  const int keyWarps = std::min(t.warps, t.blockN / 16);
  const int split = keyWarps > 0 ? t.warps / keyWarps : 1;
  const int multiple = 16 * split;
  if (o.headDim % multiple == 0 && o.valueDim % multiple == 0) return "";
  return "tile " + t.name() + " needs head dims that are multiples of " + std::to_string(multiple) +
         " (its backward splits them over " + std::to_string(split) + " warps); d = " + std::to_string(o.headDim) +
         ", dv = " + std::to_string(o.valueDim);
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
    out.tensorCoreForward = options.part != ModulePart::Backward;
    out.tensorCoreBackward = backward.unsupported.empty() && options.part != ModulePart::Forward;
    out.sharedBytes = tensorCoreSharedBytes(options);
    s += "// attn CUDA kernels for '" + plan.graph.name + "': tensor cores, " + dtypeName(options.dtype) +
         " inputs, d = " + std::to_string(options.headDim) + ", dv = " + std::to_string(options.valueDim) +
         ", tile " + options.tile.name() + partComment(options.part) + "\n";
    s += tensorCoreKernels(plan, backward, options, k, out);
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
  out.entries.push_back({"attn_inverse_norms", "norms", "thread per row"});
  out.entries.push_back({"attn_identity_adjoint", "identity", "thread per row"});
  out.entries.push_back({"attn_finish_norm", "finish_norm", "thread per row"});
  out.source = s;
  return out;
}

}  // namespace attn::cuda
