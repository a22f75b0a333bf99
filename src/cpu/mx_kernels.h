// The 16-bit block product of the CPU's dot-product and matrix units (AVX512-BF16, AMX-BF16): one function per
// instruction set, each compiled in its own translation unit with its own target attributes, so that the library
// runs on CPUs without them. Which one runs is decided once per process by cpu_isa.cpp. Internal to src/cpu.
#ifndef FLASHPORT_CPU_MX_KERNELS_H
#define FLASHPORT_CPU_MX_KERNELS_H

#include <cstdint>

namespace flashport::cpu {

// The largest inner dimension of a block product: head dims (<= 256, the API's limit) and block sizes (<= 256).
constexpr int64_t kMxMaxInner = 256;

// Operand layouts, shared by every implementation:
//   A: m rows of kp bf16 values, row r at a + r·lda (lda >= kp; any element offset), with kp a multiple of 32 and
//      zeros in the columns past the product's inner dimension.
//   B: the k x n right operand in pairs of rows ("VNNI" layout): element (kk, j) at b[(kk / 2)·np·2 + 2·j + kk % 2],
//      np = n rounded up to a multiple of 16, kp / 2 pair rows, zeros outside the k x n values.
//   C: m x n fp32, row-major with leading dimension ldc; only those m x n values are read or written.
// Products are exact in fp32 and summed in fp32 (the instructions' own order within each group of 32 k).
struct MxKernels {
  const char* name;  // "amx-bf16", "avx512-bf16"
  // C = alpha·(A·B) when accumulate is false, C += alpha·(A·B) when it is true. kp <= kMxMaxInner.
  void (*gemm)(int64_t m, int64_t n, int64_t kp, const uint16_t* a, int64_t lda, const uint16_t* b, float* c,
               int64_t ldc, float alpha, bool accumulate);
};

// The implementations; each must only be called once cpu_isa.cpp has found the CPU (and, for AMX, Linux's permission
// for tile data) able to run it.
const MxKernels& avx512bf16_kernels();
const MxKernels& amx_bf16_kernels();

}  // namespace flashport::cpu

#endif
