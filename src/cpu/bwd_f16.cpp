// One instantiation per file so that the build compiles the kernels in parallel.
#include "cpu/cpu_backward.h"

template void flashport::cpu::backward<Eigen::half>(const flashport_problem&);
