#include "baselines.h"

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace flashport::bench {
namespace {

// Outputs are sized by the caller before a measured call (so the memory probe counts only the S x S work); this
// sizes them when the caller did not.
void ensure_size(std::vector<float>& v, int64_t n) {
  if (v.size() != static_cast<size_t>(n)) v.assign(static_cast<size_t>(n), 0.0f);
}

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstView = Eigen::Map<const RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using View = Eigen::Map<RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The [S, D] slice of head h of batch b inside a contiguous [B, S, H, D] tensor, as a row-major matrix view.
template <typename Map, typename Ptr>
Map head_view(Ptr base, int64_t b, int64_t h, int64_t seqlen, int64_t heads, int64_t dim) {
  return Map(base + (b * seqlen * heads + h) * dim, seqlen, dim, Eigen::OuterStride<>(heads * dim));
}

// The q, k, v slices that one (batch, query head) reads.
struct HeadInputs {
  ConstView q, k, v;
};

// Calls fn(b, h, hk, inputs) for every batch b and query head h; hk is the KV head that h reads (GQA).
template <typename Fn>
void for_each_head(const AttentionShape& s, const NaiveTensors& t, Fn&& fn) {
  const int64_t group = s.heads_q / s.heads_kv;
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads_q; ++h) {
      const int64_t hk = h / group;
      const HeadInputs in{head_view<ConstView>(t.q, b, h, s.seqlen_q, s.heads_q, s.head_dim),
                          head_view<ConstView>(t.k, b, hk, s.seqlen_kv, s.heads_kv, s.head_dim),
                          head_view<ConstView>(t.v, b, hk, s.seqlen_kv, s.heads_kv, s.head_dim_v)};
      fn(b, h, hk, in);
    }
  }
}

// Scores of one (batch, head) with the mask applied, as the forward defines them.
void scores(const AttentionShape& s, const ConstView& q, const ConstView& k, float scale, RowMatrix& p) {
  p.noalias() = scale * (q * k.transpose());
  if (s.causal) {
    const int64_t off = s.seqlen_kv - s.seqlen_q;
    const float neg_inf = -std::numeric_limits<float>::infinity();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < s.seqlen_q; ++i)
      for (int64_t j = std::max<int64_t>(0, i + off + 1); j < s.seqlen_kv; ++j) p(i, j) = neg_inf;
  }
}

}  // namespace

double eigen_sgemm_gflops(int n, int reps) {
  RowMatrix a = RowMatrix::Random(n, n), b = RowMatrix::Random(n, n), c(n, n);
  c.noalias() = a * b;  // warm-up: threads, caches, page faults of c
  std::vector<double> times;
  for (int r = 0; r < std::max(1, reps); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    c.noalias() = a * b;
    times.push_back(seconds_since(t0));
  }
  // The ceiling is the best rate the threads reached, not a typical one: a single or median sample moved by up to
  // 30 % between runs on a shared 2-core machine, which moved every %gemm figure with it.
  const double fastest = *std::min_element(times.begin(), times.end());
  return 2.0 * n * static_cast<double>(n) * n / fastest * 1e-9;
}

void naive_forward(const AttentionShape& s, NaiveTensors& t) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  ensure_size(t.out, s.batch * s.seqlen_q * s.heads_q * s.head_dim_v);
  ensure_size(t.lse, s.batch * s.heads_q * s.seqlen_q);
  RowMatrix p(s.seqlen_q, s.seqlen_kv);
  for_each_head(s, t, [&](int64_t b, int64_t h, int64_t, const HeadInputs& in) {
    auto o = head_view<View>(t.out.data(), b, h, s.seqlen_q, s.heads_q, s.head_dim_v);
    float* lse = t.lse.data() + (b * s.heads_q + h) * s.seqlen_q;
    scores(s, in.q, in.k, scale, p);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < s.seqlen_q; ++i) {
      const float m = p.row(i).maxCoeff();
      if (m == -std::numeric_limits<float>::infinity()) {  // fully masked row: zero output, lse -inf
        p.row(i).setZero();
        lse[i] = m;
        continue;
      }
      p.row(i) = (p.row(i).array() - m).exp();
      const float l = p.row(i).sum();
      p.row(i) /= l;
      lse[i] = m + std::log(l);
    }
    o.noalias() = p * in.v;
  });
}

void naive_backward(const AttentionShape& s, NaiveTensors& t) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  ensure_size(t.dq, s.batch * s.seqlen_q * s.heads_q * s.head_dim);
  ensure_size(t.dk, s.batch * s.seqlen_kv * s.heads_kv * s.head_dim);
  ensure_size(t.dv, s.batch * s.seqlen_kv * s.heads_kv * s.head_dim_v);
  // dK and dV accumulate over the query heads of a group.
  std::fill(t.dk.begin(), t.dk.end(), 0.0f);
  std::fill(t.dv.begin(), t.dv.end(), 0.0f);
  RowMatrix p(s.seqlen_q, s.seqlen_kv), dp(s.seqlen_q, s.seqlen_kv);
  for_each_head(s, t, [&](int64_t b, int64_t h, int64_t hk, const HeadInputs& in) {
    auto o = head_view<ConstView>(t.out.data(), b, h, s.seqlen_q, s.heads_q, s.head_dim_v);
    auto d_o = head_view<ConstView>(t.dout, b, h, s.seqlen_q, s.heads_q, s.head_dim_v);
    auto dq = head_view<View>(t.dq.data(), b, h, s.seqlen_q, s.heads_q, s.head_dim);
    auto dk = head_view<View>(t.dk.data(), b, hk, s.seqlen_kv, s.heads_kv, s.head_dim);
    auto dv = head_view<View>(t.dv.data(), b, hk, s.seqlen_kv, s.heads_kv, s.head_dim_v);
    const float* lse = t.lse.data() + (b * s.heads_q + h) * s.seqlen_q;
    scores(s, in.q, in.k, scale, p);
    dp.noalias() = d_o * in.v.transpose();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < s.seqlen_q; ++i) {
      if (lse[i] == -std::numeric_limits<float>::infinity()) {  // fully masked row: no gradient
        p.row(i).setZero();
        dp.row(i).setZero();
        continue;
      }
      p.row(i) = (p.row(i).array() - lse[i]).exp();
      const float di = d_o.row(i).dot(o.row(i));
      dp.row(i) = p.row(i).array() * (dp.row(i).array() - di);  // dS, in place of dP
    }
    dv.noalias() += p.transpose() * d_o;
    dq.noalias() = scale * (dp * in.k);
    dk.noalias() += scale * (dp.transpose() * in.q);
  });
}

}  // namespace flashport::bench
