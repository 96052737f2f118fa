// The compiler pipeline, stage by stage: the table of contents of attn.
//
//   readSourceFile      path -> SourceFile                        (Parser.h)
//   parseModule         SourceFile -> ast::Module                 (Parser.h, grammar/Attn.g4)
//   checkModule         ast::Module -> CheckedAttention per def   (Checker.h)
//   selectAttention     which attention a command works on (--name, or the only one)
//   checkAttention      one attention with --set overrides bound  (Checker.h)
//   lower               CheckedAttention -> ir::Graph             (IR.h)          dump: ir
//   simplify            folding, identities, canonical normalize  (Simplify.h)    dump: simplified
//   stabiliseNormalize  rescale exp / powers by a row maximum     (StabiliseNormalize.h)
//                                                                                 dump: stabilised
//   schedule            ir::Graph -> KernelPlan: key passes, row statistics, output form
//                                                       (Schedule.h)    dump: plan
//   differentiate       KernelPlan -> BackwardPlan: row adjoints, backward key passes
//                                                       (Differentiate.h)  dump: backward
//   cpu codegen         plan -> LLVM IR (codegen/llvm/CpuCodegen.h)       attn emit --target llvm
//   cpu jit             LLVM IR -> O3 -> object (disk cache) -> LLJIT      (codegen/llvm/CpuBackend.h)
//   ... the CUDA code generator joins here as it lands.
//
// Setting ATTN_DUMP to a comma-separated list of stage names (ast, checked, ir, ...) prints that
// stage's output to stderr as it is produced, with the time the stage took; ATTN_DUMP=all
// prints every stage.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "compiler/AST.h"
#include "compiler/CheckedProgram.h"
#include "compiler/Diagnostics.h"
#include "compiler/IR.h"
#include "compiler/Schedule.h"

namespace attn {

/// Reads and parses a file. Returns nullopt when the file could not be read; a module with
/// syntax errors is still returned (holding its well-formed definitions), with the errors
/// in `diags`.
std::optional<ast::Module> loadModule(const std::string& path, DiagnosticEngine& diags);

/// The attention a command works on: `name` if given, else the module's only attention.
/// Errors (none, several, unknown name) go to `diags`.
std::optional<std::string> selectAttention(const ast::Module& module, const std::string& name,
                                           DiagnosticEngine& diags);

struct CompileOptions {
  std::string name;                      ///< which attention; empty: the only one
  std::vector<ParamOverride> overrides;  ///< --set NAME=VALUE
};

/// Checks every definition of a parsed module (so that every error is reported), selects
/// the attention and binds its params. nullopt when there was any error.
std::optional<CheckedAttention> compileModule(const ast::Module& module, const CompileOptions& options,
                                              DiagnosticEngine& diags);

/// The whole front end for one attention: load, check every definition (so that every
/// error of the file is reported), select, bind params. nullopt when there was any error.
std::optional<CheckedAttention> compileFrontend(const std::string& path, const CompileOptions& options,
                                                DiagnosticEngine& diags);

/// The front end and the IR passes: the graph every backend starts from.
std::optional<ir::Graph> compileToIR(const std::string& path, const CompileOptions& options,
                                     DiagnosticEngine& diags);

/// The front end, the IR passes and the schedule.
std::optional<KernelPlan> compileToPlan(const std::string& path, const CompileOptions& options,
                                        DiagnosticEngine& diags);

/// The IR passes alone, on an already checked attention.
ir::Graph lowerAndOptimise(const CheckedAttention& attention);

/// Parses "NAME=VALUE" (a --set argument). A missing '=' or empty name is an error.
std::optional<ParamOverride> parseOverride(const std::string& text, DiagnosticEngine& diags);

}  // namespace attn
