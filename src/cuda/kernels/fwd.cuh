// The forward kernel (FlashAttention-2 schedule), written against the tile MMA interface (tile_mma.cuh) and the
// vendor header only, so the HIP module compiles this same file with its own policy.
//
// One block = kWarps warps = kBlockM query rows of one (batch, head); each warp owns kMT tiles of kM = 16 rows.
//  - The Q tile goes global -> shared (-> registers once, when small); K and V tiles stream through kStages shared buffers with
//    asynchronous copies, one tile ahead per extra stage.
//  - S = Q K^T and O += P V on the tile MMA; the online softmax keeps its running max/sum in registers.
//  - Key tiles that no row of the block can see are never visited (causal/window), and only tiles straddling a
//    mask boundary or the sequence end test elements.
//  - Blocks are issued longest-first (the last query block of a causal problem sees the most keys), heads in
//    sections sized to L2 (fwd_common.cuh's fwd_block_of).
#ifndef FLASHPORT_CUDA_KERNELS_FWD_CUH
#define FLASHPORT_CUDA_KERNELS_FWD_CUH

#include <type_traits>

#include "kernels/common.cuh"
#include "kernels/copy.cuh"
#include "kernels/fwd_common.cuh"
#include "kernels/fwd_launch.cuh"
#include "kernels/mask.cuh"
#include "kernels/softmax.cuh"
#include "kernels/tile_mma.cuh"

namespace flashport::kernels {

// Block shape per head dim (the reasoning and the measurements: docs/perf/cuda-forward.md).
//  - kMT m-tiles of kM = 16 rows per warp: every K/V fragment read from shared memory feeds kMT MMAs, so
//    shared-memory traffic per FLOP falls by kMT. kMT = 2 while the O accumulators (kMT * kDv / 2 registers
//    per lane with the sm80 policy) leave room; 1 for head dims above 128.
//  - kBlockM = 128 rows per block so each K/V tile loaded from L2 serves 128 rows.
//  - Q fragments stay in registers when small (kMT * kDqk / 4 <= 16 per lane), else they are re-read from shared
//    memory at every k-step, which costs less than the spills that holding them would cause.
//  - kBlockN shrinks as D grows so that S (kMT * kBlockN / 2 per lane) + O + Q fit in 255 registers.
//  - Shared memory = Q + kStages x (K + V) tiles; kMinBlocks blocks per SM when it fits (decoupled barriers).
// M-tiles per warp a policy wants at most: P::kFwdMTiles when it declares it (sm80: 2, its fragments are reused
// across m-tiles), else 1 (an FMA policy gains nothing from reuse and 2 would double its unrolled code).
template <class P, class = void> struct FwdMTiles { static constexpr int value = 1; };
template <class P> struct FwdMTiles<P, std::void_t<decltype(P::kFwdMTiles)>> {
  static constexpr int value = P::kFwdMTiles;
};

template <class P, int kDqk, int kDv> struct FwdConfig {
  static constexpr int kDmax = kDqk > kDv ? kDqk : kDv;
  static constexpr int kMT = kDmax <= 128 ? FwdMTiles<P>::value : 1;
  static constexpr int kWarps = kMT == 2 ? 4 : 8;
  static constexpr int kThreads = kWarps * P::kWarpSize;
  static constexpr int kBlockM = kWarps * kMT * P::kM;
  static constexpr int kBlockN = kDmax <= 64 ? 64 : (kDmax <= 128 ? 32 : (kDmax <= 192 ? 64 : 32));
  static constexpr int kStages = kMT == 2 ? 3 : 2;
  static constexpr bool kQInRegs = kMT * kDqk / 4 <= 16;
  static constexpr int kMinBlocks = kMT == 2 ? 2 : 1;
  using QTile = SmemTile<kBlockM, kDqk>;
  using KTile = SmemTile<kBlockN, kDqk>;
  using VTile = SmemTile<kBlockN, kDv>;
  static constexpr int kSmemBytes = QTile::kBytes + kStages * (KTile::kBytes + VTile::kBytes);
};

template <class T, int kDqk, int kDv, class P = TileMmaDefault<T>>
__global__ void __launch_bounds__(FwdConfig<P, kDqk, kDv>::kThreads, FwdConfig<P, kDqk, kDv>::kMinBlocks)
    fwd_kernel(const FwdParams p) {
#if defined(FLASHPORT_HAS_TILE_MMA)
  using Cfg = FwdConfig<P, kDqk, kDv>;
  using QTile = typename Cfg::QTile;
  using KTile = typename Cfg::KTile;
  using VTile = typename Cfg::VTile;
  constexpr int kBlockM = Cfg::kBlockM, kBlockN = Cfg::kBlockN, kStages = Cfg::kStages, kMT = Cfg::kMT;
  constexpr int kNT = kBlockN / P::kN;  // score tiles per m-tile
  constexpr int kOT = kDv / P::kN;      // output tiles per m-tile
  constexpr int kQK = kDqk / P::kK;     // k-steps of Q K^T
  constexpr bool kQInRegs = Cfg::kQInRegs;

  extern __shared__ uint4 smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + QTile::kElems;
  T* sV = sK + kStages * KTile::kElems;

  const FwdBlock block = fwd_block_of(p, vendor::block_id_x());
  const int m_block = block.m_block, h = block.h;
  const int b = vendor::block_id_z();
  const int hk = h / p.heads_ratio;
  const int m0 = m_block * kBlockM;
  const int rows_q = min(kBlockM, p.seqlen_q - m0);
  const int warp_row = vendor::warp_id() * kMT * P::kM;  // first row of this warp inside the block

  const MaskRule mask{p.seqlen_kv, p.mask_offset, p.window_left, p.window_right};
  int64_t key_lo, key_hi;
  mask.key_range(m0, m0 + rows_q - 1, &key_lo, &key_hi);
  const int n_begin = static_cast<int>(key_lo / kBlockN);
  const int n_end = key_hi > key_lo ? static_cast<int>(ceil_div<int64_t>(key_hi, kBlockN)) : n_begin;

  const FwdSources<T, KTile, VTile, Cfg::kThreads> src(p, b, h, hk, m0);
  auto load_kv = [&](int buffer, int n) { src.load_kv(p, sK, sV, buffer, n); };

  // Commit groups: Q, then one per K/V tile (empty groups keep the count uniform, so wait<N> stays exact).
  load_tile<QTile, Cfg::kThreads>(sQ, src.q, p.q_stride[1], rows_q, p.head_dim_qk, p.vec_loads);
  vendor::copy_commit();
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (n_begin + s < n_end) load_kv(s, n_begin + s);
    vendor::copy_commit();
  }
  vendor::copy_wait<kStages - 1>();
  vendor::block_sync();

  typename P::FragA qf[kQInRegs ? kMT : 1][kQInRegs ? kQK : 1];
  if constexpr (kQInRegs) {
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int kk = 0; kk < kQK; ++kk)
        P::template load_a<QTile>(qf[mt][kk], sQ, warp_row + mt * P::kM, kk * P::kK);
  }

  typename P::Acc o[kMT][kOT];
  OnlineSoftmax<P> softmax[kMT];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
    softmax[mt].init();
#pragma unroll
    for (int t = 0; t < kOT; ++t) P::zero(o[mt][t]);
  }

  const int row0 = m0 + warp_row;  // absolute query row of this warp's first m-tile

  for (int n = n_begin; n < n_end; ++n) {
    const int i = n - n_begin;
    // Tile i has landed for this thread; the barrier makes it visible to all and guarantees every warp is done
    // with the buffer the prefetch below overwrites (the one read in iteration i - 1).
    vendor::copy_wait<kStages - 2>();
    vendor::block_sync();
    if (n + kStages - 1 < n_end) load_kv((i + kStages - 1) % kStages, n + kStages - 1);
    vendor::copy_commit();

    const T* sKb = sK + (i % kStages) * KTile::kElems;
    const T* sVb = sV + (i % kStages) * VTile::kElems;

    typename P::Acc s[kMT][kNT];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int t = 0; t < kNT; ++t) P::zero(s[mt][t]);
#pragma unroll
    for (int kk = 0; kk < kQK; ++kk) {
      typename P::FragA qa[kMT];
      if constexpr (!kQInRegs) {
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) P::template load_a<QTile>(qa[mt], sQ, warp_row + mt * P::kM, kk * P::kK);
      }
#pragma unroll
      for (int t = 0; t < kNT; ++t) {
        typename P::FragB kb;
        P::template load_b_nk<KTile>(kb, sKb, t * P::kN, kk * P::kK);
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          if constexpr (kQInRegs) P::mma(s[mt][t], qf[mt][kk], kb);
          else P::mma(s[mt][t], qa[mt], kb);
        }
      }
    }

    const int key0 = n * kBlockN;
    const bool partial = mask.partial(m0, m0 + kBlockM - 1, key0, key0 + kBlockN - 1);
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
      scores_to_probabilities<P>(p, mask, partial, row0 + mt * P::kM, key0, s[mt], o[mt], softmax[mt]);

#pragma unroll
    for (int kk = 0; kk < kNT; ++kk) {
      typename P::FragA pa[kMT];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) P::acc_to_a(pa[mt], s[mt][kk]);
#pragma unroll
      for (int t = 0; t < kOT; ++t) {
        typename P::FragB vb;
        P::template load_b_kn<VTile>(vb, sVb, kk * P::kK, t * P::kN);
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) P::mma(o[mt][t], pa[mt], vb);
      }
    }
  }
  vendor::copy_wait<0>();  // no copy may still target shared memory when the block exits

#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) store_output_rows<T, P>(p, b, h, row0 + mt * P::kM, o[mt], softmax[mt]);
#else
  // Compiled for an architecture without the tile MMA this kernel needs; the host never launches it there
  // (the module checks the device's compute capability), so reaching this is a bug.
  __trap();
#endif
}

// Launch fwd_kernel with tile policy P on stream. launch_fwd uses the vendor's default policy; a backend variant
// with another policy (the generic FMA one, say) calls this directly instead of repeating the launch.
template <class T, int kDqk, int kDv, class P>
cudaError_t launch_fwd_policy(const FwdParams& p, cudaStream_t stream) {
  using Cfg = FwdConfig<P, kDqk, kDv>;
  return launch_fwd_ordered(fwd_kernel<T, kDqk, kDv, P>, p, Cfg::kBlockM, sizeof(T), Cfg::kThreads, Cfg::kSmemBytes,
                            stream);
}

template <class T, int kDqk, int kDv> cudaError_t launch_fwd(const FwdParams& p, cudaStream_t stream) {
  return launch_fwd_policy<T, kDqk, kDv, TileMmaDefault<T>>(p, stream);
}

}  // namespace flashport::kernels

#endif
