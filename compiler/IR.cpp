#include "compiler/IR.h"

#include "compiler/ScalarOps.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <iomanip>
#include <set>
#include <sstream>

namespace attn::ir {

const char* opName(Op op) {
  switch (op) {
    case Op::Const: return "const";
    case Op::Query: return "q";
    case Op::Key: return "k";
    case Op::RowIndex: return "i";
    case Op::KeyIndex: return "j";
    case Op::RowCount: return "n";
    case Op::KeyCount: return "L";
    case Op::HeadDim: return "d";
    case Op::Neg: return "neg";
    case Op::Not: return "not";
    case Op::Add: return "add";
    case Op::Sub: return "sub";
    case Op::Mul: return "mul";
    case Op::Div: return "div";
    case Op::SafeDiv: return "safediv";
    case Op::Pow: return "pow";
    case Op::Min: return "min";
    case Op::Max: return "max";
    case Op::Clamp: return "clamp";
    case Op::Lt: return "lt";
    case Op::Le: return "le";
    case Op::Gt: return "gt";
    case Op::Ge: return "ge";
    case Op::Eq: return "eq";
    case Op::Ne: return "ne";
    case Op::And: return "and";
    case Op::Or: return "or";
    case Op::Select: return "select";
    case Op::Exp: return "exp";
    case Op::Log: return "log";
    case Op::Exp2: return "exp2";
    case Op::Log2: return "log2";
    case Op::Sqrt: return "sqrt";
    case Op::Rsqrt: return "rsqrt";
    case Op::Abs: return "abs";
    case Op::Sign: return "sign";
    case Op::Tanh: return "tanh";
    case Op::Sigmoid: return "sigmoid";
    case Op::Softplus: return "softplus";
    case Op::Relu: return "relu";
    case Op::Relu6: return "relu6";
    case Op::Gelu: return "gelu";
    case Op::GeluTanh: return "gelu_tanh";
    case Op::Silu: return "silu";
    case Op::Mish: return "mish";
    case Op::L2Norm: return "l2norm";
    case Op::VecScale: return "vecscale";
    case Op::Dot: return "dot";
    case Op::RowSum: return "rowsum";
    case Op::RowMax: return "rowmax";
    case Op::RowMin: return "rowmin";
    case Op::RowMean: return "rowmean";
    case Op::Normalize: return "normalize";
  }
  return "?";
}

namespace {

int arity(Op op) {
  switch (op) {
    case Op::Const: case Op::Query: case Op::Key: case Op::RowIndex: case Op::KeyIndex:
    case Op::RowCount: case Op::KeyCount: case Op::HeadDim:
      return 0;
    case Op::Add: case Op::Sub: case Op::Mul: case Op::Div: case Op::SafeDiv: case Op::Pow:
    case Op::Min: case Op::Max: case Op::Lt: case Op::Le: case Op::Gt: case Op::Ge: case Op::Eq:
    case Op::Ne: case Op::And: case Op::Or: case Op::VecScale: case Op::Dot:
      return 2;
    case Op::Select: case Op::Clamp:
      return 3;
    default:
      return 1;
  }
}

bool isComparisonOrLogic(Op op) {
  switch (op) {
    case Op::Lt: case Op::Le: case Op::Gt: case Op::Ge: case Op::Eq: case Op::Ne:
    case Op::And: case Op::Or: case Op::Not:
      return true;
    default:
      return false;
  }
}

}  // namespace

NodeId Graph::make(Op op, std::vector<NodeId> operands, double value) {
  ATTN_INTERNAL_ASSERT(static_cast<int>(operands.size()) == arity(op),
                       std::string("wrong operand count for ") + opName(op));
  for (NodeId o : operands)
    ATTN_INTERNAL_ASSERT(o >= 0 && static_cast<size_t>(o) < nodes_.size(), "operand out of range");
  if (op != Op::Const) value = 0;
  // Key constants by bit pattern (one NaN): a double key would break the map's ordering.
  uint64_t bits = 0;
  double canonical = std::isnan(value) ? std::nan("") : (value == 0 ? 0.0 : value);
  std::memcpy(&bits, &canonical, sizeof bits);
  auto key = std::make_tuple(op, operands, bits);
  if (auto it = index_.find(key); it != index_.end()) return it->second;

  Node n;
  n.op = op;
  n.operands = operands;
  n.value = value;
  auto kindOf = [&](size_t k) { return nodes_[static_cast<size_t>(operands[k])].kind; };
  switch (op) {
    case Op::Const: case Op::KeyCount: case Op::HeadDim: n.kind = ValueKind::Constant; break;
    case Op::Query: n.kind = ValueKind::QueryVec; break;
    case Op::Key: n.kind = ValueKind::KeyVec; break;
    case Op::RowIndex: case Op::RowCount: n.kind = ValueKind::Row; break;
    case Op::KeyIndex: n.kind = ValueKind::Score; break;
    case Op::L2Norm:
      ATTN_INTERNAL_ASSERT(isVector(kindOf(0)), "l2norm of a scalar");
      n.kind = kindOf(0);
      break;
    case Op::VecScale:
      ATTN_INTERNAL_ASSERT(isVector(kindOf(0)) && isScalar(kindOf(1)), "vecscale operands");
      ATTN_INTERNAL_ASSERT(kindOf(1) == ValueKind::Constant ||
                               (kindOf(1) == ValueKind::Row && kindOf(0) == ValueKind::QueryVec),
                           "vecscale by a non-constant");
      n.kind = kindOf(0);
      break;
    case Op::Dot:
      ATTN_INTERNAL_ASSERT(kindOf(0) == ValueKind::QueryVec && kindOf(1) == ValueKind::KeyVec,
                           "dot operands");
      n.kind = ValueKind::Score;
      break;
    case Op::RowSum: case Op::RowMax: case Op::RowMin: case Op::RowMean:
      ATTN_INTERNAL_ASSERT(isScalar(kindOf(0)), "row reduction of a vector");
      n.kind = ValueKind::Row;
      break;
    case Op::Normalize:
      ATTN_INTERNAL_ASSERT(isScalar(kindOf(0)), "normalize of a vector");
      n.kind = std::max(kindOf(0), ValueKind::Row);
      break;
    default:
      n.kind = ValueKind::Constant;
      for (size_t k = 0; k < operands.size(); ++k) {
        ATTN_INTERNAL_ASSERT(isScalar(kindOf(k)), std::string("vector operand of ") + opName(op));
        n.kind = std::max(n.kind, kindOf(k));
      }
  }
  if (isComparisonOrLogic(op)) n.type = ValueType::Bool;
  if (op == Op::Select)
    n.type = nodes_[static_cast<size_t>(operands[1])].type == ValueType::Bool &&
                     nodes_[static_cast<size_t>(operands[2])].type == ValueType::Bool
                 ? ValueType::Bool
                 : ValueType::Number;
  NodeId id = static_cast<NodeId>(nodes_.size());
  nodes_.push_back(std::move(n));
  index_.emplace(std::move(key), id);
  return id;
}

void Graph::label(NodeId id, const std::string& name) {
  auto& n = nodes_.at(static_cast<size_t>(id));
  if (n.label.empty()) n.label = name;
}

// ---- lowering ----------------------------------------------------------------------------

namespace {

class Lowering {
 public:
  Lowering(const CheckedAttention& a, Graph& g) : a_(a), g_(g) {}

  NodeId lower(const TExprPtr& e) {
    if (auto it = memo_.find(e.get()); it != memo_.end()) return it->second;
    NodeId id = lowerUncached(*e);
    memo_.emplace(e.get(), id);
    return id;
  }

  NodeId let(int index) {
    auto it = lets_.find(index);
    if (it != lets_.end()) return it->second;
    const CheckedLet& l = a_.lets.at(static_cast<size_t>(index));
    NodeId id = lower(l.value);
    g_.label(id, l.name);
    lets_.emplace(index, id);
    return id;
  }

 private:
  const CheckedAttention& a_;
  Graph& g_;
  std::map<const TExpr*, NodeId> memo_;
  std::map<int, NodeId> lets_;

  NodeId lowerUncached(const TExpr& e) {
    std::vector<NodeId> ops;
    for (const auto& o : e.operands) ops.push_back(lower(o));
    switch (e.op) {
      case TExpr::Op::Literal: return g_.constant(e.value);
      case TExpr::Op::Param: {
        NodeId id = g_.constant(e.value);
        if (e.index >= 0 && static_cast<size_t>(e.index) < a_.params.size())
          g_.label(id, a_.params[static_cast<size_t>(e.index)].name);
        return id;
      }
      case TExpr::Op::Let: return let(e.index);
      case TExpr::Op::Builtin:
        switch (e.builtin) {
          case BuiltinName::Q: return g_.make(Op::Query, {});
          case BuiltinName::K: return g_.make(Op::Key, {});
          case BuiltinName::I: return g_.make(Op::RowIndex, {});
          case BuiltinName::J: return g_.make(Op::KeyIndex, {});
          case BuiltinName::N: return g_.make(Op::RowCount, {});
          case BuiltinName::L: return g_.make(Op::KeyCount, {});
          case BuiltinName::D: return g_.make(Op::HeadDim, {});
        }
        break;
      case TExpr::Op::Unary:
        if (e.unaryOp == ast::UnaryOp::Plus) return ops.at(0);
        return g_.make(elementwiseOp(e.unaryOp), ops);
      case TExpr::Op::Binary: return binary(e, ops);
      case TExpr::Op::Conditional: return g_.make(Op::Select, ops);
      case TExpr::Op::Call: return call(e, ops);
    }
    ATTN_INTERNAL_ERROR("unhandled checked expression");
  }

  NodeId binary(const TExpr& e, const std::vector<NodeId>& ops) {
    const ValueKind lk = g_.node(ops.at(0)).kind, rk = g_.node(ops.at(1)).kind;
    if (e.binaryOp == ast::BinaryOp::Mul && isVector(lk)) return g_.make(Op::VecScale, {ops[0], ops[1]});
    if (e.binaryOp == ast::BinaryOp::Mul && isVector(rk)) return g_.make(Op::VecScale, {ops[1], ops[0]});
    if (e.binaryOp == ast::BinaryOp::Div && isVector(lk))
      return g_.make(Op::VecScale, {ops[0], g_.make(Op::Div, {g_.constant(1), ops[1]})});
    return g_.make(elementwiseOp(e.binaryOp), ops);
  }

  NodeId call(const TExpr& e, const std::vector<NodeId>& ops) {
    if (auto op = elementwiseOp(e.fn)) return g_.make(*op, ops);
    switch (e.fn) {
      case BuiltinFn::L2Norm: return g_.make(Op::L2Norm, ops);
      case BuiltinFn::Dot: {
        bool queryFirst = g_.node(ops.at(0)).kind == ValueKind::QueryVec;
        return g_.make(Op::Dot, queryFirst ? ops : std::vector<NodeId>{ops.at(1), ops.at(0)});
      }
      case BuiltinFn::RowSum: return g_.make(Op::RowSum, ops);
      case BuiltinFn::RowMax: return g_.make(Op::RowMax, ops);
      case BuiltinFn::RowMin: return g_.make(Op::RowMin, ops);
      case BuiltinFn::RowMean: return g_.make(Op::RowMean, ops);
      case BuiltinFn::L1Norm: return g_.make(Op::Normalize, ops);
      case BuiltinFn::Softmax: {
        NodeId shifted = g_.make(Op::Sub, {ops.at(0), g_.make(Op::RowMax, {ops.at(0)})});
        return g_.make(Op::Normalize, {g_.make(Op::Exp, {shifted})});
      }
      default: break;
    }
    ATTN_INTERNAL_ERROR("unhandled built-in function");
  }
};

}  // namespace

Graph lower(const CheckedAttention& attention) {
  Graph g;
  g.name = attention.name;
  g.params = attention.params;
  Lowering l(attention, g);
  switch (attention.mask) {
    case ast::MaskKind::Causal: g.mask = MaskKind::Causal; break;
    case ast::MaskKind::Full: g.mask = MaskKind::Full; break;
    case ast::MaskKind::Window: g.mask = MaskKind::Window; break;
    case ast::MaskKind::Expr: g.mask = MaskKind::Expr; break;
  }
  if (attention.maskExpr) g.maskExpr = l.lower(attention.maskExpr);
  g.perDocument = attention.perDocument;
  // Lower lets in order so that their nodes get their names even when shared.
  for (size_t k = 0; k < attention.lets.size(); ++k) l.let(static_cast<int>(k));
  ATTN_INTERNAL_ASSERT(attention.out != nullptr, "checked attention without out");
  g.out = l.lower(attention.out);
  return g;
}

std::vector<NodeId> liveNodes(const Graph& graph) {
  std::vector<char> live(graph.size(), 0);
  std::vector<NodeId> stack;
  if (graph.out >= 0) stack.push_back(graph.out);
  if (graph.maskExpr >= 0) stack.push_back(graph.maskExpr);
  while (!stack.empty()) {
    NodeId id = stack.back();
    stack.pop_back();
    if (live[static_cast<size_t>(id)]) continue;
    live[static_cast<size_t>(id)] = 1;
    for (NodeId o : graph.node(id).operands) stack.push_back(o);
  }
  std::vector<NodeId> out;
  for (size_t k = 0; k < graph.size(); ++k)
    if (live[k]) out.push_back(static_cast<NodeId>(k));
  return out;
}

namespace {
const char* maskName(MaskKind m) {
  switch (m) {
    case MaskKind::Causal: return "causal";
    case MaskKind::Full: return "full";
    case MaskKind::Window: return "window";
    case MaskKind::Expr: return "expr";
  }
  return "?";
}
}  // namespace

std::string print(const Graph& graph) {
  std::ostringstream os;
  os << "ir " << graph.name << "\n";
  for (const auto& p : graph.params) {
    os << "  param " << p.name << ": " << paramTypeName(p.type) << " = ";
    if (p.type == ParamType::Bool) os << (p.value != 0 ? "true" : "false");
    else os << p.value;
    os << '\n';
  }
  os << "  mask " << maskName(graph.mask);
  if (graph.maskExpr >= 0) os << " %" << graph.maskExpr;
  if (graph.perDocument) os << " per document";
  os << '\n';
  for (NodeId id : liveNodes(graph)) {
    const Node& n = graph.node(id);
    std::ostringstream line;
    line << "  %" << id << " = " << opName(n.op);
    if (n.op == Op::Const) line << ' ' << std::setprecision(9) << n.value;
    for (size_t k = 0; k < n.operands.size(); ++k) line << (k ? ", %" : " %") << n.operands[k];
    std::string text = line.str();
    if (text.size() < 40) text.resize(40, ' ');
    os << text << "  " << kindName(n.kind) << (n.type == ValueType::Bool ? " bool" : "");
    if (!n.label.empty()) os << "  ; " << n.label;
    os << '\n';
  }
  os << "  out %" << graph.out << '\n';
  return os.str();
}

std::string expression(const Graph& graph, NodeId id) {
  const Node& n = graph.node(id);
  std::ostringstream os;
  if (n.op == Op::Const) {
    os << std::setprecision(9) << n.value;
    return os.str();
  }
  if (n.operands.empty()) return opName(n.op);
  os << '(' << opName(n.op);
  for (NodeId o : n.operands) os << ' ' << expression(graph, o);
  os << ')';
  return os.str();
}

namespace {

// Binding strength for printing: higher binds tighter (LANGUAGE.md's precedence).
int bindingOf(Op op) {
  switch (op) {
    case Op::Select: return 1;
    case Op::Or: return 2;
    case Op::And: return 3;
    case Op::Eq: case Op::Ne: return 4;
    case Op::Lt: case Op::Le: case Op::Gt: case Op::Ge: return 5;
    case Op::Add: case Op::Sub: return 6;
    case Op::Mul: case Op::Div: case Op::VecScale: return 7;
    case Op::Neg: case Op::Not: return 8;
    case Op::Pow: return 9;
    default: return 10;
  }
}

const char* infixSpelling(Op op) {
  switch (op) {
    case Op::Add: return " + ";
    case Op::Sub: return " - ";
    case Op::Mul: case Op::VecScale: return " * ";
    case Op::Div: return " / ";
    case Op::Pow: return " ^ ";
    case Op::Lt: return " < ";
    case Op::Le: return " <= ";
    case Op::Gt: return " > ";
    case Op::Ge: return " >= ";
    case Op::Eq: return " == ";
    case Op::Ne: return " != ";
    case Op::And: return " && ";
    case Op::Or: return " || ";
    default: return nullptr;
  }
}

// Infix text of the expression below a root. Labelled nodes (lets) print as their name;
// so do the nodes in `named_` (shared subexpressions of a large expression, "%id"), which
// keeps the text of a DAG linear in its size: fns that call each other twice inline to a
// graph of n nodes whose tree has 2^n.
class FormulaPrinter {
 public:
  FormulaPrinter(const Graph& g, NodeId root) : g_(g), root_(root) {}

  std::string print() {
    if (expandedLength() > kInlineChars) nameSharedNodes();
    std::string text = formulaOf(root_, true);
    if (named_.empty()) return text;
    text = "(" + text + " where ";
    bool first = true;
    for (NodeId id : named_) {  // ascending ids: each definition after those it uses
      text += (first ? "" : ", ") + std::string("%") + std::to_string(id) + " = " + formulaOf(id, true);
      first = false;
    }
    return text + ")";
  }

 private:
  /// Expressions whose fully expanded text stays under this print inline, as they read.
  static constexpr double kInlineChars = 400;

  const Graph& g_;
  NodeId root_;
  std::set<NodeId> named_;

  bool opaque(NodeId id) const { return id != root_ && (!g_.node(id).label.empty() || named_.count(id)); }

  /// The cone below the root (stopping at labelled nodes), in ascending id order.
  std::vector<NodeId> cone() const {
    std::set<NodeId> seen{root_};
    std::vector<NodeId> stack{root_};
    while (!stack.empty()) {
      NodeId id = stack.back();
      stack.pop_back();
      if (id != root_ && !g_.node(id).label.empty()) continue;
      for (NodeId o : g_.node(id).operands)
        if (seen.insert(o).second) stack.push_back(o);
    }
    return {seen.begin(), seen.end()};
  }

  /// About how long the root's text is when nothing is named (a double: it can be 2^1000).
  double expandedLength() const {
    std::map<NodeId, double> length;
    for (NodeId id : cone()) {
      const Node& n = g_.node(id);
      double l = id != root_ && !n.label.empty() ? static_cast<double>(n.label.size()) : 8;
      if (id == root_ || n.label.empty())
        for (NodeId o : n.operands) l += length.at(o) + 4;
      length[id] = l;
    }
    return length.at(root_);
  }

  /// Names every unlabelled operator node used more than once below the root.
  void nameSharedNodes() {
    std::map<NodeId, int> uses;
    for (NodeId id : cone()) {
      if (id != root_ && !g_.node(id).label.empty()) continue;
      for (NodeId o : g_.node(id).operands) ++uses[o];
    }
    for (auto [id, count] : uses)
      if (count > 1 && g_.node(id).label.empty() && !g_.node(id).operands.empty()) named_.insert(id);
  }

  std::string formulaOf(NodeId id, bool root) const {
    const Node& n = g_.node(id);
    if (!root && opaque(id)) return n.label.empty() ? "%" + std::to_string(id) : n.label;
    auto sub = [&](NodeId o, bool parens) {
      std::string t = formulaOf(o, false);
      return parens ? "(" + t + ")" : t;
    };
    auto needsParens = [&](NodeId o, int binding, bool rightSide) {
      if (opaque(o)) return false;
      int b = bindingOf(g_.node(o).op);
      return b < binding || (b == binding && (rightSide != (n.op == Op::Pow)));
    };
    std::ostringstream os;
    if (n.op == Op::Const) {
      os << std::setprecision(9) << n.value;
      return os.str();
    }
    if (n.operands.empty()) return opName(n.op);
    const int binding = bindingOf(n.op);
    if (const char* infix = infixSpelling(n.op)) {
      return sub(n.operands[0], needsParens(n.operands[0], binding, false)) + infix +
             sub(n.operands[1], needsParens(n.operands[1], binding, true));
    }
    switch (n.op) {
      case Op::Neg: return "-" + sub(n.operands[0], needsParens(n.operands[0], binding, false));
      case Op::Not: return "!" + sub(n.operands[0], needsParens(n.operands[0], binding, false));
      case Op::Select:
        return sub(n.operands[0], needsParens(n.operands[0], binding + 1, false)) + " ? " +
               sub(n.operands[1], false) + " : " + sub(n.operands[2], false);
      default: break;
    }
    os << (n.op == Op::Normalize ? "l1norm" : opName(n.op)) << '(';
    for (size_t k = 0; k < n.operands.size(); ++k) os << (k ? ", " : "") << formulaOf(n.operands[k], false);
    os << ')';
    return os.str();
  }
};

}  // namespace

std::string formula(const Graph& graph, NodeId id) { return FormulaPrinter(graph, id).print(); }

namespace {

// Is node `n` >= 0, given the answers for its operands? (operands have lower ids)
bool nonNegativeGiven(const Graph& graph, const Node& n, const std::map<NodeId, bool>& known) {
  auto nonneg = [&](size_t k) { return known.at(n.operands.at(k)); };
  if (n.type == ValueType::Bool) return true;
  switch (n.op) {
    case Op::Const: return n.value >= 0;
    case Op::RowIndex: case Op::KeyIndex: case Op::RowCount: case Op::KeyCount: case Op::HeadDim:
    case Op::Exp: case Op::Exp2: case Op::Sqrt: case Op::Rsqrt: case Op::Abs: case Op::Sigmoid:
    case Op::Softplus: case Op::Relu: case Op::Relu6:
      return true;
    case Op::Add: case Op::Mul: case Op::Div: case Op::SafeDiv: case Op::Min:
      return nonneg(0) && nonneg(1);
    case Op::Max: return nonneg(0) || nonneg(1);
    case Op::Pow: {
      if (nonneg(0)) return true;
      const Node& e = graph.node(n.operands[1]);
      return e.op == Op::Const && std::fmod(e.value, 2.0) == 0.0;
    }
    case Op::Select: return nonneg(1) && nonneg(2);
    case Op::Clamp: return nonneg(1) && nonneg(2);
    case Op::RowSum: case Op::RowMax: case Op::RowMean: case Op::Normalize: return nonneg(0);
    case Op::RowMin: return nonneg(0);
    default: return false;
  }
}

}  // namespace

// Over the node's cone in id order (operands first), each node once: a recursive walk
// would visit a shared node once per path, exponentially often in a graph of nested fns.
bool isNonNegative(const Graph& graph, NodeId id) {
  std::set<NodeId> cone{id};
  std::vector<NodeId> stack{id};
  while (!stack.empty()) {
    NodeId x = stack.back();
    stack.pop_back();
    for (NodeId o : graph.node(x).operands)
      if (cone.insert(o).second) stack.push_back(o);
  }
  std::map<NodeId, bool> known;
  for (NodeId x : cone) known[x] = nonNegativeGiven(graph, graph.node(x), known);
  return known.at(id);
}

bool usedOnlyNormalised(const Graph& graph, Op side) {
  for (NodeId id : liveNodes(graph)) {
    const Node& n = graph.node(id);
    if (n.op != Op::Dot) continue;
    // The operand on that side: a chain of VecScale and L2Norm down to q or k.
    NodeId v = n.operands[side == Op::Query ? 0 : 1];
    bool normalised = false;
    while (graph.node(v).op == Op::VecScale || graph.node(v).op == Op::L2Norm) {
      normalised = normalised || graph.node(v).op == Op::L2Norm;
      v = graph.node(v).operands[0];
    }
    if (graph.node(v).op == side && !normalised) return false;
  }
  return true;
}

}  // namespace attn::ir
