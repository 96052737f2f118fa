#include "runtime/Attention.h"

#include <ATen/ATen.h>

#include <sstream>

#include "codegen/reference/ReferenceBackend.h"
#include "compiler/Parser.h"
#include "runtime/CpuOp.h"
#include "runtime/CudaOp.h"

namespace attn {

const char* backendName(Backend b) {
  switch (b) {
    case Backend::Reference: return "reference";
    case Backend::Cpu: return "cpu";
    case Backend::Cuda: return "cuda";
  }
  return "?";
}

Backend parseBackend(const std::string& name) {
  if (name == "reference") return Backend::Reference;
  if (name == "cpu") return Backend::Cpu;
  if (name == "cuda") return Backend::Cuda;
  throw UserError("unknown backend '" + name + "' (expected reference, cpu or cuda)");
}

namespace {

std::string shapeOf(const at::Tensor& t) {
  std::ostringstream os;
  os << '[';
  for (int64_t d = 0; d < t.dim(); ++d) os << (d ? ", " : "") << t.size(d);
  os << ']';
  return os.str();
}

}  // namespace

Program::Program(ir::Graph graph)
    : graph_(std::make_shared<const ir::Graph>(std::move(graph))), cpu_(makeCpuProgramState(graph_)),
      cuda_(makeCudaProgramState(graph_)) {}

Program Program::fromFile(const std::string& path, const CompileOptions& options) {
  DiagnosticEngine diags;
  auto graph = compileToIR(path, options, diags);
  if (!graph || diags.hasErrors()) throw UserError(diags.renderToString());
  return Program(std::move(*graph));
}

Program Program::fromSource(const std::string& source, const CompileOptions& options, const std::string& path) {
  DiagnosticEngine diags;
  auto file = std::make_shared<SourceFile>(path, source);
  ast::Module module = parseModule(file, diags);
  std::optional<ir::Graph> graph;
  if (!diags.hasErrors()) {
    auto checked = compileModule(module, options, diags);
    if (checked) graph = lowerAndOptimise(*checked);
  }
  if (!graph || diags.hasErrors()) throw UserError(diags.renderToString());
  return Program(std::move(*graph));
}

AttentionInputs validateInputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const char* names[3] = {"q", "k", "v"};
  const at::Tensor* ts[3] = {&q, &k, &v};
  for (int t = 0; t < 3; ++t) {
    if (!ts[t]->defined()) throw UserError(std::string(names[t]) + " is an undefined tensor");
    auto st = ts[t]->scalar_type();
    if (st != at::kHalf && st != at::kBFloat16 && st != at::kFloat && st != at::kDouble)
      throw UserError(std::string(names[t]) + " has dtype " + std::string(c10::toString(st)) +
                      "; attn takes float16, bfloat16, float32 or float64");
    if (ts[t]->dim() != 2 && ts[t]->dim() != 4)
      throw UserError(std::string(names[t]) + " has shape " + shapeOf(*ts[t]) +
                      "; expected [B, H, L, D] or [L, D]");
  }
  if (q.dim() != k.dim() || q.dim() != v.dim())
    throw UserError("q, k and v must have the same rank; got " + shapeOf(q) + ", " + shapeOf(k) + ", " + shapeOf(v));
  if (q.scalar_type() != k.scalar_type() || q.scalar_type() != v.scalar_type())
    throw UserError(std::string("q, k and v must have the same dtype; got ") + c10::toString(q.scalar_type()) +
                    ", " + c10::toString(k.scalar_type()) + ", " + c10::toString(v.scalar_type()));
  if (q.device() != k.device() || q.device() != v.device())
    throw UserError("q, k and v must be on the same device; got " + q.device().str() + ", " + k.device().str() +
                    ", " + v.device().str());
  AttentionInputs in;
  in.wasTwoDimensional = q.dim() == 2;
  in.q = in.wasTwoDimensional ? q.view({1, 1, q.size(0), q.size(1)}) : q;
  in.k = in.wasTwoDimensional ? k.view({1, 1, k.size(0), k.size(1)}) : k;
  in.v = in.wasTwoDimensional ? v.view({1, 1, v.size(0), v.size(1)}) : v;
  const auto &Q = in.q, &K = in.k, &V = in.v;
  if (Q.size(0) != K.size(0) || Q.size(0) != V.size(0))
    throw UserError("q, k and v must agree on batch; got " + shapeOf(q) + ", " + shapeOf(k) + ", " + shapeOf(v));
  if (K.size(1) != V.size(1))
    throw UserError("k and v must have the same number of heads; got " + shapeOf(k) + " and " + shapeOf(v));
  // Grouped-query attention (MQA when k and v have one head): each group of H_q / H_kv
  // consecutive query heads shares one key/value head.
  if (K.size(1) > 0 && Q.size(1) % K.size(1) != 0)
    throw UserError("q's heads (H_q = " + std::to_string(Q.size(1)) + ") must be a multiple of k and v's (H_kv = " +
                    std::to_string(K.size(1)) + "): grouped-query attention shares each key/value head among H_q / "
                    "H_kv query heads; got " + shapeOf(q) + ", " + shapeOf(k) + ", " + shapeOf(v));
  if (Q.size(3) != K.size(3))
    throw UserError("q and k must have the same head dimension; got " + shapeOf(q) + " and " + shapeOf(k));
  if (K.size(2) != V.size(2))
    throw UserError("k and v must have the same length; got " + shapeOf(k) + " and " + shapeOf(v));
  if (Q.size(2) > K.size(2))
    throw UserError("q has more rows than k (" + std::to_string(Q.size(2)) + " > " + std::to_string(K.size(2)) +
                    "); the queries must be the last rows of the key sequence");
  for (int t = 0; t < 3; ++t)
    for (int64_t d = 0; d < ts[t]->dim(); ++d)
      if (ts[t]->size(d) == 0) throw UserError(std::string(names[t]) + " is empty: shape " + shapeOf(*ts[t]));
  return in;
}

namespace {

std::string integerDtypeError(const std::string& what, const at::Tensor& t) {
  return what + " have dtype " + std::string(c10::toString(t.scalar_type())) + "; expected int32 or int64";
}

bool isIndexDtype(const at::Tensor& t) { return t.scalar_type() == at::kInt || t.scalar_type() == at::kLong; }

}  // namespace

at::Tensor documentIdsFromOffsets(const at::Tensor& offsets, int64_t length) {
  if (!isIndexDtype(offsets)) throw UserError(integerDtypeError("document offsets (cu_seqlens)", offsets));
  if (offsets.dim() != 1 || offsets.size(0) < 2)
    throw UserError("document offsets (cu_seqlens) have shape " + shapeOf(offsets) +
                    "; expected [D + 1] for D >= 1 documents: 0, the end of each document");
  at::Tensor c = offsets.to(at::kCPU, at::kLong).contiguous();
  const int64_t* p = c.data_ptr<int64_t>();
  const int64_t n = c.size(0);
  if (p[0] != 0) throw UserError("document offsets (cu_seqlens) must start at 0; got " + std::to_string(p[0]));
  for (int64_t d = 1; d < n; ++d)
    if (p[d] < p[d - 1])
      throw UserError("document offsets (cu_seqlens) must be non-decreasing; entry " + std::to_string(d) + " is " +
                      std::to_string(p[d]) + " after " + std::to_string(p[d - 1]));
  if (p[n - 1] != length)
    throw UserError("document offsets (cu_seqlens) end at " + std::to_string(p[n - 1]) + " but the sequence has " +
                    std::to_string(length) + " positions (k's length)");
  at::Tensor ids = at::empty({length}, at::kLong);
  int64_t* out = ids.data_ptr<int64_t>();
  for (int64_t d = 0; d + 1 < n; ++d)
    for (int64_t x = p[d]; x < p[d + 1]; ++x) out[x] = d;
  return ids;
}

at::Tensor validateDocuments(const Documents& docs, const ir::Graph& graph, const at::Tensor& q, const at::Tensor& k) {
  if (!docs.given()) return {};
  if (docs.ids.defined() && docs.offsets.defined())
    throw UserError("give documents either as ids or as offsets (cu_seqlens), not both");
  if (!graph.perDocument)
    throw UserError("documents were given, but the mask of '" + graph.name +
                    "' is not per document; write it as `mask causal per document` (or full, window(W) or an "
                    "expression, followed by `per document`) so that the program says how documents combine with "
                    "its mask");
  const int64_t lk = k.size(2), batch = k.size(0);
  at::Tensor ids;
  if (docs.offsets.defined()) {
    ids = documentIdsFromOffsets(docs.offsets, lk).view({1, lk});
  } else {
    const at::Tensor& t = docs.ids;
    if (!isIndexDtype(t)) throw UserError(integerDtypeError("document ids", t));
    const bool flat = t.dim() == 1 && t.size(0) == lk;
    const bool perRow = t.dim() == 2 && t.size(1) == lk && (t.size(0) == batch || t.size(0) == 1);
    if (!flat && !perRow)
      throw UserError("document ids have shape " + shapeOf(t) + "; expected [Lk] = [" + std::to_string(lk) +
                      "] or [B, Lk] = [" + std::to_string(batch) + ", " + std::to_string(lk) +
                      "] (one id per key position)");
    ids = t.to(at::kCPU, at::kLong).contiguous().view({flat ? 1 : t.size(0), lk});
    const int64_t* p = ids.data_ptr<int64_t>();
    for (int64_t r = 0; r < ids.size(0); ++r)
      for (int64_t x = 1; x < lk; ++x)
        if (p[r * lk + x] < p[r * lk + x - 1])
          throw UserError("document ids must be non-decreasing along the sequence (each document one contiguous "
                          "run of positions): position " + std::to_string(x) +
                          (ids.size(0) > 1 ? " of batch row " + std::to_string(r) : std::string()) + " has id " +
                          std::to_string(p[r * lk + x]) + " after " + std::to_string(p[r * lk + x - 1]));
  }
  (void)q;
  return ids;
}

at::Tensor Program::operator()(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, Backend backend) const {
  return (*this)(q, k, v, backend, Documents{});
}

at::Tensor Program::operator()(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, Backend backend,
                               const Documents& documents) const {
  AttentionInputs in = validateInputs(q, k, v);
  at::Tensor ids = validateDocuments(documents, *graph_, in.q, in.k);
  at::Tensor o;
  switch (backend) {
    case Backend::Reference:
      o = reference::forward(*graph_, in.q, in.k, in.v, ids.defined() ? ids.to(in.q.device()) : ids);
      break;
    case Backend::Cpu:
      o = cpuAttention(*cpu_, in.q, in.k, in.v, ids);
      break;
    case Backend::Cuda:
      if (ids.defined())
        throw UserError("the cuda backend does not run packed documents yet; use --backend cpu or reference");
      o = cudaAttention(*cuda_, in.q, in.k, in.v);
      break;
  }
  o = o.to(q.scalar_type());
  if (in.wasTwoDimensional) o = o.view({o.size(2), o.size(3)});
  return o;
}

}  // namespace attn
