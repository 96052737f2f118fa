// Reading tile loops out of PTX text. See PtxLoops.h.
#include "codegen/cuda/PtxLoops.h"

#include <map>
#include <sstream>

namespace attn::cuda {

PtxCounts& PtxCounts::operator+=(const PtxCounts& o) {
  instructions += o.instructions;
  mma += o.mma;
  ex2 += o.ex2;
  lg2 += o.lg2;
  rcp += o.rcp;
  div += o.div;
  sqrt += o.sqrt;
  atom += o.atom;
  return *this;
}

PtxCounts PtxCounts::scaled(int times) const {
  PtxCounts c;
  for (int i = 0; i < times; ++i) c += *this;
  return c;
}

namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

// The opcode of a statement line ("@%p1 bra $L__BB0_6;" -> "bra"), "" for anything else.
std::string opcodeOf(const std::string& line) {
  std::string t = trim(line);
  // NVRTC writes some inline-asm statements in a scope of their own: "{ cvt.rn... ;}".
  if (!t.empty() && t.front() == '{') t = trim(t.substr(1));
  if (!t.empty() && t.back() == '}') t = trim(t.substr(0, t.size() - 1));
  if (t.empty() || t.back() != ';' || t[0] == '.' || t[0] == '/' || t[0] == '$') return "";
  if (t[0] == '@') {  // a guard predicate
    const size_t space = t.find_first_of(" \t");
    if (space == std::string::npos) return "";
    t = trim(t.substr(space));
  }
  const size_t end = t.find_first_of(" \t;");
  return t.substr(0, end);
}

bool startsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

void count(const std::string& opcode, PtxCounts& c) {
  if (opcode.empty()) return;
  ++c.instructions;
  if (startsWith(opcode, "mma.sync")) ++c.mma;
  else if (startsWith(opcode, "ex2.")) ++c.ex2;
  else if (startsWith(opcode, "lg2.")) ++c.lg2;
  else if (startsWith(opcode, "rcp.")) ++c.rcp;
  else if (startsWith(opcode, "div.")) ++c.div;
  else if (startsWith(opcode, "sqrt.") || startsWith(opcode, "rsqrt.")) ++c.sqrt;
  else if (startsWith(opcode, "atom.") || startsWith(opcode, "red.")) ++c.atom;
}

// The label a branch goes to ("" when the line is not a branch).
std::string branchTarget(const std::string& line, const std::string& opcode) {
  if (opcode != "bra" && opcode != "bra.uni") return "";
  const size_t at = line.find("$L");
  if (at == std::string::npos) return "";
  const size_t end = line.find_first_of(" \t;", at);
  return line.substr(at, end - at);
}

struct Span {
  int first, last;  // 0-based line indices within the kernel
};

PtxKernel readKernel(const std::string& name, const std::vector<std::string>& lines) {
  PtxKernel k;
  k.name = name;
  std::map<std::string, int> labelAt;
  std::vector<std::string> opcodes(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string t = trim(lines[i]);
    if (!t.empty() && t[0] == '$' && t.back() == ':') labelAt[t.substr(0, t.size() - 1)] = static_cast<int>(i);
    opcodes[i] = opcodeOf(lines[i]);
    count(opcodes[i], k.whole);
  }
  std::vector<Span> loops;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string target = branchTarget(lines[i], opcodes[i]);
    auto it = labelAt.find(target);
    if (it != labelAt.end() && it->second < static_cast<int>(i)) loops.push_back({it->second, static_cast<int>(i)});
  }
  auto contains = [](const Span& outer, const Span& inner) {
    return outer.first <= inner.first && inner.last <= outer.last && (outer.first != inner.first || outer.last != inner.last);
  };
  auto mmaIn = [&](const Span& s) {
    for (int i = s.first; i <= s.last; ++i)
      if (startsWith(opcodes[static_cast<size_t>(i)], "mma.sync")) return true;
    return false;
  };
  for (const Span& loop : loops) {
    if (!mmaIn(loop)) continue;
    bool outermost = true;
    for (const Span& other : loops)
      if (contains(other, loop) && mmaIn(other)) outermost = false;
    if (!outermost) continue;
    PtxTileLoop t;
    t.firstLine = loop.first + 1;
    t.lastLine = loop.last + 1;
    std::vector<bool> inInner(lines.size(), false);
    for (const Span& other : loops)
      if (contains(loop, other)) {
        bool nestedDeeper = false;  // count each inner body once: only the loops directly inside
        for (const Span& mid : loops)
          if (contains(loop, mid) && contains(mid, other)) nestedDeeper = true;
        if (!nestedDeeper) ++t.innerLoops;
        for (int i = other.first; i <= other.last; ++i) inInner[static_cast<size_t>(i)] = true;
      }
    for (int i = loop.first; i <= loop.last; ++i) count(opcodes[static_cast<size_t>(i)], inInner[static_cast<size_t>(i)] ? t.inner : t.outer);
    k.tileLoops.push_back(t);
  }
  return k;
}

}  // namespace

std::vector<PtxKernel> readPtxKernels(const std::string& ptx) {
  std::vector<PtxKernel> kernels;
  std::istringstream in(ptx);
  std::string line, name;
  std::vector<std::string> body;
  bool inEntry = false;
  int depth = 0;
  bool opened = false;
  while (std::getline(in, line)) {
    const std::string t = trim(line);
    if (!inEntry) {
      const size_t at = t.find(".entry ");
      if (at != std::string::npos) {
        std::string rest = t.substr(at + 7);
        name = rest.substr(0, rest.find_first_of("( \t"));
        inEntry = true;
        depth = 0;
        opened = false;
        body.clear();
      }
      continue;
    }
    for (char ch : t) {
      if (ch == '{') {
        ++depth;
        opened = true;
      } else if (ch == '}') --depth;
    }
    body.push_back(line);
    if (opened && depth == 0) {
      kernels.push_back(readKernel(name, body));
      inEntry = false;
    }
  }
  return kernels;
}

bool tileIteration(const PtxTileLoop& loop, int mmaPerTile, PtxCounts& out, int& trips) {
  out = PtxCounts{};
  trips = 1;
  if (loop.innerLoops == 0) {
    out = loop.outer;
    return true;
  }
  const int rest = mmaPerTile - loop.outer.mma;
  if (loop.inner.mma <= 0 || rest < loop.inner.mma || rest % loop.inner.mma != 0) return false;
  trips = rest / loop.inner.mma;
  out = loop.outer;
  out += loop.inner.scaled(trips);
  return true;
}

}  // namespace attn::cuda
