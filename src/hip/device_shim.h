// Device shim for AMD code built with Debian's clang-19 and `-nogpulib`.
//
// Why: the HIP 5.2 headers implement threadIdx/blockIdx/blockDim/gridDim, __syncthreads() and a few math functions
// as calls into ROCm's device libraries (ockl/ocml bitcode). Debian ships those libraries only for old targets
// (none for gfx942 or gfx1100), so the HIP module links no device library at all and defines here, from compiler
// builtins, the handful of entry points the headers and flashport's kernels reach. Anything else from ockl/ocml is
// a link error ("undefined hidden symbol: __ocml_..."), never a silent fallback: add it here when a kernel needs it.
//
// The definitions are `inline` so that every kernel translation unit (each linked on its own, without -fgpu-rdc)
// gets an inlinable copy and none is exported from a code object. Included by src/cuda/vendors/hip.h after the HIP
// headers, whose declarations these definitions match.
#ifndef FLASHPORT_HIP_DEVICE_SHIM_H
#define FLASHPORT_HIP_DEVICE_SHIM_H

#if defined(__HIP_DEVICE_COMPILE__)

#include <hip/hip_runtime.h>

#define FLASHPORT_SHIM extern "C" __device__ inline __attribute__((always_inline))

// Work-item and work-group geometry. The workgroup_size/grid_size builtins read the dispatch packet or the implicit
// kernel arguments according to the code-object version given on the command line (-mcode-object-version), which is
// why the build always passes it explicitly.
FLASHPORT_SHIM size_t __ockl_get_local_id(uint dim) {
  return dim == 0 ? __builtin_amdgcn_workitem_id_x()
                  : dim == 1 ? __builtin_amdgcn_workitem_id_y() : __builtin_amdgcn_workitem_id_z();
}
FLASHPORT_SHIM size_t __ockl_get_group_id(uint dim) {
  return dim == 0 ? __builtin_amdgcn_workgroup_id_x()
                  : dim == 1 ? __builtin_amdgcn_workgroup_id_y() : __builtin_amdgcn_workgroup_id_z();
}
FLASHPORT_SHIM size_t __ockl_get_local_size(uint dim) {
  return dim == 0 ? __builtin_amdgcn_workgroup_size_x()
                  : dim == 1 ? __builtin_amdgcn_workgroup_size_y() : __builtin_amdgcn_workgroup_size_z();
}
FLASHPORT_SHIM size_t __ockl_get_global_size(uint dim) {
  return dim == 0 ? __builtin_amdgcn_grid_size_x()
                  : dim == 1 ? __builtin_amdgcn_grid_size_y() : __builtin_amdgcn_grid_size_z();
}
FLASHPORT_SHIM size_t __ockl_get_num_groups(uint dim) {
  // The dispatch packet holds the grid size in work-items; the last group may be partial.
  const size_t size = __ockl_get_local_size(dim);
  return (__ockl_get_global_size(dim) + size - 1) / size;
}

// Memory fences for __syncthreads()/__threadfence*(). The fence builtin needs constant order and scope, so the few
// combinations the HIP headers use are spelled out; a sequentially consistent fence is the safe default.
FLASHPORT_SHIM void __atomic_work_item_fence(__cl_mem_fence_flags, __memory_order order, __memory_scope scope) {
  if (scope == __memory_scope_work_group) {
    if (order == __memory_order_release) __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");
    else if (order == __memory_order_acquire) __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");
    else __builtin_amdgcn_fence(__ATOMIC_SEQ_CST, "workgroup");
  } else if (scope == __memory_scope_device) {
    __builtin_amdgcn_fence(__ATOMIC_SEQ_CST, "agent");
  } else {
    __builtin_amdgcn_fence(__ATOMIC_SEQ_CST, "");
  }
}

// Math the kernels use that the headers route to ocml. The LLVM intrinsics behind these builtins are expanded by
// the AMDGPU back end itself (v_log_f32 / v_exp_f32 with range reduction), so no library is needed.
FLASHPORT_SHIM float __ocml_log_f32(float x) { return __builtin_logf(x); }
FLASHPORT_SHIM float __ocml_log2_f32(float x) { return __builtin_log2f(x); }
FLASHPORT_SHIM float __ocml_exp_f32(float x) { return __builtin_expf(x); }
FLASHPORT_SHIM float __ocml_exp2_f32(float x) { return __builtin_exp2f(x); }
FLASHPORT_SHIM float __ocml_tanh_f32(float x) {
  // tanh(|x|) = (1 - e^(-2|x|)) / (1 + e^(-2|x|)); that difference cancels for small |x|, where the odd series
  // (error term 62/2835 x^9 < 2e-9 relative below 0.125) is used instead.
  const float a = __builtin_fabsf(x);
  float r;
  if (a < 0.125f) {
    const float a2 = a * a;
    r = a * (1.0f + a2 * (-1.0f / 3.0f + a2 * (2.0f / 15.0f + a2 * (-17.0f / 315.0f))));
  } else {
    const float t = __builtin_expf(-2.0f * a);
    r = (1.0f - t) / (1.0f + t);
  }
  return __builtin_copysignf(r, x);
}

#undef FLASHPORT_SHIM

#endif  // __HIP_DEVICE_COMPILE__
#endif  // FLASHPORT_HIP_DEVICE_SHIM_H
