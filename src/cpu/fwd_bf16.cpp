// One instantiation per file so that the build compiles the kernels in parallel.
#include "cpu/cpu_forward.h"

template void flashport::cpu::forward<Eigen::bfloat16>(const flashport_problem&);
