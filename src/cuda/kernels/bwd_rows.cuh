// The two row-wise kernels around the backward's main kernel:
//   bwd_preprocess: D_i = rowsum(dO_i * O_i) and lse_i * log2(e) into the workspace, zeroes the fp32 dQ accumulator
//                   (and the deterministic mode's semaphores);
//   bwd_convert:    dq = scale * dq_accum, in the output's dtype and strides (0 for rows that see no key).
// Both are memory-bound and small next to the main kernel (they touch each of O, dO, dQ once), so they use one warp
// per row and plain coalesced element loops rather than anything clever.
#ifndef FLASHPORT_CUDA_KERNELS_BWD_ROWS_CUH
#define FLASHPORT_CUDA_KERNELS_BWD_ROWS_CUH

#include "kernels/bwd_params.cuh"
#include "kernels/common.cuh"
#include "kernels/mask.cuh"

namespace flashport::kernels {

// One row per group of 32 threads, 4 rows per block. 32 rather than the hardware warp: butterflies with masks
// 16..1 stay inside 32 lanes on 64-wide wavefronts too, so one source serves both.
constexpr int kBwdRowLanes = 32;
constexpr int kBwdRowsPerBlock = 4;
constexpr int kBwdRowThreads = kBwdRowLanes * kBwdRowsPerBlock;

FLASHPORT_DEVICE float row_group_sum(float x) {
#pragma unroll
  for (int o = kBwdRowLanes / 2; o > 0; o /= 2) x += vendor::shfl_xor(x, o);
  return x;
}

// Row r = (b * heads_q + h) * seqlen_q_pad + i of the [batch, heads_q, seqlen_q_pad] workspace order.
struct BwdRow {
  int32_t b, h, i;
};
FLASHPORT_DEVICE BwdRow bwd_row(const BwdParams& p, int64_t r) {
  BwdRow row;
  row.i = int32_t(r % p.seqlen_q_pad);
  const int64_t bh = r / p.seqlen_q_pad;
  row.h = int32_t(bh % p.heads_q);
  row.b = int32_t(bh / p.heads_q);
  return row;
}

template <typename T>
__global__ void __launch_bounds__(kBwdRowThreads) bwd_preprocess_kernel(const BwdParams p) {
  const int lane = vendor::thread_id() % kBwdRowLanes;
  const int64_t r = int64_t(vendor::block_id_x()) * kBwdRowsPerBlock + vendor::thread_id() / kBwdRowLanes;
  const int64_t rows = int64_t(p.batch) * p.heads_q * p.seqlen_q_pad;
  if (r >= rows) return;
  const BwdRow row = bwd_row(p, r);
  if (p.dq_accum != nullptr) {  // the fp32 path writes dq directly and has no accumulator
    float* acc = p.dq_accum + r * p.head_dim_qk;
    for (int c = lane; c < p.head_dim_qk; c += kBwdRowLanes) acc[c] = 0.f;
  }
  if (row.i >= p.seqlen_q) {  // padding row: P = 0 there
    if (lane == 0) {
      p.dsum[r] = 0.f;
      p.lse_log2[r] = INFINITY;
    }
    return;
  }

  const T* o = static_cast<const T*>(p.out) + row.b * p.out_stride[0] + row.i * p.out_stride[1] +
               row.h * p.out_stride[2];
  const T* d = static_cast<const T*>(p.dout) + row.b * p.dout_stride[0] + row.i * p.dout_stride[1] +
               row.h * p.dout_stride[2];
  float sum = 0.f;
  for (int c = lane; c < p.head_dim_v; c += kBwdRowLanes) sum += vendor::to_float(o[c]) * vendor::to_float(d[c]);
  sum = row_group_sum(sum);
  if (lane == 0) {
    p.dsum[r] = sum;
    const float lse = p.lse[row.b * p.lse_stride[0] + row.h * p.lse_stride[1] + row.i * p.lse_stride[2]];
    // A row that sees no key (by the mask, not by its lse) gets +inf, so that P = exp2(x - inf) = 0 (its entries
    // are masked and zeroed anyway). A row that sees keys but has lse -inf (all its visible scores were -inf; its
    // out is NaN) gets NaN, so that its P is NaN (0/0) as in the forward; any other lse, NaN included, as it is.
    const MaskRule mask{p.seqlen_kv, p.mask_offset, p.window_left, p.window_right};
    p.lse_log2[r] = !mask.sees_keys(row.i) ? INFINITY : lse == -INFINITY ? __builtin_nanf("") : lse * kLog2e;
    if (p.dq_sem != nullptr && row.i % p.block_m == 0)
      p.dq_sem[(int64_t(row.b) * p.heads_q + row.h) * p.m_blocks + row.i / p.block_m] = 0;
  }
}

template <typename T>
__global__ void __launch_bounds__(kBwdRowThreads) bwd_convert_kernel(const BwdParams p) {
  const int lane = vendor::thread_id() % kBwdRowLanes;
  const int64_t r = int64_t(vendor::block_id_x()) * kBwdRowsPerBlock + vendor::thread_id() / kBwdRowLanes;
  const int64_t rows = int64_t(p.batch) * p.heads_q * p.seqlen_q_pad;
  if (r >= rows) return;
  const BwdRow row = bwd_row(p, r);
  if (row.i >= p.seqlen_q) return;
  const float* acc = p.dq_accum + r * p.head_dim_qk;
  T* dq = static_cast<T*>(p.dq) + row.b * p.dq_stride[0] + row.i * p.dq_stride[1] + row.h * p.dq_stride[2];
  // A row that sees no key has dq = 0, whatever its block products met (0 * a non-finite k of a key in its block).
  const MaskRule mask{p.seqlen_kv, p.mask_offset, p.window_left, p.window_right};
  const bool sees = mask.sees_keys(row.i);
  for (int c = lane; c < p.head_dim_qk; c += kBwdRowLanes) dq[c] = vendor::from_float<T>(sees ? acc[c] * p.scale : 0.f);
}

}  // namespace flashport::kernels

#endif
