// NVIDIA mapping of the vendor primitives the flashport kernels use (see vendors/vendor.h).
//
// Contract shared with vendors/hip.h — every name below must exist there with the same meaning:
//   types      half_t, bf16_t                        16-bit storage types (IEEE half, bfloat16)
//   lanes      warp_size(), lane_id(), warp_id()      hardware warp/wavefront
//   indices    thread_id(), block_id_x/y/z()          1-D blocks, 3-D grids
//   barriers   block_sync()                           __syncthreads
//   shuffles   shfl_xor(float, mask)                  butterfly exchange inside a warp
//   math       exp2f_fast(x), log2f_fast(x), tanhf_(x)
//   convert    to_float(T), pack2<T>(lo, hi) -> uint32_t (two T in one register, lo in the low half)
//   copies     copy16_async(smem, gmem, valid)        16-byte global->shared copy, zero-filled when !valid
//              copy_commit(), copy_wait<N>()          group the copies issued so far; wait until <= N groups pend
// Feature macros (device passes only; each capability named once, never inferred from an architecture number):
//   FLASHPORT_HAS_CP_ASYNC   copy16_async is asynchronous (cp.async, sm_80+); otherwise a plain load/store
//   FLASHPORT_HAS_MMA_SYNC   warp-level mma.sync.m16n8k16 for f16/bf16 and ldmatrix (sm_80+)
//   FLASHPORT_HAS_WGMMA      warpgroup wgmma.mma_async and fence.proxy.async (sm_90a only: the arch-specific target;
//                            NVIDIA-only, used by kernels/fwd_sm90.cuh)
//   FLASHPORT_HAS_VECTOR_ATOMIC_ADD  atomicAdd(float2*, float2) on global memory, one vector reduction (sm_90+);
//                            optional: code without it falls back to scalar atomicAdd
#ifndef FLASHPORT_CUDA_VENDORS_CUDA_H
#define FLASHPORT_CUDA_VENDORS_CUDA_H

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#define FLASHPORT_DEVICE __device__ __forceinline__
#define FLASHPORT_VENDOR_NAME "CUDA"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define FLASHPORT_HAS_CP_ASYNC 1
#define FLASHPORT_HAS_MMA_SYNC 1
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define FLASHPORT_HAS_VECTOR_ATOMIC_ADD 1
#endif
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FLASHPORT_HAS_WGMMA 1
#endif

namespace flashport::vendor {

using half_t = __half;
using bf16_t = __nv_bfloat16;

FLASHPORT_DEVICE constexpr int warp_size() { return 32; }
FLASHPORT_DEVICE int thread_id() { return static_cast<int>(threadIdx.x); }  // 1-D blocks only
FLASHPORT_DEVICE int block_id_x() { return static_cast<int>(blockIdx.x); }
FLASHPORT_DEVICE int block_id_y() { return static_cast<int>(blockIdx.y); }
FLASHPORT_DEVICE int block_id_z() { return static_cast<int>(blockIdx.z); }
FLASHPORT_DEVICE int lane_id() { return static_cast<int>(threadIdx.x) & 31; }
FLASHPORT_DEVICE int warp_id() { return static_cast<int>(threadIdx.x) >> 5; }
FLASHPORT_DEVICE void block_sync() { __syncthreads(); }

FLASHPORT_DEVICE float shfl_xor(float v, int mask) { return __shfl_xor_sync(0xffffffffu, v, mask); }

// ex2.approx: 2 ulp, one MUFU op; the kernels fold scale*log2(e) into the scores so exp becomes one exp2.
FLASHPORT_DEVICE float exp2f_fast(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
FLASHPORT_DEVICE float log2f_fast(float x) {
  float y;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
// Accurate tanh for softcap (tanh.approx's 2^-11 relative error would show in fp32 results).
FLASHPORT_DEVICE float tanhf_(float x) { return tanhf(x); }

FLASHPORT_DEVICE float to_float(half_t x) { return __half2float(x); }
FLASHPORT_DEVICE float to_float(bf16_t x) { return __bfloat162float(x); }
FLASHPORT_DEVICE float to_float(float x) { return x; }

template <class T> FLASHPORT_DEVICE T from_float(float x);
template <> FLASHPORT_DEVICE half_t from_float<half_t>(float x) { return __float2half_rn(x); }
template <> FLASHPORT_DEVICE bf16_t from_float<bf16_t>(float x) { return __float2bfloat16_rn(x); }
template <> FLASHPORT_DEVICE float from_float<float>(float x) { return x; }

template <class T> FLASHPORT_DEVICE uint32_t pack2(float lo, float hi);
template <> FLASHPORT_DEVICE uint32_t pack2<half_t>(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <> FLASHPORT_DEVICE uint32_t pack2<bf16_t>(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// 16-byte global->shared copy. `valid` false writes zeros (rows past the end of a sequence), so no uninitialised
// shared memory ever reaches the tensor cores.
FLASHPORT_DEVICE void copy16_async(void* smem, const void* gmem, bool valid) {
#if defined(FLASHPORT_HAS_CP_ASYNC)
  const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const int src_bytes = valid ? 16 : 0;
  // .cg: bypass L1; K/V tiles are read once per block, L2 is where reuse across blocks happens.
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(src_bytes));
#else
  *reinterpret_cast<uint4*>(smem) = valid ? *reinterpret_cast<const uint4*>(gmem) : make_uint4(0, 0, 0, 0);
#endif
}
FLASHPORT_DEVICE void copy_commit() {
#if defined(FLASHPORT_HAS_CP_ASYNC)
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
template <int N> FLASHPORT_DEVICE void copy_wait() {
#if defined(FLASHPORT_HAS_CP_ASYNC)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

// Shared-memory address as the 32-bit value ldmatrix/cp.async take.
FLASHPORT_DEVICE uint32_t smem_addr(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

}  // namespace flashport::vendor

#endif
