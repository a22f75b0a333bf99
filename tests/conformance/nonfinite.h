// Non-finite inputs and scores, checked against the policy of include/flashport/flashport.h on any backend, both
// directions: only the mask hides a key; NaN and infinite scores propagate as in the IEEE arithmetic of the
// formulas (PyTorch's math path); a row with no key left by the mask gives out = 0, lse = -inf and dq = 0.
//
// Each scenario poisons a few inputs of a small multi-tile problem (or picks an option whose scores overflow),
// runs the forward, then the backward fed with that forward's own out and lse, and compares every element with a
// float64 evaluation of the formulas that follows IEEE rules for NaN and inf:
//   - where that evaluation is NaN or infinite, the backend must be too (out and lse: the same NaN / the same inf);
//   - where it is finite, the backend must be finite and close to it, except where the masked pairs alone would
//     bring a NaN in through the block products (0 * NaN: a non-finite v of a masked key into out, a non-finite k of
//     a masked key into dq, q / dout of a row into dk / dv of keys it does not see). Whether a backend's tiles put
//     such a pair into a product depends on its block shapes, so there either a NaN or the finite value passes.
//   - rows that see no key must be exactly out = 0, lse = -inf, dq = 0, whatever their inputs.
#ifndef FLASHPORT_TESTS_CONFORMANCE_NONFINITE_H
#define FLASHPORT_TESTS_CONFORMANCE_NONFINITE_H

#include <functional>
#include <string>
#include <vector>

#include "cases.h"
#include "runner.h"

namespace flashport::conformance {

struct NonFiniteScenario {
  std::string name;
  Case c;
  std::function<void(const Case&, CaseInputs&)> poison;  // writes the non-finite (or special) input values
};

// The scenarios for one dtype and head dims, on sequences of about `seqlen` (pick it so that both directions span
// several blocks of the backend under test):
//   NaN in one q element; NaN in one k element under a causal mask (rows before it must stay exact); a row of +inf
//   in k; NaN in one v element under a causal mask; NaN in k of a key no row sees; NaN q and dout in a row that
//   sees no key; a key whose scores are -inf for every row (weight 0, the others exact); NaN k with softcap;
//   softmax_scale at its upper bound with scores that overflow to +inf (one head) and -inf (the other).
std::vector<NonFiniteScenario> nonfinite_scenarios(flashport_dtype dtype, int64_t head_dim_qk, int64_t head_dim_v,
                                                   int64_t seqlen);

// Runs one scenario on `backend` (a name as in args->backend; memory on its device). skipped as in run_case.
Result run_nonfinite(const NonFiniteScenario& s, const char* backend, DeviceMemory& memory);

}  // namespace flashport::conformance

#endif
