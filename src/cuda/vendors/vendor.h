// The one vendor header the kernels include. It picks the mapping of the few vendor primitives the kernels use:
// vendors/cuda.h when nvcc compiles them, vendors/hip.h when clang compiles them as HIP. Both define the same
// names in namespace flashport::vendor and the same feature macros (FLASHPORT_HAS_*), so kernel code never tests a
// vendor or an architecture number directly.
#ifndef FLASHPORT_CUDA_VENDORS_VENDOR_H
#define FLASHPORT_CUDA_VENDORS_VENDOR_H

#if defined(__HIP__)
#include "vendors/hip.h"
#elif defined(__CUDACC__)
#include "vendors/cuda.h"
#else
#error "flashport kernels must be compiled by nvcc (CUDA) or clang -x hip (HIP)"
#endif

#endif
