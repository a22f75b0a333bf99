// The per-tile steps every forward kernel shares, written against the tile MMA accumulator interface
// (tile_mma.cuh): the score transform (softcap, boundary mask) with the online-softmax step, and the epilogue that
// normalises and stores output rows and the LSE. Used by fwd.cuh (every vendor) and fwd_sm90.cuh (Hopper, whose
// wgmma accumulators have the sm80 policy's 16x16 fragment layout per warp).
#ifndef FLASHPORT_CUDA_KERNELS_FWD_COMMON_CUH
#define FLASHPORT_CUDA_KERNELS_FWD_COMMON_CUH

#include "kernels/common.cuh"
#include "kernels/copy.cuh"
#include "kernels/mask.cuh"
#include "kernels/softmax.cuh"

namespace flashport::kernels {

// Which query block of which head a forward block computes: block (x, 0, b) of the grid of fwd_grid_order takes
// query block m_block of head h of batch b, in block_order.cuh's BlockOrder with level 0 the last query block (under a
// causal mask the one with the most keys). The batch is the grid's z, so that it costs no register through the
// main loop (decoding it too spilled at D 64 and 256).
struct FwdBlock {
  int m_block, h;
};

FLASHPORT_DEVICE FwdBlock fwd_block_of(const FwdParams& p, int block) {
  int level, h;
  p.order.decode(block, &level, &h);
  return {p.order.blocks.divisor - 1 - level, h};
}

// Host: the grid of a forward over blocks of block_m query rows of elem_bytes-byte elements, with its order set in
// *p. False when the grid's x extent would pass 2^31 - 1. The HIP module sizes its launches with this too.
inline bool fwd_grid_order(FwdParams* p, int block_m, int elem_bytes, unsigned grid[3]) {
  const int m_blocks = ceil_div(p->seqlen_q, block_m);
  if (int64_t(m_blocks) * p->heads_q > INT32_MAX) return false;
  // K and V per query head (the query heads of a GQA group share them).
  const int64_t head_bytes = int64_t(p->seqlen_kv) * (p->head_dim_qk + p->head_dim_v) * elem_bytes / p->heads_ratio;
  p->order = BlockOrder::make(m_blocks, p->heads_q, head_bytes,
                              mask_makes_costs_uneven(p->window_left, p->window_right));
  grid[0] = static_cast<unsigned>(m_blocks * p->heads_q);
  grid[1] = 1;
  grid[2] = static_cast<unsigned>(p->batch);
  return true;
}

// Host: launch a forward kernel in that order (a template so that a pass without the runtime never instantiates it).
template <class Kernel>
cudaError_t launch_fwd_ordered(Kernel* kernel, const FwdParams& p, int block_m, int elem_bytes, int threads,
                               int smem_bytes, cudaStream_t stream) {
  FwdParams ordered = p;
  unsigned grid[3];
  if (!fwd_grid_order(&ordered, block_m, elem_bytes, grid)) return cudaErrorInvalidConfiguration;
  return launch_with_smem(kernel, dim3(grid[0], grid[1], grid[2]), threads, smem_bytes, stream, ordered);
}

// What one forward block reads: Q from query row m0 of head h, K and V of kv head hk, and the copy of key tile n
// (zero-filled past seqlen_kv and head_dim) into one stage of the shared K/V buffers. KTile / VTile are the kernel's
// shared-memory tile layouts (kRows = keys per tile).
template <class T, class KTile, class VTile, int kThreads> struct FwdSources {
  const T* q;
  const T* k;
  const T* v;

  FLASHPORT_DEVICE FwdSources(const FwdParams& p, int b, int h, int hk, int m0)
      : q(static_cast<const T*>(p.q) + b * p.q_stride[0] + int64_t(m0) * p.q_stride[1] + h * p.q_stride[2]),
        k(static_cast<const T*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[2]),
        v(static_cast<const T*>(p.v) + b * p.v_stride[0] + hk * p.v_stride[2]) {}

  FLASHPORT_DEVICE void load_kv(const FwdParams& p, T* sK, T* sV, int buffer, int n) const {
    const int key0 = n * KTile::kRows;
    const int keys = min(KTile::kRows, p.seqlen_kv - key0);
    load_tile<KTile, kThreads>(sK + buffer * KTile::kElems, k + int64_t(key0) * p.k_stride[1], p.k_stride[1], keys,
                               p.head_dim_qk, p.vec_loads);
    load_tile<VTile, kThreads>(sV + buffer * VTile::kElems, v + int64_t(key0) * p.v_stride[1], p.v_stride[1], keys,
                               p.head_dim_v, p.vec_loads);
  }
};

// Raw scores s (one 16-row m-tile whose first row is query row `row0`, key tiles from `key0`) become probabilities:
// softcap (cap * tanh(score * scale / cap), in log2 units), the mask where `partial` says the tile straddles a
// boundary, then the online-softmax step, which also rescales the output accumulators o. Without softcap the scale
// is folded into the softmax's exp2 argument (one FFMA per score).
template <class P, int kNT, int kOT>
FLASHPORT_DEVICE void scores_to_probabilities(const FwdParams& p, const MaskRule& mask, bool partial, int row0,
                                              int key0, typename P::Acc (&s)[kNT], typename P::Acc (&o)[kOT],
                                              OnlineSoftmax<P>& softmax) {
  const bool softcap = p.softcap > 0.f;
  if (softcap) {
    const float cap_log2 = p.softcap * kLog2e;
    const float scale_over_cap = p.scale / p.softcap;
#pragma unroll
    for (int t = 0; t < kNT; ++t)
#pragma unroll
      for (int e = 0; e < P::kAccElems; ++e) s[t].v[e] = cap_log2 * vendor::tanhf_(s[t].v[e] * scale_over_cap);
  }
  if (partial) {
    // Each row slot's visible columns [lo, hi) relative to key0, clamped into the tile's int range.
    int lo[P::kRowSlots], hi[P::kRowSlots];
#pragma unroll
    for (int slot = 0; slot < P::kRowSlots; ++slot) {
      int64_t key_lo, key_hi;
      mask.row_bounds(row0 + P::slot_row(slot), &key_lo, &key_hi);
      constexpr int64_t kWidth = kNT * P::kN;
      lo[slot] = static_cast<int>(min(max(key_lo - key0, int64_t(0)), kWidth));
      hi[slot] = static_cast<int>(min(max(key_hi - key0, int64_t(0)), kWidth));
    }
#pragma unroll
    for (int t = 0; t < kNT; ++t)
#pragma unroll
      for (int e = 0; e < P::kAccElems; ++e) {
        const int col = t * P::kN + P::acc_col(e);
        if (col < lo[P::acc_slot(e)] || col >= hi[P::acc_slot(e)]) s[t].v[e] = -INFINITY;
      }
  }
  softmax.step(s, o, softcap ? 1.f : p.scale_log2);
}

// Normalise and store the output rows of one 16-row m-tile whose first row is query row `row0` (rows past the
// sequence and columns past head_dim_v are skipped), and its LSE when requested. A row that sees no key by the mask
// is written as exactly 0 (its accumulators may hold 0 * NaN from a masked key's v) with lse -inf.
template <class T, class P, int kOT>
FLASHPORT_DEVICE void store_output_rows(const FwdParams& p, int b, int h, int row0, typename P::Acc (&o)[kOT],
                                        OnlineSoftmax<P>& softmax) {
  T* out = static_cast<T*>(p.out) + b * p.out_stride[0] + h * p.out_stride[2];
  const MaskRule mask{p.seqlen_kv, p.mask_offset, p.window_left, p.window_right};
  bool sees[P::kRowSlots];
#pragma unroll
  for (int slot = 0; slot < P::kRowSlots; ++slot) sees[slot] = mask.sees_keys(row0 + P::slot_row(slot));
  float inv[P::kRowSlots], lse[P::kRowSlots];
  softmax.finish(sees, inv, lse);
#pragma unroll
  for (int t = 0; t < kOT; ++t)
#pragma unroll
    for (int e = 0; e < P::kAccElems; e += 2) {
      // Elements e, e + 1 are adjacent columns of one row in every policy (pairs feed the 2-wide conversions).
      const int row = row0 + P::acc_row(e);
      const int col = t * P::kN + P::acc_col(e);
      if (row >= p.seqlen_q || col >= p.head_dim_v) continue;
      const int slot = P::acc_slot(e);
      const float x0 = sees[slot] ? o[t].v[e] * inv[slot] : 0.f;
      const float x1 = sees[slot] ? o[t].v[e + 1] * inv[slot] : 0.f;
      T* dst = out + int64_t(row) * p.out_stride[1] + col;
      if (p.vec_stores && col + 1 < p.head_dim_v) {
        *reinterpret_cast<uint32_t*>(dst) = vendor::pack2<T>(x0, x1);
      } else {
        dst[0] = vendor::from_float<T>(x0);
        if (col + 1 < p.head_dim_v) dst[1] = vendor::from_float<T>(x1);
      }
    }
  if (p.lse != nullptr) {
    // Every lane holding a row writes its (identical) lse; cheaper than electing one per row in a generic way.
    float* lse_bh = p.lse + b * p.lse_stride[0] + h * p.lse_stride[1];
#pragma unroll
    for (int slot = 0; slot < P::kRowSlots; ++slot) {
      const int row = row0 + P::slot_row(slot);
      if (row < p.seqlen_q) lse_bh[int64_t(row) * p.lse_stride[2]] = lse[slot];
    }
  }
}

}  // namespace flashport::kernels

#endif
