// Definitions of the "cuda-fma" forward launchers (fwd_fma.h) and the list of their instances.
#ifndef FLASHPORT_CUDA_FWD_FMA_CUH
#define FLASHPORT_CUDA_FWD_FMA_CUH

#include "fwd_fma.h"
#include "kernels/fwd.cuh"
#include "kernels/tile_mma_fma.cuh"

namespace flashport::kernels {

// The same launch as launch_fwd (kernels/fwd.cuh) with the FMA policy: fwd.cuh's launcher takes no policy argument.
template <class T, int kDqk, int kDv> cudaError_t launch_fwd_fma(const FwdParams& p, cudaStream_t stream) {
  using P = TileMmaFma<T, 32>;
  using Cfg = FwdConfig<P, kDqk, kDv>;
  auto kernel = fwd_kernel<T, kDqk, kDv, P>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::kSmemBytes);
  if (err != cudaSuccess) return err;
  const dim3 grid(ceil_div(p.seqlen_q, Cfg::kBlockM), p.heads_q, p.batch);
  kernel<<<grid, Cfg::kThreads, Cfg::kSmemBytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace flashport::kernels

#define FLASHPORT_CUDA_FMA_FWD_INSTANCE(T, dqk, dv) \
  template cudaError_t launch_fwd_fma<T, dqk, dv>(const FwdParams&, cudaStream_t);
#define FLASHPORT_CUDA_FMA_FWD_INSTANCES(T)    \
  FLASHPORT_CUDA_FMA_FWD_INSTANCE(T, 32, 32)   \
  FLASHPORT_CUDA_FMA_FWD_INSTANCE(T, 64, 64)   \
  FLASHPORT_CUDA_FMA_FWD_INSTANCE(T, 96, 96)   \
  FLASHPORT_CUDA_FMA_FWD_INSTANCE(T, 128, 128) \
  FLASHPORT_CUDA_FMA_FWD_INSTANCE(T, 192, 192) \
  FLASHPORT_CUDA_FMA_FWD_INSTANCE(T, 256, 256) \
  FLASHPORT_CUDA_FMA_FWD_INSTANCE(T, 192, 128)

#endif
