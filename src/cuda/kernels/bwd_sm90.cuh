// The Hopper backward main kernel (sm_90a): the FlashAttention-2 backward schedule of bwd_main.cuh with warpgroup
// MMAs (wgmma), for 16-bit inputs and equal head dims 64, 128 and 256; deterministic mode adds dQ in key-block
// order (dq_turn_wait / dq_turn_done). NVIDIA-only; every other problem runs bwd_main.cuh (backward.cu chooses).
//
// D 64 / 128: one block = 128 keys of one (batch, kv head), 2 warpgroups of 64 keys each; K and V stay in shared
// memory and each warpgroup keeps dK, dV of its keys in fp32 registers over every (query head of the GQA group,
// query block of kBlockM rows: 128 at D 64, 64 at D 128) its keys meet. Per query block:
//   1. S^T = K Q^T and dP^T = V dO^T (keys x queries, both operands from shared memory), P = exp2(S scale log2 e -
//      lse log2 e), dS = P (dP - D) (softcap derivative included); lse and D are copied with Q and dO from the
//      padded workspace rows into shared memory.
//   2. dV += P^T dO and dK += dS^T Q with P^T / dS^T straight from registers (wgmma's accumulator layout per warp is
//      the A fragment layout: no shared-memory round trip), dO and Q read N-major.
//   3. dS^T goes to shared memory once; dQ = dS K (A = dS read M-major), one 64 x 64 tile per warpgroup, is added
//      to the fp32 workspace with vector atomics.
// D 256 (Sm90BwdConfig::kSplitD): one block = 64 keys, shared by both warpgroups, which split the head dim: each
// computes S^T / dP^T for half of the block's 64 queries, P^T and dS^T go to shared memory, and each computes the
// dV, dK (128 columns each, kept in registers) and dQ (64 x 128) products of its column half from shared memory,
// dQ first, so that its atomics go out while the tensor cores compute dV and dK.
// The next query block's Q, dO, lse and D are copied (cp.async, 2 buffers) while the current one is computed.
#ifndef FLASHPORT_CUDA_KERNELS_BWD_SM90_CUH
#define FLASHPORT_CUDA_KERNELS_BWD_SM90_CUH

#include <type_traits>

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
  static constexpr int kBlockM = sm90_bwd_block_m(kD), kBlockN = sm90_bwd_block_n(kD), kThreads = 256;
  // D 256: dK and dV of 64 keys x 256 columns would be 256 fp32 registers per thread for one warpgroup, so the two
  // warpgroups share the block's 64 keys and split the head dim instead: each computes S^T / dP^T for half the
  // queries, P^T and dS^T go to shared memory, and dV, dK, dQ are shared-memory products of 128 columns each.
  static constexpr bool kSplitD = kD > 128;
  static constexpr int kKeysPerWarpgroup = kSplitD ? kBlockN : 64;                // rows of its S^T
  static constexpr int kQueriesPerWarpgroup = kSplitD ? kBlockM / 2 : kBlockM;  // columns of its S^T
  static constexpr int kColsPerWarpgroup = kSplitD ? kD / 2 : kD;               // its dK / dV columns
  // dQ (kBlockM x kD, over all 128 keys, after a block barrier) is split between the two warpgroups into 64 x 64
  // tiles: by query rows at D 64 (128-query blocks), by columns at D 128. Splitting by keys instead (each
  // warpgroup its own 64 keys, twice the atomics) measured slower on the H200: 190 vs 224 TFLOP/s at D 128
  // (docs/perf/cuda-backward.md). The tile goes to the workspace by per-element vector atomics: staging it in
  // shared memory for one bulk reduction per row (cp.reduce.async.bulk) measured 3-12 % slower.
  static constexpr bool kDqByRows = kBlockM == 128;
  static_assert(kSplitD ? kD == 256 && kBlockM == 64 && kBlockN == 64
                        : kDqByRows ? kD == 64 : kD == 128 && kBlockM == 64,
                "dQ tiles: 2 warpgroups x 64 x 64, or x 64 x 128 at D 256");
  static constexpr int kDqN = kSplitD ? kD / 2 : 64;  // dQ columns per warpgroup
  static constexpr int kPvN = kColsPerWarpgroup < 128 ? kColsPerWarpgroup : 128;  // N of one dV / dK instruction
  using KTile = SmemTileSw128<kBlockN, kD>;
  using QTile = SmemTileSw128<kBlockM, kD>;
  using DsTile = SmemTileSw128<kBlockN, kBlockM>;  // dS^T (and P^T at D 256), keys x queries
  // + 2 buffers of lse and D (kBlockM floats each) + 1 KB for the 1024-byte alignment of the swizzle atoms.
  static constexpr int kSmemBytes =
      2 * KTile::kBytes + 4 * QTile::kBytes + (kSplitD ? 2 : 1) * DsTile::kBytes + 4 * kBlockM * 4 + 1024;
};

// kDeterministic: p.deterministic, compiled in (the run-time test changed the other mode's register allocation).
template <class T, int kD, bool kDeterministic>
__global__ void __launch_bounds__(256, 1) bwd_sm90_kernel(const BwdParams p) {
#if defined(FLASHPORT_HAS_WGMMA)
  using Cfg = Sm90BwdConfig<kD>;
  using P = TileMmaSm80<T>;  // accumulator and A-fragment layout of each warp's 16 rows of a wgmma
  using Acc = typename P::Acc;
  using KTile = typename Cfg::KTile;
  using QTile = typename Cfg::QTile;
  using DsTile = typename Cfg::DsTile;
  constexpr int kBlockM = Cfg::kBlockM, kBlockN = Cfg::kBlockN, kThreads = Cfg::kThreads;
  constexpr int kMT = Cfg::kQueriesPerWarpgroup / 16;  // 16-query tiles of S^T / dP^T per warp
  constexpr int kDT = Cfg::kColsPerWarpgroup / 16;     // 16-column tiles of dK / dV per warp
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
  T* sPt = sdS + DsTile::kElems;  // D 256 only
  float* sLse = reinterpret_cast<float*>(sPt + (Cfg::kSplitD ? DsTile::kElems : 0));  // 2 buffers of lse * log2 e,
                                                                                        // then 2 of D
  float* sDsum = sLse + 2 * kBlockM;

  int n_block, hk, b;
  bwd_block_coords(p, kDeterministic, &n_block, &hk, &b);  // deterministic mode: (batch, kv head) fastest
  const int n0 = n_block * kBlockN;
  const int keys = min(kBlockN, p.seqlen_kv - n0);
  // Warp-uniform for ptxas (a wgmma under a branch it cannot prove uniform is serialised).
  const int warpgroup = __shfl_sync(0xffffffffu, vendor::thread_id() / 128, 0);
  const int warp_row = (vendor::warp_id() % 4) * 16;         // this warp's first row inside a 64-row wgmma
  const int key_wg = Cfg::kSplitD ? 0 : warpgroup * Cfg::kKeysPerWarpgroup;  // its first key inside the block
  const int q_wg = Cfg::kSplitD ? warpgroup * Cfg::kQueriesPerWarpgroup : 0;  // its first S^T query column
  const int col_wg = Cfg::kSplitD ? warpgroup * Cfg::kColsPerWarpgroup : 0;   // its first dK / dV column

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
    stage_lse_dsum<kBlockM, kThreads>(p, b, h, m0, sLse + (it % 2) * kBlockM, sDsum + (it % 2) * kBlockM,
                                      vendor::thread_id());
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
  const float scale_over_cap = p.scale * p.softcap_inv;
  // Operand descriptors, built once and stepped per instruction (wgmma_desc_step): K-major slices of K / V (this
  // warpgroup's keys), K as the N-major B of dQ, and dS^T as dQ's M-major A.
  const uint32_t k_addr = vendor::smem_addr(sK), v_addr = vendor::smem_addr(sV);
  const uint64_t k_kmajor = wgmma_desc(k_addr + key_wg * 128, 16, 1024);
  const uint64_t v_kmajor = wgmma_desc(v_addr + key_wg * 128, 16, 1024);
  const uint64_t k_nmajor = wgmma_desc(k_addr, KTile::kColBlockBytes, 1024);
  const uint64_t ds_mmajor = wgmma_desc(vendor::smem_addr(sdS), DsTile::kColBlockBytes, 1024);

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
    const uint64_t q_kmajor = wgmma_desc(q_addr + q_wg * 128, 16, 1024);  // this warpgroup's query rows
    const uint64_t do_kmajor = wgmma_desc(do_addr + q_wg * 128, 16, 1024);
    const uint64_t q_nmajor = wgmma_desc(q_addr, QTile::kColBlockBytes, 1024);
    const uint64_t do_nmajor = wgmma_desc(do_addr, QTile::kColBlockBytes, 1024);

    // lse * log2 e and D of this warpgroup's S^T query columns.
    const float* lse_rows = sLse + (it % 2) * kBlockM + q_wg;
    const float* dsum_rows = sDsum + (it % 2) * kBlockM + q_wg;

    // 1. S^T = K Q^T, dP^T = V dO^T for this warpgroup's keys x queries (64 x kQueriesPerWarpgroup).
    Acc s[kMT], dp[kMT];
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      const uint32_t step = (kk % 4) * 32;  // k16 slice inside the 128-byte rows of column block kk / 4
      const uint64_t kd = wgmma_desc_step(k_kmajor, (kk / 4) * KTile::kColBlockBytes + step);
      const uint64_t qd = wgmma_desc_step(q_kmajor, (kk / 4) * QTile::kColBlockBytes + step);
      WgmmaSS<T, Cfg::kQueriesPerWarpgroup>::template run<0, 0>(&s[0].v[0], kd, qd, kk > 0);
    }
    wgmma_commit();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      const uint32_t step = (kk % 4) * 32;
      const uint64_t vd = wgmma_desc_step(v_kmajor, (kk / 4) * KTile::kColBlockBytes + step);
      const uint64_t od = wgmma_desc_step(do_kmajor, (kk / 4) * QTile::kColBlockBytes + step);
      WgmmaSS<T, Cfg::kQueriesPerWarpgroup>::template run<0, 0>(&dp[0].v[0], vd, od, kk > 0);
    }
    wgmma_commit();

    wgmma_wait<0>();
    fence_registers(&s[0].v[0], kMT * P::kAccElems);
    fence_registers(&dp[0].v[0], kMT * P::kAccElems);
    // P^T in s, dS^T = P^T (dP^T - D) (times the softcap derivative 1 - tanh^2) in dp, in passes over the tiles
    // decided once per block: the softcap's tanh (its own pass, so that the common one keeps its registers), the
    // exponent, and the mask on boundary blocks only. Tested per element, these branches were the loop's most issued
    // instructions (ncu). The operations are those of bwd_main.cuh, so dK and dV match the deterministic mode's
    // bitwise: P = exp2(fma(score, k, -lse)), dS = P ((dP - D) dsc).
    // Queries t * 16 + acc_col(e): pairs of adjacent columns, one 8-byte shared load each for lse and D.
    auto row_pair = [&](const float* rows, int t, int e) {
      return *reinterpret_cast<const float2*>(rows + t * 16 + P::acc_col(e & ~1));
    };
    if (softcap) {
#pragma unroll
      for (int t = 0; t < kMT; ++t)
#pragma unroll
        for (int e = 0; e < P::kAccElems; ++e) {
          const float2 d2 = row_pair(dsum_rows, t, e);
          const float th = vendor::tanhf_(s[t].v[e] * scale_over_cap);
          s[t].v[e] = th;
          dp[t].v[e] = (dp[t].v[e] - ((e & 1) ? d2.y : d2.x)) * fmaf(-th, th, 1.f);
        }
    }
    const float exp_scale = softcap ? cap_log2 : p.scale_log2;
    const float dsum_scale = softcap ? 0.f : 1.f;  // D is already subtracted with the softcap
#pragma unroll
    for (int t = 0; t < kMT; ++t)
#pragma unroll
      for (int e = 0; e < P::kAccElems; ++e) {
        const float2 l2 = row_pair(lse_rows, t, e), d2 = row_pair(dsum_rows, t, e);
        s[t].v[e] = vendor::exp2f_fast(fmaf(s[t].v[e], exp_scale, -((e & 1) ? l2.y : l2.x)));
        dp[t].v[e] = s[t].v[e] * (dp[t].v[e] - dsum_scale * ((e & 1) ? d2.y : d2.x));
      }
    const int q0 = m0 + q_wg;  // this warpgroup's first query
    constexpr int kQ = Cfg::kQueriesPerWarpgroup;
    if (mask.partial(q0, q0 + kQ - 1, n0 + key_wg, n0 + key_wg + Cfg::kKeysPerWarpgroup - 1)) {
#pragma unroll
      for (int slot = 0; slot < P::kRowSlots; ++slot) {
        int64_t lo, hi;  // queries [lo, hi) see this slot's key
        mask.query_bounds(n0 + key_wg + warp_row + P::slot_row(slot), &lo, &hi);
        const int col_lo = static_cast<int>(min(max(lo - q0, int64_t(0)), int64_t(kQ)));
        const int col_hi = static_cast<int>(min(max(hi - q0, int64_t(0)), int64_t(kQ)));
#pragma unroll
        for (int t = 0; t < kMT; ++t)
#pragma unroll
          for (int e = 0; e < P::kAccElems; ++e) {
            const int col = t * 16 + P::acc_col(e);
            if (P::acc_slot(e) == slot && (col < col_lo || col >= col_hi)) s[t].v[e] = dp[t].v[e] = 0.f;
          }
      }
    }

    // P^T and dS^T as 16-bit A fragments (wgmma's accumulator layout per warp is the A fragment layout).
    typename P::FragA pa[kMT], da[kMT];
#pragma unroll
    for (int t = 0; t < kMT; ++t) {
      P::acc_to_a(pa[t], s[t]);
      P::acc_to_a(da[t], dp[t]);
    }

    // dV += P^T dO, dK += dS^T Q (B N-major), issued after this warpgroup's dQ product so that the dQ atomics go
    // out while the tensor cores compute them (at D 256, where the atomics' queue was the kernel's largest stall,
    // this measured +4-8 %: v4.5). A from registers (P^T / dS^T of this warpgroup's keys and all the block's
    // queries), or at D 256 from shared memory (each warpgroup holds half the queries), K-major.
    // Deterministic mode at D 64 / 128 issues them before the dS^T store instead, as before v4.5: it waits for
    // every product before its dQ turn anyway, and the later issue spilled 168 bytes at D 128.
    constexpr bool kDvDkFirst = kDeterministic && !Cfg::kSplitD;
    auto issue_dv_dk = [&] {
      if constexpr (Cfg::kSplitD) {
        const uint64_t pt_kmajor = wgmma_desc(vendor::smem_addr(sPt), 16, 1024);
        const uint64_t ds_kmajor = wgmma_desc(vendor::smem_addr(sdS), 16, 1024);
#pragma unroll
        for (int kk = 0; kk < kBlockM / 16; ++kk)
#pragma unroll
          for (int part = 0; part < Cfg::kColsPerWarpgroup / Cfg::kPvN; ++part) {
            const uint32_t a_step = (kk / 4) * DsTile::kColBlockBytes + (kk % 4) * 32;
            const uint32_t off = kk * 2048 + (col_wg / 64 + part * (Cfg::kPvN / 64)) * QTile::kColBlockBytes;
            WgmmaSS<T, Cfg::kPvN>::template run<0, 1>(&dv[0][part * (Cfg::kPvN / 16)].v[0],
                                                       wgmma_desc_step(pt_kmajor, a_step),
                                                       wgmma_desc_step(do_nmajor, off), 1);
            WgmmaSS<T, Cfg::kPvN>::template run<0, 1>(&dk[0][part * (Cfg::kPvN / 16)].v[0],
                                                       wgmma_desc_step(ds_kmajor, a_step),
                                                       wgmma_desc_step(q_nmajor, off), 1);
          }
      } else {
#pragma unroll
        for (int kk = 0; kk < kMT; ++kk)
#pragma unroll
          for (int part = 0; part < kD / Cfg::kPvN; ++part) {
            const uint32_t off = kk * 2048 + part * (Cfg::kPvN / 64) * QTile::kColBlockBytes;
            const uint64_t od = wgmma_desc_step(do_nmajor, off);
            WgmmaRS<T, Cfg::kPvN>::template run<1>(&dv[0][part * (Cfg::kPvN / 16)].v[0], pa[kk].r, od, 1);
            const uint64_t qd = wgmma_desc_step(q_nmajor, off);
            WgmmaRS<T, Cfg::kPvN>::template run<1>(&dk[0][part * (Cfg::kPvN / 16)].v[0], da[kk].r, qd, 1);
          }
      }
      wgmma_commit();
    };
    // After the last wgmma of the item: its accumulators and A fragments are the compiler's again.
    auto retire_dv_dk = [&] {
      wgmma_wait<0>();
      fence_registers(&dv[0][0].v[0], kDT * P::kAccElems);
      fence_registers(&dk[0][0].v[0], kDT * P::kAccElems);
      if constexpr (!Cfg::kSplitD) {  // A operands from registers
        fence_registers(&pa[0].r[0], kMT * 4);
        fence_registers(&da[0].r[0], kMT * 4);
      }
    };

    if constexpr (kDvDkFirst) {
      wgmma_fence();
      issue_dv_dk();
    }

    // 2. dS^T (and at D 256 P^T) to shared memory (keys x queries), for dQ = dS K; stored from the 16-bit A
    // fragments (element pairs (2i, 2i + 1) in register i, tile_mma_sm80.h), so the fp32 values are dead already.
#pragma unroll
    for (int t = 0; t < kMT; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int row = key_wg + warp_row + P::acc_row(2 * i), col = q_wg + t * 16 + P::acc_col(2 * i);
        const int offset = DsTile::chunk_offset(row, col >> 3) + (col & 7);
        *reinterpret_cast<uint32_t*>(sdS + offset) = da[t].r[i];
        if constexpr (Cfg::kSplitD) *reinterpret_cast<uint32_t*>(sPt + offset) = pa[t].r[i];
      }
    if constexpr (kDvDkFirst) retire_dv_dk();
    fence_proxy_async();
    vendor::block_sync();  // both warpgroups' dS^T (and P^T) are in shared memory

    // This warpgroup's tile of dQ (64 x kDqN): query rows dq_row0.., columns dq_col0.. (Cfg::kDqByRows).
    const int dq_row0 = Cfg::kDqByRows ? warpgroup * 64 : 0;
    const int dq_col0 = Cfg::kDqByRows ? 0 : warpgroup * kDqN;
    // A tile wholly in padding (rows past seqlen_q, columns past head_dim_qk) is skipped, not its dV / dK;
    // warp-uniform. (Also a register-allocation matter: without this branch ptxas spilled 88 bytes at D 128.) Not
    // at D 256, where both warpgroups' dQ tiles are always real.
    // Deterministic mode: a skipping warpgroup still takes part in the dQ turn's barriers (below).
    if (!Cfg::kSplitD && (m0 + dq_row0 >= p.seqlen_q || dq_col0 >= p.head_dim_qk)) {
      if constexpr (!kDvDkFirst) {
        wgmma_fence();
        issue_dv_dk();
        retire_dv_dk();
      }
      if constexpr (kDeterministic) dq_turn_done(p, dq_turn_wait(p, b, h, work.block(it), n_block));
      continue;
    }
    Acc dq[kDqT];
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      const uint32_t rows = kk * 2048;  // 16 keys = one k16 step
      const uint64_t sd = wgmma_desc_step(ds_mmajor, rows + (dq_row0 / 64) * DsTile::kColBlockBytes);
      const uint64_t kd = wgmma_desc_step(k_nmajor, rows + (dq_col0 / 64) * KTile::kColBlockBytes);
      WgmmaSS<T, kDqN>::template run<1, 1>(&dq[0].v[0], sd, kd, kk > 0);
    }
    wgmma_commit();
    if constexpr (!kDvDkFirst) issue_dv_dk();
    // dQ has landed (groups complete in order); deterministic mode waits for dV / dK too before its dQ turn
    // (polling with products in flight: C7518).
    wgmma_wait<kDeterministic ? 0 : 1>();
    fence_registers(&dq[0].v[0], kDqT * P::kAccElems);

    // Deterministic mode: this key block's turn to add into the query block's dQ (bwd_items.cuh), awaited once no
    // wgmma is in flight (a wait under the polling thread's divergent branch with products in flight made ptxas
    // serialise every wgmma, C7518).
    int32_t* sem = nullptr;
    if constexpr (kDeterministic) sem = dq_turn_wait(p, b, h, work.block(it), n_block);
    float* acc_rows = p.dq_accum + row_base * p.head_dim_qk;
    if (p.head_dim_qk == kD) {
      // Every column is real and rows are kD floats apart: one base address per thread, constant offsets. (4-float
      // reductions after a lane-pair exchange, half as many instructions, measured 1-6 % slower: v4.3.)
      // Rows past seqlen_q are padding rows of the accumulator (never read): no row test needed.
      float* dst = acc_rows + (dq_row0 + warp_row + P::acc_row(0)) * kD + dq_col0 + P::acc_col(0);
#pragma unroll
      for (int t = 0; t < kDqT; ++t)
#pragma unroll
        for (int e = 0; e < P::kAccElems; e += 2) {
          const int offset = 8 * ((e >> 1) & 1) * kD + t * 16 + 8 * (e >> 2);  // acc_row / acc_col minus e = 0's
          atomic_add_pair(dst + offset, dq[t].v[e], dq[t].v[e + 1], true);
        }
    } else {
      // Padded head dim: the same two row bases with the run-time row length, and a column test per pair.
      const int hd = p.head_dim_qk;
      const bool even_rows = hd % 2 == 0;
      float* row_g = acc_rows + int64_t(dq_row0 + warp_row + P::acc_row(0)) * hd;  // rows g and g + 8
      float* row_g8 = row_g + 8 * hd;
#pragma unroll
      for (int t = 0; t < kDqT; ++t)
#pragma unroll
        for (int e = 0; e < P::kAccElems; e += 2) {
          const int c = dq_col0 + t * 16 + P::acc_col(e);
          float* dst = ((e >> 1) & 1 ? row_g8 : row_g) + c;
          if (c + 1 < hd) {
            atomic_add_pair(dst, dq[t].v[e], dq[t].v[e + 1], even_rows);
          } else if (c < hd) {
            atomicAdd(dst, dq[t].v[e]);
          }
        }
    }
    if constexpr (kDeterministic) dq_turn_done(p, sem);
    if constexpr (!kDvDkFirst) retire_dv_dk();
  }
  vendor::copy_wait<0>();  // no copy may still target shared memory when the block exits

  // dV and dK (times the softmax scale: S = scale * Q K^T) of this warp's keys.
  T* dvg = static_cast<T*>(p.dv) + b * p.dv_stride[0] + int64_t(n0) * p.dv_stride[1] + hk * p.dv_stride[2];
  T* dkg = static_cast<T*>(p.dk) + b * p.dk_stride[0] + int64_t(n0) * p.dk_stride[1] + hk * p.dk_stride[2];
  store_acc<P, T>(dvg, p.dv_stride[1], dv, key_wg + warp_row, col_wg, keys, p.head_dim_v, 1.f, p.vec_stores);
  store_acc<P, T>(dkg, p.dk_stride[1], dk, key_wg + warp_row, col_wg, keys, p.head_dim_qk, p.scale, p.vec_stores);
#else
  // Compiled for a target without wgmma; backward.cu selects this kernel only on compute 9.0 with sm_90a code.
  __trap();
#endif
}

template <class T, int kD> cudaError_t launch_bwd_sm90(const BwdParams& p, cudaStream_t stream) {
  using Cfg = Sm90BwdConfig<kD>;
  unsigned g[3];
  bwd_main_grid(p, g);
  return launch_with_smem(p.deterministic ? bwd_sm90_kernel<T, kD, true> : bwd_sm90_kernel<T, kD, false>,
                          dim3(g[0], g[1], g[2]), Cfg::kThreads, Cfg::kSmemBytes, stream, p);
}

}  // namespace flashport::kernels

#endif
