// The bf16 block product on AVX512-BF16 (vdpbf16ps: 16 fp32 lanes, each += the dot product of one bf16 pair).
// Compiled at the library's base ISA; only the functions marked FLASHPORT_AVX512BF16 use the extension, and they run
// only after cpu_isa.cpp has checked the CPU and the OS for it.
#include <immintrin.h>

#include <cstring>

#include "cpu/mx_kernels.h"

#define FLASHPORT_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

namespace flashport::cpu {

namespace {

// Register blocking: MR rows x NV vectors of 16 columns. 8 x 32 keeps 16 accumulators, 2 B vectors and a broadcast
// in registers; every B vector loaded is used by 8 rows and every A pair broadcast by 2 vectors.
constexpr int kMr = 8;

// One A pair (two bf16) as a 32-bit word, broadcast to 16 lanes. memcpy: rows start at any element offset.
FLASHPORT_AVX512BF16 inline __m512bh broadcast_pair(const uint16_t* p) {
  uint32_t w;
  std::memcpy(&w, p, sizeof w);
  return reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(w)));
}

// C rows [0, MR) x columns [0, 16·NV) of this tile; `last` masks the columns of the last vector that are inside C.
template <int MR, int NV>
FLASHPORT_AVX512BF16 void tile(int64_t kp, const uint16_t* a, int64_t lda, const uint16_t* b, int64_t np, float* c,
                               int64_t ldc, float alpha, bool accumulate, __mmask16 last) {
  __m512 acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < kp; kk += 2) {
    const uint16_t* bk = b + kk * np;  // pair row kk / 2: np pairs, 2·np values
    __m512bh bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(bk + 32 * v));
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = broadcast_pair(a + r * lda + kk);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
    }
  }
  const __m512 scale = _mm512_set1_ps(alpha);
  for (int r = 0; r < MR; ++r) {
    float* row = c + r * ldc;
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mask = v == NV - 1 ? last : __mmask16(0xffff);
      __m512 out = _mm512_mul_ps(acc[r][v], scale);
      if (accumulate) out = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, row + 16 * v), out);
      _mm512_mask_storeu_ps(row + 16 * v, mask, out);
    }
  }
}

// Rows [0, rows) with rows <= kMr: the tile instantiated for exactly that many rows.
template <int NV>
FLASHPORT_AVX512BF16 void rows_tile(int64_t rows, int64_t kp, const uint16_t* a, int64_t lda, const uint16_t* b,
                                    int64_t np, float* c, int64_t ldc, float alpha, bool accumulate,
                                    __mmask16 last) {
  switch (rows) {
    case 8: return tile<8, NV>(kp, a, lda, b, np, c, ldc, alpha, accumulate, last);
    case 7: return tile<7, NV>(kp, a, lda, b, np, c, ldc, alpha, accumulate, last);
    case 6: return tile<6, NV>(kp, a, lda, b, np, c, ldc, alpha, accumulate, last);
    case 5: return tile<5, NV>(kp, a, lda, b, np, c, ldc, alpha, accumulate, last);
    case 4: return tile<4, NV>(kp, a, lda, b, np, c, ldc, alpha, accumulate, last);
    case 3: return tile<3, NV>(kp, a, lda, b, np, c, ldc, alpha, accumulate, last);
    case 2: return tile<2, NV>(kp, a, lda, b, np, c, ldc, alpha, accumulate, last);
    default: return tile<1, NV>(kp, a, lda, b, np, c, ldc, alpha, accumulate, last);
  }
}

FLASHPORT_AVX512BF16 void gemm(int64_t m, int64_t n, int64_t kp, const uint16_t* a, int64_t lda, const uint16_t* b,
                               float* c, int64_t ldc, float alpha, bool accumulate) {
  const int64_t np = (n + 15) / 16 * 16;
  // Column panels of 32 outermost: a panel of B (kp x 32 values, 16 KiB at kp 256) stays in L1 while A streams by.
  for (int64_t n0 = 0; n0 < n; n0 += 32) {
    const int64_t width = n - n0 < 32 ? n - n0 : 32;
    const int nv = width > 16 ? 2 : 1;
    const int64_t in_last = width - 16 * (nv - 1);
    const __mmask16 last = static_cast<__mmask16>(in_last >= 16 ? 0xffff : (1u << in_last) - 1);
    const uint16_t* bp = b + 2 * n0;
    for (int64_t m0 = 0; m0 < m; m0 += kMr) {
      const int64_t rows = m - m0 < kMr ? m - m0 : kMr;
      if (nv == 2)
        rows_tile<2>(rows, kp, a + m0 * lda, lda, bp, np, c + m0 * ldc + n0, ldc, alpha, accumulate, last);
      else
        rows_tile<1>(rows, kp, a + m0 * lda, lda, bp, np, c + m0 * ldc + n0, ldc, alpha, accumulate, last);
    }
  }
}

const MxKernels kAvx512Bf16{"avx512-bf16", gemm};

}  // namespace

const MxKernels& avx512bf16_kernels() { return kAvx512Bf16; }

}  // namespace flashport::cpu
