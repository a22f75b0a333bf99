// The Hopper backward main kernel (sm_90a): the FlashAttention-2 backward schedule of bwd_main.cuh with warpgroup
// MMAs (wgmma), for 16-bit inputs and equal head dims 64 and 128, non-deterministic dQ. NVIDIA-only; every other
// problem runs bwd_main.cuh (backward.cu chooses).
//
// One block = 128 keys of one (batch, kv head), 2 warpgroups of 64 keys each; K and V stay in shared memory and each
// warpgroup keeps dK, dV of its keys in fp32 registers over every (query head of the GQA group, query block of 64
// rows) its keys meet. Per query block:
//   1. S^T = K Q^T and dP^T = V dO^T (keys x queries, both operands from shared memory), P = exp2(S scale log2 e -
//      lse log2 e), dS = P (dP - D) (softcap derivative included); lse and D are read from the padded workspace rows.
//   2. dV += P^T dO and dK += dS^T Q with P^T / dS^T straight from registers (wgmma's accumulator layout per warp is
//      the A fragment layout: no shared-memory round trip), dO and Q read N-major.
//   3. dS^T goes to shared memory once; dQ = dS K (A = dS read M-major, 64 columns per warpgroup) is added to the
//      fp32 workspace with vector atomics.
// The next query block's Q and dO are copied (cp.async, 2 buffers) while the current one is computed.
#ifndef FLASHPORT_CUDA_KERNELS_BWD_SM90_CUH
#define FLASHPORT_CUDA_KERNELS_BWD_SM90_CUH

#include "bwd_sm90.h"
#include "kernels/bwd_launch.cuh"
#include "kernels/bwd_items.cuh"
#include "kernels/bwd_main.cuh"
#include "kernels/bwd_params.cuh"
#include "kernels/common.cuh"
#include "kernels/copy.cuh"
#include "kernels/mask.cuh"
#include "kernels/tile_mma_sm80.cuh"
#include "kernels/wgmma.cuh"

namespace flashport::kernels {

template <int kD> struct Sm90BwdConfig {
  static constexpr int kBlockM = kSm90BwdBlockM, kBlockN = kSm90BwdBlockN, kThreads = 256;
  static constexpr int kKeysPerWarpgroup = 64;
  // dQ is split between the warpgroups by columns: 64 each over all 128 keys, after a block barrier; at D 64
  // warpgroup 0 alone. Splitting by keys instead (each warpgroup its own 64 keys, twice the atomics) measured
  // slower on the H200: 190 vs 224 TFLOP/s at D 128, 140 vs 146 at D 64 (docs/perf/cuda-backward.md).
  // The dQ tile goes to the workspace by per-element vector atomics: staging it in shared memory for one bulk
  // reduction per row (cp.reduce.async.bulk) measured 3-12 % slower (docs/perf/cuda-backward.md).
  static constexpr int kDqN = 64;  // dQ columns per warpgroup
  static constexpr int kPvN = kD < 128 ? kD : 128;  // N of one dV / dK instruction
  using KTile = SmemTileSw128<kBlockN, kD>;
  using QTile = SmemTileSw128<kBlockM, kD>;
  using DsTile = SmemTileSw128<kBlockN, kBlockM>;  // dS^T, keys x queries
  static constexpr int kSmemBytes = 2 * KTile::kBytes + 4 * QTile::kBytes + DsTile::kBytes + 1024;
};

template <class T, int kD>
__global__ void __launch_bounds__(256, 1) bwd_sm90_kernel(const BwdParams p) {
#if defined(FLASHPORT_HAS_WGMMA)
  using Cfg = Sm90BwdConfig<kD>;
  using P = TileMmaSm80<T>;  // accumulator and A-fragment layout of each warp's 16 rows of a wgmma
  using Acc = typename P::Acc;
  using KTile = typename Cfg::KTile;
  using QTile = typename Cfg::QTile;
  using DsTile = typename Cfg::DsTile;
  constexpr int kBlockM = Cfg::kBlockM, kBlockN = Cfg::kBlockN, kThreads = Cfg::kThreads;
  constexpr int kMT = kBlockM / 16;  // 16-query tiles of S^T / dP^T per warp
  constexpr int kDT = kD / 16;       // 16-column tiles of dK / dV per warp
  constexpr int kDqN = Cfg::kDqN;
  constexpr int kDqT = kDqN / 16;  // 16-column tiles of dQ per warp

  extern __shared__ uint4 smem_raw[];
  const uint32_t raw_addr = vendor::smem_addr(smem_raw);
  char* smem = reinterpret_cast<char*>(smem_raw) + (((raw_addr + 1023u) & ~1023u) - raw_addr);
  T* sK = reinterpret_cast<T*>(smem);
  T* sV = sK + KTile::kElems;
  T* sQ = sV + KTile::kElems;  // 2 buffers
  T* sdO = sQ + 2 * QTile::kElems;  // 2 buffers
  T* sdS = sdO + 2 * QTile::kElems;

  const int n_block = vendor::block_id_x();
  const int hk = vendor::block_id_y();
  const int b = vendor::block_id_z();
  const int n0 = n_block * kBlockN;
  const int keys = min(kBlockN, p.seqlen_kv - n0);
  // Warp-uniform for ptxas (a wgmma under a branch it cannot prove uniform is serialised).
  const int warpgroup = __shfl_sync(0xffffffffu, vendor::thread_id() / 128, 0);
  const int warp_row = (vendor::warp_id() % 4) * 16;         // this warp's first row inside a 64-row wgmma
  const int key_wg = warpgroup * Cfg::kKeysPerWarpgroup;      // this warpgroup's first key inside the block

  const MaskRule mask{p.seqlen_kv, p.mask_offset, p.window_left, p.window_right};
  const BwdItems<T> work(p, b, hk, n_block);
  auto load_q_do = [&](int it) {
    const int h = work.head(p, it);
    const int m0 = work.block(it) * kBlockM;
    const int rows = min(kBlockM, p.seqlen_q - m0);
    load_tile<QTile, kThreads>(sQ + (it % 2) * QTile::kElems, work.q(p, h, m0), p.q_stride[1], rows,
                               p.head_dim_qk, p.vec_loads);
    load_tile<QTile, kThreads>(sdO + (it % 2) * QTile::kElems, work.dout(p, h, m0), p.dout_stride[1], rows,
                               p.head_dim_v, p.vec_loads);
  };

  load_tile<KTile, kThreads>(sK, work.k(p, n0), p.k_stride[1], keys, p.head_dim_qk, p.vec_loads);
  load_tile<KTile, kThreads>(sV, work.v(p, n0), p.v_stride[1], keys, p.head_dim_v, p.vec_loads);
  if (work.items > 0) load_q_do(0);
  vendor::copy_commit();

  Acc dv[1][kDT], dk[1][kDT];
#pragma unroll
  for (int t = 0; t < kDT; ++t) {
    P::zero(dv[0][t]);
    P::zero(dk[0][t]);
  }

  const bool softcap = p.softcap > 0.f;
  const float cap_log2 = p.softcap * kLog2e;
  const float scale_over_cap = softcap ? p.scale * p.softcap_inv : 0.f;
  const uint32_t k_addr = vendor::smem_addr(sK), v_addr = vendor::smem_addr(sV), ds_addr = vendor::smem_addr(sdS);

  for (int it = 0; it < work.items; ++it) {
    const int h = work.head(p, it);
    const int m0 = work.block(it) * kBlockM;
    const int64_t row_base = (int64_t(b) * p.heads_q + h) * p.seqlen_q_pad + m0;  // workspace row of query m0

    // Q, dO of this item have landed; every warpgroup is done with the previous item's buffers and dS.
    vendor::copy_wait<0>();
    fence_proxy_async();
    vendor::block_sync();
    if (it + 1 < work.items) load_q_do(it + 1);
    vendor::copy_commit();
    const uint32_t q_addr = vendor::smem_addr(sQ + (it % 2) * QTile::kElems);
    const uint32_t do_addr = vendor::smem_addr(sdO + (it % 2) * QTile::kElems);

    // lse * log2 e and D of the queries this lane's accumulator columns hold (pairs of adjacent queries).
    float2 lse[kMT][2], dsum[kMT][2];
#pragma unroll
    for (int t = 0; t < kMT; ++t)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int m = t * 16 + P::acc_col(4 * half);
        lse[t][half] = *reinterpret_cast<const float2*>(p.lse_log2 + row_base + m);
        dsum[t][half] = *reinterpret_cast<const float2*>(p.dsum + row_base + m);
      }

    // 1. S^T = K Q^T, dP^T = V dO^T for this warpgroup's 64 keys x the block's 64 queries.
    Acc s[kMT], dp[kMT];
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      const uint32_t step = (kk % 4) * 32;  // k16 slice inside the 128-byte rows of column block kk / 4
      const uint64_t kd = wgmma_desc(k_addr + (kk / 4) * KTile::kColBlockBytes + key_wg * 128 + step, 16, 1024);
      const uint64_t qd = wgmma_desc(q_addr + (kk / 4) * QTile::kColBlockBytes + step, 16, 1024);
      WgmmaSS<T, kBlockM>::template run<0, 0>(&s[0].v[0], kd, qd, kk > 0);
    }
    wgmma_commit();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      const uint32_t step = (kk % 4) * 32;
      const uint64_t vd = wgmma_desc(v_addr + (kk / 4) * KTile::kColBlockBytes + key_wg * 128 + step, 16, 1024);
      const uint64_t od = wgmma_desc(do_addr + (kk / 4) * QTile::kColBlockBytes + step, 16, 1024);
      WgmmaSS<T, kBlockM>::template run<0, 0>(&dp[0].v[0], vd, od, kk > 0);
    }
    wgmma_commit();

    wgmma_wait<0>();
    fence_registers(&s[0].v[0], kMT * P::kAccElems);
    fence_registers(&dp[0].v[0], kMT * P::kAccElems);
    // P^T in s, dS^T = P^T (dP^T - D) (times the softcap derivative 1 - tanh^2) in dp.
    const int key_row0 = n0 + key_wg + warp_row;  // absolute key of this warp's first accumulator row
    const bool partial = mask.partial(m0, m0 + kBlockM - 1, n0 + key_wg, n0 + key_wg + Cfg::kKeysPerWarpgroup - 1);
#pragma unroll
    for (int t = 0; t < kMT; ++t)
#pragma unroll
      for (int e = 0; e < P::kAccElems; ++e) {
        float s2, dsc = 1.f;
        if (softcap) {
          const float th = vendor::tanhf_(s[t].v[e] * scale_over_cap);
          s2 = cap_log2 * th;
          dsc = 1.f - th * th;
        } else {
          s2 = s[t].v[e] * p.scale_log2;
        }
        const float2 l = lse[t][e >> 2], d = dsum[t][e >> 2];
        float pv = vendor::exp2f_fast(s2 - ((e & 1) ? l.y : l.x));
        if (partial && !mask.visible(m0 + t * 16 + P::acc_col(e), key_row0 + P::acc_row(e))) pv = 0.f;
        s[t].v[e] = pv;
        dp[t].v[e] = pv * (dp[t].v[e] - ((e & 1) ? d.y : d.x)) * dsc;
      }

    // 2. dV += P^T dO, dK += dS^T Q (A from registers, B N-major).
    typename P::FragA pa[kMT], da[kMT];
#pragma unroll
    for (int t = 0; t < kMT; ++t) {
      P::acc_to_a(pa[t], s[t]);
      P::acc_to_a(da[t], dp[t]);
    }
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kMT; ++kk)
#pragma unroll
      for (int part = 0; part < kD / Cfg::kPvN; ++part) {
        const uint32_t off = kk * 2048 + part * (Cfg::kPvN / 64) * QTile::kColBlockBytes;
        const uint64_t od = wgmma_desc(do_addr + off, QTile::kColBlockBytes, 1024);
        WgmmaRS<T, Cfg::kPvN>::template run<1>(&dv[0][part * (Cfg::kPvN / 16)].v[0], pa[kk].r, od, 1);
        const uint64_t qd = wgmma_desc(q_addr + off, QTile::kColBlockBytes, 1024);
        WgmmaRS<T, Cfg::kPvN>::template run<1>(&dk[0][part * (Cfg::kPvN / 16)].v[0], da[kk].r, qd, 1);
      }
    wgmma_commit();

    // 3. dS^T to shared memory (keys x queries) for dQ = dS K; runs while dV / dK are computed.
#pragma unroll
    for (int t = 0; t < kMT; ++t)
#pragma unroll
      for (int e = 0; e < P::kAccElems; e += 2)
        store_pair<DsTile>(sdS, key_wg + warp_row + P::acc_row(e), t * 16 + P::acc_col(e), dp[t].v[e],
                           dp[t].v[e + 1]);
    wgmma_wait<0>();
    fence_registers(&dv[0][0].v[0], kDT * P::kAccElems);
    fence_registers(&dk[0][0].v[0], kDT * P::kAccElems);
    fence_registers(&pa[0].r[0], kMT * 4);
    fence_registers(&da[0].r[0], kMT * 4);
    fence_proxy_async();
    vendor::block_sync();  // both warpgroups' dS^T rows are in shared memory

    const int dq_col0 = warpgroup * kDqN;
    if (dq_col0 >= kD) continue;  // D 64: warpgroup 1 has no dQ columns (warp-uniform)
    Acc dq[kDqT];
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      const uint32_t rows = kk * 2048;  // 16 keys = one k16 step
      const uint64_t sd = wgmma_desc(ds_addr + rows, DsTile::kColBlockBytes, 1024);
      const uint64_t kd = wgmma_desc(k_addr + rows + (dq_col0 / 64) * KTile::kColBlockBytes, KTile::kColBlockBytes,
                                     1024);
      WgmmaSS<T, 64>::template run<1, 1>(&dq[0].v[0], sd, kd, kk > 0);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(&dq[0].v[0], kDqT * P::kAccElems);

    float* acc_rows = p.dq_accum + row_base * p.head_dim_qk;
    const bool even_rows = p.head_dim_qk % 2 == 0;
#pragma unroll
    for (int t = 0; t < kDqT; ++t)
#pragma unroll
      for (int e = 0; e < P::kAccElems; e += 2) {
        const int m = warp_row + P::acc_row(e);
        const int c = dq_col0 + t * 16 + P::acc_col(e);
        // Rows past seqlen_q are padding rows of the accumulator (never read): no row test needed.
        float* dst = acc_rows + int64_t(m) * p.head_dim_qk + c;
        if (c + 1 < p.head_dim_qk) {
          atomic_add_pair(dst, dq[t].v[e], dq[t].v[e + 1], even_rows);
        } else if (c < p.head_dim_qk) {
          atomicAdd(dst, dq[t].v[e]);
        }
      }
  }
  vendor::copy_wait<0>();  // no copy may still target shared memory when the block exits

  // dV and dK (times the softmax scale: S = scale * Q K^T) of this warp's keys.
  T* dvg = static_cast<T*>(p.dv) + b * p.dv_stride[0] + int64_t(n0) * p.dv_stride[1] + hk * p.dv_stride[2];
  T* dkg = static_cast<T*>(p.dk) + b * p.dk_stride[0] + int64_t(n0) * p.dk_stride[1] + hk * p.dk_stride[2];
  store_acc<P, T>(dvg, p.dv_stride[1], dv, key_wg + warp_row, 0, keys, p.head_dim_v, 1.f, p.vec_stores);
  store_acc<P, T>(dkg, p.dk_stride[1], dk, key_wg + warp_row, 0, keys, p.head_dim_qk, p.scale, p.vec_stores);
#else
  // Compiled for a target without wgmma; backward.cu selects this kernel only on compute 9.0 with sm_90a code.
  __trap();
#endif
}

template <class T, int kD> cudaError_t launch_bwd_sm90(const BwdParams& p, cudaStream_t stream) {
  using Cfg = Sm90BwdConfig<kD>;
  return launch_with_smem(bwd_sm90_kernel<T, kD>, dim3(p.n_blocks, p.heads_kv, p.batch), Cfg::kThreads,
                          Cfg::kSmemBytes, stream, p);
}

}  // namespace flashport::kernels

#endif
