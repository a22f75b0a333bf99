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
template <int kDqk, int kDv> struct BwdShape {
  static constexpr int kDmax = kDqk > kDv ? kDqk : kDv;
  static constexpr int kBlockM = 64;
  static constexpr int kBlockN = kDmax <= 128 ? 128 : 64;
  static constexpr int kWarps = 8;
};

// Tensor-core backward main kernel for 16-bit T (vendor::half_t, vendor::bf16_t) and padded head dims. The
// preprocessing kernel must have run on the same stream; the conversion kernel runs after it.
template <class T, int kDqk, int kDv> cudaError_t launch_bwd_main(const BwdParams& p, cudaStream_t stream);

// The row kernels for every dtype (T = vendor::half_t, vendor::bf16_t, float): defined in backward.cu.
template <class T> cudaError_t launch_bwd_preprocess(const BwdParams& p, cudaStream_t stream);
template <class T> cudaError_t launch_bwd_convert(const BwdParams& p, cudaStream_t stream);

}  // namespace flashport::kernels

#endif
