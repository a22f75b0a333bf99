// The CUDA module's view of the devices, shared by its translation units (module.cu, backward.cu): compute
// capabilities read once, and whether the Hopper (wgmma) kernels run on a device.
#ifndef FLASHPORT_CUDA_HOST_DEVICES_H
#define FLASHPORT_CUDA_HOST_DEVICES_H

#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace flashport::cuda_host {

// Compute capability of each device, read once at probe time (supports() must stay pure and cheap).
struct DeviceTable {
  std::once_flag once;
  cudaError_t status = cudaSuccess;
  std::vector<int> cc;  // major * 10 + minor
};
inline DeviceTable& devices() {
  static DeviceTable t;
  std::call_once(t.once, [] {
    int n = 0;
    t.status = cudaGetDeviceCount(&n);
    if (t.status != cudaSuccess) return;
    for (int i = 0; i < n; ++i) {
      int major = 0, minor = 0;
      if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, i) != cudaSuccess ||
          cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, i) != cudaSuccess) {
        major = minor = 0;
      }
      t.cc.push_back(major * 10 + minor);
    }
  });
  return t;
}

// Whether the Hopper kernels (kernels/fwd_sm90.cuh, kernels/bwd_sm90.cuh) run on `device`: compute 9.0, a module
// built with sm_90a code (FLASHPORT_CUDA_HAVE_SM90), and FLASHPORT_CUDA_WGMMA not "0" (the switch lets a benchmark
// time the mma.sync kernels on the same GPU).
inline bool hopper_kernels(int device) {
#if defined(FLASHPORT_CUDA_HAVE_SM90)
  static const bool disabled = [] {
    const char* env = std::getenv("FLASHPORT_CUDA_WGMMA");
    return env != nullptr && std::strcmp(env, "0") == 0;
  }();
  const DeviceTable& t = devices();
  return !disabled && device >= 0 && device < static_cast<int>(t.cc.size()) && t.cc[device] == 90;
#else
  (void)device;
  return false;
#endif
}

}  // namespace flashport::cuda_host

#endif
