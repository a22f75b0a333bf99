#include "nonfinite.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace flashport::conformance {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The largest softmax_scale the API accepts: FLT_MAX / log2(e), rounded so that scale * log2(e) stays finite in
// float (include/flashport/flashport.h).
constexpr float kMaxScale = 0x1.62e42ep+127f;

// Dense [B, S, H, D] indexing.
struct Dense {
  int64_t s, h, d;
  size_t at(int64_t b, int64_t i, int64_t hh, int64_t dd) const {
    return static_cast<size_t>(((b * s + i) * h + hh) * d + dd);
  }
};

// What one output element must be. value: the formulas evaluated over the visible pairs only (NaN / inf where
// IEEE arithmetic gives them). maybe_nan: the masked pairs' zero probabilities or gradients meet a non-finite
// operand in a dense product (0 * NaN), so a NaN is acceptable too. exact: must equal value bit for bit (out, dq of
// rows that see no key).
struct Expected {
  std::vector<double> value;
  std::vector<char> maybe_nan, exact;
  explicit Expected(size_t n = 0) : value(n, 0.0), maybe_nan(n, 0), exact(n, 0) {}
};

struct Expectations {
  Expected out, lse, dq, dk, dv;
};

// A score as the kernels form it in fp32: scale * q.k (then the softcap), rounded to float, so that scores beyond
// FLT_MAX are infinite as they are there. Tests keep clear of the factor-of-log2(e) band where the GPU kernels
// (scale * log2(e) * q.k) and the CPU ((scale * q).k) overflow at different points.
double score(const Case& c, double dot, double* tanh_out) {
  double x = c.resolved_scale() * dot;
  if (c.softcap > 0) {
    *tanh_out = std::tanh(x / c.softcap);
    x = c.softcap * *tanh_out;
  }
  // Beyond FLT_MAX plus half an ulp a float is +-inf; said explicitly, since C++ leaves the conversion of an
  // out-of-range double undefined.
  if (std::abs(x) >= 0x1.ffffffp127) return std::copysign(kInf, x);
  return static_cast<double>(static_cast<float>(x));
}

// The forward over visible pairs, then the backward fed with the backend's out (`got_out`, dense) and the reference
// lse, again over visible pairs; the maybe_nan marks from the masked pairs.
Expectations expectations(const Case& c, const CaseInputs& in, const std::vector<double>& got_out) {
  const int64_t B = c.batch, Sq = c.seqlen_q, Skv = c.seqlen_kv, Hq = c.heads_q, Hkv = c.heads_kv;
  const int64_t Dqk = c.head_dim_qk, Dv = c.head_dim_v, group = Hq / Hkv;
  const Dense qd{Sq, Hq, Dqk}, kd{Skv, Hkv, Dqk}, vd{Skv, Hkv, Dv}, od{Sq, Hq, Dv};
  const double scale = c.resolved_scale();
  Expectations e{Expected(in.dout.size()), Expected(static_cast<size_t>(B * Hq * Sq)), Expected(in.q.size()),
                 Expected(in.k.size()), Expected(in.v.size())};
  std::vector<double> s(Skv), t(Skv), p(Skv);
  std::vector<char> vis(Skv);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t hk = h / group;
      for (int64_t i = 0; i < Sq; ++i) {
        const size_t lse_at = static_cast<size_t>((b * Hq + h) * Sq + i);
        bool sees = false;
        for (int64_t j = 0; j < Skv; ++j) {
          vis[j] = c.visible(i, j);
          sees = sees || vis[j];
        }
        if (!sees) {  // the policy: exact zeros and -inf, whatever the inputs
          e.lse.value[lse_at] = -kInf;
          e.lse.exact[lse_at] = 1;
          for (int64_t d = 0; d < Dv; ++d) e.out.exact[od.at(b, i, h, d)] = 1;
          for (int64_t d = 0; d < Dqk; ++d) e.dq.exact[qd.at(b, i, h, d)] = 1;
          // Its zero gradients still meet its q and dout in the block products of every key.
          for (int64_t j = 0; j < Skv; ++j) {
            for (int64_t d = 0; d < Dqk; ++d)
              if (!std::isfinite(in.q[qd.at(b, i, h, d)])) e.dk.maybe_nan[kd.at(b, j, hk, d)] = 1;
            for (int64_t d = 0; d < Dv; ++d)
              if (!std::isfinite(in.dout[od.at(b, i, h, d)])) e.dv.maybe_nan[vd.at(b, j, hk, d)] = 1;
          }
          continue;
        }
        // Forward: max over visible scores (NaN if any is), exp, sum, lse, out.
        double m = -kInf;
        bool nan = false;
        for (int64_t j = 0; j < Skv; ++j) {
          if (!vis[j]) continue;
          double dot = 0.0;
          for (int64_t d = 0; d < Dqk; ++d) dot += in.q[qd.at(b, i, h, d)] * in.k[kd.at(b, j, hk, d)];
          s[j] = score(c, dot, &t[j]);
          nan = nan || std::isnan(s[j]);
          m = std::max(m, s[j]);
        }
        if (nan) m = kNaN;
        double l = 0.0;
        for (int64_t j = 0; j < Skv; ++j)
          if (vis[j]) l += (p[j] = std::exp(s[j] - m));  // m = +-inf: NaN where the score is as infinite
        const double lse = m == -kInf ? -kInf : m + std::log(l);
        e.lse.value[lse_at] = lse;
        for (int64_t d = 0; d < Dv; ++d) {
          double acc = 0.0;
          bool masked_nan = false;
          for (int64_t j = 0; j < Skv; ++j) {
            const double x = in.v[vd.at(b, j, hk, d)];
            if (vis[j]) acc += p[j] * x;
            else masked_nan = masked_nan || !std::isfinite(x);
          }
          e.out.value[od.at(b, i, h, d)] = acc / l;
          e.out.maybe_nan[od.at(b, i, h, d)] = masked_nan;
        }

        // Backward from the lse above and the backend's own out (what the backward is given).
        double delta = 0.0;
        for (int64_t d = 0; d < Dv; ++d) delta += in.dout[od.at(b, i, h, d)] * got_out[od.at(b, i, h, d)];
        for (int64_t j = 0; j < Skv; ++j) {
          if (!vis[j]) {
            for (int64_t d = 0; d < Dqk; ++d) {
              if (!std::isfinite(in.k[kd.at(b, j, hk, d)])) e.dq.maybe_nan[qd.at(b, i, h, d)] = 1;
              if (!std::isfinite(in.q[qd.at(b, i, h, d)])) e.dk.maybe_nan[kd.at(b, j, hk, d)] = 1;
            }
            for (int64_t d = 0; d < Dv; ++d)
              if (!std::isfinite(in.dout[od.at(b, i, h, d)])) e.dv.maybe_nan[vd.at(b, j, hk, d)] = 1;
            continue;
          }
          const double prob = std::exp(s[j] - lse);  // lse = -inf (all scores -inf): NaN, as 0/0 is
          double dp = 0.0;
          for (int64_t d = 0; d < Dv; ++d) dp += in.dout[od.at(b, i, h, d)] * in.v[vd.at(b, j, hk, d)];
          double ds = prob * (dp - delta);
          if (c.softcap > 0) ds *= 1.0 - t[j] * t[j];
          for (int64_t d = 0; d < Dqk; ++d) {
            e.dq.value[qd.at(b, i, h, d)] += scale * ds * in.k[kd.at(b, j, hk, d)];
            e.dk.value[kd.at(b, j, hk, d)] += scale * ds * in.q[qd.at(b, i, h, d)];
          }
          for (int64_t d = 0; d < Dv; ++d) e.dv.value[vd.at(b, j, hk, d)] += prob * in.dout[od.at(b, i, h, d)];
        }
      }
    }
  return e;
}

// Compares one downloaded output with its expectation; appends failures to msg. Non-finite expectations must be
// matched: out and lse by the same kind (NaN, +inf, -inf), gradients by any non-finite value (the order in which a
// backend sums +inf and NaN terms may turn one into the other). Finite ones must be finite (or NaN where maybe_nan)
// and within tol_rel of the largest finite expected magnitude.
bool check(const char* name, const HostImage& got, const Expected& want, bool same_kind, double tol_rel,
           std::ostringstream& msg) {
  const std::vector<double> g = got.dense();
  double max_ref = 1.0;
  for (double x : want.value)
    if (std::isfinite(x)) max_ref = std::max(max_ref, std::abs(x));
  const double tol = tol_rel * max_ref;
  size_t bad = 0, nan_expected = 0, nan_allowed = 0;
  std::ostringstream first;
  for (size_t i = 0; i < g.size(); ++i) {
    const double w = want.value[i], x = g[i];
    bool ok;
    if (want.exact[i]) {
      ok = x == w;
    } else if (!std::isfinite(w)) {
      ++nan_expected;
      ok = same_kind ? (std::isnan(w) ? std::isnan(x) : x == w) : !std::isfinite(x);
    } else if (want.maybe_nan[i] && std::isnan(x)) {
      ++nan_allowed;
      ok = true;
    } else {
      ok = std::isfinite(x) && std::abs(x - w) <= tol;
    }
    if (!ok && bad++ < 4) first << " [" << i << "] got " << x << " want " << w << (want.exact[i] ? " exactly" : "");
  }
  if (bad != 0)
    msg << "\n  " << name << ": " << bad << " of " << g.size() << " elements wrong (" << nan_expected
        << " non-finite expected; tolerance " << tol << "):" << first.str();
  return bad == 0;
}

// Input setters on the dense [B, S, H, D] vectors of a case.
void set_q(const Case& c, CaseInputs& in, int64_t i, int64_t h, int64_t d, double x) {
  in.q[Dense{c.seqlen_q, c.heads_q, c.head_dim_qk}.at(0, i, h, d)] = x;
}
void set_k(const Case& c, CaseInputs& in, int64_t j, int64_t h, int64_t d, double x) {
  in.k[Dense{c.seqlen_kv, c.heads_kv, c.head_dim_qk}.at(0, j, h, d)] = x;
}
void set_v(const Case& c, CaseInputs& in, int64_t j, int64_t h, int64_t d, double x) {
  in.v[Dense{c.seqlen_kv, c.heads_kv, c.head_dim_v}.at(0, j, h, d)] = x;
}
void set_dout(const Case& c, CaseInputs& in, int64_t i, int64_t h, int64_t d, double x) {
  in.dout[Dense{c.seqlen_q, c.heads_q, c.head_dim_v}.at(0, i, h, d)] = x;
}

}  // namespace

std::vector<NonFiniteScenario> nonfinite_scenarios(flashport_dtype dtype, int64_t head_dim_qk, int64_t head_dim_v,
                                                   int64_t seqlen) {
  const int64_t S = seqlen;
  // 4 query heads on 2 KV heads: every poisoned value is in KV head 0 or query head 0, so query heads 2 and 3 (KV
  // head 1) must come out exact, and GQA sums meet the non-finite values.
  auto make = [&](int64_t sq, int64_t skv, uint64_t seed) {
    Case c = Case::of_shape(1, sq, skv, 4, 2, head_dim_qk, head_dim_v);
    c.dtype = dtype;
    c.seed = seed;
    return c;
  };
  std::vector<NonFiniteScenario> v;
  v.push_back({"NaN in one q element", make(S, S + 17, 501), [](const Case& c, CaseInputs& in) {
                 set_q(c, in, c.seqlen_q / 2, 0, 1, kNaN);
               }});
  {
    Case c = make(S, S, 502);
    c.causal = true;
    v.push_back({"NaN in one k element, causal (earlier rows do not see it)", c, [](const Case& c, CaseInputs& in) {
                   set_k(c, in, c.seqlen_kv / 2, 0, 2 % c.head_dim_qk, kNaN);
                 }});
  }
  v.push_back({"a row of +inf in k", make(S, S + 17, 503), [](const Case& c, CaseInputs& in) {
                 for (int64_t d = 0; d < c.head_dim_qk; ++d) set_k(c, in, 5, 0, d, kInf);
               }});
  {
    Case c = make(S, S, 504);
    c.causal = true;
    v.push_back({"NaN in one v element, causal", c, [](const Case& c, CaseInputs& in) {
                   set_v(c, in, c.seqlen_kv / 3, 0, 3 % c.head_dim_v, kNaN);
                 }});
  }
  {
    Case c = make(S, S + 40, 505);
    c.causal = true;
    c.alignment = FLASHPORT_ALIGN_TOP_LEFT;  // keys S.. are seen by no row
    v.push_back({"NaN k of a key no row sees", c, [](const Case& c, CaseInputs& in) {
                   for (int64_t d = 0; d < c.head_dim_qk; ++d) set_k(c, in, c.seqlen_kv - 1, 0, d, kNaN);
                 }});
  }
  {
    Case c = make(S + 40, S, 506);
    c.causal = true;  // bottom-right: rows 0..39 see no key
    v.push_back({"NaN / inf q and dout in rows that see no key", c, [](const Case& c, CaseInputs& in) {
                   for (int64_t d = 0; d < c.head_dim_qk; ++d) set_q(c, in, 3, 0, d, kNaN);
                   for (int64_t d = 0; d < c.head_dim_v; ++d) set_dout(c, in, 3, 0, d, kNaN);
                   set_q(c, in, 39, 1, 0, kInf);
                   set_dout(c, in, 39, 1, 0, -kInf);
                 }});
  }
  v.push_back({"a key whose score is -inf for every row (weight 0)", make(S, S + 17, 507),
               [](const Case& c, CaseInputs& in) {
                 std::fill(in.q.begin(), in.q.end(), 1.0);  // q.k of key 0 is then -inf, never NaN
                 for (int64_t d = 0; d < c.head_dim_qk; ++d) set_k(c, in, 0, 0, d, -kInf);
               }});
  {
    Case c = make(S, S, 508);
    c.softcap = 5.0f;
    v.push_back({"NaN in one k element, softcap", c, [](const Case& c, CaseInputs& in) {
                   set_k(c, in, c.seqlen_kv - 1, 0, 0, kNaN);
                 }});
  }
  {
    Case c = make(S, S + 17, 509);
    c.softmax_scale = kMaxScale;
    v.push_back({"softmax_scale at its bound, scores +inf (KV head 0) and -inf (KV head 1)", c,
                 [](const Case& c, CaseInputs& in) {
                   std::fill(in.q.begin(), in.q.end(), 1.0);
                   for (int64_t j = 0; j < c.seqlen_kv; ++j)
                     for (int64_t h = 0; h < c.heads_kv; ++h)
                       for (int64_t d = 0; d < c.head_dim_qk; ++d) set_k(c, in, j, h, d, h == 0 ? 1.0 : -1.0);
                 }});
  }
  return v;
}

Result run_nonfinite(const NonFiniteScenario& sc, const char* backend, DeviceMemory& memory) {
  Result res;
  std::ostringstream msg;
  msg << sc.name << ": " << sc.c.describe() << " on " << backend << ":";
  CaseInputs in = make_inputs(sc.c);
  sc.poison(sc.c, in);
  const BackendOutputs fwd = run_backend(sc.c, in, {}, {}, backend, memory, false);
  auto declined = [](flashport_status st) {
    return st == FLASHPORT_STATUS_NO_BACKEND || st == FLASHPORT_STATUS_UNSUPPORTED;
  };
  if (declined(fwd.status)) {
    res.skipped = true;
    res.message = msg.str() + " skipped: " + fwd.error;
    return res;
  }
  if (fwd.status != FLASHPORT_STATUS_OK) {
    res.message = msg.str() + " " + fwd.error;
    return res;
  }
  // The backward gets the forward's own results: where the forward has NaN rows, the gradients must have them.
  const std::vector<double> got_out = fwd.out.dense();
  const BackendOutputs bwd = run_backend(sc.c, in, got_out, fwd.lse.dense(), backend, memory, true);
  if (bwd.status != FLASHPORT_STATUS_OK) {
    res.skipped = declined(bwd.status);
    res.message = msg.str() + (res.skipped ? " backward skipped: " : " ") + bwd.error;
    return res;
  }
  const Expectations e = expectations(sc.c, in, got_out);
  // Loose: the finite parts are checked for being the right numbers, not for accuracy (the conformance suite is).
  const double tol = sc.c.dtype == FLASHPORT_DTYPE_F32 ? 1e-3 : 5e-2;
  res.pass = check("out", fwd.out, e.out, true, tol, msg);
  res.pass = check("lse", fwd.lse, e.lse, true, 1e-3, msg) && res.pass;
  res.pass = check("dq", bwd.dq, e.dq, false, tol, msg) && res.pass;
  res.pass = check("dk", bwd.dk, e.dk, false, tol, msg) && res.pass;
  res.pass = check("dv", bwd.dv, e.dv, false, tol, msg) && res.pass;
  res.message = msg.str() + (res.pass ? " ok" : "");
  return res;
}

}  // namespace flashport::conformance
