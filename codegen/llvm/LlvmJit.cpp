#include "codegen/llvm/LlvmJit.h"

#include <llvm/Analysis/CGSCCPassManager.h>
#include <llvm/Analysis/LoopAnalysisManager.h>
#include <llvm/Analysis/TargetLibraryInfo.h>
#include <llvm/AsmParser/Parser.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/PassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/Target/TargetMachine.h>


#include <mutex>

#include "compiler/Diagnostics.h"

namespace attn::llvmjit {

namespace {

std::string message(llvm::Error error) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << error;
  return os.str();
}

template <typename T>
T unwrap(llvm::Expected<T> value, const char* what) {
  if (!value) ATTN_INTERNAL_ERROR(std::string(what) + ": " + message(value.takeError()));
  return std::move(*value);
}

void initialiseLlvmOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
}

}  // namespace

struct Jit::State {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  std::unique_ptr<llvm::TargetMachine> machine;  // for the optimisation pipeline
  int modules = 0;
};

Jit::Jit(std::unique_ptr<State> state) : state_(std::move(state)) {}
Jit::~Jit() = default;

std::unique_ptr<Jit> Jit::create() {
  initialiseLlvmOnce();
  auto state = std::make_unique<State>();
  auto builder = unwrap(llvm::orc::JITTargetMachineBuilder::detectHost(), "LLVM cannot target this machine");
  builder.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  state->machine = unwrap(builder.createTargetMachine(), "LLVM target machine");
  state->jit = unwrap(llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(builder).create(), "LLJIT");
  return std::unique_ptr<Jit>(new Jit(std::move(state)));
}

namespace {

// Parses, verifies and optimises (O3 for `machine`) one module of generated IR.
std::unique_ptr<llvm::Module> optimise(const std::string& ir, llvm::LLVMContext& context, llvm::orc::LLJIT& jit,
                                       llvm::TargetMachine& machine, int id,
                                       std::string* optimisedIr) {
  llvm::SMDiagnostic diagnostic;
  auto buffer = llvm::MemoryBuffer::getMemBuffer(ir, "generated.ll", /*RequiresNullTerminator=*/false);
  std::unique_ptr<llvm::Module> module = llvm::parseAssembly(*buffer, diagnostic, context);
  if (!module) {
    std::string text;
    llvm::raw_string_ostream os(text);
    diagnostic.print(nullptr, os, /*ShowColors=*/false);
    ATTN_INTERNAL_ERROR("generated LLVM IR does not parse: " + os.str());
  }
  module->setModuleIdentifier("attn" + std::to_string(id));
  module->setDataLayout(jit.getDataLayout());
  module->setTargetTriple(jit.getTargetTriple().str());
  std::string verifierText;
  llvm::raw_string_ostream verifierOs(verifierText);
  if (llvm::verifyModule(*module, &verifierOs)) ATTN_INTERNAL_ERROR("generated LLVM IR is invalid: " + verifierOs.str());

  // LLVM's standard O3 pipeline, with the host's TargetMachine so that the vectorisers
  // know the vector width and the cost model of this CPU.
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder passes(&machine);
  // No vector math library (glibc's libmvec): its exp in a vectorised loop body and libm's in
  // the scalar remainder differ in the last bits, and every kernel must compute a value the
  // same way wherever it computes it (TextIR.cpp: no fast-math flags, for the same reason).
  llvm::TargetLibraryInfoImpl library(jit.getTargetTriple());
  fam.registerPass([&] { return llvm::TargetLibraryAnalysis(library); });
  passes.registerModuleAnalyses(mam);
  passes.registerCGSCCAnalyses(cgam);
  passes.registerFunctionAnalyses(fam);
  passes.registerLoopAnalyses(lam);
  passes.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager pipeline = passes.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
  pipeline.run(*module, mam);
  if (optimisedIr) {
    optimisedIr->clear();
    llvm::raw_string_ostream os(*optimisedIr);
    module->print(os, nullptr);
  }
  return module;
}

}  // namespace

void* Jit::compile(const std::string& ir, const std::string& symbol, std::string* optimisedIr) {
  auto context = std::make_unique<llvm::LLVMContext>();
  auto module = optimise(ir, *context, *state_->jit, *state_->machine, state_->modules++, optimisedIr);
  if (auto error = state_->jit->addIRModule(llvm::orc::ThreadSafeModule(std::move(module), std::move(context))))
    ATTN_INTERNAL_ERROR("LLJIT cannot add the module: " + message(std::move(error)));
  auto address = unwrap(state_->jit->lookup(symbol), "LLJIT lookup");
  return address.toPtr<void*>();
}

std::string Jit::compileToObject(const std::string& ir, std::string* optimisedIr) {
  llvm::LLVMContext context;
  auto module = optimise(ir, context, *state_->jit, *state_->machine, state_->modules++, optimisedIr);
  llvm::SmallVector<char, 0> bytes;
  llvm::raw_svector_ostream os(bytes);
  llvm::legacy::PassManager codegen;
  if (state_->machine->addPassesToEmitFile(codegen, os, nullptr, llvm::CodeGenFileType::ObjectFile))
    ATTN_INTERNAL_ERROR("LLVM cannot emit an object file for this target");
  codegen.run(*module);
  return std::string(bytes.begin(), bytes.end());
}

std::vector<void*> Jit::load(const std::string& object, const std::vector<std::string>& symbols) {
  auto created = state_->jit->createJITDylib("attn-object-" + std::to_string(state_->modules++));
  if (!created) ATTN_INTERNAL_ERROR("LLJIT library: " + message(created.takeError()));
  llvm::orc::JITDylib* library = &*created;
  auto buffer = llvm::MemoryBuffer::getMemBufferCopy(object, "cached-kernel.o");
  if (auto error = state_->jit->addObjectFile(*library, std::move(buffer)))
    ATTN_INTERNAL_ERROR("LLJIT cannot load the object: " + message(std::move(error)));
  std::vector<void*> addresses;
  for (const std::string& symbol : symbols)
    addresses.push_back(unwrap(state_->jit->lookup(*library, symbol), "LLJIT lookup").template toPtr<void*>());
  return addresses;
}

std::string Jit::fingerprint() const {
  std::string features = state_->machine->getTargetFeatureString().str();
  // "exact": kernels built without fast-math or vector math (TextIR.cpp); older cache
  // entries, built with them, have another fingerprint and are rebuilt.
  return std::string("llvm ") + LLVM_VERSION_STRING + "; " + host() + "; " + features + "; exact";
}

std::string Jit::host() const {
  return state_->jit->getTargetTriple().str() + ", cpu " + state_->machine->getTargetCPU().str();
}

}  // namespace attn::llvmjit
