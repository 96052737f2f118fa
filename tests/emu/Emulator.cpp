// The GPU emulator. See Emulator.h for the model; this file is its machinery: the CTA
// scheduler (threads as fibers), warp collectives, cp.async queues, the shared-memory race
// detector (with the write-protected view that sees direct stores), global buffers with
// guard pages, and the signal handler that turns a fault into a located error.
#include "emu/Emulator.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "emu/Fiber.h"

namespace attn::emu {

namespace {

constexpr int kWarp = 32;
constexpr unsigned char kPoison = 0xff;  // fresh shared and global memory: NaN in fp16, bf16, f32
constexpr unsigned char kCanary = 0xa5;

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

enum class Status { Ready, Running, AtBarrier, AtCollective, Done };
enum class Op { None, SyncWarp, Shuffle, Vote, Ldmatrix, Mma };

const char* opName(Op op) {
  switch (op) {
    case Op::None: return "nothing";
    case Op::SyncWarp: return "__syncwarp";
    case Op::Shuffle: return "a warp shuffle";
    case Op::Vote: return "a warp vote";
    case Op::Ldmatrix: return "ldmatrix";
    case Op::Mma: return "mma.sync";
  }
  return "?";
}

// What touched a shared word, for race reports.
enum class Kind : uint8_t { CpAsync, Store, Ldmatrix };
const char* kindName(Kind k) {
  switch (k) {
    case Kind::CpAsync: return "a cp.async landing";
    case Kind::Store: return "a store";
    case Kind::Ldmatrix: return "an ldmatrix read";
  }
  return "?";
}

struct Copy {
  uint32_t dst;
  const unsigned char* src;
  int bytes, srcBytes;
  uint64_t seq;
  uint32_t issueBarriers, issueWarpSyncs;
};

struct Thread {
  int tid = 0, warp = 0, lane = 0;
  Status status = Status::Done;
  std::vector<Copy> open;                  // issued, not yet committed
  std::deque<std::vector<Copy>> groups;    // committed groups, oldest first
  std::vector<uint32_t> dirtyPages;        // shared pages this thread stored to since the last flush
};

struct LaneIO {
  uint32_t in[10];
  uint32_t out[4];
};

struct Warp {
  Op op = Op::None;
  uint64_t key = 0;  // the collective's lane-uniform parameters
  int arrived = 0;
  int lanes = kWarp;
  int exited = 0;
  uint32_t syncs = 0;  // completed __syncwarp: the warp's ordering epoch
  LaneIO io[kWarp];
};

// The race detector's record of one 2-byte shared word (the smallest store of a 16-bit element).
struct Word {
  int32_t writer = -1;  // thread of the last write (-1: none in this CTA)
  uint32_t wBarriers = 0, wSyncs = 0;
  Kind wKind = Kind::Store;
  int32_t reader = -1;  // -1: no read since that write; -2: several threads
  int32_t readerWarp = -1;  // the readers' warp when all share one, else -1
  uint32_t rBarriers = 0, rSyncs = 0;
  uint64_t rSeq = 0;
};

struct Buffer {
  unsigned char* mapping = nullptr;
  size_t mappingBytes = 0;
  unsigned char* data = nullptr;
  size_t bytes = 0;
  unsigned char* guard = nullptr;  // the PROT_NONE page after the data
  std::string name;
};

size_t pageSize() {
  static const size_t p = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return p;
}

}  // namespace

// ------------------------------------------------------------------ the running launch

struct Emulator::State {
  const EmuOptions* options = nullptr;
  EmuCounters* counters = nullptr;
  std::vector<Buffer> buffers;

  // Shared memory: the module's array is remapped to a read-only view of a memfd (stores
  // fault, see onFault) and `alias` is a writable view of the same pages for the emulator.
  struct SharedViews {
    unsigned char* kernelView = nullptr;
    unsigned char* alias = nullptr;
    size_t capacity = 0;
  };
  SharedViews shared;
  std::vector<unsigned char> shadow;  // what the race detector last saw in shared memory
  std::vector<Word> words;
  bool tracking = false;  // the kernel view is write-protected (direct stores are seen)

  // The launch.
  attn_emu::Builtins builtins{};
  attn_emu::KernelThunk thunk = nullptr;
  void** params = nullptr;
  std::string kernel;
  Dim3 grid, block, blockIdx;
  int sharedBytes = 0;
  int threadCount = 0;
  std::vector<std::unique_ptr<Fiber>> fibers;
  std::vector<Thread> threads;
  std::vector<Warp> warps;
  std::deque<int> ready;
  std::mt19937_64 rng;
  int current = -1;
  int barrierArrived = 0;
  uint32_t barriers = 0;  // completed __syncthreads: the CTA's ordering epoch
  int exitedThreads = 0;
  uint64_t seq = 0;
  std::string error;  // set when the launch fails

  // Global memory between the CTAs of a launch, which a GPU runs at once and the emulator one
  // after another: the first CTA to write each 4-byte word in this launch, and whether by
  // atomicAdd. A CTA's plain stores are found after it ran by comparing the buffers with a copy
  // taken before (a store that leaves a word as it was is not seen); its atomics as they run.
  struct GlobalWriter {
    Dim3 block;
    bool atomic = false;
  };
  std::unordered_map<const unsigned char*, GlobalWriter> globalWriters;
  std::unordered_set<const unsigned char*> blockAtomics;  // words this CTA atomically added to
  std::vector<std::vector<unsigned char>> globalBefore;   // per buffer, as the CTA started

  static std::string nameOf(Dim3 b) {
    return "block (" + std::to_string(b.x) + ", " + std::to_string(b.y) + ", " + std::to_string(b.z) + ")";
  }
  static bool sameBlock(Dim3 a, Dim3 b) { return a.x == b.x && a.y == b.y && a.z == b.z; }

  /// An inter-CTA race on the word at `word` (this CTA's `what`), or nothing.
  std::string globalRace(const unsigned char* word, bool atomic) {
    auto [it, fresh] = globalWriters.try_emplace(word, GlobalWriter{blockIdx, atomic});
    if (fresh || sameBlock(it->second.block, blockIdx) || (atomic && it->second.atomic)) return "";
    return "inter-CTA race on global " + describe(word) + ": " + (atomic ? "an atomicAdd" : "a store") + " by " +
           nameOf(blockIdx) + " and " + (it->second.atomic ? "an atomicAdd" : "a store") + " by " +
           nameOf(it->second.block) + " in one launch (CTAs run concurrently: the result depends on their order)";
  }
  void snapshotGlobal() {
    globalBefore.resize(buffers.size());
    for (size_t i = 0; i < buffers.size(); ++i) globalBefore[i].assign(buffers[i].data, buffers[i].data + buffers[i].bytes);
    blockAtomics.clear();
  }
  /// After a CTA: its plain stores against the other CTAs' writes ("" when there is no race).
  std::string checkGlobalStores() {
    for (size_t i = 0; i < buffers.size() && i < globalBefore.size(); ++i) {
      const Buffer& b = buffers[i];
      const std::vector<unsigned char>& before = globalBefore[i];
      for (size_t at = 0; at < b.bytes; at += 4096) {
        const size_t n = std::min<size_t>(4096, b.bytes - at);
        if (std::memcmp(b.data + at, before.data() + at, n) == 0) continue;
        for (size_t w = at; w < at + n; w += 4) {
          if (std::memcmp(b.data + w, before.data() + w, std::min<size_t>(4, b.bytes - w)) == 0) continue;
          if (blockAtomics.count(b.data + w)) continue;
          std::string race = globalRace(b.data + w, false);
          if (!race.empty()) return race;
        }
      }
    }
    return "";
  }

  // ---------------------------------------------------------------- errors

  std::string where(int tid) const {
    const Thread& t = threads[tid];
    return "thread " + std::to_string(tid) + " (warp " + std::to_string(t.warp) + ", lane " + std::to_string(t.lane) +
           ")";
  }
  std::string blockName() const {
    return "block (" + std::to_string(blockIdx.x) + ", " + std::to_string(blockIdx.y) + ", " +
           std::to_string(blockIdx.z) + ")";
  }

  /// Fails the launch from inside the running thread: records why and leaves the fiber for
  /// good (the scheduler throws).
  [[noreturn]] void fail(const std::string& why) {
    if (error.empty()) error = kernel + ", " + blockName() + ", " + (current >= 0 ? where(current) : "") + ": " + why;
    if (Fiber::current()) Fiber::yield();
    throw EmuError(error);  // outside a fiber (never resumed fibers do not get here)
  }

  // ---------------------------------------------------------------- memory

  const Buffer* bufferOf(const void* p, size_t bytes) const {
    const auto* a = static_cast<const unsigned char*>(p);
    for (const Buffer& b : buffers)
      if (a >= b.data && a + bytes <= b.data + b.bytes) return &b;
    return nullptr;
  }
  std::string describe(const void* p) const {
    const auto* a = static_cast<const unsigned char*>(p);
    for (const Buffer& b : buffers)
      if (a >= b.mapping && a < b.mapping + b.mappingBytes) {
        const long long off = a - b.data;
        return b.name + (off >= 0 ? " + " : " - ") + std::to_string(off >= 0 ? off : -off) + " (of " +
               std::to_string(b.bytes) + " bytes)";
      }
    return "address " + hex(reinterpret_cast<uintptr_t>(p)) + " (no buffer of this launch)";
  }

  void checkShared(uint32_t address, int bytes, int align, const char* what) {
    if (address % align != 0)
      fail(std::string(what) + ": shared address " + std::to_string(address) + " is not " + std::to_string(align) +
           "-byte aligned");
    if (static_cast<uint64_t>(address) + bytes > static_cast<uint64_t>(sharedBytes))
      fail(std::string(what) + ": shared bytes [" + std::to_string(address) + ", " + std::to_string(address + bytes) +
           ") lie beyond the launch's " + std::to_string(sharedBytes) + " bytes of dynamic shared memory");
  }

  /// The running thread's (or `tid`'s) ordering time: (CTA barriers, its warp's __syncwarps).
  uint32_t syncsOf(int tid) const { return warps[threads[tid].warp].syncs; }

  bool ordered(int32_t before, uint32_t bBarriers, uint32_t bSyncs, int after, uint32_t aBarriers, uint32_t aSyncs) const {
    return before == after || bBarriers < aBarriers ||
           (threads[before].warp == threads[after].warp && bSyncs < aSyncs);
  }

  std::string access(int tid, Kind k) const { return kindName(k) + std::string(" by ") + where(tid); }

  /// A write of `bytes` at `address` by thread u (kind k) that may have happened any time since
  /// (sBarriers, sSyncs) (its issue, for cp.async) and is complete now.
  void recordWrite(uint32_t address, int bytes, int u, Kind k, uint32_t sBarriers, uint32_t sSyncs, uint64_t sSeq) {
    if (!options->raceCheck) return;
    for (uint32_t w = address / 2; w < (address + bytes + 1) / 2; ++w) {
      Word& x = words[w];
      auto at = [w] { return "shared bytes [" + std::to_string(2 * w) + ", " + std::to_string(2 * w + 2) + ")"; };
      if (x.writer >= 0 && !ordered(x.writer, x.wBarriers, x.wSyncs, u, sBarriers, sSyncs))
        fail("shared-memory race on " + at() + ": " + access(u, k) + " and " + access(x.writer, x.wKind) +
             " with no __syncthreads (or __syncwarp) between them");
      if (x.reader >= 0) {
        if (x.reader == u && k == Kind::CpAsync && x.rSeq > sSeq)
          fail("shared-memory race on " + at() + ": " + where(u) +
               " read the destination of its own cp.async before the cp.async.wait_group that lands it");
        if (!ordered(x.reader, x.rBarriers, x.rSyncs, u, sBarriers, sSyncs))
          fail("shared-memory race on " + at() + ": " + access(u, k) + " and an ldmatrix read by " + where(x.reader) +
               " with no __syncthreads (or __syncwarp) between them");
      } else if (x.reader == -2) {
        const bool inOrder = x.rBarriers < sBarriers || (x.readerWarp == threads[u].warp && x.rSyncs < sSyncs);
        if (!inOrder)
          fail("shared-memory race on " + at() + ": " + access(u, k) + " and ldmatrix reads by several threads" +
               (x.readerWarp >= 0 ? " of warp " + std::to_string(x.readerWarp) : std::string(" of several warps")) +
               " with no __syncthreads (or __syncwarp) between them");
      }
      x.writer = u;
      x.wKind = k;
      x.wBarriers = barriers;
      x.wSyncs = syncsOf(u);
      x.reader = -1;
    }
  }

  void recordRead(uint32_t address, int bytes, int t) {
    if (!options->raceCheck) return;
    const uint32_t b = barriers, s = syncsOf(t);
    for (uint32_t w = address / 2; w < (address + bytes + 1) / 2; ++w) {
      Word& x = words[w];
      auto at = [w] { return "shared bytes [" + std::to_string(2 * w) + ", " + std::to_string(2 * w + 2) + ")"; };
      if (x.writer < 0 && tracking)
        fail("ldmatrix reads " + at() + ", which no thread of this CTA has written (uninitialised shared memory)");
      if (x.writer >= 0 && !ordered(x.writer, x.wBarriers, x.wSyncs, t, b, s))
        fail("shared-memory race on " + at() + ": " + access(t, Kind::Ldmatrix) + " and " + access(x.writer, x.wKind) +
             " with no __syncthreads (or __syncwarp) between them");
      if (x.reader == -1 || x.rBarriers < b) {
        x.reader = t;
        x.readerWarp = threads[t].warp;
        x.rBarriers = b;
        x.rSyncs = s;
      } else if (x.reader != t) {
        if (x.readerWarp != threads[t].warp) x.readerWarp = -1;
        x.reader = -2;
        x.rSyncs = std::max(x.rSyncs, s);
      } else {
        x.rSyncs = s;
      }
      x.rSeq = ++seq;
    }
  }

  /// The running thread's direct stores since its last flush: the pages it faulted on,
  /// compared with the shadow copy, each changed word a store (then the page is protected again).
  void flushStores(int tid) {
    Thread& t = threads[tid];
    if (t.dirtyPages.empty()) return;
    const size_t page = pageSize();
    for (uint32_t p : t.dirtyPages) {
      const size_t begin = p * page, end = std::min(begin + page, shared.capacity);
      for (size_t w = begin; w < end; w += 2) {
        if (w % 16 == 0 && w + 16 <= end && std::memcmp(shared.alias + w, shadow.data() + w, 16) == 0) {
          w += 14;  // 16 unchanged bytes at once
          continue;
        }
        if (std::memcmp(shared.alias + w, shadow.data() + w, 2) == 0) continue;
        if (w >= static_cast<size_t>(sharedBytes))
          fail("a store to shared bytes [" + std::to_string(w) + ", " + std::to_string(w + 2) +
               ") beyond the launch's " + std::to_string(sharedBytes) + " bytes of dynamic shared memory");
        recordWrite(static_cast<uint32_t>(w), 2, tid, Kind::Store, barriers, syncsOf(tid), seq);
        std::memcpy(shadow.data() + w, shared.alias + w, 2);
      }
      ::mprotect(shared.kernelView + begin, end - begin, PROT_READ);
    }
    counters->directStorePages += t.dirtyPages.size();
    t.dirtyPages.clear();
  }

  /// Every entry from the kernel into the emulator starts here: the stores the thread made
  /// since its last entry are attributed to it now (before any barrier it completes).
  Thread& enter() {
    Thread& t = threads[current];
    if (tracking) flushStores(current);
    ++seq;
    return t;
  }

  // ---------------------------------------------------------------- scheduling

  void makeReady(int tid) {
    threads[tid].status = Status::Ready;
    ready.push_back(tid);
  }

  /// Blocks the running thread until another makes it ready.
  void wait(Status why) {
    threads[current].status = why;
    Fiber::yield();
  }

  void land(Thread& t, const Copy& c) {
    unsigned char* dst = shared.alias + c.dst;
    if (c.srcBytes > 0) std::memcpy(dst, c.src, static_cast<size_t>(c.srcBytes));
    std::memset(dst + c.srcBytes, 0, static_cast<size_t>(c.bytes - c.srcBytes));
    if (tracking) std::memcpy(shadow.data() + c.dst, dst, static_cast<size_t>(c.bytes));
    recordWrite(c.dst, c.bytes, t.tid, Kind::CpAsync, c.issueBarriers, c.issueWarpSyncs, c.seq);
  }

  /// What a thread waiting in a warp collective or at a barrier is doing, for messages.
  std::string waiting(const Thread& t) const {
    switch (t.status) {
      case Status::AtBarrier: return "__syncthreads";
      case Status::AtCollective: return opName(warps[t.warp].op);
      case Status::Done: return "exited";
      case Status::Ready: return "runnable";
      case Status::Running: return "running";
    }
    return "?";
  }

  void exitThread() {
    Thread& t = enter();
    Warp& w = warps[t.warp];
    if (w.arrived > 0)
      fail("exits while " + std::to_string(w.arrived) + " lane(s) of its warp wait in " + opName(w.op) +
           " (warp divergence)");
    if (barrierArrived > 0)
      fail("exits while " + std::to_string(barrierArrived) + " thread(s) wait at __syncthreads");
    size_t pending = t.open.size();
    for (const auto& g : t.groups) pending += g.size();
    if (pending > 0)
      fail("exits with " + std::to_string(pending) + " cp.async copies never waited for (cp.async.wait_group)");
    ++w.exited;
    ++exitedThreads;
    t.status = Status::Done;
  }

  static void threadMain(void* raw) {
    auto* self = static_cast<State*>(raw);
    self->thunk(self->params);
    self->exitThread();
  }

  void runBlock() {
    for (int i = 0; i < threadCount; ++i) {
      Thread& t = threads[i];
      t = Thread{};
      t.tid = i;
      t.warp = i / kWarp;
      t.lane = i % kWarp;
      fibers[i]->start(&State::threadMain, this);
      makeReady(i);
    }
    for (size_t w = 0; w < warps.size(); ++w) {
      warps[w] = Warp{};
      warps[w].lanes = std::min(kWarp, threadCount - static_cast<int>(w) * kWarp);
    }
    barrierArrived = 0;
    barriers = 0;
    exitedThreads = 0;
    if (sharedBytes > 0) {
      std::memset(shared.alias, kPoison, shared.capacity);
      if (options->raceCheck) {
        std::fill(words.begin(), words.begin() + (sharedBytes + 1) / 2, Word{});
        std::memset(shadow.data(), kPoison, shared.capacity);
        ::mprotect(shared.kernelView, shared.capacity, PROT_READ);
        tracking = true;
      }
    }
    while (!ready.empty()) {
      int tid;
      if (options->scheduleSeed == 0) {
        tid = ready.front();
        ready.pop_front();
      } else {
        const size_t pick = std::uniform_int_distribution<size_t>(0, ready.size() - 1)(rng);
        tid = ready[pick];
        ready.erase(ready.begin() + static_cast<long>(pick));
      }
      current = tid;
      threads[tid].status = Status::Running;
      builtins.threadIdx[0] = static_cast<unsigned>(tid) % block.x;
      builtins.threadIdx[1] = static_cast<unsigned>(tid) / block.x % block.y;
      builtins.threadIdx[2] = static_cast<unsigned>(tid) / (block.x * block.y);
      fibers[tid]->resume();
      ++counters->switches;
      if (!error.empty()) throw EmuError(error);
    }
    current = -1;
    if (exitedThreads != threadCount) {
      std::string why = kernel + ", " + blockName() + ": deadlock: no thread can run;";
      int shown = 0;
      for (const Thread& t : threads)
        if (t.status != Status::Done && shown++ < 8) why += " " + where(t.tid) + " waits in " + waiting(t) + ";";
      throw EmuError(why);
    }
    tracking = false;
  }

  // ---------------------------------------------------------------- collectives

  /// The running lane joins warp collective `op` (lane-uniform parameters `key`) with its
  /// inputs; returns when all lanes have, with its outputs. The last lane to arrive computes.
  const LaneIO& collective(Op op, uint64_t key, unsigned mask, const uint32_t* in, int inWords) {
    Thread& t = enter();
    Warp& w = warps[t.warp];
    const unsigned full = w.lanes == kWarp ? 0xffffffffu : (1u << w.lanes) - 1;
    if ((mask & full) != full)
      fail(std::string(opName(op)) + " with lane mask " + hex(mask) +
           ": only whole-warp collectives are emulated (every lane of the warp must take part)");
    if (w.exited > 0)
      fail(std::string(opName(op)) + " after " + std::to_string(w.exited) + " lane(s) of its warp exited (warp divergence)");
    if (w.arrived > 0 && (w.op != op || w.key != key))
      fail(std::string("warp divergence: reaches ") + opName(op) + " while " + std::to_string(w.arrived) +
           " lane(s) of its warp wait in " + opName(w.op) + (w.op == op ? " with other parameters" : ""));
    if (barrierArrived > 0)
      for (const Thread& o : threads)
        if (o.warp == t.warp && o.status == Status::AtBarrier)
          fail(std::string("warp divergence: reaches ") + opName(op) + " while " + where(o.tid) +
               " of its warp waits at __syncthreads");
    w.op = op;
    w.key = key;
    if (inWords > 0) std::memcpy(w.io[t.lane].in, in, sizeof(uint32_t) * static_cast<size_t>(inWords));
    if (++w.arrived < w.lanes) {
      wait(Status::AtCollective);
      return w.io[t.lane];
    }
    compute(w, t.warp);
    w.arrived = 0;
    w.op = Op::None;
    for (int l = 0; l < w.lanes; ++l)
      if (l != t.lane) makeReady(t.warp * kWarp + l);
    return w.io[t.lane];
  }

  void compute(Warp& w, int warp) {
    switch (w.op) {
      case Op::SyncWarp: ++w.syncs; break;
      case Op::Shuffle: computeShuffle(w); break;
      case Op::Vote: computeVote(w); break;
      case Op::Ldmatrix: computeLdmatrix(w, warp); break;
      case Op::Mma: computeMma(w); break;
      case Op::None: break;
    }
  }

  void computeShuffle(Warp& w) {
    const auto mode = static_cast<attn_emu::Shuffle>(w.key & 0xff);
    const int width = static_cast<int>((w.key >> 8) & 0xff);
    if (width < 1 || width > kWarp || (width & (width - 1)) != 0) fail("shuffle width " + std::to_string(width) + " is not a power of 2 up to 32");
    for (int l = 0; l < w.lanes; ++l) {
      const int param = static_cast<int>(w.io[l].in[1]);
      const int base = l & ~(width - 1);
      int src = l;
      switch (mode) {
        case attn_emu::Shuffle::Index: src = base + (param & (width - 1)); break;
        case attn_emu::Shuffle::Up: src = (l - base) >= param ? l - param : l; break;
        case attn_emu::Shuffle::Down: src = (l - base) + param < width ? l + param : l; break;
        case attn_emu::Shuffle::Xor: src = l ^ param; if (src >= base + width) src = l; break;
      }
      if (src < 0 || src >= w.lanes) src = l;
      w.io[l].out[0] = w.io[src].in[0];
    }
  }

  void computeVote(Warp& w) {
    const auto mode = static_cast<attn_emu::Vote>(w.key & 0xff);
    uint32_t ballot = 0;
    for (int l = 0; l < w.lanes; ++l)
      if (w.io[l].in[0]) ballot |= 1u << l;
    const uint32_t all = w.lanes == kWarp ? 0xffffffffu : (1u << w.lanes) - 1;
    const uint32_t r = mode == attn_emu::Vote::Ballot ? ballot : mode == attn_emu::Vote::Any ? ballot != 0 : ballot == all;
    for (int l = 0; l < w.lanes; ++l) w.io[l].out[0] = r;
  }

  // ldmatrix .x1/.x2/.x4 [.trans]: matrix i's 8 row addresses come from lanes 8i..8i+7; each
  // row is 8 16-bit elements. Lane (g = lane / 4, t = lane % 4) receives in register i: without
  // .trans row g, elements 2t (low half) and 2t+1; with .trans elements g of rows 2t (low) and 2t+1.
  void computeLdmatrix(Warp& w, int warp) {
    const int count = static_cast<int>(w.key & 0xff);
    const bool trans = (w.key >> 8) & 1;
    uint32_t rows[4][8];
    for (int i = 0; i < count; ++i)
      for (int r = 0; r < 8; ++r) {
        const int lane = 8 * i + r;
        const uint32_t a = w.io[lane].in[0];
        current = warp * kWarp + lane;  // errors and the read record name the lane that gave the row
        checkShared(a, 16, 16, "ldmatrix");
        recordRead(a, 16, current);
        rows[i][r] = a;
      }
    ++counters->ldmatrix;
    auto element = [&](int i, int row, int col) {
      uint16_t v;
      std::memcpy(&v, shared.alias + rows[i][row] + 2 * col, 2);
      return static_cast<uint32_t>(v);
    };
    for (int l = 0; l < w.lanes; ++l) {
      const int g = l >> 2, t = l & 3;
      for (int i = 0; i < count; ++i)
        w.io[l].out[i] = trans ? element(i, 2 * t, g) | element(i, 2 * t + 1, g) << 16
                               : element(i, g, 2 * t) | element(i, g, 2 * t + 1) << 16;
    }
  }

  // mma.sync.m16n8k16.row.col.f32.{f16,bf16}.f32, PTX fragment layouts, lane (g, t):
  //   A 16x16: a0 (row g, cols 2t, 2t+1), a1 (row g+8, same cols), a2 (row g, cols 2t+8, 2t+9),
  //            a3 (row g+8, cols 2t+8, 2t+9); the low half is the lower column.
  //   B 16x8:  b0 (rows k = 2t, 2t+1, col n = g), b1 (rows 2t+8, 2t+9, col g); low half = lower k.
  //   C, D 16x8 f32: c0, c1 (row g, cols 2t, 2t+1), c2, c3 (row g+8, cols 2t, 2t+1).
  void computeMma(Warp& w) {
    if (w.lanes != kWarp) fail("mma.sync in a partial warp of " + std::to_string(w.lanes) + " threads");
    const bool bf16 = static_cast<attn_emu::MmaType>(w.key) == attn_emu::MmaType::BF16;
    auto value = [bf16](uint32_t word, int half) {
      const auto bits = static_cast<uint16_t>(half ? word >> 16 : word & 0xffff);
      return static_cast<double>(bf16 ? bf16ToFloat(bits) : f16ToFloat(bits));
    };
    double A[16][16], B[16][8], C[16][8];
    for (int l = 0; l < kWarp; ++l) {
      const int g = l >> 2, t = l & 3;
      const uint32_t* in = w.io[l].in;
      for (int h = 0; h < 2; ++h) {
        A[g][2 * t + h] = value(in[0], h);
        A[g + 8][2 * t + h] = value(in[1], h);
        A[g][2 * t + 8 + h] = value(in[2], h);
        A[g + 8][2 * t + 8 + h] = value(in[3], h);
        B[2 * t + h][g] = value(in[4], h);
        B[2 * t + 8 + h][g] = value(in[5], h);
      }
      float c[4];
      std::memcpy(c, in + 6, sizeof c);
      C[g][2 * t] = c[0];
      C[g][2 * t + 1] = c[1];
      C[g + 8][2 * t] = c[2];
      C[g + 8][2 * t + 1] = c[3];
    }
    for (int l = 0; l < kWarp; ++l) {
      const int g = l >> 2, t = l & 3;
      const int rowOf[4] = {g, g, g + 8, g + 8}, colOf[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
      for (int e = 0; e < 4; ++e) {
        double sum = C[rowOf[e]][colOf[e]];
        for (int k = 0; k < 16; ++k) sum += A[rowOf[e]][k] * B[k][colOf[e]];
        const float d = static_cast<float>(sum);
        std::memcpy(&w.io[l].out[e], &d, 4);
      }
    }
    ++counters->mma;
  }

  // ---------------------------------------------------------------- faults

  bool inKernelShared(const void* p) const {
    const auto* a = static_cast<const unsigned char*>(p);
    return tracking && a >= shared.kernelView && a < shared.kernelView + shared.capacity;
  }
};

// ------------------------------------------------------------------ the Api the module calls

namespace {

Emulator::State* active = nullptr;  // the launch running now (one at a time per process)

// The shared-memory views of every module array seen, for the life of the process (modules
// stay loaded: EmuModule never unloads one, so an array's address is never reused).
std::map<const unsigned char*, Emulator::State::SharedViews>& sharedViews() {
  static std::map<const unsigned char*, Emulator::State::SharedViews> views;
  return views;
}

Emulator::State& S() { return *active; }

void apiSyncthreads() {
  auto& s = S();
  auto& t = s.enter();
  for (const Thread& o : s.threads)
    if (o.warp == t.warp && o.status == Status::AtCollective)
      s.fail(std::string("warp divergence: reaches __syncthreads while ") + s.where(o.tid) + " of its warp waits in " +
             opName(s.warps[t.warp].op));
  if (s.exitedThreads > 0) s.fail("__syncthreads after " + std::to_string(s.exitedThreads) + " thread(s) of the CTA exited");
  if (++s.barrierArrived < s.threadCount) {
    s.wait(Status::AtBarrier);
    return;
  }
  s.barrierArrived = 0;
  ++s.barriers;
  ++s.counters->barriers;
  for (Thread& o : s.threads)
    if (o.status == Status::AtBarrier) s.makeReady(o.tid);
}

void apiSyncwarp(unsigned mask) { S().collective(Op::SyncWarp, 0, mask, nullptr, 0); }

unsigned apiShuffle(unsigned mask, unsigned value, int lane, int width, attn_emu::Shuffle mode) {
  const uint32_t in[2] = {value, static_cast<uint32_t>(lane)};
  const uint64_t key = static_cast<uint64_t>(mode) | static_cast<uint64_t>(width & 0xff) << 8 | uint64_t{mask} << 32;
  ++S().counters->shuffles;
  return S().collective(Op::Shuffle, key, mask, in, 2).out[0];
}

unsigned apiVote(unsigned mask, int predicate, attn_emu::Vote mode) {
  const uint32_t in[1] = {predicate != 0 ? 1u : 0u};
  return S().collective(Op::Vote, static_cast<uint64_t>(mode) | uint64_t{mask} << 32, mask, in, 1).out[0];
}

void apiLdmatrix(unsigned* r, unsigned address, int count, bool trans) {
  if (count != 1 && count != 2 && count != 4) S().fail("ldmatrix .x" + std::to_string(count) + " does not exist");
  const uint32_t in[1] = {address};
  const int self = S().current;
  const LaneIO& io = S().collective(Op::Ldmatrix, static_cast<uint64_t>(count) | (trans ? 256u : 0u), 0xffffffffu, in, 1);
  S().current = self;
  for (int i = 0; i < count; ++i) r[i] = io.out[i];
}

void apiMma(float* d, const unsigned* a, unsigned b0, unsigned b1, attn_emu::MmaType type) {
  uint32_t in[10] = {a[0], a[1], a[2], a[3], b0, b1};
  std::memcpy(in + 6, d, 16);
  const LaneIO& io = S().collective(Op::Mma, static_cast<uint64_t>(type), 0xffffffffu, in, 10);
  std::memcpy(d, io.out, 16);
}

void apiCpAsync(unsigned dst, const void* src, int bytes, int srcBytes) {
  auto& s = S();
  Thread& t = s.enter();
  if (bytes != 4 && bytes != 8 && bytes != 16) s.fail("cp.async of " + std::to_string(bytes) + " bytes (4, 8 or 16)");
  if (srcBytes < 0 || srcBytes > bytes)
    s.fail("cp.async src-size " + std::to_string(srcBytes) + " outside [0, " + std::to_string(bytes) + "]");
  s.checkShared(dst, bytes, bytes, "cp.async destination");
  if (reinterpret_cast<uintptr_t>(src) % static_cast<uintptr_t>(bytes) != 0)
    s.fail("cp.async source " + s.describe(src) + " is not " + std::to_string(bytes) + "-byte aligned");
  if (srcBytes > 0 ? !s.bufferOf(src, static_cast<size_t>(srcBytes)) : !s.bufferOf(src, 0))
    s.fail("cp.async reads " + std::to_string(srcBytes) + " bytes at " + s.describe(src) +
           (srcBytes > 0 ? ": out of bounds" : ": not a global address (src-size 0 still needs a valid one)"));
  t.open.push_back(Copy{dst, static_cast<const unsigned char*>(src), bytes, srcBytes, s.seq, s.barriers, s.syncsOf(t.tid)});
  ++s.counters->cpAsync;
}

void apiCpAsyncCommit() {
  Thread& t = S().enter();
  t.groups.push_back(std::move(t.open));
  t.open.clear();
}

void apiCpAsyncWait(int pending) {
  auto& s = S();
  Thread& t = s.enter();
  if (pending < 0) s.fail("cp.async.wait_group " + std::to_string(pending));
  while (static_cast<int>(t.groups.size()) > pending) {
    for (const Copy& c : t.groups.front()) s.land(t, c);
    t.groups.pop_front();
  }
}

float apiAtomicAdd(float* address, float value) {
  auto& s = S();
  s.enter();
  if (reinterpret_cast<uintptr_t>(address) % 4 != 0) s.fail("atomicAdd on misaligned " + s.describe(address));
  if (!s.bufferOf(address, 4)) s.fail("atomicAdd out of bounds: " + s.describe(address));
  if (s.options->raceCheck) {
    const auto* word = reinterpret_cast<const unsigned char*>(address);
    s.blockAtomics.insert(word);
    const std::string race = s.globalRace(word, true);
    if (!race.empty()) s.fail(race);
  }
  const float old = *address;
  *address = old + value;
  ++s.counters->atomics;
  return old;
}

unsigned apiSharedAddress(const void* generic) {
  auto& s = S();
  const auto* p = static_cast<const unsigned char*>(generic);
  if (p < s.shared.kernelView || p > s.shared.kernelView + s.shared.capacity)
    s.fail("__cvta_generic_to_shared of a pointer that is not into shared memory");
  return static_cast<unsigned>(p - s.shared.kernelView);
}

void apiTrap(const char* why) { S().fail(why); }

const attn_emu::Api kApi = {attn_emu::kApiVersion, apiSyncthreads, apiSyncwarp, apiShuffle, apiVote, apiLdmatrix,
                            apiMma, apiCpAsync, apiCpAsyncCommit, apiCpAsyncWait, apiAtomicAdd, apiSharedAddress,
                            apiTrap};

}  // namespace

const attn_emu::Api& emulatorApi() { return kApi; }

namespace {

// A fault while a launch runs: a store to the write-protected shared view (recorded, the page
// opened for the rest of the thread's slice), or a load / store in a guard page (a buffer's
// end, a fiber's stack), which fails the launch. Anything else is not ours: the previous
// handler gets it when the fault repeats.
struct sigaction previousSegv, previousBus;

void onFault(int sig, siginfo_t* info, void* context) {
  Emulator::State* s = active;
  void* address = info->si_addr;
  if (s && s->current >= 0 && Fiber::current()) {
    if (s->inKernelShared(address)) {
      const size_t page = (static_cast<unsigned char*>(address) - s->shared.kernelView) / pageSize();
      s->threads[s->current].dirtyPages.push_back(static_cast<uint32_t>(page));
      ::mprotect(s->shared.kernelView + page * pageSize(), pageSize(), PROT_READ | PROT_WRITE);
      return;
    }
    std::string why;
    for (const Buffer& b : s->buffers)
      if (address >= b.guard && address < b.guard + pageSize())
        why = "out-of-bounds global access at " + s->describe(address) + " (past the end of " + b.name + ")";
    if (why.empty() && s->fibers[s->current]->inGuard(address)) why = "stack overflow (emulated thread stack)";
    if (!why.empty()) {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, sig);
      ::sigprocmask(SIG_UNBLOCK, &set, nullptr);  // the handler never returns
      s->fail(why);
    }
  }
  // Not ours: restore the previous disposition and let the fault happen again.
  ::sigaction(sig, sig == SIGSEGV ? &previousSegv : &previousBus, nullptr);
  (void)context;
}

// Installs the fault handler (and an alternate signal stack, for stack overflows) for one launch.
class FaultScope {
 public:
  FaultScope() {
    stack_.resize(256 * 1024);
    stack_t ss{};
    ss.ss_sp = stack_.data();
    ss.ss_size = stack_.size();
    ::sigaltstack(&ss, &oldStack_);
    struct sigaction sa{};
    sa.sa_sigaction = &onFault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &previousSegv);
    ::sigaction(SIGBUS, &sa, &previousBus);
  }
  ~FaultScope() {
    ::sigaction(SIGSEGV, &previousSegv, nullptr);
    ::sigaction(SIGBUS, &previousBus, nullptr);
    ::sigaltstack(&oldStack_, nullptr);
  }

 private:
  std::vector<unsigned char> stack_;
  stack_t oldStack_{};
};

}  // namespace

// ------------------------------------------------------------------ Emulator

Emulator::Emulator(EmuOptions options) : options_(options), state_(std::make_unique<State>()) {
  state_->options = &options_;
  state_->counters = &counters_;
  state_->rng.seed(options_.scheduleSeed);
}

Emulator::~Emulator() {
  for (const Buffer& b : state_->buffers) ::munmap(b.mapping, b.mappingBytes);
}

void* Emulator::alloc(size_t bytes, const std::string& name) {
  // [canary page(s) ... data (16-byte aligned, ending at the guard page, padded to 16 bytes
  // with canaries)][guard page]
  const size_t page = pageSize();
  const size_t padded = (std::max<size_t>(bytes, 1) + 15) / 16 * 16;
  const size_t dataPages = (padded + page - 1) / page;
  Buffer b;
  b.mappingBytes = (dataPages + 1) * page;
  void* m = ::mmap(nullptr, b.mappingBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw EmuError("emu: cannot map " + std::to_string(bytes) + " bytes for " + name);
  b.mapping = static_cast<unsigned char*>(m);
  b.guard = b.mapping + dataPages * page;
  ::mprotect(b.guard, page, PROT_NONE);
  b.data = b.guard - padded;
  b.bytes = bytes;
  b.name = name;
  std::memset(b.mapping, kCanary, static_cast<size_t>(b.data - b.mapping));
  std::memset(b.data, kPoison, bytes);
  std::memset(b.data + bytes, kCanary, padded - bytes);
  state_->buffers.push_back(b);
  return b.data;
}

std::string Emulator::describe(const void* p) const { return state_->describe(p); }

void Emulator::launch(const ModuleView& module, const std::string& name, Dim3 grid, Dim3 block, int sharedBytes,
                      void** params) {
  State& s = *state_;
  s.thunk = module.find(module.module, name);
  if (!s.thunk) throw EmuError("emu: the module has no kernel '" + name + "'");
  const long long threads = static_cast<long long>(block.x) * block.y * block.z;
  if (threads < 1 || threads > 1024) throw EmuError("emu: " + name + ": a block of " + std::to_string(threads) + " threads");
  if (grid.x < 1 || grid.y < 1 || grid.z < 1) throw EmuError("emu: " + name + ": an empty grid");
  if (sharedBytes < 0 || static_cast<unsigned long>(sharedBytes) > module.builtins.sharedCapacity)
    throw EmuError("emu: " + name + ": " + std::to_string(sharedBytes) + " bytes of dynamic shared memory (the emulated GPU has " +
                   std::to_string(module.builtins.sharedCapacity) + ")");
  if (sharedBytes > 227 * 1024)
    throw EmuError("emu: " + name + ": " + std::to_string(sharedBytes) +
                   " bytes of dynamic shared memory exceed every GPU's 227 KB per block");

  // The module's shared array -> a write-protectable view of a memfd, once per module.
  auto it = sharedViews().find(module.builtins.shared);
  if (it == sharedViews().end()) {
    State::SharedViews v;
    v.capacity = module.builtins.sharedCapacity;
    v.kernelView = module.builtins.shared;
    const int fd = ::memfd_create("attn-emu-shared", 0);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(v.capacity)) != 0)
      throw EmuError(std::string("emu: memfd_create: ") + std::strerror(errno));
    void* kernel = ::mmap(v.kernelView, v.capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
    void* alias = ::mmap(nullptr, v.capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (kernel != v.kernelView || alias == MAP_FAILED) throw EmuError("emu: cannot map the shared-memory views");
    v.alias = static_cast<unsigned char*>(alias);
    it = sharedViews().emplace(module.builtins.shared, v).first;
  }
  s.shared = it->second;
  if (s.shadow.size() < s.shared.capacity) {
    s.shadow.assign(s.shared.capacity, kPoison);
    s.words.assign(s.shared.capacity / 2, Word{});
  }

  s.builtins = module.builtins;
  s.params = params;
  s.kernel = name;
  s.grid = grid;
  s.block = block;
  s.sharedBytes = sharedBytes;
  s.threadCount = static_cast<int>(threads);
  while (static_cast<int>(s.fibers.size()) < s.threadCount) s.fibers.push_back(std::make_unique<Fiber>(options_.stackBytes));
  s.threads.assign(static_cast<size_t>(s.threadCount), Thread{});
  s.warps.assign(static_cast<size_t>((s.threadCount + kWarp - 1) / kWarp), Warp{});
  s.error.clear();
  s.ready.clear();
  s.builtins.blockDim[0] = block.x;
  s.builtins.blockDim[1] = block.y;
  s.builtins.blockDim[2] = block.z;
  s.builtins.gridDim[0] = grid.x;
  s.builtins.gridDim[1] = grid.y;
  s.builtins.gridDim[2] = grid.z;

  if (active) throw EmuError("emu: launches do not nest");
  active = &s;
  struct Reset {
    State& s;
    ~Reset() {
      active = nullptr;
      s.tracking = false;
      s.current = -1;
      s.ready.clear();
      if (s.shared.kernelView) ::mprotect(s.shared.kernelView, s.shared.capacity, PROT_READ | PROT_WRITE);
    }
  } reset{s};
  FaultScope faults;
  ++counters_.launches;
  s.globalWriters.clear();
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        s.blockIdx = Dim3{x, y, z};
        s.builtins.blockIdx[0] = x;
        s.builtins.blockIdx[1] = y;
        s.builtins.blockIdx[2] = z;
        if (options_.raceCheck) s.snapshotGlobal();
        s.runBlock();
        if (options_.raceCheck)
          if (const std::string race = s.checkGlobalStores(); !race.empty()) throw EmuError(name + ": " + race);
        ++counters_.blocks;
        counters_.threads += static_cast<uint64_t>(s.threadCount);
      }
  // Stores into the canaries around a buffer (loads and stores past its end fault at once).
  for (const Buffer& b : s.buffers) {
    for (const unsigned char* p = b.mapping; p < b.data; ++p)
      if (*p != kCanary) throw EmuError(name + ": a store before the start of " + b.name + " (at " + describe(p) + ")");
    for (const unsigned char* p = b.data + b.bytes; p < b.guard; ++p)
      if (*p != kCanary) throw EmuError(name + ": a store past the end of " + b.name + " (at " + describe(p) + ")");
  }
}

// ------------------------------------------------------------------ 16-bit floats

float bf16ToFloat(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float f16ToFloat(uint16_t bits) {
  const int sign = bits >> 15, exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
  float magnitude;
  if (exponent == 0) magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // zero, subnormal
  else if (exponent == 31) magnitude = mantissa ? std::nanf("") : INFINITY;
  else magnitude = std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
  return sign ? -magnitude : magnitude;
}

}  // namespace attn::emu
