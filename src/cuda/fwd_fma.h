// The "cuda-fma" backend variant: the forward kernel of kernels/fwd.cuh and the backward main kernel of
// kernels/bwd_main.cuh with the generic FMA tile policy (kernels/tile_mma_fma.cuh, 32 lanes) instead of mma.sync; in
// the backward also with the block shapes every AMD target uses (kernels/bwd_launch.cuh, BwdShapeAmd, held to 64 KB
// of shared memory at every head dim; D 256 reloads V as on AMD). It is the arithmetic the HIP module runs on AMD
// gfx1030, built for NVIDIA so that the portable path is tested on the GPUs this project has. Slower than the
// tensor-core "cuda" backend; it exists to be forced (args->backend = "cuda-fma" or FLASHPORT_BACKEND=cuda-fma).
//
// Host-side view (module.cu, backward.cu): the launchers' declarations. fwd_fma.cuh defines them;
// instances/fwd_fma_*.cu and bwd_fma_*.cu instantiate them, one per file, for the padded head-dim pairs the module
// dispatches to (built only with -DFLASHPORT_CUDA_FMA=ON). The backward's row kernels and fp32 path are the CUDA
// backward's (backward.cu, flashport_cuda_fma_backward_*).
#ifndef FLASHPORT_CUDA_FWD_FMA_H
#define FLASHPORT_CUDA_FWD_FMA_H

#include "kernels/bwd_launch.cuh"
#include "kernels/fwd_launch.cuh"

namespace flashport::kernels {

template <class T, int kDqk, int kDv> cudaError_t launch_fwd_fma(const FwdParams& p, cudaStream_t stream);
template <class T, int kDqk, int kDv> cudaError_t launch_bwd_main_fma(const BwdParams& p, cudaStream_t stream);

}  // namespace flashport::kernels

#endif
