// The CPU backend's combine: merges partial (out, lse) pairs row by row (see flashport_combine_args in the public
// header for the contract). Internal to src/cpu.
#ifndef FLASHPORT_CPU_CPU_COMBINE_H
#define FLASHPORT_CPU_CPU_COMBINE_H

#include "dispatch/backend_abi.h"

namespace flashport::cpu {

// Runs a validated combine problem of any (part dtype, out dtype) pair. Throws std::bad_alloc (before writing any
// output) when its per-thread scratch cannot be had.
void combine(const flashport_combine_problem& p);

}  // namespace flashport::cpu

#endif
