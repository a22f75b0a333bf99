// Shared pieces of the CPU kernels: element conversion, strided block load/store, the mask rule, block ranges and
// per-thread scratch. Internal to src/cpu; included by the forward and backward template sources only.
#ifndef FLASHPORT_CPU_CPU_COMMON_H
#define FLASHPORT_CPU_CPU_COMMON_H

// Eigen must not start its own OpenMP team inside ours: every block GEMM here runs on the calling thread.
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif

#include <Eigen/Core>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include <omp.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "dispatch/backend_abi.h"

namespace flashport::cpu {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<RowMat, Eigen::Aligned64>;
using VecMap = Eigen::Map<Eigen::VectorXf, Eigen::Aligned64>;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Block sizes (rows of Q x rows of K/V per block GEMM), measured on Zen 4 at head_dim 64 and 128
// (docs/perf/cpu.md). Forward: 256 query rows amortise the packing of each K/V block over twice the work of 128
// (0.80 -> 0.87 of the GEMM rate); 128 to 512 x 128 to 256 measured within noise of each other. The blocks (Q, O,
// S of 128 KiB each at D 128) stay inside a 1 MiB L2. Backward: 128 and 256 measured the same; 128 keeps the three
// score-sized blocks small and gives more parallel tasks.
constexpr int64_t kFwdBlockQ = 256;
constexpr int64_t kFwdBlockK = 128;
constexpr int64_t kBwdBlockQ = 128;
constexpr int64_t kBwdBlockK = 128;

// Conversions between fp32 and a storage type (float, Eigen::half, Eigen::bfloat16; the latter two round to nearest
// even).
template <typename T>
inline float to_float(T x) {
  return static_cast<float>(x);
}
// bf16 is the upper half of a binary32: a shift of its bits, written so that loops over blocks vectorise (Eigen's
// conversion goes through a function the compiler does not vectorise; the backward converts Q/dO per block pair).
template <>
inline float to_float(Eigen::bfloat16 x) {
  const uint32_t bits = static_cast<uint32_t>(Eigen::numext::bit_cast<uint16_t>(x)) << 16;
  return Eigen::numext::bit_cast<float>(bits);
}
// fp16 the same way: exponent and mantissa moved into binary32 position, then one multiply by 2^112 re-biases the
// exponent (15 -> 127) and turns fp16 subnormals into exact fp32 normals; Inf/NaN get the all-ones exponent back.
// Branch-free, exact for all 65536 values, and it vectorises (Eigen's and _Float16's conversions did not here).
template <>
inline float to_float(Eigen::half x) {
  const uint32_t bits = Eigen::numext::bit_cast<uint16_t>(x);
  const uint32_t magnitude = bits & 0x7fffu;
  const uint32_t sign = (bits & 0x8000u) << 16;
  const float rebiased = Eigen::numext::bit_cast<float>(magnitude << 13) * 0x1p112f;
  const uint32_t finite_or_special =
      magnitude >= 0x7c00u ? (0x7f800000u | (magnitude << 13)) : Eigen::numext::bit_cast<uint32_t>(rebiased);
  return Eigen::numext::bit_cast<float>(sign | finite_or_special);
}
template <typename T>
inline T from_float(float x) {
  return static_cast<T>(x);
}

// A [batch, seqlen, heads, dim] operand seen through its element strides.
template <typename T>
struct Tensor4 {
  const T* data;
  int64_t sb, ss, sh, sd;
  explicit Tensor4(const flashport_operand& op)
      : data(static_cast<const T*>(op.data)), sb(op.stride[0]), ss(op.stride[1]), sh(op.stride[2]),
        sd(op.stride[3]) {}
  const T* row(int64_t b, int64_t s, int64_t h) const { return data + b * sb + s * ss + h * sh; }
};

// Copies rows [s0, s0 + rows) of head h into dst (row-major, dim columns), converted to fp32 and multiplied by
// mul. The contiguous case is split out so the compiler vectorises it.
template <typename T>
inline void load_block(const Tensor4<T>& t, int64_t b, int64_t h, int64_t s0, int64_t rows, int64_t dim, float mul,
                       float* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* src = t.row(b, s0 + r, h);
    float* out = dst + r * dim;
    if (t.sd == 1) {
      int64_t d = 0;
#if defined(__F16C__)
      // fp16 rows: the hardware conversion, 8 elements per instruction. With the portable loop below alone, fp16
      // ran at 0.88-0.95 of the fp32 rate at D 128; with this, 0.97-1.02 (docs/perf/cpu.md).
      if constexpr (std::is_same_v<T, Eigen::half>) {
        const __m256 scale = _mm256_set1_ps(mul);
        for (; d + 8 <= dim; d += 8) {
          const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + d));
          _mm256_storeu_ps(out + d, _mm256_mul_ps(_mm256_cvtph_ps(h), scale));
        }
      }
#endif
      for (; d < dim; ++d) out[d] = to_float(src[d]) * mul;
    } else {
      for (int64_t d = 0; d < dim; ++d) out[d] = to_float(src[d * t.sd]) * mul;
    }
  }
}

// A read-only row-major fp32 block: rows `stride` floats apart.
struct BlockView {
  const float* data;
  int64_t stride;
  Eigen::Map<const RowMat, Eigen::Unaligned, Eigen::OuterStride<>> map(int64_t rows, int64_t cols) const {
    return {data, rows, cols, Eigen::OuterStride<>(stride)};
  }
};

// Rows [s0, s0 + rows) of head h as an fp32 block: fp32 rows with a contiguous head dim are used in place (the
// GEMM packs them anyway, so a copy would only add a pass over memory); anything else is converted into scratch.
template <typename T>
inline BlockView view_block(const Tensor4<T>& t, int64_t b, int64_t h, int64_t s0, int64_t rows, int64_t dim,
                            float* scratch) {
  if constexpr (std::is_same_v<T, float>) {
    if (t.sd == 1) return {t.row(b, s0, h), t.ss};
  }
  load_block(t, b, h, s0, rows, dim, 1.0f, scratch);
  return {scratch, dim};
}

// Asks for rows [s0, s0 + rows) of head h to be brought into L2 while the current block's GEMMs run: without it the
// next block's load stalls on L3/DRAM latency (its rows are a head stride apart), which cost ~5% of the forward.
template <typename T>
inline void prefetch_block(const Tensor4<T>& t, int64_t b, int64_t h, int64_t s0, int64_t rows, int64_t dim) {
  if (t.sd != 1) return;
  const int64_t bytes = dim * static_cast<int64_t>(sizeof(T));
  for (int64_t r = 0; r < rows; ++r) {
    const char* row = reinterpret_cast<const char*>(t.row(b, s0 + r, h));
    for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(row + off, 0, 2);
  }
}

// Writes rows of src (row-major fp32, dim columns), multiplied by mul, into head h of an output operand.
template <typename T>
inline void store_block(const flashport_operand& op, int64_t b, int64_t h, int64_t s0, int64_t rows, int64_t dim,
                        float mul, const float* src) {
  T* base = static_cast<T*>(op.data);
  for (int64_t r = 0; r < rows; ++r) {
    T* out = base + b * op.stride[0] + (s0 + r) * op.stride[1] + h * op.stride[2];
    const float* in = src + r * dim;
    if (op.stride[3] == 1) {
      for (int64_t d = 0; d < dim; ++d) out[d] = from_float<T>(in[d] * mul);
    } else {
      for (int64_t d = 0; d < dim; ++d) out[d * op.stride[3]] = from_float<T>(in[d] * mul);
    }
  }
}

// The resolved mask of flashport_problem: key j is visible from query row i when
// (left < 0 || j >= i + off - left) && (right < 0 || j <= i + off + right).
struct Mask {
  int64_t off, left, right, sq, skv;
  explicit Mask(const flashport_problem& p)
      : off(p.mask_offset), left(p.window_left), right(p.window_right), sq(p.seqlen_q), skv(p.seqlen_kv) {}

  bool visible(int64_t i, int64_t j) const {
    return (left < 0 || j >= i + off - left) && (right < 0 || j <= i + off + right);
  }
  // Keys [lo, hi) that some row of [i0, i1) can see (empty when lo >= hi).
  void key_range(int64_t i0, int64_t i1, int64_t* lo, int64_t* hi) const {
    *lo = left >= 0 ? std::max<int64_t>(0, i0 + off - left) : 0;
    *hi = right >= 0 ? std::min<int64_t>(skv, i1 - 1 + off + right + 1) : skv;
  }
  // Whether row i sees any key at all: a row that sees none is fully masked (out 0, lse -inf, dq 0), which is
  // decided by this geometry only, never by the values its scores take.
  bool row_sees_keys(int64_t i) const {
    int64_t lo, hi;
    key_range(i, i + 1, &lo, &hi);
    return lo < hi;
  }
  // Rows [lo, hi) that can see some key of [j0, j1).
  void row_range(int64_t j0, int64_t j1, int64_t* lo, int64_t* hi) const {
    *lo = right >= 0 ? std::max<int64_t>(0, j0 - off - right) : 0;
    *hi = left >= 0 ? std::min<int64_t>(sq, j1 - off + left) : sq;
  }
  // True when every (i, j) of the block is visible, so the per-element mask can be skipped.
  bool block_visible(int64_t i0, int64_t i1, int64_t j0, int64_t j1) const {
    return (left < 0 || j0 >= i1 - 1 + off - left) && (right < 0 || j1 - 1 <= i0 + off + right);
  }
  // Sets the masked entries of row i's keys [j0, j0 + cols) to value. Each row's visible keys are one interval, so
  // only the two runs outside it are written.
  void apply_row(int64_t i, int64_t j0, int64_t cols, float value, float* row) const {
    const int64_t c_lo = left >= 0 ? std::clamp<int64_t>(i + off - left - j0, 0, cols) : 0;
    const int64_t c_hi = right >= 0 ? std::clamp<int64_t>(i + off + right + 1 - j0, 0, cols) : cols;
    if (c_lo >= c_hi) {
      std::fill(row, row + cols, value);
    } else {
      std::fill(row, row + c_lo, value);
      std::fill(row + c_hi, row + cols, value);
    }
  }
  // The same for every row of the (i0.., j0..) block s (rows x cols, row-major).
  void apply(int64_t i0, int64_t rows, int64_t j0, int64_t cols, float value, float* s) const {
    for (int64_t r = 0; r < rows; ++r) apply_row(i0 + r, j0, cols, value, s + r * cols);
  }
  // The rows [*r0, *r1) of the block of rows [i0, i0 + rows) that see some key of [j0, j1), relative to i0.
  void rows_seeing(int64_t i0, int64_t rows, int64_t j0, int64_t j1, int64_t* r0, int64_t* r1) const {
    int64_t lo, hi;
    row_range(j0, j1, &lo, &hi);
    *r0 = std::max<int64_t>(lo - i0, 0);
    *r1 = std::min<int64_t>(hi - i0, rows);
  }
};

// Per-thread scratch, allocated before the parallel region so that an allocation failure is reported before any
// output is written. Buffers are 64-byte aligned for Eigen's aligned maps.
class Scratch {
 public:
  Scratch(int threads, size_t floats_per_thread)
      : stride_((floats_per_thread + 15) / 16 * 16), buf_(static_cast<size_t>(threads) * stride_ + 16) {}
  float* thread_base(int t) {
    auto addr = reinterpret_cast<uintptr_t>(buf_.data());
    float* aligned = reinterpret_cast<float*>((addr + 63) & ~uintptr_t(63));
    return aligned + static_cast<size_t>(t) * stride_;
  }

 private:
  size_t stride_;
  std::vector<float> buf_;
};

// Hands out consecutive aligned pieces of one thread's scratch.
class Carver {
 public:
  explicit Carver(float* base) : next_(base) {}
  float* take(size_t floats) {
    float* r = next_;
    next_ += (floats + 15) / 16 * 16;
    return r;
  }
  static size_t size(size_t floats) { return (floats + 15) / 16 * 16; }

 private:
  float* next_;
};

// Runs body(task) for task in [0, count) on the OpenMP team with dynamic scheduling (block costs differ under
// masks). An exception inside a task (only Eigen's internal GEMM buffers can still allocate there) must not cross
// the OpenMP region; it is recorded and rethrown as std::bad_alloc afterwards.
template <typename Body>
inline void parallel_tasks(int64_t count, Body&& body) {
  std::atomic<bool> failed{false};
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < count; ++task) {
    if (failed.load(std::memory_order_relaxed)) continue;
    try {
      body(task, omp_get_thread_num());
    } catch (...) {
      failed.store(true);
    }
  }
  if (failed.load()) throw std::bad_alloc();
}

}  // namespace flashport::cpu

#endif
