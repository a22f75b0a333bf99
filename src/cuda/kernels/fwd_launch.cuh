// Host-side view of the forward kernels: what the module needs to choose and launch one, without the kernel
// bodies (each instantiation lives in its own src/cuda/instances/fwd_*.cu so that builds parallelise).
#ifndef FLASHPORT_CUDA_KERNELS_FWD_LAUNCH_CUH
#define FLASHPORT_CUDA_KERNELS_FWD_LAUNCH_CUH

#include "kernels/common.cuh"

namespace flashport::kernels {

// Tensor-core forward for 16-bit T (vendor::half_t, vendor::bf16_t) and padded head dims kDqk, kDv (the actual
// ones, <= these, are in p). Queues the kernel on stream; returns the launch's error.
template <class T, int kDqk, int kDv> cudaError_t launch_fwd(const FwdParams& p, cudaStream_t stream);

// fp32 forward (fwd_f32.cuh): fp32 FMA arithmetic end to end, any head dims up to 256.
cudaError_t launch_fwd_f32(const FwdParams& p, cudaStream_t stream);

}  // namespace flashport::kernels

#endif
