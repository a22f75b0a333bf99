// Online softmax over the score tiles of one warp (FlashAttention's running max and sum), in the exp2 domain:
// step() takes raw scores and the factor (scale*log2(e), or 1 when the caller has transformed them already) and
// folds it into one FFMA per element in front of exp2.
#ifndef FLASHPORT_CUDA_KERNELS_SOFTMAX_CUH
#define FLASHPORT_CUDA_KERNELS_SOFTMAX_CUH

#include "kernels/common.cuh"

namespace flashport::kernels {

template <class P> struct OnlineSoftmax {
  float row_max[P::kRowSlots];  // running max (log2 units), -inf until a visible key is seen; quad-uniform
  float row_sum[P::kRowSlots];  // this lane's share of the running sum; reduced across lanes only at the end

  FLASHPORT_DEVICE void init() {
#pragma unroll
    for (int s = 0; s < P::kRowSlots; ++s) {
      row_max[s] = -INFINITY;
      row_sum[s] = 0.f;
    }
  }

  // Turn scores s[0..kNT) into probabilities in place and rescale the output accumulators o[0..kOT). `factor`
  // (> 0) converts a score into log2 units; masked scores are -inf.
  template <int kNT, int kOT>
  FLASHPORT_DEVICE void step(typename P::Acc (&s)[kNT], typename P::Acc (&o)[kOT], float factor) {
    float scale_old[P::kRowSlots], base[P::kRowSlots];
#pragma unroll
    for (int slot = 0; slot < P::kRowSlots; ++slot) {
      float mx = -INFINITY;
#pragma unroll
      for (int t = 0; t < kNT; ++t)
#pragma unroll
        for (int e = 0; e < P::kAccElems; ++e)
          if (P::acc_slot(e) == slot) mx = fmaxf(mx, s[t].v[e]);
      mx = P::row_max(mx) * factor;  // factor > 0: the max commutes with the scaling
      const float m_new = fmaxf(row_max[slot], mx);
      // A row with no visible key so far keeps max -inf; subtracting 0 instead keeps exp2 at 0 instead of NaN.
      base[slot] = m_new == -INFINITY ? 0.f : m_new;
      scale_old[slot] = vendor::exp2f_fast(row_max[slot] - base[slot]);
      row_max[slot] = m_new;
    }
    float sum[P::kRowSlots];
#pragma unroll
    for (int slot = 0; slot < P::kRowSlots; ++slot) sum[slot] = 0.f;
#pragma unroll
    for (int t = 0; t < kNT; ++t)
#pragma unroll
      for (int e = 0; e < P::kAccElems; ++e) {
        const int slot = P::acc_slot(e);
        const float p = vendor::exp2f_fast(fmaf(s[t].v[e], factor, -base[slot]));
        s[t].v[e] = p;
        sum[slot] += p;
      }
#pragma unroll
    for (int slot = 0; slot < P::kRowSlots; ++slot) row_sum[slot] = row_sum[slot] * scale_old[slot] + sum[slot];
#pragma unroll
    for (int t = 0; t < kOT; ++t)
#pragma unroll
      for (int e = 0; e < P::kAccElems; ++e) o[t].v[e] *= scale_old[P::acc_slot(e)];
  }

  // Final per-row normaliser 1/l and lse in natural log. `sees` is the mask's verdict per row (MaskRule::sees_keys),
  // not l's: a row that sees no key gets 0 and -inf (its output is written as 0), every other row 1/l and
  // m + log l as they come, so that NaN and inf scores propagate (l NaN: NaN; l = 0 when all its visible scores
  // were -inf: 1/l = inf, out 0 * inf = NaN, lse -inf). Call once; reduces the lane partial sums.
  FLASHPORT_DEVICE void finish(const bool (&sees)[P::kRowSlots], float (&inv)[P::kRowSlots],
                               float (&lse)[P::kRowSlots]) {
#pragma unroll
    for (int slot = 0; slot < P::kRowSlots; ++slot) {
      const float l = P::row_sum(row_sum[slot]);
      inv[slot] = sees[slot] ? 1.f / l : 0.f;
      lse[slot] = sees[slot] ? (row_max[slot] + vendor::log2f_fast(l)) * kLn2 : -INFINITY;
    }
  }
};

}  // namespace flashport::kernels

#endif
