// "cuda-fma" forward instances for bf16 (see fwd_fma.h and fwd_fma.cuh).
#include "fwd_fma.cuh"

namespace flashport::kernels {
FLASHPORT_CUDA_FMA_FWD_INSTANCES(vendor::bf16_t)
}  // namespace flashport::kernels
