// Definitions of the "cuda-fma" backward launchers (bwd_fma.h): the one backward launch (launch_bwd_main_policy in
// kernels/bwd_main.cuh) with the generic FMA tile policy, whose block shape is BwdShapeAmd (BwdShapeFor).
// Instantiated one per file in instances/bwd_fma_*.cu (src/cuda/generate_instances.py), built only with
// -DFLASHPORT_CUDA_FMA=ON.
#ifndef FLASHPORT_CUDA_BWD_FMA_CUH
#define FLASHPORT_CUDA_BWD_FMA_CUH

#include "bwd_fma.h"
#include "kernels/bwd_main.cuh"
#include "kernels/tile_mma_fma.cuh"

namespace flashport::kernels {

template <class T, int kDqk, int kDv> cudaError_t launch_bwd_main_fma(const BwdParams& p, cudaStream_t stream) {
  return launch_bwd_main_policy<T, kDqk, kDv, TileMmaFma<T, 32>>(p, stream);
}

}  // namespace flashport::kernels

#endif
