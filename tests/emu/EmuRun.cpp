// The CUDA op's forward and backward on the emulator. See EmuRun.h.
#include "emu/EmuRun.h"

#include <algorithm>
#include <cstring>

namespace attn::emu {

namespace {

// A buffer of the emulator holding `n` values of T: copied from `init`, zeroed, or left as the
// emulator's fresh memory (NaN bytes: what an uninitialised at::empty may hold).
template <class T>
uint64_t buffer(Emulator& emu, const std::string& name, size_t n, const T* init = nullptr, bool zero = false) {
  void* p = emu.alloc(n * sizeof(T), name);
  if (init) std::memcpy(p, init, n * sizeof(T));
  if (zero) std::memset(p, 0, n * sizeof(T));
  return reinterpret_cast<uint64_t>(p);
}

template <class T>
std::vector<T> read(uint64_t address, size_t n) {
  std::vector<T> out(n);
  std::memcpy(out.data(), reinterpret_cast<const void*>(address), n * sizeof(T));
  return out;
}

cuda::Launcher onEmulator(Emulator& emu, const EmuModule& module, const cuda::CudaKernelSource& source) {
  return [&emu, &module, &source](const cuda::KernelLaunch& l) {
    const cuda::CudaEntry& e = source.entry(l.role);
    emu.launch(module.view(), e.name, Dim3{l.gridX, l.gridY, 1}, Dim3{l.threads, 1, 1}, l.sharedBytes, l.params);
  };
}

}  // namespace

HostResult runOnEmulator(Emulator& emu, const EmuModule& module, const cuda::CudaKernelSource& source,
                         const HostProblem& p) {
  const cuda::Shape& s = p.shape;
  const kernels::ScalarKernels& k = source.scalar;
  if (!source.tensorCoreForward) throw EmuError("emu: the module has no tensor-core forward");
  const size_t nq = static_cast<size_t>(s.heads * s.lq), nk = static_cast<size_t>(s.heads * s.lk);
  const size_t statSlots = static_cast<size_t>(std::max(k.statSlots, 1));
  const cuda::Launcher launch = onEmulator(emu, module, source);

  // Forward (CudaOp.cpp: o and stats are at::empty, rq / rk scratch).
  cuda::DeviceBuffers b;
  b.q = buffer(emu, "q", nq * s.d, p.q.data());
  b.k = buffer(emu, "k", nk * s.d, p.k.data());
  b.v = buffer(emu, "v", nk * s.dv, p.v.data());
  b.o = buffer<uint16_t>(emu, "o", nq * s.dv);
  b.stats = buffer<float>(emu, "stats", nq * statSlots);
  if (k.needsQueryNorm) b.rq = buffer<float>(emu, "rq", nq);
  if (k.needsKeyNorm) b.rk = buffer<float>(emu, "rk", nk);
  cuda::launchForward(source, s, b, launch);
  HostResult r;
  r.o = read<uint16_t>(b.o, nq * s.dv);
  r.stats = read<float>(b.stats, nq * statSlots);
  if (p.dout.empty()) return r;

  // Backward (CudaOp.cpp: the forward's o and stats; dq, dk, dv, adj, rqBar, rkBar zeroed;
  // fresh rq / rk, which backward recomputes).
  if (!source.tensorCoreBackward) throw EmuError("emu: the module has no tensor-core backward");
  cuda::DeviceBuffers g = b;
  g.dout = buffer(emu, "dout", nq * s.dv, p.dout.data());
  g.dq = buffer<float>(emu, "dq", nq * s.d, nullptr, true);
  g.dk = buffer<float>(emu, "dk", nk * s.d, nullptr, true);
  g.dv = buffer<float>(emu, "dv", nk * s.dv, nullptr, true);
  g.adj = buffer<float>(emu, "adj", nq * static_cast<size_t>(std::max(k.adjointSlots, 1)), nullptr, true);
  if (k.needsQueryNorm) {
    g.rq = buffer<float>(emu, "rq (backward)", nq);
    g.rqBar = buffer<float>(emu, "rqBar", nq, nullptr, true);
  }
  if (k.needsKeyNorm) {
    g.rk = buffer<float>(emu, "rk (backward)", nk);
    g.rkBar = buffer<float>(emu, "rkBar", nk, nullptr, true);
  }
  cuda::launchBackward(source, s, g, launch);
  r.dq = read<float>(g.dq, nq * s.d);
  r.dk = read<float>(g.dk, nk * s.d);
  r.dv = read<float>(g.dv, nk * s.dv);
  return r;
}

}  // namespace attn::emu
