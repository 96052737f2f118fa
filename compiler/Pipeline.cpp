#include "compiler/Pipeline.h"

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "compiler/Checker.h"
#include "compiler/Differentiate.h"
#include "compiler/Parser.h"
#include "compiler/Simplify.h"
#include "compiler/StabiliseNormalize.h"
#include "compiler/Suggest.h"

namespace attn {

namespace {

// Is `stage` named in ATTN_DUMP?
bool dumpRequested(const std::string& stage) {
  const char* env = std::getenv("ATTN_DUMP");
  if (!env) return false;
  std::stringstream list(env);
  std::string item;
  while (std::getline(list, item, ','))
    if (item == stage || item == "all") return true;
  return false;
}

class StageTimer {
 public:
  explicit StageTimer(std::string stage) : stage_(std::move(stage)), start_(std::chrono::steady_clock::now()) {}
  // Prints the stage's output (when asked for) with the time it took.
  void dump(const std::string& text) const {
    if (!dumpRequested(stage_)) return;
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
    std::cerr << "=== " << stage_ << " (" << ms << " ms) ===\n" << text;
    if (!text.empty() && text.back() != '\n') std::cerr << '\n';
  }

 private:
  std::string stage_;
  std::chrono::steady_clock::time_point start_;
};

std::vector<std::string> attentionNames(const ast::Module& module) {
  std::vector<std::string> names;
  for (const auto& def : module.defs)
    if (const auto* a = std::get_if<ast::AttentionDef>(&def)) names.push_back(a->name);
  return names;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out;
}

}  // namespace

std::optional<ast::Module> loadModule(const std::string& path, DiagnosticEngine& diags) {
  auto file = readSourceFile(path, diags);
  if (!file) return std::nullopt;
  StageTimer timer("ast");
  ast::Module module = parseModule(file, diags);
  timer.dump(ast::dump(module));
  return module;
}

std::optional<std::string> selectAttention(const ast::Module& module, const std::string& name,
                                           DiagnosticEngine& diags) {
  std::vector<std::string> names = attentionNames(module);
  const std::string& path = module.file ? module.file->path() : std::string("<input>");
  if (name.empty()) {
    if (names.size() == 1) return names[0];
    if (names.empty()) {
      diags.error(path + " defines no attention");
    } else {
      auto& d = diags.error(path + " defines " + std::to_string(names.size()) +
                            " attentions (" + joined(names) + "); choose one with --name");
      d.hint = "e.g. --name " + names[0];
    }
    return std::nullopt;
  }
  for (const auto& n : names)
    if (n == name) return n;
  std::string message = "no attention '" + name + "' in " + path;
  if (auto near = nearestName(name, names)) message += "; did you mean '" + *near + "'?";
  auto& d = diags.error(message);
  if (!names.empty()) d.notes.push_back("it defines: " + joined(names));
  return std::nullopt;
}

std::optional<CheckedAttention> compileFrontend(const std::string& path, const CompileOptions& options,
                                                DiagnosticEngine& diags) {
  auto module = loadModule(path, diags);
  if (!module || diags.hasErrors()) return std::nullopt;
  return compileModule(*module, options, diags);
}

std::optional<CheckedAttention> compileModule(const ast::Module& module, const CompileOptions& options,
                                              DiagnosticEngine& diags) {
  StageTimer timer("checked");
  checkModule(module, diags);
  if (diags.hasErrors()) return std::nullopt;
  auto name = selectAttention(module, options.name, diags);
  if (!name) return std::nullopt;
  auto checked = checkAttention(module, *name, options.overrides, diags);
  if (checked) timer.dump(describe(*checked));
  return checked;
}

ir::Graph lowerAndOptimise(const CheckedAttention& attention) {
  StageTimer lowering("ir");
  ir::Graph graph = ir::lower(attention);
  lowering.dump(ir::print(graph));
  StageTimer simplifying("simplified");
  graph = ir::simplify(graph);
  simplifying.dump(ir::print(graph));
  StageTimer stabilising("stabilised");
  graph = ir::stabiliseNormalize(graph);
  stabilising.dump(ir::print(graph));
  return graph;
}

std::optional<ir::Graph> compileToIR(const std::string& path, const CompileOptions& options,
                                     DiagnosticEngine& diags) {
  auto checked = compileFrontend(path, options, diags);
  if (!checked) return std::nullopt;
  return lowerAndOptimise(*checked);
}

std::optional<KernelPlan> compileToPlan(const std::string& path, const CompileOptions& options,
                                        DiagnosticEngine& diags) {
  auto graph = compileToIR(path, options, diags);
  if (!graph) return std::nullopt;
  StageTimer timer("plan");
  KernelPlan plan = schedule(*graph);
  timer.dump(describePlan(plan));
  if (dumpRequested("backward")) {
    StageTimer differentiating("backward");
    differentiating.dump(describeBackward(plan, differentiate(plan)));
  }
  return plan;
}

std::optional<ParamOverride> parseOverride(const std::string& text, DiagnosticEngine& diags) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    auto& d = diags.error("--set expects NAME=VALUE, got '" + text + "'");
    d.hint = "e.g. --set p=3";
    return std::nullopt;
  }
  return ParamOverride{text.substr(0, eq), text.substr(eq + 1)};
}

}  // namespace attn
