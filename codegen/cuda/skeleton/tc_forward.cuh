// tc_forward.cuh: the fixed FlashAttention-2-style forward kernel body of attn's CUDA backend,
// which the code generator completes with one program's "hooks" (a Variant struct V) and a
// tile configuration (Cfg). The generator writes
//
//   extern "C" __global__ void __launch_bounds__(Config::kWarps * 32, 1)
//   attn_forward_tc(attn_tc::FwdParams p) { attn_tc::forward<Variant, Config>(p); }
//
// launched on grid dim3(ceil(lq / Config::kBlockM), heads), block Config::kWarps * 32, with
// forwardSharedBytes<Config>() bytes of dynamic shared memory (over 48 KB needs
// cudaFuncAttributeMaxDynamicSharedMemorySize / CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES).
// The ", 1" (at least one CTA per SM) lets ptxas use up to 255 registers: without it ptxas may
// squeeze a kernel needing a little over 128 or 168 registers down to that and spill a few
// bytes (check_skeleton.sh shows both forms).
//
// What it is: one CTA = one (head, tile of kBlockM query rows); each of the kWarps warps owns 16
// rows. Q is loaded once (cp.async -> shared memory; its ldmatrix A fragments are kept in
// registers when kD <= 64 or Cfg::kQInRegisters, else re-read from shared memory at every key
// tile). The kernel makes V::kPasses passes over the key tiles that some row of the CTA can see;
// per tile S = Q K^T (raw dots, fp32) by mma.sync m16n8k16, the hooks per S element, the pass's
// row statistics, and in the last pass the output accumulation O += W V by mma (W = the weights
// converted to Elem, V by ldmatrix.trans). K (and V in the last pass) tiles stream through a
// kStages-deep cp.async pipeline in dynamic shared memory, XOR-swizzled (or padded) so ldmatrix
// is bank-conflict free. At the end of each pass its statistics (both slots) go to p.stats for
// the backward pass; at the end O goes to p.o.
// What it isn't: a backward kernel, a split-K / multi-CTA-per-row kernel, a Hopper wgmma/TMA
// kernel, or a place for per-program code: everything program-specific is in V.
//
// The semantics (what is summed, masked, rescaled) are those of the CPU backend
// (codegen/scalar/ScalarKernels.cpp emitForward) and compiler/PlanInterpreter.cpp, up to fp32 vs fp64
// arithmetic and summation order.
//
// Interfaces (all static constexpr / static __device__ members):
//   Cfg: kBlockM (= 16 * kWarps), kBlockN (multiple of 16: 32, 64, 128), kWarps (4, 8),
//        kStages (>= 1), Elem (__half or __nv_bfloat16), kD, kDv (multiples of 16, <= 256);
//        optional: kQInRegisters (bool; default kD <= 64).
//        lq and lk must be below 2^31 - 256 (indices inside a head are 32-bit).
//   V:   kPasses (>= 1), kStats (>= 0), kind(int s) -> Stat, pass(int s) -> int (1-based),
//        power(int s) -> float (OnlinePower statistics), kOutForm (OutForm), kOutStat (the
//        Normaliser's index, -1 for Direct), kOutScale, kOutPower (float), kMask (Mask),
//        kWindowLow (long long), kQueryNorm, kKeyNorm (bool), and the hook
//          template <int P> static __device__ __forceinline__
//          bool operands(const Row& row, float s, long long j, float rk, float* x);
//        which writes x[s] for every statistic s with pass(s) == P and, when P == kPasses,
//        x[kStats] = the output operand y; it returns false where the program's expression
//        mask hides the element (kMask == Expr), else true.
#pragma once

#include "tc_common.cuh"
#include "tc_shape.cuh"

namespace attn_tc {

/// What a row statistic accumulates (2 float slots each; see the per-kind notes in accumulate()).
enum class Stat { Sum, Mean, Max, Min, Count, OnlineExp, OnlinePower, Normaliser };
/// How the output accumulates and finishes.
enum class OutForm { Direct, DeferredDivision, OnlineExp, OnlinePower };
/// Which keys a query row sees (Expr: all of [0, lk), then the hook's verdict).
enum class Mask { Full, Causal, Window, Expr };

/// The kernel's one argument. Layouts are contiguous, row-major, heads outermost. Grouped-
/// query attention: query head h reads key/value head h / group (kvHeads = heads / group).
struct FwdParams {
  const void* q;  ///< Elem [heads][lq][kD]
  const void* k;  ///< Elem [kvHeads][lk][kD]
  const void* v;  ///< Elem [kvHeads][lk][kDv]
  void* o;        ///< Elem [heads][lq][kDv]
  float* stats;   ///< [heads][lq][2 * V::kStats], every slot written (may be null if kStats == 0)
  const float* rq;  ///< [heads][lq] 1/|q_i| (read only if V::kQueryNorm), may be null
  const float* rk;  ///< [kvHeads][lk] 1/|k_j| (read only if V::kKeyNorm), may be null
  long long lq, lk;  ///< query and key counts (lq <= lk)
  int heads;         ///< query heads; grid: dim3(ceil(lq / kBlockM), heads)
  int group;         ///< query heads per key/value head (1 without grouped-query attention)
};

/// What the hooks know of a query row.
struct Row {
  const float* stats;  ///< this row's 2 * kStats slots (in registers); those of earlier passes are final
  long long i;         ///< absolute query position: lk - lq + r
  float n;             ///< keys in the row's mask range: hi - lo
  long long lk;        ///< key count
  float rq;            ///< 1/|q_i| if V::kQueryNorm, else 0
};

/// A tile of kRows x kCols 16-bit elements in shared memory, stored by rows of 16-byte chunks
/// (8 elements) and laid out so that the 8 row addresses of an ldmatrix 8x8 matrix (8
/// consecutive rows starting at a multiple of 8, same logical chunk) hit 8 different groups of
/// 4 banks, i.e. no bank conflicts:
///  - kCols % 64 == 0: rows of exactly kCols elements, chunk c of row r stored at chunk
///    c ^ (r & 7) (an XOR swizzle inside each aligned group of 8 chunks; rows are 128-byte
///    multiples, so the 8 rows' chunks land on 8 distinct bank groups);
///  - otherwise: rows padded to kCols + 8 elements (the pitch is an odd number of chunks).
template <int kRows, int kCols>
struct SmemTile {
  static constexpr bool kSwizzled = kCols % 64 == 0;
  static constexpr int kStride = kSwizzled ? kCols : kCols + 8;  // elements per row
  static constexpr int kBytes = kRows * kStride * 2;

  /// Byte offset of element (row, col).
  static __device__ __forceinline__ int offset(int row, int col) {
    const int chunk = kSwizzled ? (col >> 3) ^ (row & 7) : col >> 3;
    return (row * kStride + (chunk << 3) + (col & 7)) * 2;
  }

  /// For ldmatrix addressing: a lane addresses row rowBase + rowLane (rowBase a multiple of 8)
  /// at chunk chunkBase + laneChunk (chunkBase even, laneChunk 0 or 1). Both layouts then store
  /// it at chunk chunkBase ^ lanePhase(rowLane, laneChunk), so the lane-dependent part is
  /// computed once and every (rowBase, chunkBase) step costs an XOR at most.
  static __device__ __forceinline__ int lanePhase(int rowLane, int laneChunk) {
    return kSwizzled ? laneChunk ^ (rowLane & 7) : laneChunk;
  }
  /// Byte offset of physical chunk `chunk` of row `row` (see lanePhase()).
  static __device__ __forceinline__ int chunkOffset(int row, int chunk) { return (row * kStride + (chunk << 3)) * 2; }
};

/// Dynamic shared memory of the forward kernel: Q (and, at the end, the O staging tile) as
/// kBlockM x max(kD, kDv), then kStages K tiles kBlockN x kD, then kStages V tiles
/// kBlockN x kDv, each a SmemTile (swizzled when its width is a multiple of 64, else padded).
template <class Cfg>
struct SmemLayout {
  using QTile = SmemTile<Cfg::kBlockM, (Cfg::kD > Cfg::kDv ? Cfg::kD : Cfg::kDv)>;
  using KTile = SmemTile<Cfg::kBlockN, Cfg::kD>;
  using VTile = SmemTile<Cfg::kBlockN, Cfg::kDv>;
  static constexpr int kKOffset = QTile::kBytes;
  static constexpr int kVOffset = kKOffset + Cfg::kStages * KTile::kBytes;
  static constexpr int kBytes = kVOffset + Cfg::kStages * VTile::kBytes;
};

/// Bytes of dynamic shared memory to launch the forward kernel of configuration Cfg with:
/// 2 * (kBlockM * w(max(kD, kDv)) + kStages * kBlockN * (w(kD) + w(kDv))), where
/// w(c) = c if c % 64 == 0 else c + 8. (D = Dv = 64: 40 KB at the default config; 128: 80 KB.)
template <class Cfg>
__host__ __device__ constexpr int forwardSharedBytes() {
  return SmemLayout<Cfg>::kBytes;
}

namespace detail {

/// Whether Q's mma A fragments stay in registers for the whole kernel (else they are re-read
/// from shared memory by ldmatrix at every key tile, as FlashAttention-2 does by default):
/// Cfg::kQInRegisters when Cfg declares it, else kD <= 64. Registers cost kD / 4 per thread
/// plus scheduling slack; at kD = 128 that pushes the simple variants to 230-255 registers,
/// leaving no room for heavier hooks.
template <class C, class = void>
struct QInRegisters {
  static constexpr bool value = C::kD <= 64;
};
template <class C>
struct QInRegisters<C, decltype(void(C::kQInRegisters))> {
  static constexpr bool value = C::kQInRegisters;
};

__device__ __forceinline__ int minInt(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int maxInt(int a, int b) { return a > b ? a : b; }

/// The forward kernel's state for one thread: the CTA's geometry, the thread's two query rows
/// (g and g + 8 of its warp's 16, as in the PTX m16n8 C layout), their statistics, the Q
/// fragments and the O accumulator. Everything is inlined into forward(), so the arrays are
/// registers (all indices are compile-time after unrolling).
/// Query and key indices are kept in 32 bits (lq, lk < 2^31, which the host checks); offsets
/// into the tensors are 64-bit.
template <class V, class Cfg>
class ForwardCta : public CtaShape<Cfg> {
 public:
  using Elem = typename Cfg::Elem;
  using L = SmemLayout<Cfg>;
  using QTile = typename L::QTile;
  using KTile = typename L::KTile;
  using VTile = typename L::VTile;

  using Shape = CtaShape<Cfg>;  // tc_shape.cuh: the constants and their checks
  using Shape::kWarps, Shape::kBlockM, Shape::kBlockN, Shape::kStages, Shape::kD, Shape::kDv, Shape::kThreads;
  static constexpr int kSTiles = kBlockN / 8;     // n8 accumulator tiles of a warp's S (16 x kBlockN)
  static constexpr int kOTiles = kDv / 8;         // n8 accumulator tiles of a warp's O (16 x kDv)
  static constexpr int kDSteps = kD / 16;         // k16 steps of S = Q K^T
  static constexpr int kKeySteps = kBlockN / 16;  // k16 steps of O += W V
  static constexpr bool kQInRegisters = QInRegisters<Cfg>::value;
  static constexpr int kSlots = 2 * V::kStats;
  static constexpr int kSlotsAlloc = kSlots > 0 ? kSlots : 1;
  static constexpr int kOut = V::kOutStat;

  static_assert(V::kPasses >= 1 && V::kStats >= 0, "bad pass or statistic count");
  static_assert((V::kOutForm == OutForm::Direct) == (kOut < 0), "kOutStat must be -1 exactly for Direct output");
  static_assert(kOut < 0 || (kOut < V::kStats && V::kind(kOut) == Stat::Normaliser && V::pass(kOut) == V::kPasses),
                "kOutStat must name a Normaliser statistic of the last pass");

  __device__ __forceinline__ explicit ForwardCta(const FwdParams& p, unsigned char* smem) : p_(p), smem_(smem) {
    const int tid = static_cast<int>(threadIdx.x);
    lane_ = tid & 31;
    warp_ = tid >> 5;
    g_ = laneGroup(lane_);
    t_ = laneInGroup(lane_);
    head_ = static_cast<int>(blockIdx.y);
    kvHead_ = head_ / p.group;
    m0_ = static_cast<int>(blockIdx.x) * kBlockM;
    sQ_ = sharedAddress(smem);
    sK_ = sQ_ + L::kKOffset;
    sV_ = sQ_ + L::kVOffset;

    const int offset = lk() - lq();  // i = offset + r
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      keyRange(offset + row(rr), lo_[rr], hi_[rr]);
      rq_[rr] = 0.0f;
      if constexpr (V::kQueryNorm)
        if (row(rr) < lq()) rq_[rr] = p.rq[static_cast<long long>(head_) * p.lq + row(rr)];
    }

    // Keys some valid row of the CTA sees: [ctaLo, ctaHi) (lo and hi grow with i).
    int ctaLo, ctaHi, unused;
    const int lastRow = minInt(m0_ + kBlockM, lq()) - 1;
    keyRange(offset + m0_, ctaLo, unused);
    keyRange(offset + lastRow, unused, ctaHi);
    tileBegin_ = ctaLo / kBlockN;
    tileEnd_ = ctaHi > ctaLo ? (ctaHi + kBlockN - 1) / kBlockN : tileBegin_;

    // Keys some valid row of this warp sees: [warpLo_, warpHi_), empty for a warp past lq.
    const int warpFirst = m0_ + warp_ * 16;
    const int warpLast = minInt(warpFirst + 15, lq() - 1);
    warpLo_ = warpHi_ = 0;
    if (warpFirst <= warpLast) {
      keyRange(offset + warpFirst, warpLo_, unused);
      keyRange(offset + warpLast, unused, warpHi_);
    }
  }

  /// The whole forward computation of this CTA.
  __device__ __forceinline__ void run() {
    initStatistics();
    const Elem* q = static_cast<const Elem*>(p_.q) + static_cast<long long>(head_) * p_.lq * kD;
    copyTile<QTile, kBlockM, kD>(sQ_, q, m0_, lq());
    cpAsyncCommit();
    pass<1>();
    storeOutput();
  }

 private:
  const FwdParams& p_;
  unsigned char* smem_;
  int lane_, warp_, g_, t_;
  int head_, m0_;                   // blockIdx.y; the CTA's first query row
  int kvHead_;                      // the key/value head it reads: head_ / group
  unsigned sQ_, sK_, sV_;           // .shared addresses of Q, K stage 0, V stage 0
  int tileBegin_, tileEnd_;         // key tiles the CTA visits
  int warpLo_, warpHi_;             // keys this warp's valid rows can see
  int lo_[2], hi_[2];               // key ranges [lo, hi) of the thread's two rows
  float rq_[2];                     // their 1/|q_i| (0 unless V::kQueryNorm)
  float st_[2][kSlotsAlloc];                  // statistics slots of the two rows
  unsigned qf_[kQInRegisters ? kDSteps : 1][4];  // Q A fragments (PTX A layout), one per k16 step
  float o_[kOTiles][4];                       // O accumulator (PTX C layout), unnormalised

  __device__ __forceinline__ int lq() const { return static_cast<int>(p_.lq); }
  /// Index in lq of the thread's row rr (0: row g of the warp's 16, 1: row g + 8; PTX m16n8 C
  /// layout: accumulator elements 0, 1 are row g, elements 2, 3 row g + 8).
  __device__ __forceinline__ int row(int rr) const { return m0_ + warp_ * 16 + accRow(g_, 2 * rr); }
  __device__ __forceinline__ int lk() const { return static_cast<int>(p_.lk); }

  /// Key range [lo, hi) of absolute query position i, from the mask (Expr: all keys).
  __device__ __forceinline__ void keyRange(int i, int& lo, int& hi) const {
    lo = 0;
    hi = lk();
    if constexpr (V::kMask == Mask::Causal || V::kMask == Mask::Window) hi = minInt(i + 1, lk());
    if constexpr (V::kMask == Mask::Window) {
      const long long low = static_cast<long long>(i) - static_cast<long long>(V::kWindowLow);
      lo = low > 0 ? static_cast<int>(low) : 0;
    }
  }

  /// Initial slots: Max slot0 -inf, Min slot0 +inf, OnlineExp slot1 -inf, the Normaliser's
  /// slot1 -inf under OnlineExp output; everything else 0.
  __device__ __forceinline__ void initStatistics() {
#pragma unroll
    for (int rr = 0; rr < 2; ++rr)
#pragma unroll
      for (int s = 0; s < V::kStats; ++s) {
        const Stat kind = V::kind(s);
        st_[rr][2 * s] = kind == Stat::Max ? -posInf() : kind == Stat::Min ? posInf() : 0.0f;
        const bool expForm = kind == Stat::OnlineExp || (kind == Stat::Normaliser && V::kOutForm == OutForm::OnlineExp);
        st_[rr][2 * s + 1] = expForm ? -posInf() : 0.0f;
      }
  }

  /// cp.async of rows [row0, row0 + kRows) of the row-major matrix src [.][kCols] into the
  /// shared tile (layout Tile) at dst; rows >= rowEnd are zero-filled, so padding keys and
  /// queries hold 0 (never NaN) in the mma. All threads of the CTA take part.
  template <class Tile, int kRows, int kCols>
  __device__ __forceinline__ void copyTile(unsigned dst, const Elem* src, int row0, int rowEnd) const {
    constexpr int kChunksPerRow = kCols / 8;  // 16-byte chunks
    constexpr int kChunks = kRows * kChunksPerRow;
    constexpr int kIters = (kChunks + kThreads - 1) / kThreads;
    const int tid = static_cast<int>(threadIdx.x);
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      const int c = tid + it * kThreads;
      if (kChunks % kThreads == 0 || c < kChunks) {
        const int row = c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
        const int gRow = row0 + row;
        const bool valid = gRow < rowEnd;
        cpAsync16(dst + Tile::offset(row, col), valid ? src + static_cast<long long>(gRow) * kCols + col : src, valid);
      }
    }
  }

  /// Issues the loads of key tile `tile` into pipeline stage `stage`: K, and V when the pass
  /// accumulates the output.
  template <bool kWithV>
  __device__ __forceinline__ void loadKeyTile(int tile, int stage) const {
    const int n0 = tile * kBlockN;
    const Elem* k = static_cast<const Elem*>(p_.k) + static_cast<long long>(kvHead_) * p_.lk * kD;
    copyTile<KTile, kBlockN, kD>(sK_ + stage * KTile::kBytes, k, n0, lk());
    if constexpr (kWithV) {
      const Elem* v = static_cast<const Elem*>(p_.v) + static_cast<long long>(kvHead_) * p_.lk * kDv;
      copyTile<VTile, kBlockN, kDv>(sV_ + stage * VTile::kBytes, v, n0, lk());
    }
  }

  /// ldmatrix.x4 of the Q A fragment for dims 16kk..16kk+15 of the warp's 16 rows (PTX A
  /// layout: lanes 0-15 address rows 0-15 at dim 16kk, lanes 16-31 rows 0-15 at 16kk + 8).
  __device__ __forceinline__ void loadQFragment(unsigned (&a)[4], int kk) const {
    const int rowLane = ldmatrixARow(lane_);
    const int phase = QTile::lanePhase(rowLane, ldmatrixACol(lane_) >> 3);
    ldmatrixX4(a, sQ_ + QTile::chunkOffset(warp_ * 16 + rowLane, (2 * kk) ^ phase));
  }

  /// Q -> A fragments in registers, once (after Q's cp.async group is complete and visible).
  __device__ __forceinline__ void loadQFragments() {
#pragma unroll
    for (int kk = 0; kk < kDSteps; ++kk) loadQFragment(qf_[kk], kk);
  }

  /// Pass P over the CTA's key tiles; then the next pass.
  template <int P>
  __device__ __forceinline__ void pass() {
    constexpr bool kLast = P == V::kPasses;
    if constexpr (P > 1) __syncthreads();  // every warp is done with the previous pass's stages
    const int nTiles = tileEnd_ - tileBegin_;
    // Prologue: stages 0 .. kStages-2 in flight, one cp.async group each (empty ones included).
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < nTiles) loadKeyTile<kLast>(tileBegin_ + s, s);
      cpAsyncCommit();
    }
    if constexpr (P == 1) {
      cpAsyncWait<kStages - 1>();  // Q's group (the oldest) is complete
      __syncthreads();
      if constexpr (kQInRegisters) loadQFragments();
    }
    if constexpr (kLast) {  // O lives only in the last pass
#pragma unroll
      for (int dn = 0; dn < kOTiles; ++dn)
#pragma unroll
        for (int e = 0; e < 4; ++e) o_[dn][e] = 0.0f;
    }
    int readStage = 0, writeStage = kStages - 1;
    for (int it = 0; it < nTiles; ++it) {
      if constexpr (kStages > 1) {
        cpAsyncWait<kStages - 2>();  // tile it's group is complete (kStages - 2 newer may be pending)
        __syncthreads();             // ... for all threads; and stage writeStage is no longer read
        if (it + kStages - 1 < nTiles) loadKeyTile<kLast>(tileBegin_ + it + kStages - 1, writeStage);
        cpAsyncCommit();
      } else {
        __syncthreads();  // the single stage is no longer read
        loadKeyTile<kLast>(tileBegin_ + it, 0);
        cpAsyncCommit();
        cpAsyncWait<0>();
        __syncthreads();
      }
      keyTile<P>(tileBegin_ + it, readStage);
      readStage = readStage + 1 == kStages ? 0 : readStage + 1;
      writeStage = writeStage + 1 == kStages ? 0 : writeStage + 1;
    }
    mergeStatistics<P, 0>();
    storeStatistics<P>();  // final now; slots no later hook reads need no register after this
    if constexpr (!kLast) pass<P + 1>();
  }

  /// One key tile of pass P in this warp: S, hooks, statistics, and (last pass) the output.
  template <int P>
  __device__ __forceinline__ void keyTile(int tile, int stage) {
    const int n0 = tile * kBlockN;
    if (n0 >= warpHi_ || n0 + kBlockN <= warpLo_) return;  // no row of the warp sees it (warp-uniform)
    float s[kSTiles][4];
#pragma unroll
    for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[nt][e] = 0.0f;
    scores(s, stage);
    elements<P>(s, n0);
    if constexpr (P == V::kPasses) {
      outputWeights(s);
      accumulateOutput(s, stage);
    }
  }

  /// s (16 x kBlockN, PTX C layout per n8 tile) = Q K^T for the warp's rows and the tile in
  /// K stage `stage`.
  __device__ __forceinline__ void scores(float (&s)[kSTiles][4], int stage) const {
    // ldmatrix.x4 (no .trans) on K rows (N-major B): for keys 16np.. and dims 16kk.., registers
    // 0,1 = B of keys 0-7, registers 2,3 = B of keys 8-15 (lane: key row ldmatrixBRow, dim
    // chunk ldmatrixBCol / 8).
    const int rowLane = ldmatrixBRow(lane_);
    const int phase = KTile::lanePhase(rowLane, ldmatrixBCol(lane_) >> 3);
    const unsigned kBase = sK_ + stage * KTile::kBytes;
#pragma unroll
    for (int kk = 0; kk < kDSteps; ++kk) {
      unsigned a[4];
      if constexpr (kQInRegisters) {
#pragma unroll
        for (int x = 0; x < 4; ++x) a[x] = qf_[kk][x];
      } else {
        loadQFragment(a, kk);
      }
#pragma unroll
      for (int np = 0; np < kSTiles / 2; ++np) {
        unsigned b[4];
        ldmatrixX4(b, kBase + KTile::chunkOffset(np * 16 + rowLane, (2 * kk) ^ phase));
        mma16816<Elem>(s[2 * np], a, b[0], b[1]);
        mma16816<Elem>(s[2 * np + 1], a, b[2], b[3]);
      }
    }
  }

  /// Per S element of the thread: visibility, the hook, pass P's statistics; in the last pass
  /// s is overwritten with the output operand y (-inf under OnlineExp output, else 0, where
  /// the element is invisible).
  template <int P>
  __device__ __forceinline__ void elements(float (&s)[kSTiles][4], int n0) {
    constexpr bool kLast = P == V::kPasses;
    int loRel[2], hiRel[2];  // the row's key range relative to the tile, clamped to [0, kBlockN]
    Row rows[2];
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      loRel[rr] = minInt(maxInt(lo_[rr] - n0, 0), kBlockN);
      hiRel[rr] = minInt(maxInt(hi_[rr] - n0, 0), kBlockN);
      const float n = static_cast<float>(maxInt(hi_[rr] - lo_[rr], 0));
      rows[rr] = Row{st_[rr], p_.lk - p_.lq + row(rr), n, p_.lk, rq_[rr]};
    }
#pragma unroll
    for (int nt = 0; nt < kSTiles; ++nt) {
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        // PTX m16n8 C layout: elements c (row g) and 2 + c (row g + 8) are column 2t + c.
        const int jl = nt * 8 + accCol(t_, c);
        const int j = n0 + jl;
        float rk = 0.0f;
        if constexpr (V::kKeyNorm)
          if (j < lk()) rk = p_.rk[static_cast<long long>(kvHead_) * p_.lk + j];
#pragma unroll
        for (int rr = 0; rr < 2; ++rr) {
          const int e = 2 * rr + c;
          float x[V::kStats + 1];
#pragma unroll
          for (int u = 0; u <= V::kStats; ++u) x[u] = 0.0f;
          const bool keep = V::template operands<P>(rows[rr], s[nt][e], j, rk, x);
          const bool vis = keep && jl >= loRel[rr] && jl < hiRel[rr];
          accumulate<P, 0>(rr, vis, x, j);
          if constexpr (kLast)
            s[nt][e] = vis ? x[V::kStats] : (V::kOutForm == OutForm::OnlineExp ? -posInf() : 0.0f);
        }
      }
    }
  }

  /// Adds one element's operands x to the thread's partial statistics S, S+1, ... of pass P
  /// of row rr (only where vis):
  ///   Sum: slot0 += x. Mean: slot0 += x, slot1 += 1. Count: slot0 += 1.
  ///   Max / Min: slot0 = max / min (slot0, x) (a NaN wins), slot1 = 1 + the first key j
  ///   attaining it (backward sends the reduction's adjoint there), 0 before any key. OnlineExp: (slot0 = sum exp(x - m), slot1 = m).
  ///   OnlinePower: (slot0 = sum |(x/m)^p|, slot1 = m = max |x|). Normaliser: with the output.
  template <int P, int S>
  __device__ __forceinline__ void accumulate(int rr, bool vis, const float* x, int j) {
    if constexpr (S < V::kStats) {
      if constexpr (V::pass(S) == P) {
        constexpr Stat kKind = V::kind(S);
        float& a0 = st_[rr][2 * S];
        float& a1 = st_[rr][2 * S + 1];
        const float xs = x[S];
        if constexpr (kKind == Stat::Sum) a0 += vis ? xs : 0.0f;
        if constexpr (kKind == Stat::Mean) {
          a0 += vis ? xs : 0.0f;
          a1 += vis ? 1.0f : 0.0f;
        }
        if constexpr (kKind == Stat::Count) a0 += vis ? 1.0f : 0.0f;
        // A NaN wins and stays. Slot 1: 1 + the first visible key attaining the extreme
        // (backward sends the reduction's adjoint there), 0 while the row has seen no key (a
        // row of -inf values has max -inf, not 0).
        if constexpr (kKind == Stat::Max || kKind == Stat::Min) {
          const bool better = vis && ((kKind == Stat::Max ? a0 < xs : xs < a0) || xs != xs || a1 == 0.0f);
          a0 = better ? xs : a0;
          a1 = better ? static_cast<float>(j + 1) : a1;
        }
        if constexpr (kKind == Stat::OnlineExp) onlineExpAdd(a0, a1, xs, vis);
        if constexpr (kKind == Stat::OnlinePower) onlinePowerAdd(a0, a1, xs, V::power(S), vis);
      }
      accumulate<P, S + 1>(rr, vis, x, j);
    }
  }

  /// At the end of pass P: statistics S, S+1, ... of the pass merged over the 4 lanes that
  /// share the rows, so every lane holds the row's final values (readable by later passes).
  template <int P, int S>
  __device__ __forceinline__ void mergeStatistics() {
    if constexpr (S < V::kStats) {
      if constexpr (V::pass(S) == P) {
        constexpr Stat kKind = V::kind(S);
#pragma unroll
        for (int rr = 0; rr < 2; ++rr) {
          float& a0 = st_[rr][2 * S];
          float& a1 = st_[rr][2 * S + 1];
          if constexpr (kKind == Stat::Sum || kKind == Stat::Count) a0 = quadSum(a0);
          if constexpr (kKind == Stat::Mean) {
            a0 = quadSum(a0);
            a1 = quadSum(a1);
          }
          if constexpr (kKind == Stat::Max) quadArgExtreme<true>(a0, a1);
          if constexpr (kKind == Stat::Min) quadArgExtreme<false>(a0, a1);
          if constexpr (kKind == Stat::OnlineExp) quadMergeExp(a0, a1);
          if constexpr (kKind == Stat::OnlinePower) quadMergePower(a0, a1, V::power(S));
          // The output's running max (slot1) is already the same in the 4 lanes.
          if constexpr (kKind == Stat::Normaliser) a0 = quadSum(a0);
        }
      }
      mergeStatistics<P, S + 1>();
    }
  }

  /// Last pass: turns the output operands y in s into the weights multiplied with V, updating
  /// the Normaliser (partial per lane, merged at the end of the pass) and, for the online
  /// forms, rescaling O to the new running max (which the 4 lanes of a row share).
  ///   Direct: w = y.  DeferredDivision: w = y, sum += |y|.
  ///   OnlineExp: m' = max(m, max y), O *= exp(m - m'), w = exp(y - m'), sum += w.
  ///   OnlinePower: m' = max(m, max |y|), O *= (m / m')^p, w = (y / m')^p, sum += |w|.
  __device__ __forceinline__ void outputWeights(float (&s)[kSTiles][4]) {
    if constexpr (V::kOutForm != OutForm::Direct) {
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        float& sum = st_[rr][2 * kOut];
        float& m = st_[rr][2 * kOut + 1];
        if constexpr (V::kOutForm == OutForm::DeferredDivision) {
          float add = 0.0f;
#pragma unroll
          for (int nt = 0; nt < kSTiles; ++nt) add += fabsf(s[nt][2 * rr]) + fabsf(s[nt][2 * rr + 1]);
          sum += add;
        }
        if constexpr (V::kOutForm == OutForm::OnlineExp) {
          float tileMax = -posInf();
#pragma unroll
          for (int nt = 0; nt < kSTiles; ++nt) tileMax = maxNaN(tileMax, maxNaN(s[nt][2 * rr], s[nt][2 * rr + 1]));
          const float mNew = maxNaN(m, quadMax(tileMax));  // NaN: the row is NaN, not dead
          const float factor = m == -posInf() ? 0.0f : fastExp(m - mNew);
          const bool dead = mNew == -posInf();
          float add = 0.0f;
#pragma unroll
          for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
            for (int c = 0; c < 2; ++c) {
              float& y = s[nt][2 * rr + c];
              y = dead ? 0.0f : fastExp(y - mNew);
              add += y;
            }
          sum = sum * factor + add;
          m = mNew;
          scaleOutputRow(rr, factor);
        }
        if constexpr (V::kOutForm == OutForm::OnlinePower) {
          constexpr float kP = V::kOutPower;
          float tileMax = 0.0f;
#pragma unroll
          for (int nt = 0; nt < kSTiles; ++nt)
            tileMax = maxNaN(tileMax, maxNaN(fabsf(s[nt][2 * rr]), fabsf(s[nt][2 * rr + 1])));
          const float mNew = maxNaN(m, quadMax(tileMax));
          const float factor = m <= 0.0f ? 0.0f : powConst(m / mNew, kP);
          const bool live = !(mNew <= 0.0f);  // a NaN maximum keeps the row live, and NaN
          const float inverse = live ? 1.0f / mNew : 0.0f;
          float add = 0.0f;
#pragma unroll
          for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
            for (int c = 0; c < 2; ++c) {
              float& y = s[nt][2 * rr + c];
              y = live ? powConst(y * inverse, kP) : 0.0f;
              add += fabsf(y);
            }
          sum = sum * factor + add;
          m = mNew;
          scaleOutputRow(rr, factor);
        }
      }
    }
  }

  /// O row rr (elements 2rr, 2rr+1 of every n8 tile, PTX C layout) *= factor.
  __device__ __forceinline__ void scaleOutputRow(int rr, float factor) {
#pragma unroll
    for (int dn = 0; dn < kOTiles; ++dn) {
      o_[dn][2 * rr] *= factor;
      o_[dn][2 * rr + 1] *= factor;
    }
  }

  /// O += W V, W = the weights in s converted to Elem, V the tile in V stage `stage`.
  __device__ __forceinline__ void accumulateOutput(const float (&s)[kSTiles][4], int stage) {
    // ldmatrix.x4.trans on V rows (K-major B): for keys 16kk.. and dims 16dp.., registers 0,1 =
    // B of dims 0-7, registers 2,3 = B of dims 8-15 (lane: key row ldmatrixBTransRow, dim chunk
    // ldmatrixBTransCol / 8).
    const int rowLane = ldmatrixBTransRow(lane_);
    const int phase = VTile::lanePhase(rowLane, ldmatrixBTransCol(lane_) >> 3);
    const unsigned vBase = sV_ + stage * VTile::kBytes;
#pragma unroll
    for (int kk = 0; kk < kKeySteps; ++kk) {
      // PTX A layout from two C tiles (keys 16kk..16kk+7 and 16kk+8..16kk+15): reg0 = row g,
      // k 2t.. = tile 2kk c0,c1; reg1 = row g+8 = tile 2kk c2,c3; reg2, reg3 = tile 2kk+1 likewise.
      unsigned a[4];
      a[0] = packPair<Elem>(s[2 * kk][0], s[2 * kk][1]);
      a[1] = packPair<Elem>(s[2 * kk][2], s[2 * kk][3]);
      a[2] = packPair<Elem>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = packPair<Elem>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int dp = 0; dp < kDv / 16; ++dp) {
        unsigned b[4];
        ldmatrixX4Trans(b, vBase + VTile::chunkOffset(kk * 16 + rowLane, (2 * dp) ^ phase));
        mma16816<Elem>(o_[2 * dp], a, b[0], b[1]);
        mma16816<Elem>(o_[2 * dp + 1], a, b[2], b[3]);
      }
    }
  }

  /// Both slots of pass P's statistics of the thread's valid rows to p.stats (by lane t == 0
  /// of each group; after the merges the 4 lanes agree). Over all passes every slot is written.
  template <int P>
  __device__ __forceinline__ void storeStatistics() const {
    if constexpr (V::kStats > 0) {
      if (t_ != 0) return;
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        if (row(rr) >= lq()) continue;
        float2* dst = reinterpret_cast<float2*>(p_.stats + (static_cast<long long>(head_) * p_.lq + row(rr)) * kSlots);
#pragma unroll
        for (int s = 0; s < V::kStats; ++s)
          if (V::pass(s) == P) dst[s] = make_float2(st_[rr][2 * s], st_[rr][2 * s + 1]);
      }
    }
  }

  /// O * finish factor -> Elem -> p.o: Direct: kOutScale; the others: kOutScale / Normaliser
  /// slot0 (0 when that is 0). Staged through this warp's own 16 rows of the Q buffer (only
  /// this warp ever read them) for 16-byte coalesced global stores.
  __device__ __forceinline__ void storeOutput() const {
    float factor[2];
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      if constexpr (V::kOutForm == OutForm::Direct) {
        factor[rr] = V::kOutScale;
      } else {
        const float sum = st_[rr][2 * kOut];
        factor[rr] = sum == 0.0f ? 0.0f : V::kOutScale / sum;
      }
    }
    const int row0 = warp_ * 16;  // the warp's rows of the Q tile (a multiple of 8)
    __syncwarp();                 // the warp's ldmatrix reads of its Q rows are done
#pragma unroll
    for (int dn = 0; dn < kOTiles; ++dn)
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        // PTX m16n8 C layout: elements 2rr, 2rr+1 are row g + 8rr, columns 2t, 2t+1.
        const int row = accRow(g_, 2 * rr), col = dn * 8 + accCol(t_, 0);
        *reinterpret_cast<unsigned*>(smem_ + QTile::offset(row0 + row, col)) =
            packPair<Elem>(o_[dn][2 * rr] * factor[rr], o_[dn][2 * rr + 1] * factor[rr]);
      }
    __syncwarp();
    constexpr int kChunksPerRow = kDv / 8;  // 16-byte chunks
    constexpr int kChunks = 16 * kChunksPerRow;
    Elem* o = static_cast<Elem*>(p_.o) + static_cast<long long>(head_) * p_.lq * kDv;
#pragma unroll
    for (int it = 0; it < (kChunks + 31) / 32; ++it) {
      const int c = lane_ + it * 32;
      if (kChunks % 32 == 0 || c < kChunks) {
        const int row = c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
        const int gRow = m0_ + warp_ * 16 + row;
        if (gRow < lq())
          *reinterpret_cast<int4*>(o + static_cast<long long>(gRow) * kDv + col) =
              *reinterpret_cast<const int4*>(smem_ + QTile::offset(row0 + row, col));
      }
    }
  }
};

}  // namespace detail

/// The forward kernel body of variant V under tile configuration Cfg (see the file comment).
template <class V, class Cfg>
__device__ __forceinline__ void forward(const FwdParams& p) {
  extern __shared__ __align__(16) unsigned char attnTcSmem[];
  detail::ForwardCta<V, Cfg> cta(p, attnTcSmem);
  cta.run();
}

}  // namespace attn_tc
