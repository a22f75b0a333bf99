// Definitions of the "cuda-fma" forward launchers (fwd_fma.h): the one forward launch (launch_fwd_policy in
// kernels/fwd.cuh) with the generic FMA tile policy. Instantiated one per file in instances/fwd_fma_*.cu
// (src/cuda/generate_instances.py), built only with -DFLASHPORT_CUDA_FMA=ON.
#ifndef FLASHPORT_CUDA_FWD_FMA_CUH
#define FLASHPORT_CUDA_FWD_FMA_CUH

#include "fwd_fma.h"
#include "kernels/fwd.cuh"
#include "kernels/tile_mma_fma.cuh"

namespace flashport::kernels {

template <class T, int kDqk, int kDv> cudaError_t launch_fwd_fma(const FwdParams& p, cudaStream_t stream) {
  return launch_fwd_policy<T, kDqk, kDv, TileMmaFma<T, 32>>(p, stream);
}

}  // namespace flashport::kernels

#endif
