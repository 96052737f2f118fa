// The LibTorch half of the CLI (see TorchCommands.h): `attn run`, `attn train`, `attn eval`.
//
//   attn run FILE [--name N] [--set K=V]... --backend reference|cpu|cuda
//            --q Q.npy --k K.npy --v V.npy [--dout DO.npy] --out DIR
//
// Reads q, k, v (float16/32/64; [B,H,L,D] or [L,D]), computes o with the chosen backend,
// and writes DIR/o.npy in the inputs' dtype; with --dout also dq.npy, dk.npy, dv.npy.
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
#include "runtime/data/DataDir.h"
#include "runtime/data/DataError.h"
#include "runtime/data/Shards.h"
#include "runtime/io/Npy.h"
#include "runtime/io/Plot.h"
#include "runtime/train/Trainer.h"

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

void makeDirectories(const std::string& dir) {
  std::string partial;
  for (size_t pos = 0; pos != std::string::npos;) {
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
      throw UserError("cannot create directory '" + partial + "': " + std::strerror(errno));
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw UserError("'" + dir + "' is not a directory");
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
  at::Tensor out = program(q, k, v, backend);
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

// Token data from a directory of shards: every *_train_*.bin (in name order) for training,
// every *_val_*.bin cut into documents at the <|endoftext|> token that starts each one.
train::TokenData loadTokenData(const std::string& dir) {
  std::vector<std::string> trainFiles, valFiles;
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw UserError("cannot open the data directory '" + dir + "'");
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 5 || name.substr(name.size() - 4) != ".bin") continue;
    if (name.find("_train_") != std::string::npos) trainFiles.push_back(dir + "/" + name);
    else if (name.find("_val_") != std::string::npos) valFiles.push_back(dir + "/" + name);
  }
  ::closedir(d);
  std::sort(trainFiles.begin(), trainFiles.end());
  std::sort(valFiles.begin(), valFiles.end());
  if (trainFiles.empty())
    throw UserError("no training shards (*_train_*.bin) in '" + dir + "' (make them with attn data prepare)");
  train::TokenData data;
  for (const auto& f : trainFiles) {
    std::vector<uint16_t> t = data::readShard(f);
    data.train.insert(data.train.end(), t.begin(), t.end());
  }
  for (const auto& f : valFiles) {
    for (uint16_t token : data::readShard(f)) {
      if (token == data::Tokenizer::kEndOfText || data.validation.empty()) data.validation.emplace_back();
      data.validation.back().push_back(token);
    }
  }
  data.description = dir + ": " + std::to_string(trainFiles.size()) + " train shard(s), " +
                     std::to_string(data.train.size()) + " tokens; " + std::to_string(data.validation.size()) +
                     " validation documents";
  return data;
}

// --data, or the built-in corpus prepared once into the cache.
train::TokenData tokenData(const std::string& dir) {
  if (!dir.empty()) return loadTokenData(dir);
  std::string cache = data::cacheDirectory() + "/data/sotu";
  struct stat st {};
  if (::stat((cache + "/sotu_val_documents.json").c_str(), &st) != 0) {
    std::cerr << "attn: preparing the built-in corpus (233 State of the Union speeches) into " << cache << '\n';
    data::Tokenizer tokenizer = data::Tokenizer::loadDefault();
    data::Split split = data::splitDocuments(data::defaultCorpus(), 0.1, 1);
    makeDirectories(cache);
    data::prepareShards(split, tokenizer, cache, "sotu", 100000000);
  }
  return loadTokenData(cache);
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
  train::TrainOptions resolved = train::resolveDefaults(o);
  std::cerr << "attn train: " << resolved.config << ", " << resolved.attnFile << " on " << resolved.backend << ", "
            << resolved.steps << " steps of " << resolved.batchTokens << " tokens (seq " << resolved.seqLen
            << "), data " << data.description << '\n';
  double loss = train::train(o, data);
  std::cout << "final train loss " << loss << "; run in " << o.out << '\n';
  return 0;
}

int evalCommand(const EvalCliOptions& c) {
  setThreads(c.threads);
  train::EvalOptions e = c.eval;
  // "1x,,2x" means 1x and 2x: empty items are dropped.
  e.lengths.erase(std::remove(e.lengths.begin(), e.lengths.end(), std::string()), e.lengths.end());
  parseBackend(e.backend);
  train::TokenData data = tokenData(c.data);
  std::map<std::string, double> table = train::evaluate(e, data);
  // Printed in the order asked for.
  std::string program = e.attnFile.empty() ? "the trained program" : e.attnFile;
  std::cout << "validation loss (" << program << ", RoPE " << e.rope << ")\n";
  std::cout << "  length   loss\n";
  nlohmann::json j = nlohmann::json::object();
  for (const std::string& spec : e.lengths) {
    auto it = table.find(spec);
    if (it == table.end()) continue;
    char line[64];
    std::snprintf(line, sizeof line, "  %-6s %7.4f\n", spec.c_str(), it->second);
    std::cout << line;
    j[spec] = it->second;
  }
  if (!e.out.empty()) {
    std::ofstream out(e.out);
    out << j.dump(2) << '\n';
    if (!out) throw UserError("cannot write '" + e.out + "'");
  }
  if (!c.plot.empty()) {
    io::LossCurve curve{program, {}};
    for (const auto& [spec, loss] : table) curve.points[std::atof(spec.c_str())] = loss;
    if (std::string error = io::plotLossCurves({curve}, c.plot, "validation loss against evaluation length");
        !error.empty())
      throw UserError(error);
  }
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
