#include "reference.h"

#include <Eigen/Core>

#include <cmath>
#include <limits>

namespace flashport::conformance {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double apply(const Rounding& round, double x) { return round ? round(x) : x; }

// Dense [B, S, H, D] indexing.
struct Dense {
  int64_t s, h, d;
  size_t at(int64_t bi, int64_t si, int64_t hi, int64_t di) const {
    return static_cast<size_t>(((bi * s + si) * h + hi) * d + di);
  }
};

// The probabilities of one (batch, query head): P [Sq x Skv] row-major, the tanh of the softcap (for its
// derivative) and lse per row. Fully masked rows get P = 0 and lse = -inf.
struct Probs {
  std::vector<double> p, t, lse;
};

Probs probabilities(const Case& c, const std::vector<double>& q, const std::vector<double>& k, int64_t b, int64_t h,
                    const Rounding& round) {
  const int64_t sq = c.seqlen_q, skv = c.seqlen_kv, dqk = c.head_dim_qk;
  const int64_t hkv = h / (c.heads_q / c.heads_kv);
  const Dense qd{sq, c.heads_q, dqk}, kd{skv, c.heads_kv, dqk};
  const double scale = c.resolved_scale();
  Probs r{std::vector<double>(sq * skv, 0.0), std::vector<double>(sq * skv, 0.0), std::vector<double>(sq, kNegInf)};
  std::vector<double> s(skv);
  for (int64_t i = 0; i < sq; ++i) {
    double m = kNegInf;
    for (int64_t j = 0; j < skv; ++j) {
      double dot = 0.0;
      for (int64_t d = 0; d < dqk; ++d) dot += q[qd.at(b, i, h, d)] * k[kd.at(b, j, hkv, d)];
      double x = scale * dot;
      if (c.softcap > 0) {
        r.t[i * skv + j] = std::tanh(x / c.softcap);
        x = c.softcap * r.t[i * skv + j];
      }
      s[j] = c.visible(i, j) ? apply(round, x) : kNegInf;
      m = std::max(m, s[j]);
    }
    if (m == kNegInf) continue;  // fully masked row
    double l = 0.0;
    for (int64_t j = 0; j < skv; ++j) l += std::exp(s[j] - m);
    for (int64_t j = 0; j < skv; ++j) r.p[i * skv + j] = apply(round, std::exp(s[j] - m) / l);
    r.lse[i] = m + std::log(l);
  }
  return r;
}

}  // namespace

ForwardResult reference_forward(const Case& c, const std::vector<double>& q, const std::vector<double>& k,
                                const std::vector<double>& v, const Rounding& round) {
  const int64_t sq = c.seqlen_q, skv = c.seqlen_kv, dv = c.head_dim_v;
  const Dense od{sq, c.heads_q, dv}, vd{skv, c.heads_kv, dv};
  ForwardResult r{std::vector<double>(c.batch * sq * c.heads_q * dv, 0.0),
                  std::vector<double>(c.batch * c.heads_q * sq, kNegInf)};
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t h = 0; h < c.heads_q; ++h) {
      const int64_t hkv = h / (c.heads_q / c.heads_kv);
      const Probs pr = probabilities(c, q, k, b, h, round);
      for (int64_t i = 0; i < sq; ++i) {
        r.lse[(b * c.heads_q + h) * sq + i] = pr.lse[i];
        for (int64_t d = 0; d < dv; ++d) {
          double acc = 0.0;
          for (int64_t j = 0; j < skv; ++j) acc += pr.p[i * skv + j] * v[vd.at(b, j, hkv, d)];
          r.out[od.at(b, i, h, d)] = apply(round, acc);
        }
      }
    }
  }
  return r;
}

BackwardResult reference_backward(const Case& c, const std::vector<double>& q, const std::vector<double>& k,
                                  const std::vector<double>& v, const std::vector<double>& dout,
                                  const Rounding& round, const std::vector<double>* dlse) {
  const int64_t sq = c.seqlen_q, skv = c.seqlen_kv, dqk = c.head_dim_qk, dv = c.head_dim_v;
  const Dense qd{sq, c.heads_q, dqk}, kd{skv, c.heads_kv, dqk}, od{sq, c.heads_q, dv}, vd{skv, c.heads_kv, dv};
  const double scale = c.resolved_scale();
  BackwardResult r{std::vector<double>(q.size(), 0.0), std::vector<double>(k.size(), 0.0),
                   std::vector<double>(v.size(), 0.0)};
  // dk/dv accumulate over the query heads of a group before rounding.
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t h = 0; h < c.heads_q; ++h) {
      const int64_t hkv = h / (c.heads_q / c.heads_kv);
      const Probs pr = probabilities(c, q, k, b, h, round);
      std::vector<double> dp(sq * skv), ds(sq * skv);
      for (int64_t i = 0; i < sq; ++i) {
        double delta = 0.0;  // rowsum(dout ∘ out) = sum_j P_ij dP_ij
        for (int64_t j = 0; j < skv; ++j) {
          double acc = 0.0;
          for (int64_t d = 0; d < dv; ++d) acc += dout[od.at(b, i, h, d)] * v[vd.at(b, j, hkv, d)];
          dp[i * skv + j] = apply(round, acc);
          delta += pr.p[i * skv + j] * acc;
        }
        if (dlse != nullptr) delta -= (*dlse)[(b * c.heads_q + h) * sq + i];  // d lse_i / d s_ij = P_ij
        for (int64_t j = 0; j < skv; ++j) {
          double g = pr.p[i * skv + j] * (dp[i * skv + j] - delta);
          if (c.softcap > 0) g *= 1.0 - pr.t[i * skv + j] * pr.t[i * skv + j];
          ds[i * skv + j] = apply(round, g);
        }
      }
      for (int64_t i = 0; i < sq; ++i)
        for (int64_t d = 0; d < dqk; ++d) {
          double acc = 0.0;
          for (int64_t j = 0; j < skv; ++j) acc += ds[i * skv + j] * k[kd.at(b, j, hkv, d)];
          r.dq[qd.at(b, i, h, d)] = scale * acc;
        }
      for (int64_t j = 0; j < skv; ++j) {
        for (int64_t d = 0; d < dqk; ++d) {
          double acc = 0.0;
          for (int64_t i = 0; i < sq; ++i) acc += ds[i * skv + j] * q[qd.at(b, i, h, d)];
          r.dk[kd.at(b, j, hkv, d)] += scale * acc;
        }
        for (int64_t d = 0; d < dv; ++d) {
          double acc = 0.0;
          for (int64_t i = 0; i < sq; ++i) acc += pr.p[i * skv + j] * dout[od.at(b, i, h, d)];
          r.dv[vd.at(b, j, hkv, d)] += acc;
        }
      }
    }
  }
  if (round) {
    for (auto* g : {&r.dq, &r.dk, &r.dv})
      for (double& x : *g) x = round(x);
  }
  return r;
}

double round_to_dtype(double x, flashport_dtype dtype) {
  switch (dtype) {
    case FLASHPORT_DTYPE_F16:
      return static_cast<double>(static_cast<float>(Eigen::half(static_cast<float>(x))));
    case FLASHPORT_DTYPE_BF16:
      return static_cast<double>(static_cast<float>(Eigen::bfloat16(static_cast<float>(x))));
    default:
      return static_cast<double>(static_cast<float>(x));
  }
}

}  // namespace flashport::conformance
