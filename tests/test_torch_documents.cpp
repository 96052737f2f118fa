// Document masking and packed batches (`mask ... per document`, docs/LANGUAGE-NOTES.md,
// "Documents"): a row sees only its own document's keys, with i, j, L and n those of the
// document, so a packed sequence means each document run alone.
//  - The reference backend against independent formulas: every stdlib program made
//    `per document` on a packed batch equals the plain program run on each document alone
//    (slices, outputs and gradients concatenated), float64 1e-12; softmax with document
//    masking written out in ATen (a dense mask from the ids); full, window and expression
//    masks per document; rows that see no key.
//  - The CPU backend against the reference: every stdlib program, float64 1e-9 and float32
//    1e-4, forward and backward, documents of lengths 1, 37 and 501 packed together, GQA
//    group sizes 1, 2 and 8, per-batch-row ids, queries fewer than keys.
//  - The CPU driver's kernel calls (cpu::setVisitObserver): none spans two documents, and
//    the row x key area they cover is the documents' own (sum of len^2), not L^2.
//  - Offsets (cu_seqlens) equal the ids they describe; the errors, each with its message.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#undef CHECK
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "TestUtil.h"
#include "runtime/Attention.h"

#ifdef ATTN_HAVE_LLVM
#include "codegen/llvm/CpuBackend.h"
#endif

using namespace attn;

namespace {

double relErr(const at::Tensor& x, const at::Tensor& ref, double floor = 1e-2) {
  at::Tensor a = x.to(at::kDouble), b = ref.to(at::kDouble);
  double scale = std::max(b.abs().max().item<double>(), floor);
  return (a - b).abs().max().item<double>() / scale;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The program's source with its mask scoped `per document` (a mask line gets the words
// before any trailing comment; a program without a mask gets `mask full per document`).
std::string perDocument(const std::string& source) {
  static const std::regex maskLine(R"((^[ \t]*mask[ \t]+[^#\n]*?)([ \t]*(#[^\n]*)?)$)", std::regex::multiline);
  if (std::regex_search(source, maskLine)) return std::regex_replace(source, maskLine, "$1 per document$2");
  static const std::regex open(R"((attention[ \t]+[A-Za-z_0-9]+[ \t]*\{[^\n]*\n))");
  return std::regex_replace(source, open, "$1  mask full per document\n", std::regex_constants::format_first_only);
}

struct Inputs {
  at::Tensor q, k, v, dout;
};

Inputs randomInputs(int64_t B, int64_t hq, int64_t hkv, int64_t lq, int64_t lk, int64_t d, int64_t dv,
                    at::Generator& gen) {
  return {at::randn({B, hq, lq, d}, gen, at::kDouble), at::randn({B, hkv, lk, d}, gen, at::kDouble),
          at::randn({B, hkv, lk, dv}, gen, at::kDouble), at::randn({B, hq, lq, dv}, gen, at::kDouble)};
}

struct Outputs {
  at::Tensor o, dq, dk, dv;
  bool finite() const {
    for (const at::Tensor* t : {&o, &dq, &dk, &dv})
      if (!at::isfinite(*t).all().item<bool>()) return false;
    return true;
  }
};

Outputs run(const Program& program, const Inputs& in, at::ScalarType dtype, Backend backend,
            const Documents& docs = {}) {
  at::Tensor q = in.q.to(dtype).detach().requires_grad_(), k = in.k.to(dtype).detach().requires_grad_(),
             v = in.v.to(dtype).detach().requires_grad_();
  at::Tensor o = program(q, k, v, backend, docs);
  o.backward(in.dout.to(dtype));
  auto grad = [](const at::Tensor& t) { return t.grad().defined() ? t.grad() : at::zeros_like(t); };
  return {o.detach(), grad(q), grad(k), grad(v)};
}

double worst(const Outputs& got, const Outputs& want, double floor = 1e-2) {
  return std::max({relErr(got.o, want.o, floor), relErr(got.dq, want.dq, floor), relErr(got.dk, want.dk, floor),
                   relErr(got.dv, want.dv, floor)});
}

// Ids [L] of documents with these lengths, in order (document d holds id 10 * d + 3: the
// values are arbitrary, only their order matters).
at::Tensor idsOf(const std::vector<int64_t>& lengths) {
  std::vector<int64_t> ids;
  for (size_t d = 0; d < lengths.size(); ++d) ids.insert(ids.end(), static_cast<size_t>(lengths[d]), 10 * int64_t(d) + 3);
  return at::tensor(ids, at::kLong);
}

// The independent statement of the meaning: each document of each batch row run alone
// through `plain` (the program without `per document`), the queries of the document
// being its last rows (queries are the last Lq positions). lengths[b]: batch row b's.
Outputs separately(const Program& plain, const Inputs& in, const std::vector<std::vector<int64_t>>& lengths,
                   at::ScalarType dtype, Backend backend) {
  const int64_t B = in.q.size(0), lq = in.q.size(2), lk = in.k.size(2);
  Outputs out{at::zeros({B, in.q.size(1), lq, in.v.size(3)}, at::kDouble), at::zeros_like(in.q), at::zeros_like(in.k),
              at::zeros_like(in.v)};
  for (int64_t b = 0; b < B; ++b) {
    int64_t s = 0;
    for (int64_t len : lengths[static_cast<size_t>(b)]) {
      const int64_t e = s + len, rowStart = std::max(s, lk - lq);
      if (rowStart < e) {
        const int64_t r0 = rowStart - (lk - lq), rows = e - rowStart;
        Inputs part{in.q.slice(0, b, b + 1).slice(2, r0, r0 + rows), in.k.slice(0, b, b + 1).slice(2, s, e),
                    in.v.slice(0, b, b + 1).slice(2, s, e), in.dout.slice(0, b, b + 1).slice(2, r0, r0 + rows)};
        Outputs r = run(plain, part, dtype, backend);
        out.o.slice(0, b, b + 1).slice(2, r0, r0 + rows).copy_(r.o);
        out.dq.slice(0, b, b + 1).slice(2, r0, r0 + rows).copy_(r.dq);
        out.dk.slice(0, b, b + 1).slice(2, s, e).copy_(r.dk);
        out.dv.slice(0, b, b + 1).slice(2, s, e).copy_(r.dv);
      }
      s = e;
    }
    REQUIRE(s == lk);
  }
  return out;
}

struct Grouping {
  int64_t hq, hkv;
};
const Grouping kGroupings[] = {{2, 2}, {4, 2}, {8, 1}};  // G = 1, 2, 8

struct Threads {
  explicit Threads(const char* n) { setenv("ATTN_NUM_THREADS", n, 1); }
  ~Threads() { unsetenv("ATTN_NUM_THREADS"); }
};

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_SUITE("documents") {
  TEST_CASE("the test's own rewrite: every stdlib program gets `per document` on its mask") {
    int n = 0;
    for (const std::string& path : test::attnFilesIn(ATTN_STDLIB)) {
      Program scoped = Program::fromSource(perDocument(readFile(path)), {}, path);
      CHECK_MESSAGE(scoped.graph().perDocument, path);
      CHECK_FALSE(Program::fromFile(path).graph().perDocument);
      ++n;
    }
    CHECK(n > 25);
    CHECK(perDocument("attention a {\n  out j\n}\n") == "attention a {\n  mask full per document\n  out j\n}\n");
    CHECK(perDocument("attention a {\n  mask causal  # c\n  out j\n}\n") ==
          "attention a {\n  mask causal per document  # c\n  out j\n}\n");
  }

  TEST_CASE("reference: a packed batch equals each document run alone, every stdlib program, G = 1, 2, 8") {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1901);
    // Two batch rows with different documents ([B, L] ids), lengths 1 and 37 among them.
    const std::vector<std::vector<int64_t>> lengths = {{37, 1, 12}, {1, 12, 37}};
    at::Tensor ids = at::stack({idsOf(lengths[0]), idsOf(lengths[1])});
    int compared = 0;
    for (const std::string& path : test::attnFilesIn(ATTN_STDLIB)) {
      Program plain = Program::fromFile(path);
      Program scoped = Program::fromSource(perDocument(readFile(path)), {}, path);
      for (const Grouping& g : kGroupings) {
        Inputs in = randomInputs(2, g.hq, g.hkv, 50, 50, 16, 8, gen);
        Outputs want = separately(plain, in, lengths, at::kDouble, Backend::Reference);
        if (!want.finite()) continue;
        Outputs got = run(scoped, in, at::kDouble, Backend::Reference, Documents{ids, {}});
        INFO(path, " Hq=", g.hq, " Hkv=", g.hkv);
        CHECK(worst(got, want) < 1e-12);
        ++compared;
      }
    }
    CHECK(compared > 75);
  }

  TEST_CASE("reference: documents of lengths 1, 37 and 501 packed, queries fewer than keys") {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1902);
    const std::vector<int64_t> lengths = {37, 1, 501};
    for (const char* name : {"softmax", "lssa", "lssar", "sliding_window", "relu_wortsman", "alibi"}) {
      const std::string path = std::string(ATTN_STDLIB) + "/" + name + ".attn";
      Program plain = Program::fromFile(path);
      Program scoped = Program::fromSource(perDocument(readFile(path)), {}, path);
      // Lq = Lk, then the last 520 rows only (the first document holds no query row, the
      // second's single row is a query).
      for (int64_t lq : {539, 520}) {
        Inputs in = randomInputs(1, 2, 1, lq, 539, 16, 16, gen);
        Outputs want = separately(plain, in, {lengths}, at::kDouble, Backend::Reference);
        REQUIRE(want.finite());
        Outputs got = run(scoped, in, at::kDouble, Backend::Reference, Documents{idsOf(lengths), {}});
        INFO(name, " Lq=", lq);
        CHECK(worst(got, want) < 1e-12);
      }
    }
  }

  TEST_CASE("reference: document-masked softmax equals the dense-mask formula in ATen") {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1903);
    Program softmax = Program::fromSource(perDocument(readFile(std::string(ATTN_STDLIB) + "/softmax.attn")));
    const int64_t L = 60, D = 16;
    at::Tensor ids = idsOf({1, 20, 2, 37});
    Inputs in = randomInputs(2, 4, 4, L, L, D, 8, gen);
    at::Tensor s = at::matmul(in.q, in.k.transpose(-1, -2)) / std::sqrt(double(D));
    at::Tensor visible = at::ones({L, L}, at::kBool).tril().logical_and(ids.view({L, 1}) == ids.view({1, L}));
    at::Tensor want = at::matmul(at::softmax(s.masked_fill(visible.logical_not(), -INFINITY), -1), in.v);
    CHECK(relErr(softmax(in.q, in.k, in.v, Backend::Reference, Documents{ids, {}}), want) < 1e-12);
    // And the same ids given as offsets (cu_seqlens).
    at::Tensor offsets = at::tensor(std::vector<int32_t>{0, 1, 21, 23, 60}, at::kInt);
    CHECK(relErr(softmax(in.q, in.k, in.v, Backend::Reference, Documents{{}, offsets}), want) < 1e-12);
    // One document (all ids equal) is the program without documents.
    CHECK(relErr(softmax(in.q, in.k, in.v, Backend::Reference, Documents{at::zeros({L}, at::kInt), {}}),
                 softmax(in.q, in.k, in.v, Backend::Reference)) < 1e-15);
  }

  TEST_CASE("reference: full, window and expression masks per document; i, j, L, n of the document") {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1904);
    const std::vector<int64_t> lengths = {5, 1, 23, 9};
    // Each body uses i, j, L or n, so that document-relative positions are observable.
    const char* bodies[] = {
        "  mask full\n  out exp(dot(q, k) / sqrt(d)) * (1 + j) / (L * n)\n",
        "  mask window(4)\n  out softplus(dot(q, k)) * log(n + 1) + i / L\n",
        "  mask j <= i && i - j != 2\n  out relu(dot(q, k) + 1) / n\n",
        // rows 0 and 1 of every document see no key: they are 0
        "  mask j + 2 <= i\n  out exp(dot(q, k)) / rowsum(exp(dot(q, k)))\n",
    };
    for (const char* body : bodies) {
      const std::string plainText = std::string("attention t {\n") + body + "}\n";
      Program plain = Program::fromSource(plainText);
      Program scoped = Program::fromSource(perDocument(plainText));
      Inputs in = randomInputs(1, 2, 2, 38, 38, 8, 8, gen);
      Outputs want = separately(plain, in, {lengths}, at::kDouble, Backend::Reference);
      REQUIRE(want.finite());
      Outputs got = run(scoped, in, at::kDouble, Backend::Reference, Documents{idsOf(lengths), {}});
      INFO(body);
      CHECK(worst(got, want) < 1e-12);
    }
  }

#ifdef ATTN_HAVE_LLVM
  TEST_CASE("cpu equals the reference on packed documents: every stdlib program, float64 and float32, G = 1, 2, 8") {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1905);
    const std::vector<std::vector<int64_t>> lengths = {{37, 1, 12}, {1, 12, 37}};
    at::Tensor ids = at::stack({idsOf(lengths[0]), idsOf(lengths[1])});
    int compared = 0;
    for (const std::string& path : test::attnFilesIn(ATTN_STDLIB)) {
      Program scoped = Program::fromSource(perDocument(readFile(path)), {}, path);
      for (const Grouping& g : kGroupings) {
        for (int64_t lq : {50, 20}) {
          Inputs in = randomInputs(2, g.hq, g.hkv, lq, 50, 16, 16, gen);
          Outputs want = run(scoped, in, at::kDouble, Backend::Reference, Documents{ids, {}});
          if (!want.finite()) continue;
          for (const char* threads : {"1", "16"}) {
            Threads scope(threads);
            Outputs f64 = run(scoped, in, at::kDouble, Backend::Cpu, Documents{ids, {}});
            Outputs f32 = run(scoped, in, at::kFloat, Backend::Cpu, Documents{ids, {}});
            INFO(path, " Hq=", g.hq, " Hkv=", g.hkv, " Lq=", lq, " threads=", std::string(threads));
            CHECK(worst(f64, want) < 1e-9);
            CHECK(worst(f32, want, 1.0) < 1e-4);
            ++compared;
          }
        }
      }
    }
    CHECK(compared > 300);
  }

  TEST_CASE("cpu equals the reference on documents of lengths 1, 37 and 501 packed together") {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1906);
    const std::vector<int64_t> lengths = {37, 1, 501};
    for (const char* name : {"softmax", "lssa", "lssar", "sliding_window", "sigmoid_ramapuram_b"}) {
      const std::string path = std::string(ATTN_STDLIB) + "/" + name + ".attn";
      Program scoped = Program::fromSource(perDocument(readFile(path)), {}, path);
      for (const Grouping& g : kGroupings) {
        Inputs in = randomInputs(1, g.hq, g.hkv, 539, 539, 32, 32, gen);
        Outputs want = run(scoped, in, at::kDouble, Backend::Reference, Documents{idsOf(lengths), {}});
        REQUIRE(want.finite());
        Outputs f64 = run(scoped, in, at::kDouble, Backend::Cpu, Documents{idsOf(lengths), {}});
        Outputs f32 = run(scoped, in, at::kFloat, Backend::Cpu, Documents{idsOf(lengths), {}});
        INFO(name, " Hq=", g.hq, " Hkv=", g.hkv);
        CHECK(worst(f64, want) < 1e-9);
        CHECK(worst(f32, want, 1.0) < 1e-4);
      }
    }
  }

  TEST_CASE("cpu: no kernel call spans two documents; the area visited is the documents' own") {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1907);
    const std::vector<std::vector<int64_t>> lengths = {{37, 1, 501}, {501, 37, 1}};
    at::Tensor ids = at::stack({idsOf(lengths[0]), idsOf(lengths[1])});
    Program scoped = Program::fromSource(perDocument(readFile(std::string(ATTN_STDLIB) + "/lssa.attn")));
    const int64_t hq = 4, hkv = 2, L = 539;
    Inputs in = randomInputs(2, hq, hkv, L, L, 16, 16, gen);
    std::mutex m;
    std::vector<cpu::Visit> visits;
    cpu::setVisitObserver([&](const cpu::Visit& v) {
      std::lock_guard<std::mutex> lock(m);
      visits.push_back(v);
    });
    Outputs got = run(scoped, in, at::kFloat, Backend::Cpu, Documents{ids, {}});
    cpu::setVisitObserver({});
    REQUIRE(got.finite());
    const int64_t* id = ids.data_ptr<int64_t>();
    int64_t forwardArea = 0, crossing = 0, forwardCalls = 0;
    for (const cpu::Visit& v : visits) {
      const int64_t row = (v.head / hq) * L;  // ids of the head's batch row
      REQUIRE(v.rowBegin < v.rowEnd);
      REQUIRE(v.keyBegin < v.keyEnd);
      const int64_t doc = id[row + v.rowBegin];
      // Every row and key of the call in one document (ids are sorted: the ends suffice).
      if (id[row + v.rowEnd - 1] != doc || id[row + v.keyBegin] != doc || id[row + v.keyEnd - 1] != doc) ++crossing;
      if (std::string(v.kernel) == "forward") {
        forwardArea += (v.rowEnd - v.rowBegin) * (v.keyEnd - v.keyBegin);
        ++forwardCalls;
      }
    }
    CHECK(crossing == 0);
    // Each head's forward calls cover each document's rows x its keys exactly once.
    const int64_t own = 37 * 37 + 1 * 1 + 501 * 501;
    CHECK(forwardArea == 2 * hq * own);
    CHECK(forwardArea < 2 * hq * L * L * 9 / 10);
    CHECK(forwardCalls > 0);
    bool sawGradient = false, sawRows = false;
    for (const cpu::Visit& v : visits) {
      sawGradient |= std::string(v.kernel) == "gradient";
      sawRows |= std::string(v.kernel) == "rows";
    }
    CHECK(sawGradient);
    CHECK(sawRows);
  }
#endif

  TEST_CASE("errors: documents for a program without `per document`, bad ids, bad offsets") {
    Program plain = Program::fromFile(std::string(ATTN_STDLIB) + "/softmax.attn");
    Program scoped = Program::fromSource(perDocument(readFile(std::string(ATTN_STDLIB) + "/softmax.attn")));
    at::Tensor q = at::randn({2, 2, 6, 4}), k = at::randn({2, 2, 6, 4}), v = at::randn({2, 2, 6, 4});
    auto call = [&](const Program& p, const Documents& d, Backend b = Backend::Reference) {
      return errorOf([&] { p(q, k, v, b, d); });
    };
    CHECK(call(plain, Documents{at::zeros({6}, at::kLong), {}}) ==
          "documents were given, but the mask of 'softmax' is not per document; write it as `mask causal per "
          "document` (or full, window(W) or an expression, followed by `per document`) so that the program says how "
          "documents combine with its mask");
    CHECK(call(scoped, Documents{at::zeros({6}), {}}) == "document ids have dtype Float; expected int32 or int64");
    CHECK(call(scoped, Documents{at::zeros({5}, at::kInt), {}}) ==
          "document ids have shape [5]; expected [Lk] = [6] or [B, Lk] = [2, 6] (one id per key position)");
    CHECK(call(scoped, Documents{at::zeros({3, 6}, at::kInt), {}}) ==
          "document ids have shape [3, 6]; expected [Lk] = [6] or [B, Lk] = [2, 6] (one id per key position)");
    CHECK(call(scoped, Documents{at::tensor(std::vector<int64_t>{0, 0, 1, 1, 0, 2}), {}}) ==
          "document ids must be non-decreasing along the sequence (each document one contiguous run of positions): "
          "position 4 has id 0 after 1");
    CHECK(call(scoped, Documents{at::tensor(std::vector<int64_t>{0, 0, 1, 1, 2, 2, 0, 1, 1, 2, 1, 3}).view({2, 6}), {}}) ==
          "document ids must be non-decreasing along the sequence (each document one contiguous run of positions): "
          "position 4 of batch row 1 has id 1 after 2");
    CHECK(call(scoped, Documents{{}, at::tensor(std::vector<int32_t>{1, 6}, at::kInt)}) ==
          "document offsets (cu_seqlens) must start at 0; got 1");
    CHECK(call(scoped, Documents{{}, at::tensor(std::vector<int32_t>{0, 4, 3, 6}, at::kInt)}) ==
          "document offsets (cu_seqlens) must be non-decreasing; entry 2 is 3 after 4");
    CHECK(call(scoped, Documents{{}, at::tensor(std::vector<int32_t>{0, 4, 5}, at::kInt)}) ==
          "document offsets (cu_seqlens) end at 5 but the sequence has 6 positions (k's length)");
    CHECK(call(scoped, Documents{{}, at::tensor(std::vector<double>{0, 6})}) ==
          "document offsets (cu_seqlens) have dtype Double; expected int32 or int64");
    CHECK(call(scoped, Documents{{}, at::zeros({1}, at::kLong)}) ==
          "document offsets (cu_seqlens) have shape [1]; expected [D + 1] for D >= 1 documents: 0, the end of each "
          "document");
    CHECK(call(scoped, Documents{at::zeros({6}, at::kLong), at::tensor(std::vector<int64_t>{0, 6})}) ==
          "give documents either as ids or as offsets (cu_seqlens), not both");
    // Zero-length documents in offsets are allowed (FlashAttention's varlen allows them).
    CHECK(call(scoped, Documents{{}, at::tensor(std::vector<int64_t>{0, 0, 3, 3, 6})}) == "(no error)");
    CHECK(call(scoped, Documents{at::zeros({6}, at::kLong), {}}, Backend::Cuda) ==
          "the cuda backend does not run packed documents yet; use --backend cpu or reference");
  }
}
