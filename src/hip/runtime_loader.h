// The HIP runtime as the HIP module sees it: loaded with dlopen at run time, never linked.
//
// Why: ROCm 5.x ships libamdhip64.so.5, ROCm 6.x libamdhip64.so.6 (and ROCm 7 .so.7). A module linked against one
// SONAME does not load where another is installed, and Debian's toolchain (the only one CI has) provides .so.5. So
// libflashport_hip.so declares the handful of stable C entry points it uses (their signatures and error codes have
// not changed from ROCm 5 to 7), finds them with dlsym, and loads device code with the module API.
//
// Thread safety: hip_runtime() loads once under a lock; the returned table is immutable afterwards.
#ifndef FLASHPORT_HIP_RUNTIME_LOADER_H
#define FLASHPORT_HIP_RUNTIME_LOADER_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace flashport::hip {

// Opaque HIP handles; only ever passed back to the runtime.
using hipError_t = int;
using hipModule_t = void*;
using hipFunction_t = void*;
using hipStream_t = void*;

constexpr hipError_t kHipSuccess = 0;
constexpr hipError_t kHipErrorNoDevice = 100;
constexpr int kHipMemcpyHostToDevice = 1;
constexpr int kHipMemcpyDeviceToHost = 2;

// The entry points, typed as in hip_runtime_api.h (every one returns hipError_t except the error strings).
struct HipApi {
  hipError_t (*GetDeviceCount)(int* count);
  hipError_t (*GetDevice)(int* device);
  hipError_t (*SetDevice)(int device);
  // hipDeviceProp_t grew and was reordered in ROCm 6 (hipGetDevicePropertiesR0600); see device_arch_name().
  hipError_t (*GetDeviceProperties)(void* props, int device);
  const char* (*GetErrorString)(hipError_t error);
  const char* (*GetErrorName)(hipError_t error);
  hipError_t (*ModuleLoadData)(hipModule_t* module, const void* image);
  hipError_t (*ModuleGetFunction)(hipFunction_t* function, hipModule_t module, const char* name);
  hipError_t (*ModuleLaunchKernel)(hipFunction_t f, unsigned grid_x, unsigned grid_y, unsigned grid_z,
                                   unsigned block_x, unsigned block_y, unsigned block_z, unsigned shared_bytes,
                                   hipStream_t stream, void** kernel_params, void** extra);
  hipError_t (*Malloc)(void** ptr, size_t bytes);
  hipError_t (*Free)(void* ptr);
  hipError_t (*Memcpy)(void* dst, const void* src, size_t bytes, int kind);
  hipError_t (*StreamSynchronize)(hipStream_t stream);
  // Stream-ordered allocation (ROCm 5.3+); NULL on older runtimes, where the module falls back to hipMalloc.
  hipError_t (*MallocAsync)(void** ptr, size_t bytes, hipStream_t stream);
  hipError_t (*FreeAsync)(void* ptr, hipStream_t stream);
};

// What loading the runtime found. `api` is usable only when `loaded`.
struct HipRuntime {
  bool loaded = false;
  std::string path;     // the name that dlopen accepted (when loaded)
  std::string failure;  // when !loaded: every name tried and why each failed
  HipApi api{};
};

// The names tried, in order: the paths in FLASHPORT_HIP_RUNTIME (colon-separated) when it is set, otherwise
// libamdhip64.so.7, libamdhip64.so.6, libamdhip64.so.5 (newest first: a machine with several ROCm versions
// installed gets the newest).
std::string runtime_candidates_description();

// Loads the runtime on first call (thread-safe) and returns the result for the life of the process.
const HipRuntime& hip_runtime();

// "hipErrorNoDevice (100): no ROCm-capable device is detected" from the loaded runtime's own strings.
std::string error_text(const HipRuntime& rt, hipError_t error);

// The architecture name of `device` as the runtime reports it ("gfx90a:sramecc+:xnack-"); false with the reason
// in *why when the query fails.
bool device_arch_name(const HipRuntime& rt, int device, std::string* arch, std::string* why);

}  // namespace flashport::hip

#endif
