// The LibTorch half of the CLI (see TorchCommands.h): `attn run`.
//
//   attn run FILE [--name N] [--set K=V]... --backend reference|cpu|cuda
//            --q Q.npy --k K.npy --v V.npy [--dout DO.npy] --out DIR
//
// Reads q, k, v (float16/32/64; [B,H,L,D] or [L,D]), computes o with the chosen backend,
// and writes DIR/o.npy in the inputs' dtype; with --dout also dq.npy, dk.npy, dv.npy.
#include "runtime/cli/TorchCommands.h"

#include <ATen/ATen.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "runtime/Attention.h"
#include "runtime/io/Npy.h"

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
  if (backward) {
    dout = readTensor(o.dout);
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
    writeTensor(o.outDir + "/dq.npy", q.grad(), dtype);
    writeTensor(o.outDir + "/dk.npy", k.grad(), dtype);
    writeTensor(o.outDir + "/dv.npy", v.grad(), dtype);
  }
  return 0;
}

}  // namespace

}  // namespace attn::cli

extern "C" int attn_run_command(const attn::cli::RunOptions* options) {
  try {
    return attn::cli::run(*options);
  } catch (const attn::UserError& e) {
    std::string message = e.what();
    // Compile errors arrive as rendered diagnostics; everything else is one line.
    if (message.find(": error: ") != std::string::npos) std::cerr << message;
    else std::cerr << "attn: error: " << message << '\n';
    return 1;
  } catch (const attn::io::NpyError& e) {
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
