// One instantiation per file so that the build compiles the kernels in parallel.
#include "cpu/cpu_backward.h"

template void flashport::cpu::backward<float>(const flashport_problem&);
