// The CPU kernels as one LLVM IR module: the scalar generator with the LLVM IR writer.
#include "codegen/llvm/CpuCodegen.h"

#include "codegen/llvm/TextIR.h"
#include "compiler/Diagnostics.h"

namespace attn::llvmjit {

CpuKernelSource generateCpuKernels(const KernelPlan& plan, const BackwardPlan& backward, const std::string& real,
                                   const CpuSpecialisation& sizes) {
  ATTN_INTERNAL_ASSERT(real == "float" || real == "double", "cpu codegen: real must be float or double");
  CpuKernelSource src;
  static_cast<kernels::ScalarKernels&>(src) = kernels::generateScalarKernels(
      plan, backward, real, sizes, [](const std::string& name, const std::string& type) {
        return std::make_unique<TextFunction>(name, type);
      });
  std::string header = "; attn CPU kernels for '" + plan.graph.name + "' (" + real + ")\n";
  for (const std::string& d : src.declarations) header += d + "\n";
  header += "attributes #0 = { nounwind willreturn memory(none) }\nattributes #1 = { nounwind }\n\n";
  src.ir = header;
  for (const kernels::KernelFunction& f : src.functions) src.ir += f.text + "\n";
  return src;
}

}  // namespace attn::llvmjit
