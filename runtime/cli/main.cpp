// build/bin/attn: the command-line tool (the contract for scripts is LANGUAGE.md,
// "The command line").
//
//   attn check FILE...                      validate; diagnostics and exit 1 on any error
//   attn fmt FILE... [-i | --check]         canonical formatting
//   attn explain FILE [--name N] [--set K=V]...
//   attn emit FILE --target ast|checked|ir|plan|llvm|cuda|ptx [--optimised] [--f64] [--arch sm_XX]
//             [--dtype f32|f16|bf16] [--tile m64n64w4s2] [--head-dim D] [--name N] [--set K=V]...
//   attn run FILE --backend B --q Q.npy --k K.npy --v V.npy [--dout DO.npy] --out DIR
//   attn train --config tiny|small|45m|124m|355m [--layers N --heads H --width W] --attn FILE [--set K=V]
//             [--backend B] [--steps N] [--eval-every N] [--log-every N] ... --out DIR
//             (one process per rank under torchrun --no-python: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)
//   attn eval --ckpt DIR [--attn FILE --set K=V] [--lengths 1x,2x,..] [--protocol P] [--per-position B]
//             [--out FILE.json] [--plot FILE.png]
//   attn passkey --ckpt DIR [--attn FILE --set K=V] [--lengths ..] [--depths ..] [--trials N] [--out FILE.json]
//   attn plot A.json [B.json...] [--by-position] --out FILE.png
//   attn data prepare [INPUT...] --out DIR [--tokenizer gpt2|bytes|bpe:N] [--val-fraction F] [--seed S]
//                     [--tokens-per-shard N] [--prefix NAME]
//   attn data inspect DIR [--seq-len N] [--lengths 1x,2x,..] [--max-docs N]
//   attn data synth --task passkey --data DIR --out DIR [--mix F] [--min-length N] [--max-length N] [--seed S]
//
// `run` needs LibTorch, which lives in a shared library opened only for it
// (TorchCommands.h says why).
//
// Exit status: 0 success, 1 an error in the user's input (diagnostics printed), 2 a bad
// command line, 3 an internal error of attn. Never a signal: the work runs on a thread
// with a large stack, and every exception is caught here.
#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>

#include "compiler/Checker.h"
#include "compiler/Differentiate.h"
#include "compiler/Formatter.h"
#include "compiler/Parser.h"
#include "compiler/Pipeline.h"
#include "runtime/cli/FlagChecks.h"
#include "runtime/cli/TorchCommands.h"
#include "runtime/io/Plot.h"
#include "runtime/data/Bpe.h"
#include "runtime/data/Corpus.h"
#include "runtime/data/DataInspect.h"
#include "runtime/data/DataError.h"
#include "support/AtomicWrite.h"
#include "support/FileError.h"
#include "support/ReadFile.h"
#include "support/StandardOutput.h"
#include "runtime/data/Synth.h"
#include "runtime/data/TextTokenizer.h"
#include "runtime/io/EvalFile.h"
#include "runtime/model/ModelSizes.h"
#include "runtime/train/LengthSpec.h"
#include "runtime/train/WindowPlan.h"

#include <map>
#include <tuple>
#include <cerrno>
#include <nlohmann/json.hpp>

#ifdef ATTN_HAVE_LLVM
#include "codegen/llvm/CpuBackend.h"
#endif
#ifdef ATTN_HAVE_CUDA
#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/Nvrtc.h"
#endif
#include "runtime/cli/TuneCommand.h"

namespace {

using namespace attn;

constexpr int kExitOk = 0;
constexpr int kExitUserError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInternal = 3;

// The ranges of numeric flags (runtime/cli/FlagChecks.h): generous, but a value past them is
// a typo, not a plan (and would overflow a product or exhaust memory before saying so).
constexpr int64_t kMaxHeadDim = 4096;
constexpr int64_t kMaxSteps = 1000000000;
constexpr int64_t kMaxSeqLen = int64_t(1) << 20;
constexpr int64_t kMaxMicroBatch = int64_t(1) << 16;
constexpr int64_t kMaxBatchTokens = int64_t(1) << 40;
constexpr int64_t kMaxThreads = 4096;

struct Options {
  std::vector<std::string> files;
  std::string name;
  std::vector<std::string> sets;
  std::string target;
  bool optimised = false;  // emit --target llvm --optimised
  bool f64 = false;        // emit --target llvm --f64
  int64_t headDim = 0;     // emit --target llvm --head-dim D: kernels specialised for d = D
  int64_t valueDim = 0;    // ... and dv (default: D)
  std::string arch = "sm_90";  // emit --target cuda|ptx
  std::string dtype = "bf16";  // emit --target cuda|ptx: the input dtype
  std::string tile = "m64n64w4s2";  // emit --target cuda|ptx: the tensor-core tile
  bool exactMath = false;           // emit --target cuda|ptx: libm-exact math in tensor-core modules
  bool inPlace = false;
  bool checkOnly = false;
};

// Prints the diagnostics (to stderr) and turns them into an exit status.
int finish(const DiagnosticEngine& diags) {
  diags.render(std::cerr);
  return diags.hasErrors() ? kExitUserError : kExitOk;
}

std::optional<CompileOptions> compileOptions(const Options& o, DiagnosticEngine& diags) {
  CompileOptions c;
  c.name = o.name;
  for (const auto& s : o.sets) {
    auto ov = parseOverride(s, diags);
    if (ov) c.overrides.push_back(*ov);
  }
  if (diags.hasErrors()) return std::nullopt;
  return c;
}

int runCheck(const Options& o) {
  DiagnosticEngine diags;
  for (const auto& path : o.files) {
    auto module = loadModule(path, diags);
    if (module) checkModule(*module, diags);
  }
  return finish(diags);
}

// Writes `text` over `path` atomically (support/AtomicWrite.h): an interrupted or failed
// write never leaves a half-written source file, the file keeps its permission bits, and a
// source file that is a symbolic link stays one (the file it names is rewritten).
bool writeAtomically(const std::string& path, const std::string& text, DiagnosticEngine& diags) {
  try {
    support::WriteOptions options;
    options.links = support::LinkPolicy::WriteThrough;
    support::writeFileAtomically(path, text, options);
    return true;
  } catch (const support::FileError& e) {
    diags.error(e.what());
    return false;
  }
}

int runFmt(const Options& o) {
  DiagnosticEngine diags;
  bool anyWouldChange = false;
  for (const auto& path : o.files) {
    size_t errorsBefore = diags.errorCount();
    auto module = loadModule(path, diags);
    // Never format (or overwrite) a file that does not parse: that could lose text.
    if (!module || diags.errorCount() > errorsBefore) continue;
    std::string formatted = formatModule(*module);
    bool changed = formatted != module->file->text();
    if (o.checkOnly) {
      if (changed) {
        support::writeStandardOutput(path + ": not formatted\n");
        anyWouldChange = true;
      }
    } else if (o.inPlace) {
      if (changed) writeAtomically(path, formatted, diags);
    } else {
      support::writeStandardOutput(formatted);
    }
  }
  int status = finish(diags);
  if (status == kExitOk && anyWouldChange) status = kExitUserError;
  return status;
}

int runExplain(const Options& o) {
  DiagnosticEngine diags;
  auto options = compileOptions(o, diags);
  if (!options) return finish(diags);
  auto checked = compileFrontend(o.files.at(0), *options, diags);
  if (checked) {
    KernelPlan plan = schedule(lowerAndOptimise(*checked));
    support::writeStandardOutput(describe(*checked) + '\n' + describePlan(plan) + describeBackward(plan, differentiate(plan)));
  }
  return finish(diags);
}

int runEmit(const Options& o) {
  DiagnosticEngine diags;
  if (o.target == "cuda" || o.target == "ptx") {
#ifdef ATTN_HAVE_CUDA
    int arch = 0;
    if (o.arch.rfind("sm_", 0) == 0) arch = std::atoi(o.arch.c_str() + 3);
    if (!cuda::supportedArch(arch)) {
      auto& d = diags.error("--arch " + o.arch + ": not an architecture attn compiles for");
      d.hint = "use sm_80, sm_86, sm_89 or sm_90";
      return finish(diags);
    }
    cuda::CudaOptions cudaOptions;
    try {
      cudaOptions.dtype = cuda::parseDtype(o.dtype);
    } catch (const std::invalid_argument& e) {
      diags.error(std::string("--dtype: ") + e.what());
      return finish(diags);
    }
    try {
      cudaOptions.tile = cuda::TileConfig::parse(o.tile);
    } catch (const std::invalid_argument& e) {
      diags.error(std::string("--tile: ") + e.what());
      return finish(diags);
    }
    if (o.exactMath) cudaOptions.exactMath = true;
    cudaOptions.headDim = static_cast<int>(o.headDim > 0 ? o.headDim : 64);
    cudaOptions.valueDim = static_cast<int>(o.valueDim > 0 ? o.valueDim : cudaOptions.headDim);
    if (cuda::tensorCoresApply(cudaOptions)) {
      const std::string why = cuda::tileUnsupported(cudaOptions);
      if (!why.empty()) {
        diags.error("--tile: " + why);
        return finish(diags);
      }
    }
    auto options = compileOptions(o, diags);
    if (!options) return finish(diags);
    auto plan = compileToPlan(o.files.at(0), *options, diags);
    if (plan) {
      cuda::CudaKernelSource src = cuda::generateCudaKernels(*plan, differentiate(*plan), cudaOptions);
      if (o.target == "cuda") support::writeStandardOutput(src.source);
      else support::writeStandardOutput(cuda::compile(src.source, plan->graph.name + ".cu", arch).ptx);
    }
#else
    auto& d = diags.error("--target " + o.target + ": this attn was built without the CUDA toolkit (NVRTC)");
    d.hint = "install the CUDA toolkit (nvrtc) and rebuild; the stages that exist: --target ast, checked, ir, plan, llvm";
#endif
    return finish(diags);
  }
  if (o.target == "llvm") {
#ifdef ATTN_HAVE_LLVM
    auto options = compileOptions(o, diags);
    if (!options) return finish(diags);
    auto plan = compileToPlan(o.files.at(0), *options, diags);
    if (plan)
      support::writeStandardOutput(
          cpu::emitLlvm(*plan, o.f64, o.optimised, o.headDim, o.valueDim > 0 ? o.valueDim : o.headDim));
#else
    diags.error("--target llvm: this attn was built without LLVM (ATTN_WITH_LLVM=OFF)");
#endif
    return finish(diags);
  }
  if (o.target == "ast") {
    auto module = loadModule(o.files.at(0), diags);
    if (module && !diags.hasErrors()) support::writeStandardOutput(ast::dump(*module));
    return finish(diags);
  }
  auto options = compileOptions(o, diags);
  if (!options) return finish(diags);
  if (o.target == "ir") {
    auto graph = compileToIR(o.files.at(0), *options, diags);
    if (graph) support::writeStandardOutput(ir::print(*graph));
    return finish(diags);
  }
  if (o.target == "plan") {
    auto plan = compileToPlan(o.files.at(0), *options, diags);
    if (plan) support::writeStandardOutput(describePlan(*plan) + describeBackward(*plan, differentiate(*plan)));
    return finish(diags);
  }
  auto checked = compileFrontend(o.files.at(0), *options, diags);
  if (checked) support::writeStandardOutput(describe(*checked));
  return finish(diags);
}

// The directory of the running binary (from /proc/self/exe).
std::string binaryDirectory() {
  char buffer[4096];
  ssize_t len = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  if (len <= 0) return ".";
  std::string path(buffer, static_cast<size_t>(len));
  return path.substr(0, path.rfind('/'));
}

// Opens the LibTorch commands library and returns `symbol` from it, or null after
// printing why not.
void* torchCommand(const char* symbol) {
  std::string dir = binaryDirectory();
  std::string candidates[] = {dir + "/../lib/" ATTN_TORCH_COMMANDS_LIBRARY, dir + "/" ATTN_TORCH_COMMANDS_LIBRARY};
  std::string errors;
  for (const auto& path : candidates) {
    if (::access(path.c_str(), F_OK) != 0) continue;
    if (void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      if (void* fn = ::dlsym(handle, symbol)) return fn;
      errors = std::string("missing entry point ") + symbol;
    } else {
      errors = ::dlerror();
    }
  }
  std::cerr << "attn: error: this command needs the LibTorch runtime ("
            << ATTN_TORCH_COMMANDS_LIBRARY << "), which "
            << (errors.empty() ? "is not in this build" : "could not be loaded: " + errors) << '\n'
            << "  hint: build with -DATTN_WITH_TORCH=ON (./scripts/setup.sh does)\n";
  return nullptr;
}

int runRun(const cli::RunOptions& o) {
  auto* fn = reinterpret_cast<int (*)(const cli::RunOptions*)>(torchCommand("attn_run_command"));
  if (!fn) return kExitUserError;
  return fn(&o);
}

struct PlotOptions {
  std::vector<std::string> inputs;  // eval JSON files (attn eval --out, either version)
  std::string out;                  // PNG
  std::string title;
  bool byPosition = false;          // loss by position in the window (eval --per-position)
};

// `attn plot`: one line per eval JSON, loss against length (log2 x axis), with gnuplot; or,
// --by-position, one line per (file, length): loss against position in the window.
int runPlot(const PlotOptions& o) {
  std::vector<io::LossCurve> curves;
  for (const std::string& path : o.inputs) {
    io::EvalFile file;
    try {
      file = io::readEvalFile(path);
    } catch (const io::EvalFileError& e) {
      std::cerr << "attn: error: " << e.what() << '\n';
      return kExitUserError;
    }
    const std::string label = std::filesystem::path(path).stem().string();
    try {
      for (auto& curve : o.byPosition ? io::positionCurves(file, label) : std::vector<io::LossCurve>{io::lengthCurve(file, label)})
        curves.push_back(std::move(curve));
    } catch (const io::EvalFileError& e) {
      std::cerr << "attn: error: " << e.what() << '\n';
      return kExitUserError;
    }
  }
  const std::string title = !o.title.empty() ? o.title
                            : o.byPosition  ? "validation loss by position in the window"
                                            : "validation loss against evaluation length";
  io::PlotAxes axes;
  if (o.byPosition) axes = {"position in the window (tokens)", false};
  if (std::string error = io::plotLossCurves(curves, o.out, title, axes); !error.empty()) {
    std::cerr << "attn: error: " << error << '\n';
    return kExitUserError;
  }
  support::writeStandardOutput("wrote " + o.out + "\n");
  return kExitOk;
}

struct DataPrepareOptions {
  std::vector<std::string> inputs;  // empty: the built-in corpus
  std::string outDir;
  double valFraction = 0.1;
  uint64_t seed = 1;
  int64_t tokensPerShard = 100000000;  // llm.c's shard size
  std::string prefix;                  // empty: from the input (defaultPrefix)
  std::string tokenizer = "gpt2";      // gpt2, bytes, bpe:N (runtime/data/TextTokenizer.h)
};

// The shard prefix when --prefix is not given: "sotu" for the built-in corpus, the stem of
// a single input (characters unfit for a file name part made '_'), else "corpus".
std::string defaultPrefix(const std::vector<std::string>& inputs) {
  if (inputs.empty()) return "sotu";
  if (inputs.size() > 1) return "corpus";
  std::filesystem::path path(inputs[0]);
  if (!path.has_filename()) path = path.parent_path();  // "dir/"
  std::string stem = path.stem().string();
  for (char& c : stem) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '_' || c == '-';
    if (!plain) c = '_';
  }
  if (stem.empty() || stem[0] == '.' || stem[0] == '-') return "corpus";
  return stem;
}

// 2071234 -> "2,071,234".
std::string withCommas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<size_t>(i), ",");
  return (n < 0 ? "-" : "") + digits;
}

// One line of the summary: "train  210 documents  1,862,000 tokens  1 shard   FIRST[ .. LAST]".
void printSide(const char* side, const data::PreparedSplit& s) {
  char counts[160];
  std::snprintf(counts, sizeof counts, "  %-5s %5s document%s %12s tokens %4zu shard%s", side,
                withCommas(s.documents).c_str(), s.documents == 1 ? " " : "s", withCommas(s.tokens).c_str(),
                s.shards.size(), s.shards.size() == 1 ? " " : "s");
  std::cout << counts;
  if (!s.shards.empty()) {
    std::cout << "  " << s.shards.front();
    if (s.shards.size() > 1) std::cout << " .. " << std::filesystem::path(s.shards.back()).filename().string();
  }
  std::cout << '\n';
}

// attn data prepare: text -> documents -> split -> GPT-2 tokens -> llm.c shards.
int runDataPrepare(const DataPrepareOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  try {
    std::vector<data::Document> documents = o.inputs.empty() ? data::defaultCorpus() : data::loadTextDocuments(o.inputs);
    if (documents.size() < 2) {
      std::cerr << "attn: error: only " << documents.size()
                << " document: holding whole documents out for validation needs at least 2\n"
                << "  hint: give more text files (each file is one document)\n";
      return kExitUserError;
    }
    const std::string prefix = o.prefix.empty() ? defaultPrefix(o.inputs) : o.prefix;
    const data::Split split = data::splitDocuments(std::move(documents), o.valFraction, o.seed);
    // bpe:N learns its merges from the training side only: validation text stays unseen.
    const std::unique_ptr<data::TextTokenizer> tokenizer = data::makeTokenizer(o.tokenizer, split.train);
    const data::PrepareResult r = data::prepareShards(split, *tokenizer, o.outDir, prefix, o.tokensPerShard);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    char timing[96];
    std::snprintf(timing, sizeof timing, "%.1f s (tokenizing %.1f s)", seconds, r.tokenizeSeconds);
    std::cout << "prepared " << withCommas(r.train.documents + r.validation.documents) << " documents, "
              << withCommas(r.train.tokens + r.validation.tokens) << " tokens in " << timing << '\n';
    printSide("train", r.train);
    printSide("val", r.validation);
    std::cout << "  validation documents: " << r.validationIndex << '\n';
    std::cout << "  tokenizer: " << tokenizer->name() << " (" << withCommas(tokenizer->vocabSize()) << " tokens)\n";
    for (const auto& stale : r.removedStaleShards) std::cout << "  removed stale file " << stale << '\n';
    return kExitOk;
  } catch (const data::DataError& e) {
    std::cerr << "attn: error: " << e.what() << '\n';
    return kExitUserError;
  }
}

struct DataInspectOptions {
  std::string dir;
  int64_t seqLen = 1024;  // the paper's training length
  std::vector<std::string> lengths = {"1x", "2x", "4x", "8x", "16x"};
  int64_t maxDocuments = 8;  // attn eval's default
};

// attn data inspect: what a data directory holds, and what `attn eval` (same-tokens) would
// score in it at multiples of a training length.
int runDataInspect(const DataInspectOptions& o) {
  try {
    const data::DataSummary s = data::summarizeDataDir(o.dir);
    if (s.shards.train.empty() && s.shards.val.empty())
      throw data::DataError(o.dir + ": no token shards (*_train_*.bin, *_val_*.bin) in the directory");
    std::cout << o.dir << " (tokenizer " << s.tokenizer.kind << ", end of text " << s.tokenizer.endOfText << ")\n";
    char line[200];
    std::snprintf(line, sizeof line, "  train %4zu shard%s %15s tokens\n", s.shards.train.size(),
                  s.shards.train.size() == 1 ? " " : "s", withCommas(s.trainTokens).c_str());
    std::cout << line;
    std::snprintf(line, sizeof line, "  val   %4zu shard%s %15s tokens %10s documents\n", s.shards.val.size(),
                  s.shards.val.size() == 1 ? " " : "s", withCommas(s.valTokens).c_str(),
                  withCommas(static_cast<int64_t>(s.documentLengths.size())).c_str());
    std::cout << line;
    if (s.documentLengths.empty()) return kExitOk;

    // Lengths in power-of-two buckets [2^k, 2^(k+1)).
    std::map<int, int64_t> buckets;
    int64_t longestDocument = 0;
    for (int64_t n : s.documentLengths) {
      int k = 0;
      while ((int64_t(2) << k) <= n) ++k;
      ++buckets[k];
      longestDocument = std::max(longestDocument, n);
    }
    std::cout << "validation document lengths (tokens, each with its end-of-text token; longest "
              << withCommas(longestDocument) << "):\n";
    for (const auto& [k, count] : buckets) {
      const std::string range = "[" + std::to_string(int64_t(1) << k) + ", " + std::to_string(int64_t(2) << k) + ")";
      std::snprintf(line, sizeof line, "  %-22s %10s\n", range.c_str(), withCommas(count).c_str());
      std::cout << line;
    }

    int64_t longest = 0;
    std::vector<std::pair<std::string, int64_t>> lengths;
    for (const std::string& spec : o.lengths) {
      if (spec.empty()) continue;
      const int64_t L = *train::parseLengthMultiple(spec) * o.seqLen;
      lengths.emplace_back(spec, L);
      longest = std::max(longest, L);
    }
    if (lengths.empty()) {
      std::cerr << "attn: error: --lengths: no length given\n";
      return kExitUsage;
    }
    const std::vector<int64_t> units = train::sameTokensUnits(s.documentLengths, longest, o.maxDocuments);
    const std::vector<int64_t> eligible = train::sameTokensUnits(s.documentLengths, longest, 0);
    std::cout << "attn eval windows (same-tokens) at --seq-len " << o.seqLen << ": " << units.size()
              << " documents of at least " << withCommas(longest + 1) << " tokens used (" << eligible.size()
              << " long enough, --max-docs " << o.maxDocuments << ")\n";
    std::cout << "  length     window    windows      targets  docs>=window+1\n";
    for (const auto& [spec, L] : lengths) {
      const int64_t perUnit = static_cast<int64_t>(train::cutIntoWindows(L, longest).size());
      int64_t fit = 0;
      for (int64_t n : s.documentLengths) fit += n >= L + 1 ? 1 : 0;
      const int64_t unitCount = static_cast<int64_t>(units.size());
      std::snprintf(line, sizeof line, "  %-6s %10lld %10lld %12lld %15lld\n", spec.c_str(), static_cast<long long>(L),
                    static_cast<long long>(perUnit * unitCount), static_cast<long long>(longest * unitCount),
                    static_cast<long long>(fit));
      std::cout << line;
    }
    if (units.empty())
      std::cout << "  (no validation document is long enough: attn eval would refuse these lengths; use shorter "
                   "--lengths or --protocol stream)\n";
    return kExitOk;
  } catch (const data::DataError& e) {
    std::cerr << "attn: error: " << e.what() << '\n';
    return kExitUserError;
  }
}

// attn data synth: task instances mixed into a data directory's training text.
int runDataSynth(const data::SynthOptions& o) {
  try {
    const data::SynthResult r = data::synthesize(o);
    char line[200];
    std::snprintf(line, sizeof line, "mixed %s passkey instances (%s tokens) into %s documents (%s tokens): %.2f%% of the "
                  "training tokens are instances\n",
                  withCommas(r.instances).c_str(), withCommas(r.instanceTokens).c_str(),
                  withCommas(r.textDocuments).c_str(), withCommas(r.textTokens).c_str(), 100 * r.fraction);
    std::cout << line;
    for (const auto& f : r.files) std::cout << "  " << f << '\n';
    return kExitOk;
  } catch (const data::DataError& e) {
    std::cerr << "attn: error: " << e.what() << '\n';
    return kExitUserError;
  }
}

// Flag checks the CLI applies before any work, so that a bad value is exit 2 naming the
// flag: finite numbers in a range (CLI11's Range lets NaN through), length multiples.
CLI::Validator finiteIn(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        double v = 0;
        try {
          size_t used = 0;
          v = std::stod(text, &used);
          if (used != text.size()) return "'" + text + "' is not a number";
        } catch (...) {
          return "'" + text + "' is not a number";
        }
        if (!std::isfinite(v) || v < lo || v > hi)
          return "'" + text + "' is not in [" + CLI::detail::to_string(lo) + ", " + CLI::detail::to_string(hi) + "]";
        return "";
      },
      "FLOAT in [" + CLI::detail::to_string(lo) + ", " + CLI::detail::to_string(hi) + "]");
}

CLI::Validator lengthMultiple() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (text.empty() || train::parseLengthMultiple(text)) return "";
        return "'" + text + "' is not a multiple of the training length like 4x (1x to " +
               std::to_string(train::kMaxLengthMultiple) + "x)";
      },
      "NX");
}

// Fills `d` from the variables torchrun (--no-python) and srun's wrappers set: RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. None set: a run of its own. Returns
// what is wrong with them ("" when nothing).
std::string readDistributedEnvironment(train::DistributedOptions& d) {
  auto integer = [](const char* name, int64_t lo, int64_t hi, int64_t& out) -> std::string {
    const char* text = std::getenv(name);
    if (!text || !*text) return "";
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
      return std::string(name) + "='" + text + "' is not an integer from " + std::to_string(lo) + " to " +
             std::to_string(hi);
    out = v;
    return "";
  };
  const bool any = std::getenv("WORLD_SIZE") || std::getenv("RANK");
  if (!any) return "";
  d.launched = true;
  for (auto [name, lo, hi, field] : {std::tuple<const char*, int64_t, int64_t, int64_t*>{"WORLD_SIZE", 1, 65536, &d.worldSize},
                                     {"RANK", 0, 65535, &d.rank},
                                     {"LOCAL_RANK", 0, 65535, &d.localRank},
                                     {"MASTER_PORT", 1, 65535, &d.masterPort}})
    if (std::string problem = integer(name, lo, hi, *field); !problem.empty()) return problem;
  if (d.rank >= d.worldSize)
    return "RANK " + std::to_string(d.rank) + " is not below WORLD_SIZE " + std::to_string(d.worldSize);
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) d.masterAddr = addr;
  if (d.worldSize > 1 && (!std::getenv("MASTER_PORT") || !std::getenv("MASTER_ADDR")))
    return "WORLD_SIZE is " + std::to_string(d.worldSize) + " but MASTER_ADDR or MASTER_PORT is not set (torchrun sets them)";
  return "";
}

// Runs `body` on a thread with a 512 MiB stack (address space only; pages are touched on
// demand), so that deep but legal inputs never overflow the stack.
int runWithLargeStack(const std::function<int()>& body) {
  struct Job {
    const std::function<int()>* body;
    int status = kExitInternal;
  } job{&body};
  auto trampoline = [](void* arg) -> void* {
    auto* j = static_cast<Job*>(arg);
    try {
      j->status = (*j->body)();
    } catch (const InternalError& e) {
      std::cerr << "attn: internal error: " << e.what() << " (at " << e.where() << ")\n"
                << "  this is a bug in attn, not in your input; please report it with the input\n";
      j->status = kExitInternal;
    } catch (const std::bad_alloc&) {
      std::cerr << "attn: error: out of memory\n";
      j->status = kExitUserError;
    } catch (const support::FileError& e) {
      std::cerr << "attn: error: " << e.what() << '\n';
      j->status = kExitUserError;
    } catch (const std::exception& e) {
      std::cerr << "attn: internal error: unexpected exception: " << e.what() << '\n';
      j->status = kExitInternal;
    }
    return nullptr;
  };
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, size_t(512) << 20);
  pthread_t thread;
  if (pthread_create(&thread, &attr, trampoline, &job) != 0) {
    trampoline(&job);  // fall back to this thread's stack
  } else {
    pthread_join(thread, nullptr);
  }
  pthread_attr_destroy(&attr);
  return job.status;
}

}  // namespace

int main(int argc, char** argv) {
  // A reader of our output that went away is a write error (EPIPE) reported like any other,
  // not a silent death by SIGPIPE; so is a gnuplot that exits before reading its script.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"attn: a JIT compiler for attention mechanisms (.attn programs)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "attn 0.1.0");
  Options o;

  auto* check = app.add_subcommand("check", "Check .attn files; print every error, exit 1 if any");
  check->add_option("files", o.files, "The .attn files")->required();

  auto* fmt = app.add_subcommand("fmt", "Print .attn files in canonical form");
  fmt->add_option("files", o.files, "The .attn files")->required();
  auto* inPlace = fmt->add_flag("-i,--in-place", o.inPlace, "Rewrite the files (atomically)");
  fmt->add_flag("--check", o.checkOnly, "List the files that are not formatted; exit 1 if any")
      ->excludes(inPlace);

  auto addProgramOptions = [&](CLI::App* cmd) {
    cmd->add_option("file", o.files, "The .attn file")->required()->expected(1);
    cmd->add_option("--name", o.name, "Which attention of the file (default: its only one)");
    cmd->add_option("--set", o.sets, "Override a param: NAME=VALUE (repeatable)")->allow_extra_args(false);
  };
  auto* explain = app.add_subcommand("explain", "Show the checked program and the schedule the compiler chose");
  addProgramOptions(explain);
  auto* emit = app.add_subcommand("emit", "Print one stage of the compiler");
  addProgramOptions(emit);
  emit->add_option("--target,--emit", o.target, "The stage to print")
      ->required()
      ->check(CLI::IsMember({"ast", "checked", "ir", "plan", "llvm", "cuda", "ptx"}));
  emit->add_flag("--optimised", o.optimised, "--target llvm: the IR after LLVM's O3 for this CPU");
  emit->add_flag("--f64", o.f64, "--target llvm: kernels for float64 inputs (default: float32)");
  emit->add_option("--head-dim", o.headDim, "--target llvm: specialise for this head dimension of q, k")
      ->check(cli::integerIn(1, kMaxHeadDim));
  emit->add_option("--value-dim", o.valueDim, "--target llvm: ... and of v (default: --head-dim)")
      ->check(cli::integerIn(1, kMaxHeadDim));
  emit->add_option("--arch", o.arch, "--target cuda|ptx: sm_80, sm_86, sm_89 or sm_90 (default sm_90)");
  emit->add_option("--dtype", o.dtype, "--target cuda|ptx: input dtype f32, f16 or bf16 (default bf16)");
  emit->add_option("--tile", o.tile, "--target cuda|ptx: tensor-core tile mMnNwWsS (default m64n64w4s2)");
  emit->add_flag("--exact-math", o.exactMath,
                 "--target cuda|ptx: libm-exact exp, log and division in the tensor-core kernels (default: the "
                 "hardware's approximations for fp16/bf16; also ATTN_CUDA_EXACT_MATH=1)");

  cli::RunOptions runOptions;
  auto* run = app.add_subcommand("run", "Run a program on .npy tensors; write o.npy (and gradients with --dout)");
  run->add_option("file", runOptions.file, "The .attn file")->required();
  run->add_option("--name", runOptions.name, "Which attention of the file (default: its only one)");
  run->add_option("--set", runOptions.sets, "Override a param: NAME=VALUE (repeatable)")->allow_extra_args(false);
  run->add_option("--backend", runOptions.backend, "reference, cpu or cuda")
      ->required()
      ->check(CLI::IsMember({"reference", "cpu", "cuda"}));
  run->add_option("--q", runOptions.q, "Queries: .npy, [B,H,Lq,D] or [Lq,D]")->required();
  run->add_option("--k", runOptions.k, "Keys: .npy, [B,H,Lk,D] or [Lk,D]")->required();
  run->add_option("--v", runOptions.v, "Values: .npy, [B,H,Lk,Dv] or [Lk,Dv]")->required();
  run->add_option("--dout", runOptions.dout, "Gradient of o: .npy; also writes dq, dk, dv");
  run->add_option("--out", runOptions.outDir, "Output directory (created if missing)")->required();
  run->add_option("--cu-seqlens", runOptions.cuSeqlens,
                  "Packed documents as cumulative offsets 0,END1,...,Lk (a program whose mask is `per document`)");

  DataPrepareOptions prepareOptions;
  cli::TuneOptions tuneOptions;
  auto* tune = app.add_subcommand("tune", "Autotune the CUDA backend's tensor-core tile for a program (needs a GPU; "
                                          "--compile-only does not)");
  tune->add_option("file", tuneOptions.file, "The .attn file")->required();
  tune->add_option("--name", tuneOptions.name, "Which attention of the file (default: its only one)");
  tune->add_option("--set", tuneOptions.sets, "Override a param: NAME=VALUE (repeatable)")->allow_extra_args(false);
  tune->add_option("--dtype", tuneOptions.dtype, "f16 or bf16 (default bf16)");
  tune->add_option("--head-dim", tuneOptions.headDim, "Head dimension of q and k (default 64)")
      ->check(cli::integerIn(1, kMaxHeadDim));
  tune->add_option("--value-dim", tuneOptions.valueDim, "Head dimension of v (default: --head-dim)")
      ->check(cli::integerIn(1, kMaxHeadDim));
  tune->add_option("--lengths", tuneOptions.lengths, "Sequence lengths to tune for (default 1024,4096,16384)")
      ->check(cli::integerListIn(1, kMaxSeqLen * 16));
  tune->add_option("--repeats", tuneOptions.repeats, "Timed runs per candidate; the median counts (default 5)")
      ->check(cli::integerIn(1, 1000));
  tune->add_flag("--compile-only", tuneOptions.compileOnly, "Compile and check the candidates; time nothing (no GPU needed)");
  tune->add_option("--arch", tuneOptions.arch, "--compile-only: sm_80, sm_86, sm_89 or sm_90 (default sm_90)");

  auto* dataCommand = app.add_subcommand("data", "Prepare token data for training (prepare), describe it (inspect), mix a task into it (synth)");
  dataCommand->require_subcommand(1);
  auto* prepare = dataCommand->add_subcommand(
      "prepare", "Tokenize text (GPT-2 BPE) into llm.c token shards, holding out whole documents for validation");
  prepare->add_option("inputs", prepareOptions.inputs,
                      "Text files (one document each) or directories of .txt files (default: the built-in "
                      "corpus, 233 State of the Union speeches)");
  prepare->add_option("--out", prepareOptions.outDir, "Output directory (created if missing)")->required();
  prepare->add_option("--val-fraction", prepareOptions.valFraction,
                      "Fraction of the documents held out for validation (at least one)")
      ->check(cli::numberIn(0, 1, true, true))
      ->capture_default_str();
  prepare->add_option("--seed", prepareOptions.seed, "Seed of the choice of validation documents")
      ->check(cli::integerIn(0, INT64_MAX))
      ->capture_default_str();
  prepare->add_option("--tokens-per-shard", prepareOptions.tokensPerShard, "Tokens per shard file")
      ->check(cli::integerIn(1, INT32_MAX))
      ->capture_default_str();
  prepare->add_option("--prefix", prepareOptions.prefix,
                      "Shard names: PREFIX_train_000000.bin ... (default: sotu, or the input's name)");
  prepare->add_option("--tokenizer", prepareOptions.tokenizer,
                      "gpt2 (GPT-2's BPE), bytes (one token per byte: 257) or bpe:N (N merges learned from the "
                      "training documents; a small vocabulary for CPU training)")
      ->check(CLI::Validator(
          [](std::string& t) -> std::string {
            return data::isTokenizerSpec(t) ? "" : "'" + t + "' is not gpt2, bytes or bpe:N (N from 1 to " +
                                                       std::to_string(data::kMaxBpeMerges) + ")";
          },
          "gpt2|bytes|bpe:N"))
      ->capture_default_str();

  DataInspectOptions inspectOptions;
  auto* inspect = dataCommand->add_subcommand(
      "inspect", "Tokens per split, the validation documents' lengths, and the windows attn eval would score");
  inspect->add_option("dir", inspectOptions.dir, "A data directory (attn data prepare, or llm.c's shards)")->required();
  inspect->add_option("--seq-len", inspectOptions.seqLen, "The training length the multiples are of")
      ->check(cli::integerIn(1, kMaxSeqLen))
      ->capture_default_str();
  inspect->add_option("--lengths", inspectOptions.lengths, "Multiples of the training length")
      ->delimiter(',')
      ->check(lengthMultiple())
      ->capture_default_str();
  inspect->add_option("--max-docs", inspectOptions.maxDocuments, "Validation documents attn eval scores; 0: all")
      ->check(cli::integerIn(0, 1000000000))
      ->capture_default_str();

  data::SynthOptions synthOptions;
  std::vector<std::string> synthFiller{"text"};
  auto* synth = dataCommand->add_subcommand(
      "synth", "Mix task instances (passkey retrieval) into a data directory's training text");
  synth->add_option("--task", synthOptions.task, "The task: passkey")->required()->check(CLI::IsMember({"passkey"}));
  synth->add_option("--data", synthOptions.inDir, "The data directory to mix into (attn data prepare)")->required();
  synth->add_option("--out", synthOptions.outDir, "Output directory (created if missing)")->required();
  synth->add_option("--mix", synthOptions.mix, "Fraction of the training tokens that are instances")
      ->check(finiteIn(0, 0.99))
      ->capture_default_str();
  synth->add_option("--max-length", synthOptions.maxLength, "Longest instance, in tokens (the training length is a "
                                                            "good choice)")
      ->check(CLI::Range(int64_t{1}, int64_t{10000000}))
      ->capture_default_str();
  synth->add_option("--min-length", synthOptions.minLength, "Shortest instance, in tokens (default: max-length / 4)")
      ->check(CLI::Range(int64_t{1}, int64_t{10000000}));
  synth->add_option("--filler", synthFiller, "text (stretches of the training documents), repeat (the usual "
                                             "repeated sentences) or copy (random words recurring in the instance: "
                                             "predictable only by copying); several, comma-separated: each "
                                             "instance's drawn uniformly")
      ->delimiter(',')
      ->check(CLI::IsMember({"text", "repeat", "copy"}))
      ->capture_default_str();
  synth->add_option("--digits", synthOptions.digits, "Digits of a key")->check(CLI::Range(1, 18))->capture_default_str();
  synth->add_option("--seed", synthOptions.seed, "Seed of the instances and their places")->capture_default_str();

  PlotOptions plotOptions;
  auto* plotCmd = app.add_subcommand("plot", "Plot validation loss against length for one or several attn eval JSONs");
  plotCmd->add_option("inputs", plotOptions.inputs, "JSON files written by attn eval --out")->required();
  plotCmd->add_option("--out", plotOptions.out, "PNG file")->required();
  plotCmd->add_option("--title", plotOptions.title, "Plot title");
  plotCmd->add_flag("--by-position", plotOptions.byPosition,
                    "Loss against position in the window, one line per length (files from eval --per-position)");

  cli::TrainCliOptions trainOptions;
  auto* trainCmd = app.add_subcommand("train", "Train a GPT-2 whose attention is an .attn program");
  trainCmd->add_option("--config", trainOptions.train.config, "Model: tiny, small, 45m, 124m or 355m")->capture_default_str();
  trainCmd->add_option("--layers", trainOptions.train.layers, "Transformer blocks (default: the config's)")
      ->check(cli::integerIn(1, model::kMaxLayers));
  trainCmd->add_option("--heads", trainOptions.train.heads, "Attention heads (default: the config's)")
      ->check(cli::integerIn(1, model::kMaxHeads));
  trainCmd->add_option("--width", trainOptions.train.width, "Model width, a multiple of --heads (default: the config's)")
      ->check(cli::integerIn(1, model::kMaxWidth));
  trainCmd->add_option("--dtype", trainOptions.train.dtype, "Parameters on the CPU: float32, or float64")
      ->check(CLI::IsMember({"float32", "float64"}))
      ->capture_default_str();
  trainCmd->add_option("--attn", trainOptions.train.attnFile, "The attention program (.attn)")->required();
  trainCmd->add_option("--name", trainOptions.train.attnName, "Which attention of the file (default: its only one)");
  trainCmd->add_option("--set", trainOptions.train.sets, "Override a param: NAME=VALUE (repeatable)")->allow_extra_args(false);
  trainCmd->add_option("--backend", trainOptions.train.backend, "reference, cpu or cuda")->capture_default_str();
  trainCmd->add_option("--device", trainOptions.train.device, "cpu, or cuda (bf16 autocast)")->capture_default_str();
  trainCmd->add_option("--data", trainOptions.data,
                       "Directory of token shards (attn data prepare, or llm.c's); default: the built-in corpus");
  trainCmd->add_option("--steps", trainOptions.train.steps, "Optimiser steps (default: the config's)")
      ->check(cli::integerIn(1, kMaxSteps));
  trainCmd->add_option("--seq-len", trainOptions.train.seqLen, "Training sequence length (default: the config's)")
      ->check(cli::integerIn(1, kMaxSeqLen));
  trainCmd->add_option("--micro-batch", trainOptions.train.microBatch, "Sequences per forward pass")
      ->check(cli::integerIn(1, kMaxMicroBatch));
  trainCmd->add_option("--batch-tokens", trainOptions.train.batchTokens,
                       "Tokens per optimiser step; a multiple of micro-batch x seq-len (gradient accumulation)")
      ->check(cli::integerIn(1, kMaxBatchTokens));
  trainCmd->add_option("--lr", trainOptions.train.lr, "Peak learning rate")->check(cli::numberIn(0, 10, true));
  trainCmd->add_option("--min-lr-ratio", trainOptions.train.minLrRatio, "Final learning rate / peak")
      ->check(cli::numberIn(0, 1))
      ->capture_default_str();
  trainCmd->add_option("--warmup", trainOptions.train.warmup, "Warmup steps")->check(cli::integerIn(0, kMaxSteps));
  trainCmd->add_option("--weight-decay", trainOptions.train.weightDecay, "AdamW weight decay (2-D weights only)")
      ->check(cli::numberIn(0, 100))
      ->capture_default_str();
  trainCmd->add_option("--clip", trainOptions.train.clip, "Gradient norm clipping")
      ->check(cli::numberIn(0, 1e9, true))
      ->capture_default_str();
  trainCmd->add_option("--seed", trainOptions.train.seed, "Seed (initialisation and batches)")
      ->check(cli::integerIn(0, INT64_MAX))
      ->capture_default_str();
  trainCmd->add_option("--windows", trainOptions.train.windows,
                       "Where training windows start: random (any token) or aligned (a document's start, long "
                       "documents cut every --seq-len tokens; docs/TRAINING.md)")
      ->check(CLI::IsMember({"random", "aligned"}))
      ->capture_default_str();
  trainCmd->add_option("--checkpoint-every", trainOptions.train.checkpointEvery,
                       "Checkpoint every N steps (and after --checkpoint-minutes, and at the end)")
      ->check(cli::integerIn(1, kMaxSteps))
      ->capture_default_str();
  trainCmd->add_option("--checkpoint-minutes", trainOptions.train.checkpointMinutes,
                       "Checkpoint after this many minutes of training since the last one")
      ->check(cli::numberIn(0, 1e6, true))
      ->capture_default_str();
  trainCmd->add_option("--stop-after", trainOptions.train.stopAfter, "Stop (with a checkpoint) after this many steps")
      ->check(cli::integerIn(1, kMaxSteps));
  trainCmd->add_option("--eval-every", trainOptions.train.evalEvery,
                       "Validation loss every N steps (and after the last) into log.jsonl")
      ->check(cli::integerIn(1, kMaxSteps));
  trainCmd->add_option("--eval-windows", trainOptions.train.evalWindows,
                       "Validation windows of the training length --eval-every scores")
      ->check(cli::integerIn(1, 1000000))
      ->capture_default_str();
  trainCmd->add_option("--log-every", trainOptions.train.logEvery,
                       "Read the losses from the device every N steps (default: 1 on the CPU, 10 on a GPU)")
      ->check(cli::integerIn(1, kMaxSteps));
  trainCmd->add_option("--dist-timeout", trainOptions.train.distributed.timeoutSeconds,
                       "Data parallel: seconds to wait for the other ranks before giving up")
      ->check(cli::numberIn(0, 86400, true))
      ->capture_default_str();
  trainCmd->add_flag("--resume", trainOptions.train.resume, "Continue the run in --out from its checkpoint");
  trainCmd->add_flag("--quiet", trainOptions.train.quiet, "No progress line");
  trainCmd->add_option("--threads", trainOptions.threads, "CPU threads (default: all)")
      ->check(cli::integerIn(1, kMaxThreads));
  trainCmd->add_option("--out", trainOptions.train.out, "Run directory: log.jsonl, config.json, checkpoint/")->required();

  cli::EvalCliOptions evalOptions;
  auto* evalCmd = app.add_subcommand("eval", "Validation loss of a trained run at multiples of its training length");
  evalCmd->add_option("--ckpt", evalOptions.eval.checkpoint, "A run directory of attn train")->required();
  evalCmd->add_option("--attn", evalOptions.eval.attnFile, "Evaluate with another program (default: the trained one)");
  evalCmd->add_option("--name", evalOptions.eval.attnName, "Which attention of --attn");
  evalCmd->add_option("--set", evalOptions.eval.sets, "Override a param of --attn: NAME=VALUE")->allow_extra_args(false);
  evalCmd->add_option("--backend", evalOptions.eval.backend, "reference, cpu or cuda")->capture_default_str();
  evalCmd->add_option("--device", evalOptions.eval.device, "cpu or cuda")->capture_default_str();
  evalCmd->add_option("--data", evalOptions.data, "Directory of token shards (default: the built-in corpus)");
  evalCmd->add_option("--lengths", evalOptions.eval.lengths, "Multiples of the training length")
      ->delimiter(',')
      ->check(lengthMultiple())
      ->capture_default_str();
  evalCmd->add_option("--rope", evalOptions.eval.rope, "RoPE scaling: ntk (static), ntk-dynamic or none")
      ->check(CLI::IsMember({"ntk", "ntk-dynamic", "none"}))
      ->capture_default_str();
  evalCmd->add_option("--protocol", evalOptions.eval.protocol,
                      "same-tokens (the same targets at every length), stream (the validation stream, as llm.c) or "
                      "first-window (each document's first L tokens: other text at each length; for comparison)")
      ->check(CLI::IsMember({"same-tokens", "stream", "first-window"}))
      ->capture_default_str();
  evalCmd->add_option("--max-docs", evalOptions.eval.maxDocuments,
                      "Validation documents (stream: chunks of the longest length) to score; 0: all")
      ->check(cli::integerIn(0, 1000000000))
      ->capture_default_str();
  evalCmd->add_option("--per-position", evalOptions.eval.positionBucket,
                      "Also the loss by position in the window, in buckets of B tokens")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000000}));
  evalCmd->add_option("--out", evalOptions.eval.out, "JSON file (format attn-eval, version 2; docs/EVALUATION.md)");
  evalCmd->add_option("--plot", evalOptions.plot, "PNG of loss against length (gnuplot)");
  evalCmd->add_option("--threads", evalOptions.threads, "CPU threads (default: all)")
      ->check(cli::integerIn(1, kMaxThreads));

  cli::PasskeyCliOptions passkeyOptions;
  auto* passkeyCmd =
      app.add_subcommand("passkey", "Retrieval accuracy of a trained run: a key hidden in filler text, by length and depth");
  passkeyCmd->add_option("--ckpt", passkeyOptions.passkey.checkpoint, "A run directory of attn train")->required();
  passkeyCmd->add_option("--attn", passkeyOptions.passkey.attnFile, "Test with another program (default: the trained one)");
  passkeyCmd->add_option("--name", passkeyOptions.passkey.attnName, "Which attention of --attn");
  passkeyCmd->add_option("--set", passkeyOptions.passkey.sets, "Override a param of --attn: NAME=VALUE")
      ->allow_extra_args(false);
  passkeyCmd->add_option("--backend", passkeyOptions.passkey.backend, "reference, cpu or cuda")
      ->check(CLI::IsMember({"reference", "cpu", "cuda"}))
      ->capture_default_str();
  passkeyCmd->add_option("--device", passkeyOptions.passkey.device, "cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  passkeyCmd->add_option("--data", passkeyOptions.data,
                         "The run's data directory: its tokenizer, and its validation text as filler (default: the "
                         "built-in corpus, GPT-2 tokens)");
  passkeyCmd->add_option("--lengths", passkeyOptions.passkey.lengths, "Multiples of the training length")
      ->delimiter(',')
      ->check(lengthMultiple())
      ->capture_default_str();
  passkeyCmd->add_option("--depths", passkeyOptions.passkey.depths, "Where the key is: 0 the start, 1 the end")
      ->delimiter(',')
      ->check(finiteIn(0, 1))
      ->capture_default_str();
  passkeyCmd->add_option("--trials", passkeyOptions.passkey.trials, "Instances per length and depth")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}))
      ->capture_default_str();
  passkeyCmd->add_option("--seed", passkeyOptions.passkey.seed, "Seed of the instances (the same for every program)")
      ->capture_default_str();
  passkeyCmd->add_option("--rope", passkeyOptions.passkey.rope, "RoPE scaling: ntk (static), ntk-dynamic or none")
      ->check(CLI::IsMember({"ntk", "ntk-dynamic", "none"}))
      ->capture_default_str();
  passkeyCmd->add_option("--filler", passkeyOptions.passkey.filler,
                         "text (the validation documents), repeat (the usual repeated sentences) or copy (random "
                         "words recurring in the instance)")
      ->check(CLI::IsMember({"text", "repeat", "copy"}))
      ->capture_default_str();
  passkeyCmd->add_option("--digits", passkeyOptions.passkey.digits, "Digits of a key")
      ->check(CLI::Range(1, 18))
      ->capture_default_str();
  passkeyCmd->add_option("--out", passkeyOptions.passkey.out, "JSON file (format attn-passkey)");
  passkeyCmd->add_option("--threads", passkeyOptions.threads, "CPU threads (default: all)")
      ->check(cli::integerIn(1, kMaxThreads));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  std::function<int()> body;
  if (*check) body = [&] { return runCheck(o); };
  if (*fmt) body = [&] { return runFmt(o); };
  if (*explain) body = [&] { return runExplain(o); };
  if (*emit) body = [&] { return runEmit(o); };
  if (*run) body = [&] { return runRun(runOptions); };
  if (*prepare) body = [&] { return runDataPrepare(prepareOptions); };
  if (*inspect) body = [&] { return runDataInspect(inspectOptions); };
  if (*synth) body = [&] {
    synthOptions.fillers.clear();
    for (const auto& name : synthFiller) synthOptions.fillers.push_back(data::parseFillerKind(name));
    return runDataSynth(synthOptions);
  };
  if (*plotCmd) body = [&] { return runPlot(plotOptions); };
  if (*tune) body = [&] {
#ifdef ATTN_HAVE_CUDA
    return cli::runTune(tuneOptions);
#else
    std::cerr << "attn: error: attn tune: this attn was built without the CUDA toolkit (NVRTC)\n";
    return kExitUserError;
#endif
  };
  if (*trainCmd) {
    // A model size no run can build: a bad command line, named by its flag.
    if (const auto named = model::namedModelSize(trainOptions.train.config)) {
      const train::TrainOptions& t = trainOptions.train;
      const std::string problem = model::modelSizeProblem(t.layers > 0 ? t.layers : named->layers,
                                                          t.heads > 0 ? t.heads : named->heads,
                                                          t.width > 0 ? t.width : named->width);
      if (!problem.empty()) {
        std::cerr << "attn: error: " << problem << '\n';
        return kExitUsage;
      }
    }
    if (std::string problem = readDistributedEnvironment(trainOptions.train.distributed); !problem.empty()) {
      std::cerr << "attn: error: " << problem << '\n';
      return kExitUsage;
    }
  }
  if (*trainCmd) body = [&] {
    auto* fn = reinterpret_cast<int (*)(const cli::TrainCliOptions*)>(torchCommand("attn_train_command"));
    return fn ? fn(&trainOptions) : kExitUserError;
  };
  if (*evalCmd) body = [&] {
    auto* fn = reinterpret_cast<int (*)(const cli::EvalCliOptions*)>(torchCommand("attn_eval_command"));
    return fn ? fn(&evalOptions) : kExitUserError;
  };
  if (*passkeyCmd) body = [&] {
    auto* fn = reinterpret_cast<int (*)(const cli::PasskeyCliOptions*)>(torchCommand("attn_passkey_command"));
    return fn ? fn(&passkeyOptions) : kExitUserError;
  };
  int status = runWithLargeStack(body);
  // Whatever went to standard output through streams must have arrived: a result lost to a
  // full disk or a closed pipe is not a success.
  try {
    support::flushStandardOutput();
  } catch (const support::FileError& e) {
    std::cerr << "attn: error: " << e.what() << '\n';
    if (status == kExitOk) status = kExitUserError;
  }
  return status;
}
