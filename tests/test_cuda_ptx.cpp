// Reading tile loops out of PTX (codegen/cuda/PtxLoops.h), the measure of issue 16's
// instruction targets: on hand-written PTX (every case the reader must tell apart), and on
// the generated kernels, where the mma.sync per score element is known from the tile's
// matrix products and so checks that the reader found the right loop.
#include <doctest/doctest.h>

#include <string>

#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/Nvrtc.h"
#include "codegen/cuda/PtxLoops.h"
#include "compiler/Diagnostics.h"
#include "compiler/Differentiate.h"
#include "compiler/Pipeline.h"

using namespace attn;

namespace {

// Two kernels: `outer` has a setup loop without mma (not a tile loop), then a tile loop whose
// body holds an inner loop; `flat` has one tile loop and guarded / braced statements.
const char* kPtx = R"(
.version 8.0
.target sm_90
.visible .entry outer(
	.param .u64 p
)
{
	.reg .f32 	%f<8>;
	mov.f32 	%f1, 0f00000000;
$L__BB0_1:
	add.f32 	%f1, %f1, %f1;
	@%p1 bra 	$L__BB0_1;
$L__BB0_2:
	mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f1, %f2, %f3, %f4}, {%r1, %r2, %r3, %r4}, {%r5, %r6}, {%f1, %f2, %f3, %f4};
	ex2.approx.f32 	%f5, %f1;
$L__BB0_3:
	mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f1, %f2, %f3, %f4}, {%r1, %r2, %r3, %r4}, {%r5, %r6}, {%f1, %f2, %f3, %f4};
	rcp.approx.ftz.f32 	%f6, %f1;
	red.global.add.f32 	[%rd1], %f6;
	@%p2 bra 	$L__BB0_3;
	// a comment;
	div.approx.f32 	%f7, %f1, %f2;
	@%p3 bra 	$L__BB0_2;
	ret;
}
.visible .entry flat(
	.param .u64 p
)
{
$L__BB1_1:
	{ cvt.rn.bf16x2.f32 %r1, %f2, %f1;}
	mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f1, %f2, %f3, %f4}, {%r1, %r2, %r3, %r4}, {%r5, %r6}, {%f1, %f2, %f3, %f4};
	lg2.approx.f32 	%f5, %f1;
	@%p1 bra 	$L__BB1_4;
	sqrt.rn.f32 	%f5, %f5;
$L__BB1_4:
	bra.uni 	$L__BB1_1;
}
)";

}  // namespace

TEST_SUITE("cuda") {
  TEST_CASE("PTX tile loops: found, counted, inner loops solved from the tile's mma work") {
    const auto kernels = cuda::readPtxKernels(kPtx);
    REQUIRE(kernels.size() == 2);
    const cuda::PtxKernel& outer = kernels[0];
    CHECK(outer.name == "outer");
    REQUIRE(outer.tileLoops.size() == 1);  // the setup loop has no mma: not a tile loop
    const cuda::PtxTileLoop& t = outer.tileLoops[0];
    CHECK(t.innerLoops == 1);
    CHECK(t.outer.instructions == 4);  // mma, ex2, div, the back branch
    CHECK(t.outer.mma == 1);
    CHECK(t.outer.ex2 == 1);
    CHECK(t.outer.div == 1);
    CHECK(t.inner.instructions == 4);  // mma, rcp, red, its back branch
    CHECK(t.inner.rcp == 1);
    CHECK(t.inner.atom == 1);
    CHECK(outer.whole.instructions == 12);  // + mov, add, bra, ret (the comment is not one)
    cuda::PtxCounts c;
    int trips = 0;
    REQUIRE(cuda::tileIteration(t, 1 + 3 * 1, c, trips));  // 4 mma a tile: the inner body runs 3 times
    CHECK(trips == 3);
    CHECK(c.instructions == 4 + 3 * 4);
    CHECK(c.mma == 4);
    CHECK(c.rcp == 3);
    CHECK(!cuda::tileIteration(t, 1, c, trips));  // no whole t >= 1 fits
    CHECK(c.instructions == 0);

    const cuda::PtxKernel& flat = kernels[1];
    REQUIRE(flat.tileLoops.size() == 1);
    CHECK(flat.tileLoops[0].innerLoops == 0);  // a forward branch is not a loop
    CHECK(flat.tileLoops[0].outer.instructions == 6);  // cvt in braces, mma, lg2, @bra, sqrt, bra.uni
    CHECK(flat.tileLoops[0].outer.lg2 == 1);
    CHECK(flat.tileLoops[0].outer.sqrt == 1);
    REQUIRE(cuda::tileIteration(flat.tileLoops[0], 12345, c, trips));  // no inner loop: mma work not needed
    CHECK(trips == 1);
  }

  // Per iteration one warp issues (16 rows x blockN keys x (d + dv)) / (16·8·16) mma.sync in the
  // forward's output pass and (16 x blockN x d) / 2048 in a statistics-only pass; per score element a
  // thread handles (blockM·blockN/threads = 16·blockN/32 per warp) that is (d + dv)/64 and d/64.
  TEST_CASE("PTX tile loops of generated kernels: mma.sync per score element as the tile's products say") {
    for (const int d : {64, 128}) {
      for (const char* program : {"softmax", "lssar"}) {
        DiagnosticEngine diags;
        auto plan = compileToPlan(std::string(ATTN_STDLIB) + "/" + program + ".attn", {}, diags);
        REQUIRE(plan);
        cuda::CudaOptions o;
        o.dtype = cuda::Dtype::BF16;
        o.headDim = o.valueDim = d;
        o.part = cuda::ModulePart::Forward;
        const auto source = cuda::generateCudaKernels(*plan, differentiate(*plan), o);
        const auto kernels = cuda::readPtxKernels(cuda::compile(source.source, std::string(program) + ".cu", 90).ptx);
        const cuda::PtxKernel* forward = nullptr;
        for (const auto& k : kernels)
          if (k.name == "attn_forward_tc") forward = &k;
        REQUIRE(forward != nullptr);
        const double elements = o.tile.blockM * o.tile.blockN / (o.tile.warps * 32.0);
        INFO(program, " d=", d);
        // softmax: one pass (S and PV); LSSAR: a statistics pass (S), then the output pass.
        REQUIRE(forward->tileLoops.size() == (std::string(program) == "softmax" ? 1u : 2u));
        const cuda::PtxTileLoop& last = forward->tileLoops.back();
        CHECK(last.innerLoops == 0);
        CHECK(last.outer.mma / elements == doctest::Approx((d + d) / 64.0));
        if (forward->tileLoops.size() == 2) CHECK(forward->tileLoops[0].outer.mma / elements == doctest::Approx(d / 64.0));
        CHECK(last.outer.ex2 >= elements);  // at least one exponential per element
      }
    }
  }
}
