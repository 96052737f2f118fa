// The executable meaning of a KernelPlan: one attention head computed the way the plan
// says, and no other way. For each query row it runs the plan's passes over the keys in
// order, accumulates exactly the row statistics each pass produces (running maxima with
// rescaling for the online forms), reads a statistic only after the pass that finishes
// it, recomputes scores in every pass, and accumulates the output in the plan's form. It
// never stores more than one row of anything.
//
// It is slow (a scalar interpreter in double, or long double, precision) and exists to be right: tests
// compare it with the reference backend, which proves the schedule (a wrong pass count or
// a statistic read too early gives wrong numbers), and code generators are tested against
// both.
#pragma once

#include <cstdint>
#include <vector>

#include "compiler/Schedule.h"

namespace attn {

/// o [Lq, Dv] for one head: q [Lq, D], k [Lk, D], v [Lk, Dv], row-major; Lq <= Lk and query
/// row r has absolute position i = Lk - Lq + r.
std::vector<double> interpretPlan(const KernelPlan& plan, const double* q, const double* k, const double* v,
                                  int64_t Lq, int64_t Lk, int64_t D, int64_t Dv);

/// The same in long double (64-bit significand on x86-64): the tests' oracle for finite
/// differences (whose rounding noise, divided by the step, is then 2^11 times smaller) and
/// for telling inputs where double rounding decides the result (ill-conditioned) from a
/// wrong gradient.
std::vector<long double> interpretPlanExtended(const KernelPlan& plan, const long double* q, const long double* k,
                                               const long double* v, int64_t Lq, int64_t Lk, int64_t D, int64_t Dv);

}  // namespace attn
