// Peak extra host memory of one call, from the kernel's resident-set accounting.
//
// Method: return freed heap memory to the OS (malloc_trim), reset the process's resident-set high-water mark
// (writing "5" to /proc/self/clear_refs, Linux >= 4.0), read VmRSS, run the call, read VmHWM. The growth
// VmHWM - VmRSS(before) is the most memory the call had resident at once beyond what existed before it. Inputs and
// outputs are allocated and touched before, so they are not counted; OpenMP thread stacks are not counted either
// when a warm-up call ran first. Resolution is one page.
#ifndef FLASHPORT_BENCH_MEMORY_PROBE_H
#define FLASHPORT_BENCH_MEMORY_PROBE_H

#include <cstdint>
#include <functional>

namespace flashport::bench {

// One-line description of the method, printed with the results.
const char* memory_probe_method();

// Bytes of peak growth while fn runs, or -1 when the high-water mark cannot be reset or read on this system.
int64_t peak_extra_bytes(const std::function<void()>& fn);

}  // namespace flashport::bench

#endif
