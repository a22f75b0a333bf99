// The one masking rule of a validated problem (src/dispatch/backend_abi.h): key j is visible from query row i when
//   j < seqlen_kv && (left < 0 || j >= i + offset - left) && (right < 0 || j <= i + offset + right).
// Causal is right = 0; the alignment is in offset. Used per element on boundary tiles only, and per tile to skip
// tiles that are entirely masked and to leave interior tiles unmasked.
#ifndef FLASHPORT_CUDA_KERNELS_MASK_CUH
#define FLASHPORT_CUDA_KERNELS_MASK_CUH

#include <stdint.h>

#include "kernels/common.cuh"

namespace flashport::kernels {

struct MaskRule {
  int64_t seqlen_kv, offset, left, right;

  FLASHPORT_DEVICE bool visible(int64_t i, int64_t j) const {
    return j < seqlen_kv && (left < 0 || j >= i + offset - left) && (right < 0 || j <= i + offset + right);
  }
  // Keys [*lo, *hi) that some row of [row_first, row_last] may see; *hi <= *lo when none.
  FLASHPORT_DEVICE void key_range(int64_t row_first, int64_t row_last, int64_t* lo, int64_t* hi) const {
    *lo = left < 0 ? 0 : row_first + offset - left;
    if (*lo < 0) *lo = 0;
    *hi = right < 0 ? seqlen_kv : row_last + offset + right + 1;
    if (*hi > seqlen_kv) *hi = seqlen_kv;
  }
  // Keys [*lo, *hi) visible from row i (empty when *hi <= *lo): the per-row form of visible(), so a boundary tile
  // compares each element's column with two bounds instead of evaluating the rule.
  FLASHPORT_DEVICE void row_bounds(int64_t i, int64_t* lo, int64_t* hi) const { key_range(i, i, lo, hi); }
  // Whether row i sees any key: a row that sees none is fully masked (out 0, lse -inf, dq 0). Decided by this
  // geometry only, never by the values its scores take; once per row, in epilogues.
  FLASHPORT_DEVICE bool sees_keys(int64_t i) const {
    int64_t lo, hi;
    row_bounds(i, &lo, &hi);
    return hi > lo;
  }
  // Queries [*lo, *hi) that see key j (empty when *hi <= *lo): the transposed row_bounds, for the backward's
  // keys-by-queries tiles.
  FLASHPORT_DEVICE void query_bounds(int64_t j, int64_t* lo, int64_t* hi) const {
    *lo = right < 0 ? INT64_MIN / 2 : j - offset - right;
    *hi = j >= seqlen_kv ? *lo : left < 0 ? INT64_MAX / 2 : j - offset + left + 1;
  }
  // True when some (row, key) of the rectangle rows [r0, r1] x keys [k0, k1] is masked: the tile needs the
  // per-element test.
  FLASHPORT_DEVICE bool partial(int64_t r0, int64_t r1, int64_t k0, int64_t k1) const {
    return k1 >= seqlen_kv || (left >= 0 && k0 < r1 + offset - left) || (right >= 0 && k1 > r0 + offset + right);
  }
};

}  // namespace flashport::kernels

#endif
