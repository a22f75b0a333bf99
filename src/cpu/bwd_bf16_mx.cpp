// The backward on bf16 inputs with its block products on the 16-bit units (AVX512-BF16 or AMX, chosen by
// cpu_isa.cpp). Compiled at the library's base ISA: the instructions themselves are only in the mx_*.cpp kernels.
#include "cpu/cpu_backward.h"

void flashport::cpu::backward_mx(const flashport_problem& p, const MxKernels& kernels) {
  backward_with<Eigen::bfloat16>(p, MxProducts{&kernels});
}
