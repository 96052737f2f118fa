// The LibTorch half of the CLI (see TorchCommands.h): `attn run`, `attn train`, `attn eval`.
//
//   attn run FILE [--name N] [--set K=V]... --backend reference|cpu|cuda
//            --q Q.npy --k K.npy --v V.npy [--dout DO.npy] [--cu-seqlens 0,37,...] --out DIR
//
// Reads q, k, v (float16/32/64; [B,H,L,D] or [L,D]), computes o with the chosen backend,
// and writes DIR/o.npy in the inputs' dtype; with --dout also dq.npy, dk.npy, dv.npy.
// --cu-seqlens: packed documents (a program whose mask is `per document`).
#include "runtime/cli/TorchCommands.h"

#include <ATen/ATen.h>
#include <sys/stat.h>

#include <dirent.h>

#include <ATen/Parallel.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <cstring>
#include <iostream>

#include "runtime/Attention.h"
#include "runtime/CudaOp.h"
#include "runtime/data/Bpe.h"
#include "runtime/data/Corpus.h"
#include "runtime/data/CorpusCache.h"
#include "runtime/data/DataError.h"
#include "runtime/data/DataInspect.h"
#include "runtime/data/Shards.h"
#include "runtime/data/PasskeyTask.h"
#include "runtime/data/TextTokenizer.h"
#include "runtime/io/Npy.h"
#include "runtime/io/Plot.h"
#include "runtime/model/ModelSizes.h"
#include "runtime/train/Evaluate.h"
#include "runtime/train/Passkey.h"
#include "runtime/train/Trainer.h"
#include "support/AtomicWrite.h"
#include "support/FileError.h"

namespace attn::cli {

namespace {

at::ScalarType scalarTypeOf(io::DType d) {
  switch (d) {
    case io::DType::F16: return at::kHalf;
    case io::DType::F32: return at::kFloat;
    case io::DType::F64: return at::kDouble;
  }
  return at::kFloat;
}

io::DType dtypeOf(at::ScalarType t) {
  if (t == at::kHalf) return io::DType::F16;
  if (t == at::kDouble) return io::DType::F64;
  return io::DType::F32;
}

at::Tensor readTensor(const std::string& path) {
  io::NpyArray a = io::readNpy(path);
  std::vector<int64_t> shape = a.shape;
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(scalarTypeOf(a.dtype)));
  if (!a.data.empty()) std::memcpy(t.data_ptr(), a.data.data(), a.data.size());
  return t;
}

void writeTensor(const std::string& path, const at::Tensor& tensor, at::ScalarType dtype) {
  at::Tensor t = tensor.detach().to(at::kCPU).to(dtype).contiguous();
  io::NpyArray a;
  a.dtype = dtypeOf(dtype);
  a.shape = t.sizes().vec();
  a.data.resize(static_cast<size_t>(t.numel()) * t.element_size());
  if (!a.data.empty()) std::memcpy(a.data.data(), t.data_ptr(), a.data.size());
  io::writeNpy(path, a);
}

void makeDirectories(const std::string& dir) { support::makeDirectories(dir); }

// "0,37,38,539" -> int64 [4]; anything but comma-separated whole numbers is a UserError.
at::Tensor parseOffsets(const std::string& text) {
  std::vector<int64_t> values;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const bool digits = !item.empty() && item.size() <= 18 &&
                        std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits)
      throw UserError("--cu-seqlens: '" + item + "' is not a whole number; expected offsets such as 0,37,38,539");
    values.push_back(std::stoll(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return at::tensor(values, at::kLong);
}

int run(const RunOptions& o) {
  CompileOptions options;
  options.name = o.name;
  DiagnosticEngine diags;
  for (const auto& s : o.sets)
    if (auto ov = parseOverride(s, diags)) options.overrides.push_back(*ov);
  if (diags.hasErrors()) {
    diags.render(std::cerr);
    return 1;
  }
  Backend backend = parseBackend(o.backend);
  Program program = Program::fromFile(o.file, options);

  at::Tensor q = readTensor(o.q), k = readTensor(o.k), v = readTensor(o.v);
  const at::ScalarType dtype = q.scalar_type();
  const bool backward = !o.dout.empty();
  at::Tensor dout;
  if (backward) dout = readTensor(o.dout);
  if (backend == Backend::Cuda) {  // the tensors go to the GPU (a clear error when there is none)
    requireCudaBackend();
    q = q.to(at::kCUDA);
    k = k.to(at::kCUDA);
    v = v.to(at::kCUDA);
    if (backward) dout = dout.to(at::kCUDA);
  }
  if (backward) {
    q.requires_grad_(true);
    k.requires_grad_(true);
    v.requires_grad_(true);
  }
  Documents documents;
  if (!o.cuSeqlens.empty()) documents.offsets = parseOffsets(o.cuSeqlens);
  at::Tensor out = program(q, k, v, backend, documents);
  makeDirectories(o.outDir);
  writeTensor(o.outDir + "/o.npy", out, dtype);
  if (backward) {
    if (dout.sizes() != out.sizes())
      throw UserError("--dout has shape " + io::formatShape(dout.sizes().vec()) + " but o has shape " +
                      io::formatShape(out.sizes().vec()));
    out.backward(dout.to(out.scalar_type()));
    // Autograd leaves the gradient of an input the output does not depend on (weights that
    // ignore q and k, or reach them only through comparisons) undefined: it is zero.
    auto gradient = [](const at::Tensor& x) { return x.grad().defined() ? x.grad() : at::zeros_like(x); };
    writeTensor(o.outDir + "/dq.npy", gradient(q), dtype);
    writeTensor(o.outDir + "/dk.npy", gradient(k), dtype);
    writeTensor(o.outDir + "/dv.npy", gradient(v), dtype);
  }
  return 0;
}

// Token data from a directory of shards: every *_train_*.bin (in name order) memory-mapped
// as one stream (resident memory does not grow with the shards), every *_val_*.bin read and
// cut into documents at the end-of-text token that starts each one (the tokenizer's:
// DIR/tokenizer.json, GPT-2's without one).
train::TokenData loadTokenData(const std::string& dir) {
  const data::TokenizerInfo tokenizer = data::readTokenizerInfo(dir);
  const data::ShardFiles files = data::listShards(dir);
  if (files.train.empty())
    throw UserError("no training shards (*_train_*.bin) in '" + dir + "' (make them with attn data prepare)");
  train::TokenData data;
  data.train = data::TokenStream::mapShards(files.train);
  for (const auto& f : files.val) {
    for (uint16_t token : data::readShard(f)) {
      if (token == tokenizer.endOfText || data.validation.empty()) data.validation.emplace_back();
      data.validation.back().push_back(token);
    }
  }
  if (tokenizer.kind != "gpt2") data.vocab = tokenizer.vocab;
  data.endOfText = tokenizer.endOfText;
  data.description = dir + ": " + std::to_string(files.train.size()) + " train shard(s), " +
                     std::to_string(data.train.size()) + " tokens; " + std::to_string(data.validation.size()) +
                     " validation documents";
  return data;
}

// --data, or the built-in corpus prepared once into the cache.
train::TokenData tokenData(const std::string& dir) {
  if (!dir.empty()) return loadTokenData(dir);
  return loadTokenData(data::preparedDefaultCorpus());  // verified, and prepared again when damaged
}

void setThreads(int threads) {
  int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
}

int trainCommand(const TrainCliOptions& c) {
  setThreads(c.threads);
  const train::TrainOptions& o = c.train;
  parseBackend(o.backend);
  Program::fromFile(o.attnFile, {});  // a broken program fails before the data is loaded
  train::TokenData data = tokenData(c.data);
  train::TrainOptions withVocab = o;
  // A small tokenizer (attn data prepare --tokenizer bytes|bpe:N) gets a small output layer:
  // its vocabulary padded to a multiple of 64, as GPT-2's 50,257 is to 50,304.
  if (withVocab.vocab == 0 && data.vocab > 0) withVocab.vocab = (data.vocab + 63) / 64 * 64;
  train::TrainOptions resolved = train::resolveDefaults(withVocab);
  const model::Gpt2Config model = train::trainedModelConfig(resolved);
  const train::DistributedOptions& dist = o.distributed;
  if (dist.rank == 0) {
    char size[160];
    std::snprintf(size, sizeof size, "%s (%lld layers, %lld heads, %lld wide, %.1fM parameters)", model.name.c_str(),
                  static_cast<long long>(model.layers), static_cast<long long>(model.heads),
                  static_cast<long long>(model.width),
                  static_cast<double>(model::parameterCount(model.layers, model.width, model.vocab)) / 1e6);
    std::cerr << "attn train: " << size << ", " << resolved.attnFile << " on " << resolved.backend << ", "
              << resolved.steps << " steps of " << resolved.batchTokens << " tokens (seq " << resolved.seqLen << ")"
              << (dist.worldSize > 1 ? " over " + std::to_string(dist.worldSize) + " ranks" : std::string())
              << ", data " << data.description << '\n';
  }
  double loss = train::train(withVocab, data);
  if (dist.rank == 0) std::cout << "final train loss " << loss << "; run in " << o.out << '\n';
  return 0;
}

// Writes `text` to `path` atomically (a temporary file beside it, flushed, renamed): a
// full disk or a kill leaves the previous file whole, and a write error is an exit-1 error.
void writeResult(const std::string& path, const std::string& text) {
  data::writeFileAtomically(path, {{text.data(), text.size()}});
}

std::string describeProgram(const std::string& attnFile, const std::vector<std::string>& sets) {
  std::string text = attnFile.empty() ? "the trained program" : attnFile;
  for (const auto& s : sets) text += " " + s;
  return text;
}

int evalCommand(const EvalCliOptions& c) {
  setThreads(c.threads);
  train::EvalOptions e = c.eval;
  // "1x,,2x" means 1x and 2x: empty items are dropped.
  e.lengths.erase(std::remove(e.lengths.begin(), e.lengths.end(), std::string()), e.lengths.end());
  parseBackend(e.backend);
  train::parseEvalProtocol(e.protocol);
  train::TokenData data = tokenData(c.data);
  train::EvalResult result = train::evaluate(e, data);
  std::cout << "validation loss (" << describeProgram(e.attnFile, e.sets) << ", RoPE " << e.rope << ", protocol "
            << train::protocolName(result.protocol) << ")\n";
  std::cout << "  length     loss   stderr    tokens  windows  units\n";
  for (const train::LengthLoss& l : result.lengths) {
    char line[128];
    char se[16] = "      -";
    if (l.standardError) std::snprintf(se, sizeof se, "%7.4f", *l.standardError);
    std::snprintf(line, sizeof line, "  %-6s %8.4f  %s %9lld %8lld %6lld\n", l.spec.c_str(), l.loss, se,
                  static_cast<long long>(l.tokens), static_cast<long long>(l.windows), static_cast<long long>(l.units));
    std::cout << line;
  }
  if (!e.out.empty()) writeResult(e.out, train::evalResultJson(result));
  if (!c.plot.empty()) {
    io::LossCurve curve{describeProgram(e.attnFile, e.sets), {}};
    for (const train::LengthLoss& l : result.lengths)
      curve.points[static_cast<double>(l.window) / static_cast<double>(result.trainLength)] = l.loss;
    if (std::string error = io::plotLossCurves({curve}, c.plot, "validation loss against evaluation length");
        !error.empty())
      throw UserError(error);
  }
  return 0;
}

int passkeyCommand(const PasskeyCliOptions& c) {
  setThreads(c.threads);
  train::PasskeyOptions o = c.passkey;
  o.lengths.erase(std::remove(o.lengths.begin(), o.lengths.end(), std::string()), o.lengths.end());
  parseBackend(o.backend);
  data::parseFillerKind(o.filler);
  std::unique_ptr<data::TextTokenizer> tokenizer =
      c.data.empty() ? data::gpt2Tokenizer() : data::loadTokenizer(c.data);
  train::TokenData data = tokenData(c.data);
  train::TrainedModel model = train::loadTrainedModel(o.checkpoint, o.attnFile, o.attnName, o.sets, o.backend, o.device);
  train::PasskeyResult r = train::passkey(model, o, data, *tokenizer);
  std::cout << "passkey accuracy (" << describeProgram(o.attnFile, o.sets) << ", RoPE " << o.rope << ", "
            << o.trials << " trials per cell, filler " << o.filler << ")\n";
  std::cout << "  length";
  for (double d : o.depths) {
    char h[32];
    std::snprintf(h, sizeof h, "  d=%-4g", d);
    std::cout << h;
  }
  std::cout << "    all\n";
  for (const train::PasskeyLength& l : r.lengths) {
    char line[32];
    std::snprintf(line, sizeof line, "  %-6s", l.spec.c_str());
    std::cout << line;
    for (const train::PasskeyCell& cell : l.depths) {
      std::snprintf(line, sizeof line, "  %5.1f%%", 100.0 * static_cast<double>(cell.correct) / static_cast<double>(cell.trials));
      std::cout << line;
    }
    std::snprintf(line, sizeof line, "  %5.1f%%\n", 100.0 * static_cast<double>(l.correct) / static_cast<double>(l.trials));
    std::cout << line;
  }
  if (!o.out.empty()) writeResult(o.out, train::passkeyResultJson(r));
  return 0;
}

}  // namespace

}  // namespace attn::cli

namespace {

// Every exception a command can raise, as a message and an exit status.
template <typename Fn>
int guarded(const Fn& fn) {
  try {
    return fn();
  } catch (const attn::UserError& e) {
    std::string message = e.what();
    // Compile errors arrive as rendered diagnostics; everything else is one line.
    if (message.find(": error: ") != std::string::npos) std::cerr << message;
    else std::cerr << "attn: error: " << message << '\n';
    return 1;
  } catch (const attn::io::NpyError& e) {
    std::cerr << "attn: error: " << e.what() << '\n';
    return 1;
  } catch (const attn::data::DataError& e) {
    std::cerr << "attn: error: " << e.what() << '\n';
    return 1;
  } catch (const attn::support::FileError& e) {
    std::cerr << "attn: error: " << e.what() << '\n';
    return 1;
  } catch (const nlohmann::json::exception& e) {
    // Only files attn wrote are parsed as JSON here (config.json, state files), so a JSON
    // error means one was damaged or edited; the readers name the file where they can.
    std::cerr << "attn: error: a JSON file of the run is damaged: " << e.what() << '\n';
    return 1;
  } catch (const attn::InternalError& e) {
    std::cerr << "attn: internal error: " << e.what() << " (at " << e.where() << ")\n";
    return 3;
  } catch (const c10::Error& e) {
    std::cerr << "attn: internal error: LibTorch: " << e.what_without_backtrace() << '\n';
    return 3;
  }
}

}  // namespace

extern "C" int attn_run_command(const attn::cli::RunOptions* options) {
  return guarded([&] { return attn::cli::run(*options); });
}

extern "C" int attn_train_command(const attn::cli::TrainCliOptions* options) {
  return guarded([&] { return attn::cli::trainCommand(*options); });
}

extern "C" int attn_eval_command(const attn::cli::EvalCliOptions* options) {
  return guarded([&] { return attn::cli::evalCommand(*options); });
}

extern "C" int attn_passkey_command(const attn::cli::PasskeyCliOptions* options) {
  return guarded([&] { return attn::cli::passkeyCommand(*options); });
}
