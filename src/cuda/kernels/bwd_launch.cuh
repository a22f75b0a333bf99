// Host-side view of the backward kernels: block shapes (the workspace layout depends on them) and the launchers,
// without the kernel bodies (each main-kernel instantiation lives in its own src/cuda/instances/bwd_*.cu).
#ifndef FLASHPORT_CUDA_KERNELS_BWD_LAUNCH_CUH
#define FLASHPORT_CUDA_KERNELS_BWD_LAUNCH_CUH

#include "kernels/bwd_params.cuh"
#include "kernels/common.cuh"

namespace flashport::kernels {

// Block shape of the tensor-core main kernel per (padded) head dims. One block owns kBlockN keys and keeps their dK
// and dV (fp32) in registers for the whole loop over query blocks of kBlockM rows: kBlockN * (kDqk + kDv) / 256
// floats per lane with 8 warps, i.e. 128 at D 128 with 128 keys, and 128 at D 256 with 64 keys. More keys per block
// means fewer blocks adding into each dQ row (fewer atomics) and fewer re-reads of Q and dO.
//
// Warp grids of the three phases (bwd_main.cuh), chosen so that each warp's tile reuses its operands: per 16-wide
// k step a warp of R x C output loads R/16 A and C/16 B fragments for (R/16)(C/16) tile products, so square-ish
// warp tiles read shared memory least (shared-memory bandwidth, not the tensor cores, bounds this kernel).
//   phase 1 S^T, dP^T (keys x queries):  kWN1 warps along keys           (128 x 64: 4 x 2 warps of 32 x 32)
//   phase 2 dV, dK (keys x head dim):    kWN2 warps along keys           (128 x 128: 4 x 2 warps of 32 x 64)
//   phase 3 dQ (queries x head dim):     kWM3 warps along queries        (64 x 128: 2 x 4 warps of 32 x 32)
template <int kDqk, int kDv> struct BwdShape {
  static constexpr int kDmax = kDqk > kDv ? kDqk : kDv;
  static constexpr int kBlockM = 64;
  // Two blocks per SM (64 keys, 128 registers, 57 KB of shared memory each at D 64) hide each other's barriers at
  // twice the Q/dO reads and dQ atomics per FLOP: measured +6-8 % at D 64, but -21 % at D 128 (spills at 128
  // registers), see docs/perf/cuda-backward.md. FLASHPORT_BWD_2_BLOCKS extends it to D <= 128 (tuning knob).
#if defined(FLASHPORT_BWD_2_BLOCKS)
  static constexpr bool kTwoBlocks = kDmax <= 128;
#else
  static constexpr bool kTwoBlocks = kDmax <= 64;
#endif
  static constexpr int kBlockN = (kTwoBlocks || kDmax > 128) ? 64 : 128;
  static constexpr int kMinBlocks = kTwoBlocks ? 2 : 1;
  static constexpr int kWarps = 8;
  static constexpr int kWN1 = 4;
  static constexpr int kWN2 = 4;
  // Phase 3's head-dim share per warp must stay a multiple of 16; wide head dims keep it small (registers).
  static constexpr int kWM3 = kDqk % 64 == 0 && kDqk <= 128 ? 2 : 4;
  static constexpr bool kReloadV = false;  // V stays in shared memory for the whole block (see BwdShapeAmd)
  static constexpr int kMaxSmemBytes = 227 * 1024;  // the most a block may opt in to on sm_90 (sm_80: 163 KB)
};

// Block shape for AMD GPUs, whose workgroups have 64 KB of shared memory (LDS) each (gfx9 and gfx11 alike), also
// used by the generic FMA tiles on NVIDIA so that the "cuda-fma" variant runs exactly the shapes AMD runs.
// Q, dO (kBlockM rows), K, V (kBlockN rows), P^T, dS^T and dS live in shared memory together (BwdConfig::kSmemBytes
// in bwd_main.cuh, checked there against kMaxSmemBytes by a static_assert); tiles are at least 32 wide (SmemTile):
//   D <= 64: 64 keys x 64 queries (57 KB at D 64)    D <= 128: 64 x 32 (62 KB)    D <= 192: 32 x 32 (55 KB)
//   D 256:   32 x 32 with V reloaded (exactly 64 KB)
// all with 4 warps of 2 x 2 in every phase. At D 256, K, V, Q and dO of 32 x 32 blocks alone fill the 64 KB, so the
// shape sets kReloadV: V is needed only by phase 1's dP^T = V dO^T, so once every warp has its phase-1 products,
// P^T, dS^T and dS are written where V was, and V is read again (from L2) for the next query block; lse and D are
// then read from global memory instead of being staged in LDS. The cost is one more 16 KB tile read and two more
// barriers per query block.
// The shape does not depend on the policy (MFMA, WMMA, FMA at 32 or 64 lanes), so the HIP host side sizes the
// workspace and the grid without knowing which policy a device's code object holds. dK and dV stay in registers:
// kBlockN * (kDqk + kDv) / threads floats per lane (64 lanes: 32-64; 32 lanes: 64-128).
template <int kDqk, int kDv> struct BwdShapeAmd {
  static constexpr int kDmax = kDqk > kDv ? kDqk : kDv;
  static constexpr bool kTwoBlocks = false;
  static constexpr int kBlockM = kDmax <= 64 ? 64 : 32;
  static constexpr int kBlockN = kDmax <= 128 ? 64 : 32;
  static constexpr int kMinBlocks = 1;
  static constexpr int kWarps = 4;
  static constexpr int kWN1 = 2;
  static constexpr int kWN2 = 2;
  static constexpr int kWM3 = 2;
  static constexpr bool kReloadV = kDmax > 192;
  static constexpr int kMaxSmemBytes = 64 * 1024;  // every AMD target; cuda-fma is held to it as well
};

// Which shape a tile policy's main kernel uses: BwdShape (sized for NVIDIA's shared memory) for the tensor-core
// policy, BwdShapeAmd for the AMD policies and the generic FMA tiles (declared here so that host code, which never
// sees the policies' definitions, picks the same shape as the kernel).
template <class T> struct TileMmaMfma;
template <class T> struct TileMmaWmma;
template <class T, int kLanes> struct TileMmaFma;
template <class P, int kDqk, int kDv> struct BwdShapeFor { using type = BwdShape<kDqk, kDv>; };
template <class T, int kDqk, int kDv> struct BwdShapeFor<TileMmaMfma<T>, kDqk, kDv> {
  using type = BwdShapeAmd<kDqk, kDv>;
};
template <class T, int kDqk, int kDv> struct BwdShapeFor<TileMmaWmma<T>, kDqk, kDv> {
  using type = BwdShapeAmd<kDqk, kDv>;
};
template <class T, int kLanes, int kDqk, int kDv> struct BwdShapeFor<TileMmaFma<T, kLanes>, kDqk, kDv> {
  using type = BwdShapeAmd<kDqk, kDv>;
};

// The main kernel's grid: (key block, kv head) pairs in p.order along x, batch in z; the deterministic mode puts
// (batch, kv head) fastest and key blocks in y (see bwd_items.cuh for why: it issues key block n - 1 of a head
// before key block n, so that its waits only ever point at blocks issued earlier).
FLASHPORT_HD void bwd_main_grid(const BwdParams& p, unsigned grid[3]) {
  if (p.deterministic) {
    grid[0] = unsigned(p.batch * p.heads_kv);
    grid[1] = unsigned(p.n_blocks);
    grid[2] = 1;
  } else {
    grid[0] = unsigned(p.n_blocks * p.heads_kv);
    grid[1] = 1;
    grid[2] = unsigned(p.batch);
  }
}

// Tensor-core backward main kernel for 16-bit T (vendor::half_t, vendor::bf16_t) and padded head dims. The
// preprocessing kernel must have run on the same stream; the conversion kernel runs after it.
template <class T, int kDqk, int kDv> cudaError_t launch_bwd_main(const BwdParams& p, cudaStream_t stream);

// The row kernels for every dtype (T = vendor::half_t, vendor::bf16_t, float): defined in backward.cu.
template <class T> cudaError_t launch_bwd_preprocess(const BwdParams& p, cudaStream_t stream);
template <class T> cudaError_t launch_bwd_convert(const BwdParams& p, cudaStream_t stream);

}  // namespace flashport::kernels

#endif
