// Programs the random gradient suites found with wrong outputs or gradients, kept as fixed
// cases: the cpu backend runs them in suite gradients1 (against float64 finite differences),
// the tensor-core kernels on the emulator in suite emu (against the reference), since the
// CUDA generator shares the scalar kernels and their recomputations.
#pragma once

namespace attn::test {

// In order: a row value used twice by one operation (m * m) had its row adjoint counted twice
// per operand slot (ScalarKernels.cpp, users_). Then four that need a value recomputed in
// another kernel (a pass, backward) to be bit-equal to the one a statistic was computed from
// (y - rowsum(y) is exactly 0 in a row with one key, a - rowmin(a) exactly 0 at every key
// tied with the minimum), which LLVM's fast-math and vector math broke (codegen/llvm/TextIR.cpp).
// Last, two outputs that are a row value once a constant condition is folded (w_ij = r_i),
// whose adjoint was never summed: dq = dk = 0 (ScalarKernels.cpp, reverseWalk;
// ATTN_TEST_SEED=1796320554 gradients2 program 100209).
inline const char* const kFoundByRandomSuites[] = {
    R"(attention r {
  let m = rowmean(dot(q, k))
  out l1norm(m * m - dot(q, k))
})",
    R"(attention r {
  mask causal
  let s = dot(q * 0.5, k) + j / L
  let z = pow(abs(s) + 1, 1.5)
  let r = rowsum(z)
  out l1norm(abs(z - r) ^ 100)
})",
    R"(attention r {
  mask causal
  let y = relu(dot(q, k))
  let a = l1norm(gelu_tanh(y - rowmax(y)))
  out l1norm(relu(a - rowmin(a)))
})",
    R"(attention r {
  mask causal
  let y = softplus(dot(q, k) / 4)
  out sign(y - rowmean(y)) / n
})",
    R"(attention r {
  mask i - j < 2
  let y = dot(q, k) ^ 2
  let a = l1norm((y - rowmean(y)) ^ 2)
  out l1norm(relu(a - rowmean(a)))
})",
    R"(attention r {
  out relu(gelu(pow(sigmoid(rowsum(dot(q / sqrt(d), 1.5 * k))) + 0.5, 2))) * (0.75 < 1.13 ? 1.2 : j - n)
})",
    R"(attention r {
  mask causal
  out exp(rowmean(dot(q, k)) / 4) * (true ? -0.5 : j)
})",
};

}  // namespace attn::test
