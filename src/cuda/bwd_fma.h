// The "cuda-fma" backward (backward.cu, flashport_cuda_fma_backward_*): the backward main kernel of
// kernels/bwd_main.cuh with the generic FMA tile policy (kernels/tile_mma_fma.cuh, 32 lanes) and the block shapes
// that every AMD target uses (kernels/bwd_launch.cuh, BwdShapeAmd), so that the arithmetic AMD gfx1030 runs is
// tested on the NVIDIA GPUs this project has (plus D 256, whose blocks exceed AMD's 64 KB of LDS). The row kernels and the fp32 path are the CUDA backward's.
//
// Host-side view: the launchers' declarations. bwd_fma.cuh defines them; instances/bwd_fma_*.cu instantiate them,
// one per file, for the padded head-dim pairs backward.cu dispatches to (built only with -DFLASHPORT_CUDA_FMA=ON).
#ifndef FLASHPORT_CUDA_BWD_FMA_H
#define FLASHPORT_CUDA_BWD_FMA_H

#include "kernels/bwd_launch.cuh"

namespace flashport::kernels {

template <class T, int kDqk, int kDv> cudaError_t launch_bwd_main_fma(const BwdParams& p, cudaStream_t stream);

}  // namespace flashport::kernels

#endif
