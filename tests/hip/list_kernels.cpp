// Prints every kernel the HIP module may launch, from the module's own kernel table (src/hip/kernel_table.hip, the
// names the compiler gave the device code): one line per launch site, "label<TAB>name name ...", where a target's
// code object must hold at least one of the names (one per tile policy / wavefront width). check_code_objects.sh
// reads it, so the check follows the table without a second list. Links kernel_table.o alone: the launch seam of
// module.cpp is stubbed out here (nothing is launched).
#include <cstdio>
#include <string>

#include "hip/kernel_table.h"

namespace flashport::hip {

int32_t launch_kernel(int32_t, const KernelLaunch*, size_t, void*, void*, std::string* err) {
  *err = "list_kernels launches nothing";
  return FLASHPORT_STATUS_INTERNAL;
}
int32_t device_alloc(int32_t, size_t, void*, void**, bool*, std::string* err) {
  *err = "list_kernels allocates nothing";
  return FLASHPORT_STATUS_INTERNAL;
}
int32_t device_free(int32_t, void*, void*, bool, std::string* err) {
  *err = "list_kernels frees nothing";
  return FLASHPORT_STATUS_INTERNAL;
}

}  // namespace flashport::hip

int main() {
  for (const flashport::hip::KernelGroup& g : flashport::hip::kernel_groups()) {
    std::string line = g.label + "\t";
    for (size_t i = 0; i < g.names.size(); ++i) line += (i ? " " : "") + g.names[i];
    std::printf("%s\n", line.c_str());
  }
  return 0;
}
