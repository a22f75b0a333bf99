// Forward kernel template (FlashAttention-2 on the CPU). Included only by the fwd_<dtype>.cpp instantiation files.
//
// One task = (batch, query head, block of kFwdBlockQ query rows). It walks the key blocks its rows can see, keeps a
// running max m and sum l per row in fp32 and rescales its output accumulator when the max grows, so memory per
// thread is a few blocks whatever the sequence length.
#ifndef FLASHPORT_CPU_CPU_FORWARD_H
#define FLASHPORT_CPU_CPU_FORWARD_H

#include "cpu/cpu_kernels.h"
#include "cpu/cpu_products.h"

namespace flashport::cpu {

// The products come from Prod (cpu_products.h): Eigen fp32 for forward<T>, the 16-bit units for forward_mx.
template <typename T, typename Prod>
void forward_with(const flashport_problem& p, const Prod& prod) {
  const int64_t Sq = p.seqlen_q, Hq = p.heads_q, Dqk = p.head_dim_qk, Dv = p.head_dim_v;
  const int64_t group = p.heads_q / p.heads_kv;
  const int64_t nqb = (Sq + kFwdBlockQ - 1) / kFwdBlockQ;
  const Tensor4<T> q(p.q), k(p.k), v(p.v);
  const Mask mask(p);
  const ScoreRule rule(p);

  // S, O blocks, the row statistics m, l, alpha, and the provider's Q, K, V operands.
  const size_t per_thread = Carver::size(kFwdBlockQ * kFwdBlockK) + Carver::size(kFwdBlockQ * Dv) +
                            3 * Carver::size(kFwdBlockQ) + Prod::Fwd::floats(Dqk, Dv);
  Scratch scratch(omp_get_max_threads(), per_thread);

  parallel_tasks(p.batch * Hq * nqb, [&](int64_t task, int thread) {
    // Last query blocks first: under a causal mask they are the most expensive, and dynamic scheduling balances
    // best when the long tasks start early.
    const int64_t qb = nqb - 1 - task % nqb;
    const int64_t h = (task / nqb) % Hq;
    const int64_t b = task / (nqb * Hq);
    const int64_t hkv = h / group;
    const int64_t i0 = qb * kFwdBlockQ, rows = std::min(kFwdBlockQ, Sq - i0);

    Carver carve(scratch.thread_base(thread));
    float* ss = carve.take(kFwdBlockQ * kFwdBlockK);
    MatMap O(carve.take(kFwdBlockQ * Dv), rows, Dv);
    VecMap m(carve.take(kFwdBlockQ), rows), l(carve.take(kFwdBlockQ), rows);
    VecMap alpha(carve.take(kFwdBlockQ), rows);
    typename Prod::Fwd ops(prod, carve, Dqk, Dv);

    O.setZero();
    m.setConstant(kNegInf);
    l.setZero();
    int64_t lo, hi;
    mask.key_range(i0, i0 + rows, &lo, &hi);
    if (lo < hi) ops.load_q(q, b, h, i0, rows, rule.q_mul);

    for (int64_t j0 = lo, cols = 0; j0 < hi; j0 += cols) {
      cols = std::min(kFwdBlockK, hi - j0);
      // Only rows [r0, r1) see this key block (under a causal mask the first rows of the query block do not see
      // the last key blocks): the other rows' state is unchanged, so they are left out of the GEMMs.
      int64_t r0, r1;
      mask.rows_seeing(i0, rows, j0, j0 + cols, &r0, &r1);
      bool full = mask.block_visible(i0 + r0, i0 + r1, j0, j0 + cols);
      if (!full && cols > kFwdBlockK / 2) {
        // A block on the mask's edge is taken in halves, each with its own rows: the masked part computed for
        // nothing (half of a block on a causal diagonal) halves too.
        cols = kFwdBlockK / 2;
        mask.rows_seeing(i0, rows, j0, j0 + cols, &r0, &r1);
        full = mask.block_visible(i0 + r0, i0 + r1, j0, j0 + cols);
      }
      if (r0 >= r1) continue;
      const int64_t n = r1 - r0;
      ops.load_kv(k, v, b, hkv, j0, cols);
      if (j0 + cols < hi) {
        const int64_t next = std::min(kFwdBlockK, hi - j0 - cols);
        prefetch_block(k, b, hkv, j0 + cols, next, Dqk);
        prefetch_block(v, b, hkv, j0 + cols, next, Dv);
      }
      ops.scores(rule, mask, full, i0 + r0, r0, n, j0, cols, ss);

      MatMap S(ss, n, cols);
      auto mb = m.segment(r0, n), lb = l.segment(r0, n), ab = alpha.segment(r0, n);
      // One pass per row while it is in L1: new max, rescale factor, exp, exact zeros on masked keys, row sum.
      for (int64_t r = 0; r < n; ++r) {
        auto row = S.row(r).array();
        const float m_new = std::max(mb[r], row.maxCoeff());
        // A row that has seen only masked keys keeps m = -inf; shifting by 0 instead avoids -inf - -inf = NaN.
        const float shift = m_new == kNegInf ? 0.0f : m_new;
        ab[r] = std::exp(mb[r] - shift);
        mb[r] = m_new;
        row = (row - shift).exp();
        // Eigen's exp clamps its argument, so exp(-inf) is tiny rather than 0: masked entries are zeroed exactly.
        if (!full) mask.apply_row(i0 + r0 + r, j0, cols, 0.0f, ss + r * cols);
        lb[r] = lb[r] * ab[r] + row.sum();
      }
      auto Ob = O.middleRows(r0, n);
      Ob.array().colwise() *= ab.array();
      ops.add_pv(Ob, n, cols, ss);
    }

    // Rows are settled by the mask's geometry, not by what their sums came to, so that NaN and inf scores
    // propagate: a row that sees no key gives out = 0 and lse = -inf; any other row out / l and its lse m + log(l),
    // NaN included. A row whose visible scores were all -inf keeps m = -inf and has softmax 0/0: NaN (written out,
    // as Eigen's exp(-inf) need not be exactly 0), lse -inf.
    for (int64_t r = 0; r < rows; ++r) {
      if (!mask.row_sees_keys(i0 + r)) {
        O.row(r).setZero();
        alpha[r] = kNegInf;
      } else if (m[r] == kNegInf && !std::isnan(l[r])) {
        O.row(r).setConstant(kNaN);
        alpha[r] = kNegInf;
      } else {
        O.row(r) /= l[r];
        alpha[r] = m[r] + std::log(l[r]);  // lse of the row
      }
    }
    store_block<T>(p.out, b, h, i0, rows, Dv, 1.0f, O.data());
    if (p.lse.data != nullptr) {
      float* lse = static_cast<float*>(p.lse.data) + b * p.lse.stride[0] + h * p.lse.stride[1];
      for (int64_t r = 0; r < rows; ++r) lse[(i0 + r) * p.lse.stride[2]] = alpha[r];
    }
  });
}

template <typename T>
void forward(const flashport_problem& p) {
  forward_with<T>(p, EigenProducts<T>{});
}

}  // namespace flashport::cpu

#endif
