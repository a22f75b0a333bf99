// The Hopper forward kernel (sm_90a): the FlashAttention-2 schedule of fwd.cuh with warpgroup MMAs (wgmma), for
// 16-bit inputs and equal head dims 64, 128, 256. NVIDIA-only; other head dims, and GPUs other than compute 9.0,
// run fwd.cuh.
//
// One block = kWarpGroups warpgroups (2, or 3 at D 64) = 64 query rows each, of one (batch, head); warpgroup g owns
// rows 64g..64g+63, each of its warps 16 of them.
//  - Q (once) and the K/V tiles (kStages buffers, kStages - 1 tiles ahead) are copied global -> shared with cp.async into
//    the 128-byte-swizzled layout wgmma reads (kernels/wgmma.cuh).
//  - S = Q K^T: kD / 16 wgmma m64nNk16 with both operands in shared memory; S lands in registers in the layout of
//    the sm80 policy's 16x16 accumulators, so masking, softcap, the online softmax and the epilogue are the ones
//    fwd.cuh uses (fwd_common.cuh).
//  - O += P V: P converted in registers to the A fragments of wgmma's register-A form, V read from shared memory
//    N-major (transposed B); no shared-memory round trip for P.
// Block shapes (the reasoning and measurements: docs/perf/cuda-forward.md): per thread S takes kBlockN / 2
// registers, O kD / 2 and P kBlockN / 4; kBlockN = 128 at D <= 128 (S 64 + O 64 + P 32 at D 128), 64 at D 256
// (S 32 + O 128 + P 16). Shared memory: Q + kStages x (K + V) = 224 KB at D 128, 192 KB at D 256, 120 KB at D 64:
// one block per SM.
#ifndef FLASHPORT_CUDA_KERNELS_FWD_SM90_CUH
#define FLASHPORT_CUDA_KERNELS_FWD_SM90_CUH

#include "kernels/common.cuh"
#include "kernels/copy.cuh"
#include "kernels/fwd_common.cuh"
#include "kernels/fwd_launch.cuh"
#include "kernels/mask.cuh"
#include "kernels/softmax.cuh"
#include "kernels/tile_mma_sm80.cuh"
#include "kernels/wgmma.cuh"

namespace flashport::kernels {

// Warpgroups take turns issuing their MMAs, in a fixed ring (0, 1, .., W-1, 0, ..): a warpgroup issues its S or
// P V batch only after the previous one in the ring issued its own, and then passes the turn. The tensor cores then
// run one warpgroup's MMAs while the others are in their softmax, instead of all warpgroups issuing at the same
// moment after each barrier and then all waiting in the softmax together. Named barriers 1..W, each completed by
// the 128 threads that wait on it and the 128 that arrive.
template <int kWarpGroups> struct WarpgroupTurns {
  int self;
  FLASHPORT_DEVICE explicit WarpgroupTurns(int warpgroup) : self(warpgroup) {}
  FLASHPORT_DEVICE void wait() const {
    asm volatile("bar.sync %0, 256;\n" ::"r"(1 + self) : "memory");
  }
  FLASHPORT_DEVICE void pass() const {
    asm volatile("bar.arrive %0, 256;\n" ::"r"(1 + (self + 1) % kWarpGroups) : "memory");
  }
  // The last warpgroup of the ring hands warpgroup 0 its first turn; warpgroup 0 takes the last hand-over back at
  // the end so that no barrier is left half-arrived.
  FLASHPORT_DEVICE void start() const {
    if (self == kWarpGroups - 1) pass();
  }
  FLASHPORT_DEVICE void finish() const {
    if (self == 0) wait();
  }
};

template <int kD> struct Sm90FwdConfig {
  // D 64 has half the MMA work per score of D 128 for the same softmax work: a third warpgroup gives the tensor
  // cores another warpgroup's MMAs to run while two are in their softmax (168 registers per thread still hold
  // S 64 + O 32 + P 32).
  static constexpr int kWarpGroups = kD <= 64 ? 3 : 2;
  static constexpr int kThreads = 128 * kWarpGroups;
  static constexpr int kBlockM = 64 * kWarpGroups;
  static constexpr int kBlockN = kD <= 128 ? 128 : 64;
  // K/V tiles in flight: each iteration's copy has kStages - 1 iterations to land (a 64 KB K+V tile at D 128 is
  // close to an iteration's worth of L2 bandwidth per SM). 3 fits 227 KB up to D 128; D 256 keeps 2.
  static constexpr int kStages = kD <= 128 ? 3 : 2;
  static constexpr int kPvN = kD < 128 ? kD : 128;  // N of one P V instruction (the wrappers go up to 128)
  using QTile = SmemTileSw128<kBlockM, kD>;
  using KTile = SmemTileSw128<kBlockN, kD>;
  using VTile = SmemTileSw128<kBlockN, kD>;
  // + 1 KB: the dynamic shared-memory base is rounded up to the 1024-byte alignment of the swizzle atoms.
  static constexpr int kSmemBytes = QTile::kBytes + kStages * (KTile::kBytes + VTile::kBytes) + 1024;
};

template <class T, int kD>
__global__ void __launch_bounds__(Sm90FwdConfig<kD>::kThreads, 1) fwd_sm90_kernel(const FwdParams p) {
#if defined(FLASHPORT_HAS_WGMMA)
  using Cfg = Sm90FwdConfig<kD>;
  using P = TileMmaSm80<T>;  // the accumulator fragment layout only (each warp's 16 rows of a wgmma result)
  using QTile = typename Cfg::QTile;
  using KTile = typename Cfg::KTile;
  using VTile = typename Cfg::VTile;
  constexpr int kBlockM = Cfg::kBlockM, kBlockN = Cfg::kBlockN, kThreads = Cfg::kThreads;
  constexpr int kNT = kBlockN / 16;  // 16-column score tiles per warp
  constexpr int kOT = kD / 16;       // 16-column output tiles per warp
  constexpr int kQK = kD / 16;       // k16 steps of Q K^T
  constexpr int kPV = kBlockN / 16;  // k16 steps of P V

  extern __shared__ uint4 smem_raw[];
  const uint32_t raw_addr = vendor::smem_addr(smem_raw);
  char* smem = reinterpret_cast<char*>(smem_raw) + (((raw_addr + 1023u) & ~1023u) - raw_addr);
  T* sQ = reinterpret_cast<T*>(smem);
  T* sK = sQ + QTile::kElems;
  T* sV = sK + Cfg::kStages * KTile::kElems;

  const FwdBlock block = fwd_block_of(p, vendor::block_id_x());
  const int m_block = block.m_block, h = block.h;
  const int b = vendor::block_id_z();
  const int hk = h / p.heads_ratio;
  const int m0 = m_block * kBlockM;
  const int rows_q = min(kBlockM, p.seqlen_q - m0);
  // Read through a shuffle so that ptxas knows it is warp-uniform: a wgmma under a branch it cannot prove uniform
  // is serialised (ptxas C7518), which cost a third of the speed at D 64/128.
  const int warpgroup = __shfl_sync(0xffffffffu, vendor::thread_id() / 128, 0);
  const int row0 = m0 + warpgroup * 64 + (vendor::warp_id() % 4) * 16;  // this warp's first query row
  constexpr int kStages = Cfg::kStages;

  const MaskRule mask{p.seqlen_kv, p.mask_offset, p.window_left, p.window_right};
  int64_t key_lo, key_hi;
  mask.key_range(m0, m0 + rows_q - 1, &key_lo, &key_hi);
  const int wg_row0 = m0 + warpgroup * 64;
  const int n_begin = static_cast<int>(key_lo / kBlockN);
  const int n_end = key_hi > key_lo ? static_cast<int>(ceil_div<int64_t>(key_hi, kBlockN)) : n_begin;
  // The block's tiles this warpgroup computes, [n_begin, wg_end): with a causal mask (or a window's right edge) its
  // own 64 rows end before the block's last row, and the tiles past their last visible key are wholly masked for
  // it (at D 64 the first warpgroup computed up to two of them per block). Past wg_end it only keeps its place in
  // the copy pipeline and the turns. (A window's leading tiles are still computed: rarer, and a third loop.)
  // Only where a block is taller than a key tile (D 64: 192 x 128, D 256: 128 x 64). At D 128 (128 x 128) the
  // first warpgroup's last tile is the block's unless a mask offset puts the diagonal past mid-tile, and the extra
  // code measured 3 % slower on the square causal case (docs/perf/cuda-forward.md v3.4).
  int wg_end = Cfg::kBlockM > kBlockN ? n_begin : n_end;
  if (Cfg::kBlockM > kBlockN && wg_row0 < m0 + rows_q) {
    int64_t wg_lo, wg_hi;
    mask.key_range(wg_row0, min(wg_row0 + 63, m0 + rows_q - 1), &wg_lo, &wg_hi);
    if (wg_hi > wg_lo) wg_end = max(n_begin, min(n_end, static_cast<int>(ceil_div<int64_t>(wg_hi, kBlockN))));
  }

  const FwdSources<T, KTile, VTile, kThreads> src(p, b, h, hk, m0);
  auto load_kv = [&](int buffer, int n) { src.load_kv(p, sK, sV, buffer, n); };

  // Commit groups: Q with tile 0, then one per further tile (empty groups keep the count uniform for copy_wait).
  load_tile<QTile, kThreads>(sQ, src.q, p.q_stride[1], rows_q, p.head_dim_qk, p.vec_loads);
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (n_begin + st < n_end) load_kv(st, n_begin + st);
    vendor::copy_commit();
  }

  typename P::Acc o[kOT];
#pragma unroll
  for (int t = 0; t < kOT; ++t) P::zero(o[t]);
  OnlineSoftmax<P> softmax;
  softmax.init();

  WarpgroupTurns<Cfg::kWarpGroups> turns(warpgroup);
  turns.start();

  // Descriptors built once and stepped per instruction (wgmma_desc_step): this warpgroup's 64 rows of Q inside each
  // column block; K and V of stage 0, stepped by whole stages too.
  const uint64_t q_desc = wgmma_desc(vendor::smem_addr(sQ) + warpgroup * 64 * 128, 16, 1024);
  const uint64_t k_desc0 = wgmma_desc(vendor::smem_addr(sK), 16, 1024);
  const uint64_t v_desc0 = wgmma_desc(vendor::smem_addr(sV), VTile::kColBlockBytes, 1024);

  // Tile n has landed for this thread; the proxy fence and the barrier make every thread's copies visible to the
  // tensor cores, and guarantee every warpgroup is done with the buffer the prefetch below overwrites. Every
  // warpgroup takes this step for every tile of the block, also where it computes nothing.
  auto next_tile = [&](int n) {
    const int i = n - n_begin;
    vendor::copy_wait<kStages - 2>();
    fence_proxy_async();
    vendor::block_sync();
    if (n + kStages - 1 < n_end) load_kv((i + kStages - 1) % kStages, n + kStages - 1);
    vendor::copy_commit();
  };
  // A tile this warpgroup skips: its two turns pass straight on.
  auto skip_tile = [&](int n) {
    next_tile(n);
    turns.wait();
    turns.pass();
    turns.wait();
    turns.pass();
  };

  for (int n = n_begin; n < wg_end; ++n) {
    const int i = n - n_begin;
    next_tile(n);

    const uint64_t k_desc = wgmma_desc_step(k_desc0, (i % kStages) * KTile::kBytes);
    const uint64_t v_desc = wgmma_desc_step(v_desc0, (i % kStages) * VTile::kBytes);

    // Masking is decided per warpgroup: only tiles that straddle a boundary of its own 64 rows test elements.
    const int key0 = n * kBlockN;
    const bool partial = mask.partial(wg_row0, wg_row0 + 63, key0, key0 + kBlockN - 1);

    typename P::Acc s[kNT];
    turns.wait();
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kQK; ++kk) {
      const uint32_t step = (kk % 4) * 32;  // k16 slice inside the 128-byte rows of column block kk / 4
      const uint64_t qd = wgmma_desc_step(q_desc, (kk / 4) * QTile::kColBlockBytes + step);
      const uint64_t kd = wgmma_desc_step(k_desc, (kk / 4) * KTile::kColBlockBytes + step);
      WgmmaSS<T, kBlockN>::template run<0, 0>(&s[0].v[0], qd, kd, kk > 0);
    }
    wgmma_commit();
    turns.pass();
    wgmma_wait<0>();
    fence_registers(&s[0].v[0], kNT * P::kAccElems);

    scores_to_probabilities<P>(p, mask, partial, row0, key0, s, o, softmax);

    typename P::FragA pa[kPV];
#pragma unroll
    for (int kk = 0; kk < kPV; ++kk) P::acc_to_a(pa[kk], s[kk]);
    turns.wait();
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kPV; ++kk)
#pragma unroll
      for (int part = 0; part < kD / Cfg::kPvN; ++part) {
        // Keys 16 kk .. +15 (16 rows of V, 2048 bytes), head-dim columns part * kPvN .. + kPvN.
        const uint64_t vd = wgmma_desc_step(v_desc, kk * 2048 + part * (Cfg::kPvN / 64) * VTile::kColBlockBytes);
        WgmmaRS<T, Cfg::kPvN>::template run<1>(&o[part * (Cfg::kPvN / 16)].v[0], pa[kk].r, vd, 1);
      }
    wgmma_commit();
    turns.pass();
    wgmma_wait<0>();
    fence_registers(&o[0].v[0], kOT * P::kAccElems);
    fence_registers(&pa[0].r[0], kPV * 4);
  }
  for (int n = wg_end; n < n_end; ++n) skip_tile(n);
  vendor::copy_wait<0>();  // no copy may still target shared memory when the block exits
  turns.finish();

  store_output_rows<T, P>(p, b, h, row0, o, softmax);
#else
  // Compiled for a target without wgmma; the module selects this kernel only on compute 9.0 in a build with sm_90a.
  __trap();
#endif
}

template <class T, int kD> cudaError_t launch_fwd_sm90(const FwdParams& p, cudaStream_t stream) {
  using Cfg = Sm90FwdConfig<kD>;
  return launch_fwd_ordered(fwd_sm90_kernel<T, kD>, p, Cfg::kBlockM, sizeof(T), Cfg::kThreads, Cfg::kSmemBytes,
                            stream);
}

}  // namespace flashport::kernels

#endif
