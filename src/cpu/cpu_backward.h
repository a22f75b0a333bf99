// Backward kernel template (FlashAttention-2 recomputation from lse). Included only by the bwd_<dtype>.cpp files.
//
// Delta_i = rowsum(dO_i ∘ O_i) is computed first for every (batch, query head, row) into one fp32 buffer
// (B·Hq·Sq floats). Then the work is the set of (query block, key block) pairs of every (batch, query head) that
// the mask leaves visible; each pair recomputes P and dS and adds to dV, dK (of its key block) and dQ (of its query
// block). Two schedules, chosen per call:
//   single pass: one task per (batch, KV head) walks its key blocks in order, keeps dK/dV of the current key block
//     and the fp32 dQ of its whole GQA group (group·Sq·Dqk floats per thread), 5 block GEMMs per pair. Used when
//     those tasks balance over the threads and its dQ buffers are small enough and can be allocated.
//   two passes: one task per (batch, KV head, key block) for dK/dV, then one per (batch, query head, query block)
//     for dQ, recomputing P and dS: 7 block GEMMs per pair, no O(S) buffer, parallel over every block.
// Both visit the pairs of every dQ/dK/dV block in the same order with the same block extents (blocks are aligned
// to multiples of the block sizes) and the same GEMMs, so they give the same bits: results are deterministic run to
// run and across thread counts whatever the schedule, and the `deterministic` flag needs no separate path.
// Atomics or per-thread dQ copies reduced at the end would depend on the thread count; see docs/perf/cpu.md.
#ifndef FLASHPORT_CPU_CPU_BACKWARD_H
#define FLASHPORT_CPU_CPU_BACKWARD_H

#include "cpu/cpu_kernels.h"
#include "cpu/cpu_products.h"

namespace flashport::cpu {

namespace detail {

// Per-thread blocks of the backward passes.
struct BwdBlocks {
  float *q, *k, *v, *dout, *p, *ds, *t, *acc_a, *acc_b, *lse, *delta;

  static size_t floats(int64_t dqk, int64_t dv) {
    return 2 * Carver::size(kBwdBlockQ * dqk) + Carver::size(kBwdBlockQ * dv) + 2 * Carver::size(kBwdBlockK * dqk) +
           2 * Carver::size(kBwdBlockK * dv) + 3 * Carver::size(kBwdBlockQ * kBwdBlockK) + 2 * Carver::size(kBwdBlockQ);
  }
  BwdBlocks(float* base, int64_t dqk, int64_t dv) {
    Carver c(base);
    q = c.take(kBwdBlockQ * dqk);
    dout = c.take(kBwdBlockQ * dv);
    k = c.take(kBwdBlockK * dqk);
    v = c.take(kBwdBlockK * dv);
    p = c.take(kBwdBlockQ * kBwdBlockK);
    ds = c.take(kBwdBlockQ * kBwdBlockK);
    t = c.take(kBwdBlockQ * kBwdBlockK);
    // dK and dV of a key block, or (acc_a) the dQ of a query block in the two-pass schedule.
    acc_a = c.take(std::max(kBwdBlockK, kBwdBlockQ) * dqk);
    acc_b = c.take(kBwdBlockK * dv);
    lse = c.take(kBwdBlockQ);
    delta = c.take(kBwdBlockQ);
  }
};

// Everything one (query block, key block) pair needs, recomputed from lse: P into blk.p and dS (the gradient with
// respect to the scaled dot product scale·Q·Kᵀ, softcap derivative 1 - tanh² included) into blk.ds. The products
// take the query and key blocks last loaded into ops.
template <typename Ops>
inline void probs_and_grads(const ScoreRule& rule, const Mask& mask, int64_t i0, int64_t rows, int64_t j0,
                            int64_t cols, const Ops& ops, const BwdBlocks& blk) {
  const bool full = mask.block_visible(i0, i0 + rows, j0, j0 + cols);
  ops.scores(rule, mask, full, i0, rows, j0, cols, blk.p, blk.t);
  MatMap P(blk.p, rows, cols);
  VecMap lse(blk.lse, rows), delta(blk.delta, rows);
  // lse = -inf: a fully masked row, whose entries are all masked and zeroed below (any finite shift will do), or a
  // row whose visible scores were all -inf (its out is NaN): its probabilities are 0/0, NaN, as in the forward.
  for (int64_t r = 0; r < rows; ++r) {
    const float shift = lse[r] != kNegInf ? lse[r] : mask.row_sees_keys(i0 + r) ? kNaN : 0.0f;
    P.row(r).array() = (P.row(r).array() - shift).exp();
  }
  if (!full) mask.apply(i0, rows, j0, cols, 0.0f, blk.p);

  MatMap dS(blk.ds, rows, cols);
  ops.dp(rows, cols, blk.ds);
  dS.array().colwise() -= delta.array();
  dS.array() *= P.array();
  if (rule.softcap > 0) {
    MatMap Tm(blk.t, rows, cols);
    dS.array() *= 1.0f - Tm.array().square();
  }
  // Exact zeros on masked pairs, not 0 * (dP - Delta): a NaN in a masked key's v (in dP) or in a row's Delta must
  // not reach the keys and rows that the pair does not connect.
  if (!full) mask.apply(i0, rows, j0, cols, 0.0f, blk.ds);
}

// dq of the rows [i0, i0 + rows) that see no key is 0, whatever their block products met (0 * a non-finite k of a
// key in the same block). block: rows x dim, row-major.
inline void zero_unseen_rows(const Mask& mask, int64_t i0, int64_t rows, int64_t dim, float* block) {
  for (int64_t r = 0; r < rows; ++r)
    if (!mask.row_sees_keys(i0 + r)) std::fill(block + r * dim, block + (r + 1) * dim, 0.0f);
}

template <typename T>
void load_row_stats(const flashport_problem& p, const std::vector<float>& delta_all, int64_t b, int64_t h,
                    int64_t i0, int64_t rows, const BwdBlocks& blk) {
  const float* lse = static_cast<const float*>(p.lse.data) + b * p.lse.stride[0] + h * p.lse.stride[1];
  const float* delta = delta_all.data() + (b * p.heads_q + h) * p.seqlen_q;
  for (int64_t r = 0; r < rows; ++r) {
    blk.lse[r] = lse[(i0 + r) * p.lse.stride[2]];
    blk.delta[r] = delta[i0 + r];
  }
}

}  // namespace detail

// The products come from Prod (cpu_products.h): Eigen fp32 for backward<T>, the 16-bit units for backward_mx.
template <typename T, typename Prod>
void backward_with(const flashport_problem& p, const Prod& prod) {
  using detail::BwdBlocks;
  const int64_t B = p.batch, Sq = p.seqlen_q, Skv = p.seqlen_kv, Hq = p.heads_q, Hkv = p.heads_kv;
  const int64_t Dqk = p.head_dim_qk, Dv = p.head_dim_v, group = Hq / Hkv;
  const int64_t nqb = (Sq + kBwdBlockQ - 1) / kBwdBlockQ, nkb = (Skv + kBwdBlockK - 1) / kBwdBlockK;
  const Tensor4<T> q(p.q), k(p.k), v(p.v), out(p.out), dout(p.dout);
  const Mask mask(p);
  const ScoreRule rule(p);
  // dS is the gradient with respect to scale·Q·Kᵀ and Q was loaded multiplied by q_mul (kScaledQ) or not, so
  // dK = scale·dSᵀ·Q = (scale / q_mul)·dSᵀ·(q_mul·Q) and dQ = scale·dS·K.
  const float k_grad_mul = Prod::kScaledQ ? p.scale / rule.q_mul : p.scale;

  std::vector<float> delta_all(static_cast<size_t>(B * Hq * Sq));
  const int threads = omp_get_max_threads();
  Scratch scratch(threads, BwdBlocks::floats(Dqk, Dv) + Prod::Bwd::floats(Dqk, Dv));
  // The provider's operands of a thread, carved after its BwdBlocks.
  auto thread_ops = [&](int thread, const BwdBlocks& blk) {
    Carver carve(scratch.thread_base(thread) + BwdBlocks::floats(Dqk, Dv));
    return typename Prod::Bwd(prod, carve, Dqk, Dv, blk.q, blk.dout, blk.k, blk.v);
  };
  // The single pass's per-thread dQ of a whole GQA group; when it cannot be had the two passes do the same work.
  // Its tasks all cost the same (each covers every key block), so it is worth it when they fill the threads' rounds
  // to at least 80% (two passes reach ~75% of its speed), and when a thread's buffer stays within 256 MiB.
  const int64_t tasks = B * Hkv, rounds = (tasks + threads - 1) / threads;
  const size_t dq_floats = static_cast<size_t>(group * Sq * Dqk);
  std::vector<float> dq_all;
  if (5 * tasks >= 4 * rounds * threads && dq_floats <= (size_t(256) << 20) / sizeof(float)) {
    try {
      dq_all.resize(threads * dq_floats);
    } catch (const std::bad_alloc&) {
      dq_all.clear();
    }
  }
  const bool single_pass = !dq_all.empty();

  // Delta, less dlse when given: the gradient of lse adds dlse_i·P_ij to dS_ij, i.e. dS = P ∘ (dP - (D - dlse)).
  parallel_tasks(B * Hq, [&](int64_t task, int) {
    const int64_t b = task / Hq, h = task % Hq;
    float* delta = delta_all.data() + task * Sq;
    const float* dlse = p.dlse.data == nullptr ? nullptr
                                               : static_cast<const float*>(p.dlse.data) + b * p.dlse.stride[0] +
                                                     h * p.dlse.stride[1];
    for (int64_t i = 0; i < Sq; ++i) {
      const T* o = out.row(b, i, h);
      const T* g = dout.row(b, i, h);
      float sum = 0.0f;
      for (int64_t d = 0; d < Dv; ++d) sum += to_float(o[d * out.sd]) * to_float(g[d * dout.sd]);
      delta[i] = dlse == nullptr ? sum : sum - dlse[i * p.dlse.stride[2]];
    }
  });

  // Loads Q (scaled), dO, lse and Delta of query block qb of head h; returns its row count.
  auto load_query_block = [&](typename Prod::Bwd& ops, const BwdBlocks& blk, int64_t b, int64_t h, int64_t qb) {
    const int64_t i0 = qb * kBwdBlockQ, rows = std::min(kBwdBlockQ, Sq - i0);
    ops.load_query(q, dout, b, h, i0, rows, rule.q_mul);
    detail::load_row_stats<T>(p, delta_all, b, h, i0, rows, blk);
    return rows;
  };

  // dK and dV of key block kb of KV head hkv, and, when dq_group is not null, the dQ contributions of its pairs
  // added into dq_group ([group][Sq][Dqk] fp32).
  auto key_block = [&](typename Prod::Bwd& ops, const BwdBlocks& blk, int64_t b, int64_t hkv, int64_t kb,
                       float* dq_group) {
    const int64_t j0 = kb * kBwdBlockK, cols = std::min(kBwdBlockK, Skv - j0);
    MatMap dK(blk.acc_a, cols, Dqk), dV(blk.acc_b, cols, Dv);
    dK.setZero();
    dV.setZero();
    int64_t lo, hi;
    mask.row_range(j0, j0 + cols, &lo, &hi);
    if (lo < hi) {
      ops.load_keys(k, v, b, hkv, j0, cols, false);
      for (int64_t h = hkv * group; h < (hkv + 1) * group; ++h) {
        for (int64_t qb = lo / kBwdBlockQ; qb * kBwdBlockQ < hi; ++qb) {
          const int64_t i0 = qb * kBwdBlockQ, rows = load_query_block(ops, blk, b, h, qb);
          detail::probs_and_grads(rule, mask, i0, rows, j0, cols, ops, blk);
          ops.add_dv(dV, rows, cols, blk.p);
          ops.add_dk(dK, rows, cols, blk.ds);
          if (dq_group != nullptr) {
            // Rows of the per-thread group buffer start at any float offset: an unaligned map (an Aligned64 map
            // here is undefined behaviour and trips Eigen's alignment assertion in debug builds).
            Eigen::Map<RowMat, Eigen::Unaligned> dQ(dq_group + ((h - hkv * group) * Sq + i0) * Dqk, rows, Dqk);
            ops.add_dq(dQ, rows, cols, blk.ds);
          }
        }
      }
    }
    store_block<T>(p.dk, b, hkv, j0, cols, Dqk, k_grad_mul, blk.acc_a);
    store_block<T>(p.dv, b, hkv, j0, cols, Dv, 1.0f, blk.acc_b);
  };

  if (single_pass) {
    parallel_tasks(B * Hkv, [&](int64_t task, int thread) {
      const int64_t b = task / Hkv, hkv = task % Hkv;
      BwdBlocks blk(scratch.thread_base(thread), Dqk, Dv);
      auto ops = thread_ops(thread, blk);
      float* dq_group = dq_all.data() + static_cast<size_t>(thread) * group * Sq * Dqk;
      std::fill(dq_group, dq_group + group * Sq * Dqk, 0.0f);
      for (int64_t kb = 0; kb < nkb; ++kb) key_block(ops, blk, b, hkv, kb, dq_group);
      for (int64_t g = 0; g < group; ++g) {
        detail::zero_unseen_rows(mask, 0, Sq, Dqk, dq_group + g * Sq * Dqk);
        store_block<T>(p.dq, b, hkv * group + g, 0, Sq, Dqk, p.scale, dq_group + g * Sq * Dqk);
      }
    });
    return;
  }

  parallel_tasks(B * Hkv * nkb, [&](int64_t task, int thread) {
    const int64_t kb = task % nkb, hkv = (task / nkb) % Hkv, b = task / (nkb * Hkv);
    BwdBlocks blk(scratch.thread_base(thread), Dqk, Dv);
    auto ops = thread_ops(thread, blk);
    key_block(ops, blk, b, hkv, kb, nullptr);
  });

  // dQ per query block, recomputing P and dS over the key blocks it sees, in ascending order.
  parallel_tasks(B * Hq * nqb, [&](int64_t task, int thread) {
    const int64_t qb = nqb - 1 - task % nqb, h = (task / nqb) % Hq, b = task / (nqb * Hq);
    const int64_t hkv = h / group;
    const int64_t i0 = qb * kBwdBlockQ, rows = std::min(kBwdBlockQ, Sq - i0);
    BwdBlocks blk(scratch.thread_base(thread), Dqk, Dv);
    auto ops = thread_ops(thread, blk);
    MatMap dQ(blk.acc_a, rows, Dqk);
    dQ.setZero();
    int64_t lo, hi;
    mask.key_range(i0, i0 + rows, &lo, &hi);
    if (lo < hi) load_query_block(ops, blk, b, h, qb);
    for (int64_t kb = lo / kBwdBlockK; kb * kBwdBlockK < hi; ++kb) {
      const int64_t j0 = kb * kBwdBlockK, cols = std::min(kBwdBlockK, Skv - j0);
      ops.load_keys(k, v, b, hkv, j0, cols, true);
      detail::probs_and_grads(rule, mask, i0, rows, j0, cols, ops, blk);
      ops.add_dq(dQ, rows, cols, blk.ds);
    }
    detail::zero_unseen_rows(mask, i0, rows, Dqk, blk.acc_a);
    store_block<T>(p.dq, b, h, i0, rows, Dqk, p.scale, blk.acc_a);
  });
}

template <typename T>
void backward(const flashport_problem& p) {
  backward_with<T>(p, EigenProducts<T>{});
}

}  // namespace flashport::cpu

#endif
