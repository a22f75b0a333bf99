// The naive baseline must compute the same attention as flashport, or comparing their speed means nothing: forward
// (out, lse) and backward (dq, dk, dv) of the naive Eigen version against the CPU backend through the public API,
// on a small causal GQA shape with S_q != S_kv (bottom-right alignment exercised).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "baselines.h"
#include "bench_data.h"
#include "flashport/flashport.h"

namespace fb = flashport::bench;

namespace {

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

}  // namespace

TEST_CASE("naive baseline agrees with the CPU backend (fwd + bwd, causal, GQA, Sq != Skv)") {
  const fb::AttentionShape s{2, 4, 2, 37, 53, 16, 16, true};
  const size_t nq = s.batch * s.seqlen_q * s.heads_q * s.head_dim;
  const size_t nk = s.batch * s.seqlen_kv * s.heads_kv * s.head_dim;
  const size_t nlse = s.batch * s.heads_q * s.seqlen_q;
  std::vector<float> q = fb::random_floats(nq, 1), k = fb::random_floats(nk, 2), v = fb::random_floats(nk, 3),
                     dout = fb::random_floats(nq, 4);
  fb::NaiveTensors naive{q.data(), k.data(), v.data(), dout.data(), {}, {}, {}, {}, {}};
  fb::naive_forward(s, naive);
  fb::naive_backward(s, naive);

  std::vector<float> out(nq), lse(nlse), dq(nq), dk(nk), dv(nk);
  auto tensor = [&](std::vector<float>& data, int64_t seqlen, int64_t heads) {
    flashport_tensor t;
    flashport_tensor_init_contiguous(&t, data.data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, s.batch, seqlen,
                                     heads, s.head_dim);
    return t;
  };
  flashport_forward_args fa;
  flashport_forward_args_init(&fa);
  fa.q = tensor(q, s.seqlen_q, s.heads_q);
  fa.k = tensor(k, s.seqlen_kv, s.heads_kv);
  fa.v = tensor(v, s.seqlen_kv, s.heads_kv);
  fa.out = tensor(out, s.seqlen_q, s.heads_q);
  flashport_lse_init_contiguous(&fa.lse, lse.data(), FLASHPORT_DEVICE_CPU, 0, s.batch, s.heads_q, s.seqlen_q);
  fa.causal = 1;
  fa.backend = "cpu";
  REQUIRE_MESSAGE(flashport_forward(&fa) == FLASHPORT_STATUS_OK, flashport_last_error());

  flashport_backward_args ba;
  flashport_backward_args_init(&ba);
  ba.q = fa.q;
  ba.k = fa.k;
  ba.v = fa.v;
  ba.out = fa.out;
  ba.lse = fa.lse;
  ba.dout = tensor(dout, s.seqlen_q, s.heads_q);
  ba.dq = tensor(dq, s.seqlen_q, s.heads_q);
  ba.dk = tensor(dk, s.seqlen_kv, s.heads_kv);
  ba.dv = tensor(dv, s.seqlen_kv, s.heads_kv);
  ba.causal = 1;
  ba.backend = "cpu";
  REQUIRE_MESSAGE(flashport_backward(&ba) == FLASHPORT_STATUS_OK, flashport_last_error());

  // Both are fp32 with fp32 accumulation in different orders; values are O(1), so 1e-4 absolute separates an
  // ordering difference (~1e-6) from a wrong formula or mask (>= 1e-2).
  CHECK(max_abs_diff(naive.out, out) < 1e-4f);
  CHECK(max_abs_diff(naive.lse, lse) < 1e-4f);
  CHECK(max_abs_diff(naive.dq, dq) < 1e-4f);
  CHECK(max_abs_diff(naive.dk, dk) < 1e-4f);
  CHECK(max_abs_diff(naive.dv, dv) < 1e-4f);
}
