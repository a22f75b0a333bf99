// The backward main kernel (FlashAttention-2 schedule), written against the tile MMA interface (tile_mma.cuh) and
// the vendor header only, so the HIP module compiles this same file with its own policies.
//
// One block = kBlockN keys of one (batch, kv head). K and V stay in shared memory; dK and dV accumulate in fp32
// registers over every (query head of the GQA group, query block) the keys meet, so they are summed without atomics.
// Per query block of kBlockM rows, in three phases separated by block barriers:
//   1. S^T = K Q^T and dP^T = V dO^T (keys x queries). P = exp2(S * scale * log2 e - lse * log2 e) recomputed from
//      lse, masked, dS = P * (dP - D) (times the softcap derivative 1 - tanh^2). P^T and dS^T go to shared memory
//      keys-major, dS also queries-major.
//   2. dV += P^T dO, dK += dS^T Q: the A operands are the keys-major tiles just written, B the Q / dO tiles.
//   3. dQ_block = dS K, added in fp32 to the workspace accumulator (atomics; in key-block order when deterministic).
// Computing S^T rather than S puts every operand in a layout the interface loads directly (load_a of row-major
// tiles, load_b_nk, load_b_kn), so no transposed-A load is needed. The next Q / dO tiles are fetched while phase 3
// runs. Query blocks that no key of the block can see are never visited, and only blocks on a mask boundary test
// elements.
// Shapes with kReloadV (AMD's D 256, where K, V, Q and dO alone fill 64 KB of LDS) keep no V across query blocks:
// after phase 1's products a barrier frees V's tile, P^T, dS^T and dS are written there, lse and D come from global
// memory, and V is read again after phase 3 (another barrier) for the next query block.
#ifndef FLASHPORT_CUDA_KERNELS_BWD_MAIN_CUH
#define FLASHPORT_CUDA_KERNELS_BWD_MAIN_CUH

#include "kernels/bwd_items.cuh"
#include "kernels/bwd_launch.cuh"
#include "kernels/bwd_params.cuh"
#include "kernels/common.cuh"
#include "kernels/copy.cuh"
#include "kernels/mask.cuh"
#include "kernels/tile_mma.cuh"

namespace flashport::kernels {

// Warp layouts of the three phases. Each phase splits its output over the block's warps, rows first (16-row tiles),
// then columns; a warp owns kT*R x kT*C tiles of 16 x 16. The shape comes from BwdShapeFor (bwd_launch.cuh):
// NVIDIA's BwdShape for the tensor-core policy, BwdShapeAmd for the AMD policies and the FMA tiles.
template <class P, int kDqk, int kDv> struct BwdConfig : BwdShapeFor<P, kDqk, kDv>::type {
  using Shape = typename BwdShapeFor<P, kDqk, kDv>::type;
  static constexpr int kBlockM = Shape::kBlockM, kBlockN = Shape::kBlockN, kWarps = Shape::kWarps;
  static constexpr int kThreads = kWarps * P::kWarpSize;
  static_assert(P::kM == 16 && P::kN == 16 && P::kK == 16, "the backward assumes 16x16x16 tile operations");

  // phase 1: S^T, dP^T (kBlockN x kBlockM)
  static constexpr int kWN1 = Shape::kWN1, kWM1 = kWarps / kWN1;
  static constexpr int kTN1 = kBlockN / kWN1 / 16, kTM1 = kBlockM / kWM1 / 16;
  // phase 2: dV (kBlockN x kDv), dK (kBlockN x kDqk)
  static constexpr int kWN2 = Shape::kWN2, kWD2 = kWarps / kWN2;
  static constexpr int kTN2 = kBlockN / kWN2 / 16, kTDv2 = kDv / kWD2 / 16, kTDk2 = kDqk / kWD2 / 16;
  // phase 3: dQ (kBlockM x kDqk)
  static constexpr int kWM3 = Shape::kWM3, kWD3 = kWarps / kWM3;
  static constexpr int kTM3 = kBlockM / kWM3 / 16, kTD3 = kDqk / kWD3 / 16;
  static_assert(kTN1 * kWN1 * 16 == kBlockN && kTM1 * kWM1 * 16 == kBlockM && kTN2 * kWN2 * 16 == kBlockN &&
                    kTDv2 * kWD2 * 16 == kDv && kTDk2 * kWD2 * 16 == kDqk && kTM3 * kWM3 * 16 == kBlockM &&
                    kTD3 * kWD3 * 16 == kDqk,
                "warp layout does not tile the block");

  using KTile = SmemTile<kBlockN, kDqk>;
  using VTile = SmemTile<kBlockN, kDv>;
  using QTile = SmemTile<kBlockM, kDqk>;
  using OTile = SmemTile<kBlockM, kDv>;    // dO
  using PtTile = SmemTile<kBlockN, kBlockM>;  // P^T and dS^T, keys-major
  using STile = SmemTile<kBlockM, kBlockN>;   // dS, queries-major
  // kReloadV: P^T, dS^T and dS take V's place after phase 1, and lse / D are not staged (read from global memory).
  static constexpr bool kReloadV = Shape::kReloadV;
  static_assert(!kReloadV || 2 * PtTile::kElems + STile::kElems <= VTile::kElems,
                "P^T, dS^T and dS must fit in V's tile");
  static constexpr int kSmemBytes =
      kReloadV ? KTile::kBytes + VTile::kBytes + QTile::kBytes + OTile::kBytes
               : KTile::kBytes + VTile::kBytes + QTile::kBytes + OTile::kBytes + 2 * PtTile::kBytes + STile::kBytes +
                     2 * kBlockM * int(sizeof(float));
  static_assert(kSmemBytes <= Shape::kMaxSmemBytes, "the backward block does not fit the shape's shared memory "
                                                    "(AMD: 64 KB of LDS per workgroup)");
};

// Store a pair of adjacent-column values (accumulator elements e, e + 1 of every policy start at an even column)
// into a 16-bit SmemTile.
template <class Tile, class T> FLASHPORT_DEVICE void store_pair(T* smem, int row, int col, float x0, float x1) {
  *reinterpret_cast<uint32_t*>(smem + Tile::chunk_offset(row, col >> 3) + (col & 7)) = vendor::pack2<T>(x0, x1);
}
template <class Tile, class T> FLASHPORT_DEVICE void store_one(T* smem, int row, int col, float x) {
  smem[Tile::chunk_offset(row, col >> 3) + (col & 7)] = vendor::from_float<T>(x);
}

// Adds x0, x1 into the adjacent floats dst[0], dst[1] (dst 8-byte aligned when `pair`). Where the hardware has a
// vector reduction (red.global.add.v2.f32) one instruction carries both: half the reduction requests, and whole
// 32-byte sectors per quad of lanes instead of halves.
FLASHPORT_DEVICE void atomic_add_pair(float* dst, float x0, float x1, bool pair) {
#if defined(FLASHPORT_HAS_VECTOR_ATOMIC_ADD)
  if (pair) {
    atomicAdd(reinterpret_cast<float2*>(dst), make_float2(x0, x1));
    return;
  }
#else
  (void)pair;
#endif
  atomicAdd(dst, x0);
  atomicAdd(dst + 1, x1);
}

// One k16 step of every product the kernel computes: acc[i][j] += A[a_row0 + 16 i, k0 .. k0 + 15] B_j, with the kI
// A fragments loaded once from shared memory and, per j, the B fragment from load_b(fragment, j).
template <class P, class ATile, int kI, int kJ, class T, class LoadB>
FLASHPORT_DEVICE void mma_k_step(typename P::Acc (&acc)[kI][kJ], const T* sA, int a_row0, int k0, LoadB load_b) {
  typename P::FragA a[kI];
#pragma unroll
  for (int i = 0; i < kI; ++i) P::template load_a<ATile>(a[i], sA, a_row0 + i * 16, k0);
#pragma unroll
  for (int j = 0; j < kJ; ++j) {
    typename P::FragB b;
    load_b(b, j);
#pragma unroll
    for (int i = 0; i < kI; ++i) P::mma(acc[i][j], a[i], b);
  }
}

// Write a warp's rows x cols accumulator tiles (scaled) to global rows row0.. of a [seq, D] slice.
template <class P, class T, int kTR, int kTC>
FLASHPORT_DEVICE void store_acc(T* g, int64_t row_stride, const typename P::Acc (&acc)[kTR][kTC], int row0,
                                int col0, int rows_valid, int cols_valid, float scale, bool vec) {
#pragma unroll
  for (int tr = 0; tr < kTR; ++tr)
#pragma unroll
    for (int tc = 0; tc < kTC; ++tc)
#pragma unroll
      for (int e = 0; e < P::kAccElems; e += 2) {
        const int row = row0 + tr * 16 + P::acc_row(e);
        const int col = col0 + tc * 16 + P::acc_col(e);
        if (row >= rows_valid || col >= cols_valid) continue;
        const float x0 = acc[tr][tc].v[e] * scale, x1 = acc[tr][tc].v[e + 1] * scale;
        T* dst = g + int64_t(row) * row_stride + col;
        if (vec && col + 1 < cols_valid) {
          *reinterpret_cast<uint32_t*>(dst) = vendor::pack2<T>(x0, x1);
        } else {
          dst[0] = vendor::from_float<T>(x0);
          if (col + 1 < cols_valid) dst[1] = vendor::from_float<T>(x1);
        }
      }
}

template <class T, int kDqk, int kDv, class P = TileMmaDefault<T>>
__global__ void __launch_bounds__(BwdConfig<P, kDqk, kDv>::kThreads, BwdConfig<P, kDqk, kDv>::kMinBlocks)
    bwd_main_kernel(const BwdParams p) {
#if defined(FLASHPORT_HAS_TILE_MMA)
  using Cfg = BwdConfig<P, kDqk, kDv>;
  using KTile = typename Cfg::KTile;
  using VTile = typename Cfg::VTile;
  using QTile = typename Cfg::QTile;
  using OTile = typename Cfg::OTile;
  using PtTile = typename Cfg::PtTile;
  using STile = typename Cfg::STile;
  using Acc = typename P::Acc;
  constexpr int kBlockM = Cfg::kBlockM, kBlockN = Cfg::kBlockN, kThreads = Cfg::kThreads;

  extern __shared__ uint4 smem_raw[];
  T* sK = reinterpret_cast<T*>(smem_raw);
  T* sV = sK + KTile::kElems;
  T* sQ = sV + VTile::kElems;
  T* sdO = sQ + QTile::kElems;
  T* sPt = Cfg::kReloadV ? sV : sdO + OTile::kElems;  // kReloadV: in V's tile, once phase 1 has read V
  T* sdSt = sPt + PtTile::kElems;
  T* sdS = sdSt + PtTile::kElems;
  // Not with kReloadV: lse and D are read from global memory there.
  [[maybe_unused]] float* sLse = reinterpret_cast<float*>(sdS + STile::kElems);
  [[maybe_unused]] float* sDsum = sLse + kBlockM;

  int n_block, hk, b;
  bwd_block_coords(p, p.deterministic, &n_block, &hk, &b);
  const int n0 = n_block * kBlockN;
  const int keys = min(kBlockN, p.seqlen_kv - n0);
  const int tid = vendor::thread_id();
  const int warp = vendor::warp_id();

  const MaskRule mask{p.seqlen_kv, p.mask_offset, p.window_left, p.window_right};
  int32_t m_begin, m_end;
  m_block_range(p, n_block, &m_begin, &m_end);
  const int m_count = m_end - m_begin;
  const int items = m_count * p.group;  // (query head of the group, query block) pairs, head-major

  const T* k = static_cast<const T*>(p.k) + b * p.k_stride[0] + int64_t(n0) * p.k_stride[1] + hk * p.k_stride[2];
  const T* v = static_cast<const T*>(p.v) + b * p.v_stride[0] + int64_t(n0) * p.v_stride[1] + hk * p.v_stride[2];

  auto item_head = [&](int it) { return hk * p.group + it / m_count; };
  auto item_block = [&](int it) { return m_begin + it % m_count; };
  auto load_q_do = [&](int it) {
    const int h = item_head(it);
    const int m0 = item_block(it) * kBlockM;
    const int rows = min(kBlockM, p.seqlen_q - m0);
    const T* q = static_cast<const T*>(p.q) + b * p.q_stride[0] + int64_t(m0) * p.q_stride[1] + h * p.q_stride[2];
    const T* d =
        static_cast<const T*>(p.dout) + b * p.dout_stride[0] + int64_t(m0) * p.dout_stride[1] + h * p.dout_stride[2];
    load_tile<QTile, kThreads>(sQ, q, p.q_stride[1], rows, p.head_dim_qk, p.vec_loads);
    load_tile<OTile, kThreads>(sdO, d, p.dout_stride[1], rows, p.head_dim_v, p.vec_loads);
    if constexpr (!Cfg::kReloadV) stage_lse_dsum<kBlockM, kThreads>(p, b, h, m0, sLse, sDsum, tid);
  };

  load_tile<KTile, kThreads>(sK, k, p.k_stride[1], keys, p.head_dim_qk, p.vec_loads);
  load_tile<VTile, kThreads>(sV, v, p.v_stride[1], keys, p.head_dim_v, p.vec_loads);
  if (items > 0) load_q_do(0);
  vendor::copy_commit();

  // Persistent accumulators of phase 2.
  const int wn2 = warp % Cfg::kWN2, wd2 = warp / Cfg::kWN2;
  Acc dv[Cfg::kTN2][Cfg::kTDv2], dk[Cfg::kTN2][Cfg::kTDk2];
#pragma unroll
  for (int i = 0; i < Cfg::kTN2; ++i) {
#pragma unroll
    for (int j = 0; j < Cfg::kTDv2; ++j) P::zero(dv[i][j]);
#pragma unroll
    for (int j = 0; j < Cfg::kTDk2; ++j) P::zero(dk[i][j]);
  }

  const bool softcap = p.softcap > 0.f;
  const float cap_log2 = p.softcap * kLog2e;
  const float scale_over_cap = softcap ? p.scale * p.softcap_inv : 0.f;
  const int wn1 = warp % Cfg::kWN1, wm1 = warp / Cfg::kWN1;
  const int wm3 = warp % Cfg::kWM3, wd3 = warp / Cfg::kWM3;

  for (int it = 0; it < items; ++it) {
    const int h = item_head(it);
    const int m_block = item_block(it);
    const int m0 = m_block * kBlockM;
    const int64_t row_base = (int64_t(b) * p.heads_q + h) * p.seqlen_q_pad;  // workspace row of query 0, head h

    // (A) Q, dO, lse and D of this item have landed.
    vendor::copy_wait<0>();
    vendor::block_sync();

    // Phase 1: S^T and dP^T for this warp's keys x queries.
    {
      Acc s[Cfg::kTN1][Cfg::kTM1], dp[Cfg::kTN1][Cfg::kTM1];
#pragma unroll
      for (int i = 0; i < Cfg::kTN1; ++i)
#pragma unroll
        for (int j = 0; j < Cfg::kTM1; ++j) {
          P::zero(s[i][j]);
          P::zero(dp[i][j]);
        }
      const int nw = wn1 * Cfg::kTN1 * 16, mw = wm1 * Cfg::kTM1 * 16;
#pragma unroll
      for (int kk = 0; kk < kDqk / 16; ++kk)
        mma_k_step<P, KTile>(s, sK, nw, kk * 16, [&](typename P::FragB& b, int j) {
          P::template load_b_nk<QTile>(b, sQ, mw + j * 16, kk * 16);
        });
#pragma unroll
      for (int kk = 0; kk < kDv / 16; ++kk)
        mma_k_step<P, VTile>(dp, sV, nw, kk * 16, [&](typename P::FragB& b, int j) {
          P::template load_b_nk<OTile>(b, sdO, mw + j * 16, kk * 16);
        });

      // kReloadV: every warp has read V (its last use in this query block) before P^T, dS^T, dS overwrite it.
      if constexpr (Cfg::kReloadV) vendor::block_sync();

      // lse * log2 e and D of query row m of this block: staged in LDS, or (kReloadV) the padded workspace rows.
      const auto row_lse = [&](int m) {
        if constexpr (Cfg::kReloadV) return p.lse_log2[row_base + m0 + m];
        else return sLse[m];
      };
      const auto row_dsum = [&](int m) {
        if constexpr (Cfg::kReloadV) return p.dsum[row_base + m0 + m];
        else return sDsum[m];
      };

      // Element-wise: rows of the accumulators are keys, columns are queries.
      const bool partial = mask.partial(m0, m0 + kBlockM - 1, n0, n0 + kBlockN - 1);
#pragma unroll
      for (int i = 0; i < Cfg::kTN1; ++i)
#pragma unroll
        for (int j = 0; j < Cfg::kTM1; ++j)
#pragma unroll
          for (int e = 0; e < P::kAccElems; e += 2) {
            const int n = nw + i * 16 + P::acc_row(e);
            const int m = mw + j * 16 + P::acc_col(e);
            float pr[2], ds[2];
#pragma unroll
            for (int x = 0; x < 2; ++x) {
              const float acc = s[i][j].v[e + x];
              // The exponent as one fused multiply-add, written out so that the Hopper kernel (bwd_sm90.cuh), which
              // computes it the same way, gives bitwise the same dK and dV.
              float pv, dsc = 1.f;
              if (softcap) {
                const float t = vendor::tanhf_(acc * scale_over_cap);
                pv = vendor::exp2f_fast(fmaf(cap_log2, t, -row_lse(m + x)));
                dsc = fmaf(-t, t, 1.f);
              } else {
                pv = vendor::exp2f_fast(fmaf(acc, p.scale_log2, -row_lse(m + x)));
              }
              const bool hidden = partial && !mask.visible(m0 + m + x, n0 + n);  // exact zeros, as bwd_sm90.cuh
              pr[x] = hidden ? 0.f : pv;
              ds[x] = hidden ? 0.f : pv * ((dp[i][j].v[e + x] - row_dsum(m + x)) * dsc);
            }
            store_pair<PtTile>(sPt, n, m, pr[0], pr[1]);
            store_pair<PtTile>(sdSt, n, m, ds[0], ds[1]);
            store_one<STile>(sdS, m, n, ds[0]);
            store_one<STile>(sdS, m + 1, n, ds[1]);
          }
    }
    vendor::block_sync();  // (B) P^T, dS^T, dS complete

    // Phase 2: dV += P^T dO, dK += dS^T Q over this block's queries.
    {
      const int nw = wn2 * Cfg::kTN2 * 16;
#pragma unroll
      for (int kk = 0; kk < kBlockM / 16; ++kk) {
        mma_k_step<P, PtTile>(dv, sPt, nw, kk * 16, [&](typename P::FragB& b, int j) {
          P::template load_b_kn<OTile>(b, sdO, kk * 16, (wd2 * Cfg::kTDv2 + j) * 16);
        });
        mma_k_step<P, PtTile>(dk, sdSt, nw, kk * 16, [&](typename P::FragB& b, int j) {
          P::template load_b_kn<QTile>(b, sQ, kk * 16, (wd2 * Cfg::kTDk2 + j) * 16);
        });
      }
    }
    vendor::block_sync();  // (C) nobody reads Q / dO of this item any more: prefetch the next one
    if (it + 1 < items) load_q_do(it + 1);
    vendor::copy_commit();

    // Phase 3: this block's share of dQ = dS K, added to the fp32 accumulator.
    {
      Acc dq[Cfg::kTM3][Cfg::kTD3];
#pragma unroll
      for (int i = 0; i < Cfg::kTM3; ++i)
#pragma unroll
        for (int j = 0; j < Cfg::kTD3; ++j) P::zero(dq[i][j]);
      const int mw = wm3 * Cfg::kTM3 * 16, dw = wd3 * Cfg::kTD3 * 16;
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk)
        mma_k_step<P, STile>(dq, sdS, mw, kk * 16, [&](typename P::FragB& b, int j) {
          P::template load_b_kn<KTile>(b, sK, kk * 16, dw + j * 16);
        });

      int32_t* const sem = dq_turn_wait(p, b, h, m_block, n_block);
      float* acc_rows = p.dq_accum + (row_base + m0) * p.head_dim_qk;
      const bool even_rows = p.head_dim_qk % 2 == 0;  // pairs (e, e + 1) start at even columns: 8-byte aligned
#pragma unroll
      for (int i = 0; i < Cfg::kTM3; ++i)
#pragma unroll
        for (int j = 0; j < Cfg::kTD3; ++j)
#pragma unroll
          for (int e = 0; e < P::kAccElems; e += 2) {
            const int m = mw + i * 16 + P::acc_row(e);
            const int c = dw + j * 16 + P::acc_col(e);
            // Rows past seqlen_q are padding rows of the accumulator (never read): no row test needed.
            float* dst = acc_rows + int64_t(m) * p.head_dim_qk + c;
            if (c + 1 < p.head_dim_qk) {
              atomic_add_pair(dst, dq[i][j].v[e], dq[i][j].v[e + 1], even_rows);
            } else if (c < p.head_dim_qk) {
              atomicAdd(dst, dq[i][j].v[e]);
            }
          }
      dq_turn_done(p, sem);
    }
    if constexpr (Cfg::kReloadV) {
      if (it + 1 < items) {
        vendor::block_sync();  // (D) every warp has read dS (in V's tile): V again for the next query block
        load_tile<VTile, kThreads>(sV, v, p.v_stride[1], keys, p.head_dim_v, p.vec_loads);
        vendor::copy_commit();
      }
    }
  }
  vendor::copy_wait<0>();  // no copy may still target shared memory when the block exits

  // dV and dK (times the softmax scale: S = scale * Q K^T) for this block's keys.
  {
    const int nw = wn2 * Cfg::kTN2 * 16;
    T* dvg = static_cast<T*>(p.dv) + b * p.dv_stride[0] + int64_t(n0) * p.dv_stride[1] + hk * p.dv_stride[2];
    T* dkg = static_cast<T*>(p.dk) + b * p.dk_stride[0] + int64_t(n0) * p.dk_stride[1] + hk * p.dk_stride[2];
    store_acc<P, T>(dvg, p.dv_stride[1], dv, nw, wd2 * Cfg::kTDv2 * 16, keys, p.head_dim_v, 1.f, p.vec_stores);
    store_acc<P, T>(dkg, p.dk_stride[1], dk, nw, wd2 * Cfg::kTDk2 * 16, keys, p.head_dim_qk, p.scale, p.vec_stores);
  }
#else
  // Compiled for an architecture without the tile MMA this kernel needs; the host never launches it there.
  __trap();
#endif
}

// The launch with policy P (cuda-fma: fwd_fma.cuh); launch_bwd_main runs the target's default policy.
template <class T, int kDqk, int kDv, class P>
cudaError_t launch_bwd_main_policy(const BwdParams& p, cudaStream_t stream) {
  using Cfg = BwdConfig<P, kDqk, kDv>;
  unsigned g[3];
  bwd_main_grid(p, g);
  return launch_with_smem(bwd_main_kernel<T, kDqk, kDv, P>, dim3(g[0], g[1], g[2]), Cfg::kThreads, Cfg::kSmemBytes,
                          stream, p);
}

template <class T, int kDqk, int kDv> cudaError_t launch_bwd_main(const BwdParams& p, cudaStream_t stream) {
  return launch_bwd_main_policy<T, kDqk, kDv, TileMmaDefault<T>>(p, stream);
}

}  // namespace flashport::kernels

#endif
