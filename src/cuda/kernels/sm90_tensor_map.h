// Host: TMA tensor maps (CUtensorMap) for the copies of kernels/sm90/tma.cuh, made through the driver's
// cuTensorMapEncodeTiled, which the CUDA runtime hands out by name (cudaGetDriverEntryPointByVersion): the module
// keeps linking the runtime only, never libcuda. <cuda.h> and <cudaTypedefs.h> supply the types.
//
// Maps made here read and write 16-bit elements with the 128-byte swizzle: a box of [rows x 64] elements (128-byte
// rows) lands in shared memory exactly as one column block of SmemTileSw128 (kernels/sm90/wgmma.cuh), which the
// wgmma descriptors read; box elements past the tensor's edges load as zeros and are not stored.
#ifndef FLASHPORT_KERNELS_SM90_TENSOR_MAP_H
#define FLASHPORT_KERNELS_SM90_TENSOR_MAP_H

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace flashport::kernels {

// The driver's encoder, looked up once per process (thread-safe); nullptr when the driver does not provide it.
inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
#if CUDART_VERSION >= 12050
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault,
                                                           &found);
#else
    const cudaError_t e = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &fn, cudaEnableDefault, &found);
#endif
    return e == cudaSuccess && found == cudaDriverEntryPointSuccess
               ? reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn)
               : nullptr;
  }();
  return encode;
}

// A rank-`rank` (2..5) tensor of 16-bit elements: dims[i] elements along dimension i (innermost first, dimension 0
// contiguous), strides[i - 1] elements between neighbours along dimension i >= 1.
struct TmaTensor16 {
  const void* base;
  int rank;
  int64_t dims[5];
  int64_t strides[4];
};

// Whether TMA can address `t`: base 16-byte aligned, every byte stride a positive multiple of 16 below 2^40,
// every extent in [1, 2^32]. The forward's selector asks this before choosing a TMA kernel.
inline bool tma_addressable(const TmaTensor16& t) {
  if (t.rank < 2 || t.rank > 5 || reinterpret_cast<uintptr_t>(t.base) % 16 != 0) return false;
  for (int i = 0; i < t.rank; ++i)
    if (t.dims[i] < 1 || t.dims[i] > (int64_t(1) << 32)) return false;
  for (int i = 0; i + 1 < t.rank; ++i) {
    const int64_t bytes = t.strides[i] * 2;
    if (bytes <= 0 || bytes % 16 != 0 || bytes >= (int64_t(1) << 40)) return false;
  }
  return true;
}

// Fills *map for boxes of [box_rows x 64] elements (dimensions 1 x 0; extent 1 in the others), 128-byte swizzle,
// zero fill past the edges. `bf16`: bfloat16 elements, else IEEE half. box_rows in [1, 256]. Returns
// cudaErrorInvalidValue when TMA cannot address the tensor (tma_addressable) or the driver refuses the map, and
// cudaErrorNotSupported when the driver has no encoder.
inline cudaError_t make_tensor_map_sw128(CUtensorMap* map, const TmaTensor16& t, bool bf16, int box_rows) {
  if (!tma_addressable(t) || box_rows < 1 || box_rows > 256) return cudaErrorInvalidValue;
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
  if (encode == nullptr) return cudaErrorNotSupported;
  cuuint64_t dims[5];
  cuuint64_t strides[4];
  cuuint32_t box[5];
  cuuint32_t element_strides[5];
  for (int i = 0; i < t.rank; ++i) {
    dims[i] = static_cast<cuuint64_t>(t.dims[i]);
    box[i] = i == 0 ? 64 : i == 1 ? static_cast<cuuint32_t>(box_rows) : 1;
    element_strides[i] = 1;
  }
  for (int i = 0; i + 1 < t.rank; ++i) strides[i] = static_cast<cuuint64_t>(t.strides[i] * 2);
  // L2 promotion of 128 bytes: one box row (CUTLASS's TMA maps use the same).
  const CUresult r = encode(map, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
                            static_cast<cuuint32_t>(t.rank), const_cast<void*>(t.base), dims, strides, box,
                            element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

}  // namespace flashport::kernels

#endif
