// AMD mapping of the vendor primitives the flashport kernels use (see vendors/vendor.h; the contract is listed in
// vendors/cuda.h). Compiled by clang -x hip (Debian's clang-19) with the HIP headers of libamdhip64-dev and
// -nogpulib: src/hip/device_shim.h supplies the few device-library functions those headers call.
//
// Feature macros (device passes only; each capability named once from the compiler's own target macros, never by
// faking __CUDA_ARCH__):
//   FLASHPORT_HAS_MFMA_F16   v_mfma_f32_16x16x16f16 (CDNA: gfx908, gfx90a, gfx94x)
//   FLASHPORT_HAS_MFMA_BF16  v_mfma_f32_16x16x16bf16_1k (gfx90a, gfx94x; gfx908 only has the older bf16 form,
//                            whose use crashes LLVM's back end, so bf16 takes the FMA tiles there)
//   FLASHPORT_HAS_WMMA       v_wmma_f32_16x16x16_{f16,bf16} in wave32 (RDNA3: gfx11xx)
// There is no asynchronous global->shared copy on these targets: copy16_async is a plain 16-byte load and store,
// ordered by the barriers the kernels already place before every use of a tile.
#ifndef FLASHPORT_CUDA_VENDORS_HIP_H
#define FLASHPORT_CUDA_VENDORS_HIP_H

#if !defined(__HIP__)
#error "vendors/hip.h is for clang's HIP mode (-x hip)"
#endif

#include <hip/hip_runtime.h>
#include <stdint.h>

#include "../../hip/device_shim.h"

#define FLASHPORT_DEVICE __device__ __forceinline__
#define FLASHPORT_VENDOR_NAME "HIP"

#if defined(__HIP_DEVICE_COMPILE__)
#if defined(__gfx908__) || defined(__gfx90a__) || defined(__gfx940__) || defined(__gfx941__) || defined(__gfx942__)
#define FLASHPORT_HAS_MFMA_F16 1
#endif
#if defined(__gfx90a__) || defined(__gfx940__) || defined(__gfx941__) || defined(__gfx942__)
#define FLASHPORT_HAS_MFMA_BF16 1
#endif
#if defined(__gfx1100__) || defined(__gfx1101__) || defined(__gfx1102__) || defined(__gfx1103__) || \
    defined(__gfx1150__) || defined(__gfx1151__)
#define FLASHPORT_HAS_WMMA 1
#endif
#endif

// The CUDA runtime names the kernels' host-side launch templates are written with (fwd.cuh, bwd_launch.cuh). The
// HIP module never runs those templates (it launches through the module API, src/hip/kernel_table.hip), but they
// must parse in every pass.
#define cudaError_t hipError_t
#define cudaStream_t hipStream_t
#define cudaSuccess hipSuccess
#define cudaErrorInvalidConfiguration hipErrorInvalidConfiguration
#define cudaGetLastError hipGetLastError
// CUDA's runtime takes any kernel pointer here; HIP 5.2 only `const void*`.
template <class Kernel> inline hipError_t flashport_hip_func_set_attribute(Kernel* k, hipFuncAttribute a, int v) {
  return hipFuncSetAttribute(reinterpret_cast<const void*>(k), a, v);
}
#define cudaFuncSetAttribute flashport_hip_func_set_attribute
#define cudaFuncAttributeMaxDynamicSharedMemorySize hipFuncAttributeMaxDynamicSharedMemorySize
// __launch_bounds__(max_threads[, min_blocks]): HIP 5.2's macro counts its arguments, which breaks on template
// arguments with commas (FwdConfig<P, kDqk, kDv>::kThreads, 1), and clang ignores the CUDA attribute on AMDGPU. So
// the first argument is picked by a constexpr function, where the parser does see template arguments, and becomes
// amdgpu_flat_work_group_size, which bounds the registers per thread as launch bounds do on NVIDIA.
constexpr int flashport_launch_bounds_max_threads(int max_threads, int = 0) { return max_threads; }
#undef __launch_bounds__
#define __launch_bounds__(...) \
  __attribute__((amdgpu_flat_work_group_size(1, flashport_launch_bounds_max_threads(__VA_ARGS__))))
// CUDA's trap intrinsic, which HIP 5.2's headers lack; the kernels use it only on paths a launch never takes.
#define __trap() __builtin_trap()

namespace flashport::vendor {

// IEEE half and bfloat16 as clang's native 16-bit types: both are plain 2-byte values in every pass (host and
// device), convert with correct rounding, and are what the MFMA/WMMA builtins take.
using half_t = _Float16;
using bf16_t = __bf16;

// The wavefront size of the device pass (64 on CDNA, 32 on RDNA); 64 in the host pass, which never runs device code.
#if defined(__AMDGCN_WAVEFRONT_SIZE)
constexpr int kWaveSize = __AMDGCN_WAVEFRONT_SIZE;
#else
constexpr int kWaveSize = 64;
#endif

FLASHPORT_DEVICE constexpr int warp_size() { return kWaveSize; }
FLASHPORT_DEVICE int thread_id() { return static_cast<int>(__builtin_amdgcn_workitem_id_x()); }  // 1-D blocks
FLASHPORT_DEVICE int block_id_x() { return static_cast<int>(__builtin_amdgcn_workgroup_id_x()); }
FLASHPORT_DEVICE int block_id_y() { return static_cast<int>(__builtin_amdgcn_workgroup_id_y()); }
FLASHPORT_DEVICE int block_id_z() { return static_cast<int>(__builtin_amdgcn_workgroup_id_z()); }
FLASHPORT_DEVICE int lane_id() { return thread_id() & (kWaveSize - 1); }
FLASHPORT_DEVICE int warp_id() { return thread_id() / kWaveSize; }
FLASHPORT_DEVICE void block_sync() { __syncthreads(); }

// ds_bpermute-based exchange over the whole wavefront (HIP 5.2 has no *_sync shuffles and needs no mask).
FLASHPORT_DEVICE float shfl_xor(float v, int mask) { return __shfl_xor(v, mask, kWaveSize); }

// v_exp_f32 / v_log_f32 are base-2 and about 1 ulp: the exact counterpart of ex2.approx / lg2.approx.
FLASHPORT_DEVICE float exp2f_fast(float x) { return __builtin_amdgcn_exp2f(x); }
FLASHPORT_DEVICE float log2f_fast(float x) { return __builtin_amdgcn_logf(x); }
FLASHPORT_DEVICE float tanhf_(float x) { return __ocml_tanh_f32(x); }

FLASHPORT_DEVICE float to_float(half_t x) { return static_cast<float>(x); }
FLASHPORT_DEVICE float to_float(bf16_t x) { return static_cast<float>(x); }
FLASHPORT_DEVICE float to_float(float x) { return x; }

template <class T> FLASHPORT_DEVICE T from_float(float x) { return static_cast<T>(x); }

template <class T> FLASHPORT_DEVICE uint32_t pack2(float lo, float hi) {
  const T l = static_cast<T>(lo), h = static_cast<T>(hi);
  return uint32_t(__builtin_bit_cast(uint16_t, l)) | (uint32_t(__builtin_bit_cast(uint16_t, h)) << 16);
}

// 16-byte global->shared copy; `valid` false writes zeros (rows past the end of a sequence).
FLASHPORT_DEVICE void copy16_async(void* smem, const void* gmem, bool valid) {
  *reinterpret_cast<uint4*>(smem) = valid ? *reinterpret_cast<const uint4*>(gmem) : make_uint4(0, 0, 0, 0);
}
FLASHPORT_DEVICE void copy_commit() {}
template <int N> FLASHPORT_DEVICE void copy_wait() {}

}  // namespace flashport::vendor

#endif
