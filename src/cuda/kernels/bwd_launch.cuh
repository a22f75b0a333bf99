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
};

// Tensor-core backward main kernel for 16-bit T (vendor::half_t, vendor::bf16_t) and padded head dims. The
// preprocessing kernel must have run on the same stream; the conversion kernel runs after it.
template <class T, int kDqk, int kDv> cudaError_t launch_bwd_main(const BwdParams& p, cudaStream_t stream);

// The row kernels for every dtype (T = vendor::half_t, vendor::bf16_t, float): defined in backward.cu.
template <class T> cudaError_t launch_bwd_preprocess(const BwdParams& p, cudaStream_t stream);
template <class T> cudaError_t launch_bwd_convert(const BwdParams& p, cudaStream_t stream);

}  // namespace flashport::kernels

#endif
