// Definitions of the "cuda-fma" launchers (fwd_fma.h): the one forward launch (launch_fwd_policy in kernels/fwd.cuh)
// and the one backward launch (launch_bwd_main_policy in kernels/bwd_main.cuh, whose block shape for these tiles is
// BwdShapeAmd) with the generic FMA tile policy. Instantiated one per file in instances/fwd_fma_*.cu and
// bwd_fma_*.cu (src/cuda/generate_instances.py), built only with -DFLASHPORT_CUDA_FMA=ON.
#ifndef FLASHPORT_CUDA_FWD_FMA_CUH
#define FLASHPORT_CUDA_FWD_FMA_CUH

#include "fwd_fma.h"
#include "kernels/bwd_main.cuh"
#include "kernels/fwd.cuh"
#include "kernels/tile_mma_fma.cuh"

namespace flashport::kernels {

template <class T, int kDqk, int kDv> cudaError_t launch_fwd_fma(const FwdParams& p, cudaStream_t stream) {
  return launch_fwd_policy<T, kDqk, kDv, TileMmaFma<T, 32>>(p, stream);
}

template <class T, int kDqk, int kDv> cudaError_t launch_bwd_main_fma(const BwdParams& p, cudaStream_t stream) {
  return launch_bwd_main_policy<T, kDqk, kDv, TileMmaFma<T, 32>>(p, stream);
}

}  // namespace flashport::kernels

#endif
