// The 16-bit block product kernels (src/cpu/mx_*.cpp), white-box, on every one this machine runs: every tail of
// rows, columns and inner dimension, both write modes, against a float64 product of the same bf16 values.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/cpu_isa.h"
#include "cpu/mx_kernels.h"

namespace fcpu = flashport::cpu;

namespace {

uint16_t to_bf16(float x) {  // x is chosen exact in bf16 below
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return static_cast<uint16_t>(u >> 16);
}

// Values with few mantissa bits (exact in bf16) and both signs; deterministic.
float value(int64_t i, int64_t salt) { return static_cast<float>(((i * 7 + salt * 13) % 17) - 8) / 8.0f; }

void check_kernel(const fcpu::MxKernels& kernel) {
  const int64_t ms[] = {1, 7, 8, 9, 16, 17, 31, 32, 33, 47, 64, 130};
  const int64_t ns[] = {1, 15, 16, 17, 32, 33, 50, 64, 128};
  const int64_t ks[] = {1, 2, 31, 32, 33, 64, 100, 128, 256};
  int64_t checked = 0;
  for (int64_t m : ms) {
    for (int64_t n : ns) {
      for (int64_t k : ks) {
        const int64_t kp = (k + 31) / 32 * 32, np = (n + 15) / 16 * 16, lda = kp + 6;
        std::vector<uint16_t> a(m * lda, 0xffff), b(kp * np, 0);  // A's stride padding is NaN: must not be read
        std::vector<double> ar(m * k), br(k * n);
        for (int64_t r = 0; r < m; ++r)
          for (int64_t c = 0; c < kp; ++c) {
            const float x = c < k ? value(r * k + c, 1) : 0.0f;
            a[r * lda + c] = to_bf16(x);
            if (c < k) ar[r * k + c] = x;
          }
        for (int64_t kk = 0; kk < k; ++kk)
          for (int64_t j = 0; j < n; ++j) {
            const float x = value(kk * n + j, 2);
            b[(kk / 2) * 2 * np + 2 * j + kk % 2] = to_bf16(x);
            br[kk * n + j] = x;
          }
        for (bool accumulate : {false, true}) {
          const int64_t ldc = n + 3;
          std::vector<float> c(m * ldc, 1.5f);  // the column padding must keep its 1.5
          kernel.gemm(m, n, kp, a.data(), lda, b.data(), c.data(), ldc, 0.5f, accumulate);
          int64_t bad = 0;
          for (int64_t r = 0; r < m; ++r) {
            for (int64_t j = 0; j < ldc; ++j) {
              double want = 1.5;
              if (j < n) {
                double dot = 0.0;
                for (int64_t kk = 0; kk < k; ++kk) dot += ar[r * k + kk] * br[kk * n + j];
                want = (accumulate ? 1.5 : 0.0) + 0.5 * dot;
              }
              // Products and these sums are exact in fp32 (small integers / 64 over at most 256 terms).
              bad += c[r * ldc + j] != static_cast<float>(want);
            }
          }
          CAPTURE(m);
          CAPTURE(n);
          CAPTURE(k);
          CAPTURE(accumulate);
          CHECK(bad == 0);
          ++checked;
        }
      }
    }
  }
  MESSAGE(std::string(kernel.name), ": ", checked, " shapes checked");
}

}  // namespace

TEST_CASE("mx kernels: AVX512-BF16 block product, every tail, both write modes") {
  const fcpu::IsaSupport s = fcpu::detect_isa_support();
  if (!s.avx512bf16) {
    MESSAGE("not run: ", s.avx512bf16_why);
    return;
  }
  check_kernel(fcpu::avx512bf16_kernels());
}

TEST_CASE("mx kernels: AMX-BF16 block product, every tail, both write modes") {
  const fcpu::IsaSupport s = fcpu::detect_isa_support();
  if (!s.amx) {
    MESSAGE("not run: ", s.amx_why);
    return;
  }
  check_kernel(fcpu::amx_bf16_kernels());
}
