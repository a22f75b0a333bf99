// The CPU kernels, one template per direction, instantiated per dtype in the fwd_*.cpp / bwd_*.cpp files so that
// the build compiles them in parallel. They throw std::bad_alloc when scratch memory cannot be had (before any
// output is written); cpu_backend.cpp turns that into a status.
#ifndef FLASHPORT_CPU_CPU_KERNELS_H
#define FLASHPORT_CPU_CPU_KERNELS_H

#include <Eigen/Core>

#include "dispatch/backend_abi.h"

namespace flashport::cpu {

template <typename T>
void forward(const flashport_problem& p);
template <typename T>
void backward(const flashport_problem& p);

extern template void forward<float>(const flashport_problem&);
extern template void forward<Eigen::half>(const flashport_problem&);
extern template void forward<Eigen::bfloat16>(const flashport_problem&);
extern template void backward<float>(const flashport_problem&);
extern template void backward<Eigen::half>(const flashport_problem&);
extern template void backward<Eigen::bfloat16>(const flashport_problem&);

// bf16 with the block products on the 16-bit units (mx_kernels.h); the caller has checked the CPU can run them.
struct MxKernels;
void forward_mx(const flashport_problem& p, const MxKernels& kernels);
void backward_mx(const flashport_problem& p, const MxKernels& kernels);

}  // namespace flashport::cpu

#endif
