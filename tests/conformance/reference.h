// The naive reference: attention with the full score matrix materialised, in float64, straight from the contract
// in docs/design.md and include/flashport/flashport.h. Every backend is measured against it.
//
// Tensors here are dense row-major vectors in the API's logical layout: q [B, Sq, Hq, Dqk], k [B, Skv, Hkv, Dqk],
// v [B, Skv, Hkv, Dv], out/dout [B, Sq, Hq, Dv], lse [B, Hq, Sq].
#ifndef FLASHPORT_TESTS_CONFORMANCE_REFERENCE_H
#define FLASHPORT_TESTS_CONFORMANCE_REFERENCE_H

#include <functional>
#include <vector>

#include "cases.h"

namespace flashport::conformance {

// Rounds an intermediate result. Identity for the float64 reference; rounding to fp16/bf16 gives the "same naive
// reference computed in that dtype" that the low-precision tolerance rule compares against.
using Rounding = std::function<double(double)>;

struct ForwardResult {
  std::vector<double> out;
  std::vector<double> lse;  // -inf for fully masked rows
};

struct BackwardResult {
  std::vector<double> dq, dk, dv;
};

// Forward. With a rounding, scores, probabilities and the output are rounded as a framework running the naive
// algorithm in that dtype would (lse is never rounded: the API returns it in fp32).
ForwardResult reference_forward(const Case& c, const std::vector<double>& q, const std::vector<double>& k,
                                const std::vector<double>& v, const Rounding& round = nullptr);

// Backward, computed from scratch (recomputes the probabilities; Delta_i = rowsum(dout_i ∘ out_i) with the exact
// out). With a rounding, dP, dS and the three gradients are rounded as well. With dlse (dense [B, Hq, Sq], the
// gradient of the loss with respect to lse), Delta_i - dlse_i takes Delta_i's place: dS = P ∘ (dP - (Delta - dlse)).
BackwardResult reference_backward(const Case& c, const std::vector<double>& q, const std::vector<double>& k,
                                  const std::vector<double>& v, const std::vector<double>& dout,
                                  const Rounding& round = nullptr, const std::vector<double>* dlse = nullptr);

// Rounding to a dtype (identity for F32 would still round to fp32; the reference uses nullptr for "exact").
double round_to_dtype(double x, flashport_dtype dtype);

}  // namespace flashport::conformance

#endif
