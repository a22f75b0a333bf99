// The seam between the HIP module's host code (module.cpp, ordinary C++) and kernel_table.hip, the one host-side
// translation unit that clang compiles as HIP (host pass only) so that it sees the kernel templates of src/cuda:
// there it takes each kernel's device-side symbol name from the compiler (__builtin_get_device_side_mangled_name)
// and its launch shape from the same constexpr configuration the device code was built with. It references no HIP
// runtime symbol: launches go through launch_kernel() below.
#ifndef FLASHPORT_HIP_KERNEL_TABLE_H
#define FLASHPORT_HIP_KERNEL_TABLE_H

#include <cstddef>
#include <cstdint>
#include <string>

#include "dispatch/backend_abi.h"

namespace flashport::hip {

// One launch of a kernel whose only parameter is a block of plain data.
struct KernelLaunch {
  const char* name;         // device-side symbol, looked up in the device's code object
  unsigned grid[3];
  unsigned block;           // threads per block (1-D)
  unsigned shared_bytes;    // dynamic LDS
};

// module.cpp: load the device's code object (once), find the first of `candidates` that it holds and queue that on
// `stream` (hipStream_t). A kernel exists in several variants (one per tile policy: MFMA, WMMA, FMA at 32 or 64
// lanes) and each target's code object holds only its own, so the code object itself says which one runs here.
// Returns a flashport_status with the reason in *err.
int32_t launch_kernel(int32_t device_id, const KernelLaunch* candidates, size_t count, void* stream, void* params,
                      std::string* err);

// kernel_table.hip: whether a kernel exists for p (reason in *why when not), its workspace, and running it.
bool plan_supported(const flashport_problem& p, std::string* why);
size_t plan_workspace_size(const flashport_problem& p);
int32_t plan_run(const flashport_problem& p, std::string* err);

}  // namespace flashport::hip

#endif
