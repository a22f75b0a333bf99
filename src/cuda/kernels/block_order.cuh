// The order in which a grid's blocks take (block, head) pairs, shared by the forward and the backward main kernels,
// and the multiply-shift division it decodes with. Plain data: host and device, like bwd_params.cuh.
#ifndef FLASHPORT_CUDA_KERNELS_BLOCK_ORDER_CUH
#define FLASHPORT_CUDA_KERNELS_BLOCK_ORDER_CUH

#include <stdint.h>

// FLASHPORT_HD: host and device, for plain data and rules that the host side computes or tests too (this header,
// bwd_params.cuh); plain `inline` because HIP's header-less device passes (-nogpulib) have no __forceinline__.
#if defined(__CUDACC__) || defined(__HIPCC__) || defined(__HIP__)
#  define FLASHPORT_HD __host__ __device__ inline
#else
#  define FLASHPORT_HD inline
#endif

namespace flashport::kernels {

// n / d for 0 <= n < 2^31 by a multiply-high and a shift, with the multiplier computed on the host
// (a round-up reciprocal: mul = 2^32 (2^l - d) / d + 1, l = ceil(log2 d)). A division by a run-time value compiles
// to a float reciprocal sequence that the uniform datapath cannot run, which moves everything derived from it out
// of the uniform registers into per-thread ones; this keeps block-index arithmetic uniform.
struct FastDivmod {
  int divisor;
  uint32_t mul;
  int shift;
  FLASHPORT_HD static FastDivmod make(int d) {
    if (d < 1) d = 1;  // an empty grid divides nothing
    int l = 0;
    while ((int64_t(1) << l) < d) ++l;
    return {d, static_cast<uint32_t>(((uint64_t(1) << 32) * ((uint64_t(1) << l) - d)) / d + 1), l};
  }
  FLASHPORT_HD int div(int n) const {
    // The high half of a 32 x 32-bit product (IMAD.HI / v_mul_hi_u32; written out, since HIP's __umulhi lives in
    // the device library the header-less passes do not link).
    const uint32_t hi = static_cast<uint32_t>((uint64_t(uint32_t(n)) * mul) >> 32);
    return static_cast<int>((hi + static_cast<uint32_t>(n)) >> shift);
  }
};

// The order in which a grid's blocks take (block, head) pairs of one batch entry: the forward's query blocks
// (fwd_common.cuh) and the backward's key blocks (bwd_items.cuh). The hardware starts blocks in index order as SMs
// free up, so the order sets both the load balance and the reuse of a head's operands in L2:
//  - heads are taken in sections whose operands fit in kL2SectionBytes together (a power of two that divides the
//    head count), so that the blocks in flight read a few heads' operands;
//  - inside a section the blocks go by level, across all its heads: level 0 first. The kernels map levels to blocks
//    so that level 0 is the heaviest under a causal mask (the forward's last query block, the backward's first key
//    block): the lightest blocks fill the tail (longest-processing-time first).
// Only a mask (causal, window) makes blocks cost differently; without one, sections are one head wide: blocks of one
// head run together, which measured 0-1.6 % faster than wide sections (docs/perf/cuda-forward.md v3.5).
// Linear block x = (section * blocks + level) * 2^section_log2 + head % 2^section_log2. The division is by a
// host-computed multiplier (FastDivmod), so the decode stays on the uniform datapath.
// 32 MB: under the 40-50 MB L2 of A100/H100/H200, and the best of 2, 8 and 32 MB on causal H100 runs (v3.5).
constexpr int64_t kL2SectionBytes = int64_t(32) << 20;

// Whether a problem's blocks cost differently: under a causal mask or a window (validation folds causal into
// window_right, backend_abi.h), blocks meet different numbers of the other side's blocks. BlockOrder::make's `uneven`.
FLASHPORT_HD bool mask_makes_costs_uneven(int64_t window_left, int64_t window_right) {
  return window_left >= 0 || window_right >= 0;
}

struct BlockOrder {
  FastDivmod blocks;  // blocks per (batch entry, head)
  int section_log2;   // heads per section: a power of two that divides the head count

  // Host: `head_bytes` = what one head's blocks read and write; `uneven`: the blocks' costs differ (a mask).
  FLASHPORT_HD static BlockOrder make(int blocks, int heads, int64_t head_bytes, bool uneven) {
    const int64_t wanted = !uneven ? 1 : head_bytes > 0 ? kL2SectionBytes / head_bytes : heads;
    const int divides = heads & -heads;  // the largest power of two dividing heads
    int log2 = 0;
    while ((int64_t(2) << log2) <= wanted && (2 << log2) <= divides) ++log2;
    return {FastDivmod::make(blocks), log2};
  }
  FLASHPORT_HD void decode(int x, int* level, int* head) const {
    const int q = x >> section_log2;  // section * blocks + level
    const int section = blocks.div(q);
    *level = q - section * blocks.divisor;
    *head = (section << section_log2) + (x & ((1 << section_log2) - 1));
  }
};

}  // namespace flashport::kernels

#endif
