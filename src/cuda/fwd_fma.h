// The "cuda-fma" backend variant: the forward kernel of kernels/fwd.cuh with the generic FMA tile policy
// (kernels/tile_mma_fma.cuh, 32 lanes) instead of mma.sync. It is the arithmetic the HIP module runs on AMD gfx1030,
// built for NVIDIA so that the portable path is tested on the GPUs this project has. Slower than the tensor-core
// "cuda" backend; it exists to be forced (args->backend = "cuda-fma" or FLASHPORT_BACKEND=cuda-fma).
//
// Host-side view (module.cu): the launchers' declarations. fwd_fma.cuh defines them; instances/fwd_fma_*.cu
// instantiate them, one per file, for the padded head-dim pairs module.cu's select_16bit dispatches to.
#ifndef FLASHPORT_CUDA_FWD_FMA_H
#define FLASHPORT_CUDA_FWD_FMA_H

#include "kernels/fwd_launch.cuh"

namespace flashport::kernels {

template <class T, int kDqk, int kDv> cudaError_t launch_fwd_fma(const FwdParams& p, cudaStream_t stream);

}  // namespace flashport::kernels

#endif
