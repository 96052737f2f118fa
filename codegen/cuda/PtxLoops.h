// PtxLoops: how much work a kernel's key-tile loop does per score element, read from PTX.
//
// The measure issue 16 sets its targets in: PTX instructions executed per iteration of a
// tensor-core kernel's tile loop, divided by the score elements one thread handles per
// iteration (blockM x blockN / threads). It is a static count of the generated PTX, not a
// profile: it needs no GPU, it is exact for the code as written, and it moves only when the
// code does, so a change to the skeleton or the hooks shows up as a number.
//
// How it reads the PTX: a loop is a backward branch (`bra $L__X` to a label above it); a
// kernel's tile loops are the outermost loops that issue mma.sync. Instructions are the
// statement lines of the body (labels, directives and declarations excluded). A tile loop
// that holds inner loops (the gradient kernel's chunks of queries) is counted with each inner
// body executed t times, t solved from the tile's known amount of matrix work:
// (mma outside the inner loops) + t x (mma inside them) = the mma.sync that one warp must
// issue per tile (given by the caller from the kernel's matrix products); t is reported, and
// when no whole t >= 1 fits, the loop's dynamic count is unknown (-1).
#pragma once

#include <string>
#include <vector>

namespace attn::cuda {

/// Counts of one kind of instruction, as PTX spells the opcode's first part.
struct PtxCounts {
  int instructions = 0;  ///< statements (every opcode)
  int mma = 0;           ///< mma.sync
  int ex2 = 0, lg2 = 0, rcp = 0, div = 0, sqrt = 0;  ///< special-function-unit work and divisions
  int atom = 0;          ///< atom / red (global atomics)
  PtxCounts& operator+=(const PtxCounts& o);
  PtxCounts scaled(int times) const;
};

struct PtxTileLoop {
  int firstLine = 0, lastLine = 0;  ///< 1-based lines of the loop's label and its back branch, in the kernel's text
  PtxCounts outer;                  ///< the body outside inner loops
  PtxCounts inner;                  ///< the bodies of the inner loops (each once)
  int innerLoops = 0;
};

struct PtxKernel {
  std::string name;  ///< the .entry's name
  std::vector<PtxTileLoop> tileLoops;
  PtxCounts whole;   ///< every statement of the kernel
};

/// Every .entry of `ptx` with its tile loops, in the text's order.
std::vector<PtxKernel> readPtxKernels(const std::string& ptx);

/// The counts one tile iteration executes: outer + t x inner, with t from `mmaPerTile`
/// (see the file comment); `trips` receives t (1 without inner loops). Returns false (and
/// leaves `out` empty) when no whole t >= 1 fits.
bool tileIteration(const PtxTileLoop& loop, int mmaPerTile, PtxCounts& out, int& trips);

}  // namespace attn::cuda
