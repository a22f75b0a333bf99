// The built-in CPU backend: blocked FlashAttention with Eigen block GEMMs and OpenMP, forward and backward.
// It is both a production backend and the reference the GPU backends are checked against.
#ifndef FLASHPORT_CPU_CPU_BACKEND_H
#define FLASHPORT_CPU_CPU_BACKEND_H

#include "dispatch/backend_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The CPU backend's interface table (static storage); the registry registers it first. */
const flashport_backend_iface* flashport_cpu_backend_iface(void);

#ifdef __cplusplus
}
#endif

#endif
