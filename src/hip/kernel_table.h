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
#include <vector>

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

// module.cpp: stream-ordered device memory on `device_id` for the backward's workspace (hipMallocAsync /
// hipFreeAsync where the runtime has them and the device supports them, else hipMalloc, and a free that first
// synchronises `stream`). *stream_ordered says which kind alloc gave; pass it back to free. flashport_status, reason
// in *err.
int32_t device_alloc(int32_t device_id, size_t bytes, void* stream, void** ptr, bool* stream_ordered,
                     std::string* err);
int32_t device_free(int32_t device_id, void* ptr, void* stream, bool stream_ordered, std::string* err);

// kernel_table.hip: whether a kernel exists for p (reason in *why when not), its workspace, and running it.
bool plan_supported(const flashport_problem& p, std::string* why);
size_t plan_workspace_size(const flashport_problem& p);
int32_t plan_run(const flashport_problem& p, std::string* err);

// Every kernel the module may launch, for tests (tests/hip): one group per launch site, each listing the variants
// of which a target's code object must hold at least one (forward and backward, every instance and dtype).
struct KernelGroup {
  std::string label;               // e.g. "bwd_main f16 128x128"
  std::vector<std::string> names;  // device-side symbols, in the order launch_kernel tries them
};
std::vector<KernelGroup> kernel_groups();

}  // namespace flashport::hip

#endif
