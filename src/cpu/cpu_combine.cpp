// Combine on the CPU: one pass per output row over the parts, in fp32. Rows are independent, so tasks are runs of
// consecutive rows in (batch, query row, head) order, the order of a contiguous out's rows.
#include "cpu/cpu_combine.h"

#include "cpu/cpu_common.h"

namespace flashport::cpu {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kPosInf = std::numeric_limits<float>::infinity();

// Rows per parallel task: enough work per task to amortise the scheduling of a row of a few hundred values.
constexpr int64_t kCombineRowsPerTask = 64;

template <typename P, typename O>
void combine_typed(const flashport_combine_problem& p) {
  const int64_t n = p.num_parts, dv = p.head_dim_v, hq = p.heads_q, sq = p.seqlen_q;
  const int64_t rows = p.batch * sq * hq;
  // Per thread: each part's lse of the current row, then the fp32 accumulator of its out row.
  Scratch scratch(omp_get_max_threads(), Carver::size(n) + Carver::size(dv));

  parallel_tasks((rows + kCombineRowsPerTask - 1) / kCombineRowsPerTask, [&](int64_t task, int thread) {
    Carver carve(scratch.thread_base(thread));
    float* lse = carve.take(n);
    float* acc = carve.take(dv);
    const int64_t end = std::min(rows, (task + 1) * kCombineRowsPerTask);
    for (int64_t r = task * kCombineRowsPerTask; r < end; ++r) {
      const int64_t h = r % hq, i = (r / hq) % sq, b = r / (hq * sq);
      // The largest lse (NaN left out: a NaN anywhere makes the row NaN).
      float m = kNegInf;
      bool nan = false;
      for (int64_t k = 0; k < n; ++k) {
        const flashport_operand& op = p.parts_lse[k];
        lse[k] = static_cast<const float*>(op.data)[b * op.stride[0] + h * op.stride[1] + i * op.stride[2]];
        if (std::isnan(lse[k])) nan = true;
        else m = std::max(m, lse[k]);
      }
      float row_lse;
      if (nan || m == kPosInf) {
        std::fill(acc, acc + dv, kNaN);
        row_lse = kNaN;
      } else if (m == kNegInf) {  // every part saw no key: a fully masked row
        std::fill(acc, acc + dv, 0.0f);
        row_lse = kNegInf;
      } else {
        float sum = 0.0f;
        for (int64_t k = 0; k < n; ++k) sum += std::exp(lse[k] - m);  // exp(-inf) = 0 for empty parts; >= 1 overall
        row_lse = m + std::log(sum);
        std::fill(acc, acc + dv, 0.0f);
        for (int64_t k = 0; k < n; ++k) {
          if (lse[k] == kNegInf) continue;  // an empty part contributes nothing, even NaN or Inf in its out
          // Multiplied in even when w underflows to 0, so that NaN or Inf in a contributing part reaches out.
          const float w = std::exp(lse[k] - m) / sum;
          const flashport_operand& op = p.parts_out[k];
          const P* src = static_cast<const P*>(op.data) + b * op.stride[0] + i * op.stride[1] + h * op.stride[2];
          const int64_t sd = op.stride[3];
          if (sd == 1) {
            for (int64_t d = 0; d < dv; ++d) acc[d] += w * to_float(src[d]);
          } else {
            for (int64_t d = 0; d < dv; ++d) acc[d] += w * to_float(src[d * sd]);
          }
        }
      }
      O* dst = static_cast<O*>(p.out.data) + b * p.out.stride[0] + i * p.out.stride[1] + h * p.out.stride[2];
      for (int64_t d = 0; d < dv; ++d) dst[d * p.out.stride[3]] = from_float<O>(acc[d]);
      if (p.lse.data != nullptr)
        static_cast<float*>(p.lse.data)[b * p.lse.stride[0] + h * p.lse.stride[1] + i * p.lse.stride[2]] = row_lse;
    }
  });
}

template <typename P>
void combine_to(const flashport_combine_problem& p) {
  switch (p.out_dtype) {
    case FLASHPORT_DTYPE_F32: return combine_typed<P, float>(p);
    case FLASHPORT_DTYPE_F16: return combine_typed<P, Eigen::half>(p);
    default: return combine_typed<P, Eigen::bfloat16>(p);  // validation admits only the three dtypes
  }
}

}  // namespace

void combine(const flashport_combine_problem& p) {
  switch (p.part_dtype) {
    case FLASHPORT_DTYPE_F32: return combine_to<float>(p);
    case FLASHPORT_DTYPE_F16: return combine_to<Eigen::half>(p);
    default: return combine_to<Eigen::bfloat16>(p);
  }
}

}  // namespace flashport::cpu
