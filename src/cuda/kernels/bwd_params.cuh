// Parameters and block bookkeeping shared by the backward kernels (bwd_preprocess, bwd_main, bwd_convert) and by
// the host side (backward.cu). Plain data: filled once from the validated flashport_problem.
#ifndef FLASHPORT_CUDA_KERNELS_BWD_PARAMS_CUH
#define FLASHPORT_CUDA_KERNELS_BWD_PARAMS_CUH

#include <stdint.h>

// BlockOrder, and FLASHPORT_HD (host and device: the host side sizes the workspace and tests these rules).
#include "kernels/block_order.cuh"

namespace flashport::kernels {

struct BwdParams {
  // Inputs and outputs; strides are in elements, [batch, seqlen, heads] (head_dim stride is 1).
  const void* q;
  const void* k;
  const void* v;
  const void* out;
  const void* dout;
  const float* lse;  // strides [batch, heads, seqlen]
  void* dq;
  void* dk;
  void* dv;
  int64_t q_stride[3], k_stride[3], v_stride[3], out_stride[3], dout_stride[3], lse_stride[3];
  int64_t dq_stride[3], dk_stride[3], dv_stride[3];

  int32_t batch, seqlen_q, seqlen_kv, heads_q, heads_kv, group;  // group = heads_q / heads_kv
  int32_t head_dim_qk, head_dim_v;

  float scale;        // softmax scale (never 0)
  float scale_log2;   // scale * log2(e): P = exp2(acc * scale_log2 - lse_log2) without softcap
  float softcap;      // 0 = off
  float softcap_inv;  // 1 / softcap (0 when off)

  // Mask (causal already folded in): key j is visible from row i when
  //   (window_left < 0 || j >= i + mask_offset - window_left) &&
  //   (window_right < 0 || j <= i + mask_offset + window_right)
  int64_t mask_offset, window_left, window_right;

  // Workspace regions (see backward.cu for the layout). Row index r = (b * heads_q + h) * seqlen_q_pad + i: rows
  // are padded to whole query blocks, so the main kernel copies lse/D of a block as aligned 16-byte chunks and adds
  // dQ rows without a bounds test (padding rows hold lse +inf, D 0, and a dQ accumulator nobody reads).
  float* dsum;      // [r]  D_i = rowsum(dO_i * O_i), fp32
  float* lse_log2;  // [r]  lse_i * log2(e); +inf for rows that see no key (P = exp2(.. - inf) = 0), NaN for rows
                    //      that see keys with lse = -inf (bwd_rows.cuh)
  float* dq_accum;  // [r][head_dim_qk]  sum_j dS_ij k_j, unscaled; converted (times scale) into dq at the end
  int32_t* dq_sem;  // deterministic only: [(b * heads_q + h) * m_blocks + m] = number of key blocks already added
  int32_t deterministic;

  bool vec_loads;   // every q/k/v/dout row 16-byte aligned: whole 16-byte asynchronous copies (copy.cuh)
  bool vec_stores;  // every dk/dv row 4-byte aligned: two elements per store

  int32_t block_m, block_n;  // tile sizes of the main kernel instance that runs
  int32_t m_blocks, n_blocks;
  BlockOrder order;  // the main kernel's key-block order without the deterministic mode (bwd_items.cuh)
  int32_t seqlen_q_pad;      // m_blocks * block_m
};

FLASHPORT_HD int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  const int64_t q = a / b;
  return (q * b > a) ? q - 1 : q;
}

// Whether rows [m0, m1) and keys [n0, n1) (both non-empty) contain at least one visible pair. The band mask makes
// visibility a condition on j - i alone, so the rectangle's extreme differences decide it. Every block-skipping rule
// below is derived from these two inequalities, so the main kernel's loop bounds and the deterministic ordering
// agree exactly.
FLASHPORT_HD bool block_visible(const BwdParams& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const bool left_ok = p.window_left < 0 || (n1 - 1) - m0 >= p.mask_offset - p.window_left;
  const bool right_ok = p.window_right < 0 || n0 - (m1 - 1) <= p.mask_offset + p.window_right;
  return left_ok && right_ok;
}

// Query blocks [*begin, *end) that key block n meets (empty when *begin >= *end).
FLASHPORT_HD void m_block_range(const BwdParams& p, int32_t n, int32_t* begin, int32_t* end) {
  const int64_t n0 = int64_t(n) * p.block_n;
  const int64_t n1 = n0 + p.block_n < p.seqlen_kv ? n0 + p.block_n : p.seqlen_kv;
  int64_t b = 0, e = p.m_blocks;
  // right rule: some row i in the block has i >= n0 - off - right, i.e. m1 - 1 >= n0 - off - right.
  if (p.window_right >= 0) {
    const int64_t lo = floor_div(n0 - p.mask_offset - p.window_right, p.block_m);
    b = lo > 0 ? lo : 0;
  }
  // left rule: some row has i <= n1 - 1 - off + left, i.e. m0 <= n1 - 1 - off + left.
  if (p.window_left >= 0) {
    const int64_t hi = floor_div(n1 - 1 - p.mask_offset + p.window_left, p.block_m) + 1;
    e = hi < e ? hi : e;
  }
  // The formulas treat every block as full; the last query block is shorter, so settle the ends exactly (visibility
  // is an interval in m: the left rule holds for a prefix of blocks, the right rule for a suffix).
  const auto visible = [&](int64_t m) {
    const int64_t m0 = m * p.block_m;
    const int64_t m1 = m0 + p.block_m < p.seqlen_q ? m0 + p.block_m : p.seqlen_q;
    return block_visible(p, m0, m1, n0, n1);
  };
  while (b < e && !visible(b)) ++b;
  while (e > b && !visible(e - 1)) --e;
  *begin = int32_t(b);
  *end = int32_t(e > b ? e : b);
}

// First key block that meets query block m (the left rule alone bounds it from below). Used by the deterministic
// mode: key block n adds its dQ share of query block m after exactly n - first_n_block(m) others have.
FLASHPORT_HD int32_t first_n_block(const BwdParams& p, int32_t m) {
  if (p.window_left < 0) return 0;
  const int64_t lo = floor_div(int64_t(m) * p.block_m + p.mask_offset - p.window_left, p.block_n);
  return int32_t(lo > 0 ? lo : 0);
}

}  // namespace flashport::kernels

#endif
