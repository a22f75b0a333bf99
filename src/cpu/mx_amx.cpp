// The bf16 block product on AMX (tdpbf16ps: a 16 x 16 fp32 tile += a 16 x 32 bf16 tile times a 16 x 16-pair tile).
// Compiled at the library's base ISA; only the functions marked FLASHPORT_AMX use AMX/AVX-512, and they run only
// after cpu_isa.cpp has checked the CPU, the OS state (XCR0) and Linux's permission for tile data.
#include <immintrin.h>

#include <cstring>

#include "cpu/mx_kernels.h"

#define FLASHPORT_AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,amx-tile,amx-bf16")))

namespace flashport::cpu {

namespace {

// Tile registers: 0-3 the 2 x 2 C tiles of a 32 x 32 block, 4-5 two 16-row A tiles, 6-7 two 16-column B tiles.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

TileConfig make_config() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;  // 16 fp32, 32 bf16 or 16 bf16 pairs per tile row
    cfg.rows[t] = 16;
  }
  return cfg;
}

const TileConfig kConfig = make_config();

// C (rows x cols of the 32 x 32 block held in tmp, row stride 32) merged into c.
FLASHPORT_AMX void merge(const float* tmp, int64_t rows, int64_t cols, float* c, int64_t ldc, float alpha,
                         bool accumulate) {
  const __m512 scale = _mm512_set1_ps(alpha);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c0 = 0; c0 < cols; c0 += 16) {
      const int64_t w = cols - c0 < 16 ? cols - c0 : 16;
      const __mmask16 mask = static_cast<__mmask16>(w >= 16 ? 0xffff : (1u << w) - 1);
      __m512 out = _mm512_mul_ps(_mm512_loadu_ps(tmp + r * 32 + c0), scale);
      float* dst = c + r * ldc + c0;
      if (accumulate) out = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dst), out);
      _mm512_mask_storeu_ps(dst, mask, out);
    }
  }
}

FLASHPORT_AMX void gemm(int64_t m, int64_t n, int64_t kp, const uint16_t* a, int64_t lda, const uint16_t* b,
                        float* c, int64_t ldc, float alpha, bool accumulate) {
  const int64_t np = (n + 15) / 16 * 16;
  const int64_t a_stride = lda * 2, b_stride = np * 4;  // bytes between tile rows
  alignas(64) float tmp[32 * 32];
  // The last partial block of 32 rows is copied here with zero rows after it: tile loads read 16 rows at a time.
  alignas(64) uint16_t a_tail[32 * kMxMaxInner];
  _tile_loadconfig(&kConfig);
  for (int64_t m0 = 0; m0 < m; m0 += 32) {
    const int64_t rows = m - m0 < 32 ? m - m0 : 32;
    const uint16_t* ab = a + m0 * lda;
    int64_t ab_stride = a_stride;
    if (rows < 32) {
      std::memset(a_tail, 0, sizeof(uint16_t) * 32 * kp);
      for (int64_t r = 0; r < rows; ++r) std::memcpy(a_tail + r * kp, ab + r * lda, sizeof(uint16_t) * kp);
      ab = a_tail;
      ab_stride = kp * 2;
    }
    for (int64_t n0 = 0; n0 < n; n0 += 32) {
      const bool two = np - n0 > 16;  // B has a second 16-column tile inside its padded width
      const uint16_t* bb = b + 2 * n0;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int64_t k0 = 0; k0 < kp; k0 += 32) {
        _tile_loadd(4, ab + k0, ab_stride);
        _tile_loadd(5, ab + 16 * (ab_stride / 2) + k0, ab_stride);
        _tile_loadd(6, bb + k0 * np, b_stride);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(2, 5, 6);
        if (two) {
          _tile_loadd(7, bb + k0 * np + 32, b_stride);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(3, 5, 7);
        }
      }
      _tile_stored(0, tmp, 128);
      _tile_stored(2, tmp + 16 * 32, 128);
      if (two) {
        _tile_stored(1, tmp + 16, 128);
        _tile_stored(3, tmp + 16 * 32 + 16, 128);
      }
      const int64_t cols = n - n0 < 32 ? n - n0 : 32;
      merge(tmp, rows, cols, c + m0 * ldc + n0, ldc, alpha, accumulate);
    }
  }
  // Back to the init state, so that the kernel saves no tile data on a context switch.
  _tile_release();
}

const MxKernels kAmxBf16{"amx-bf16", gemm};

}  // namespace

const MxKernels& amx_bf16_kernels() { return kAmxBf16; }

}  // namespace flashport::cpu
