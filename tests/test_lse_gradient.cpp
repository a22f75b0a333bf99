// The backward's optional dlse (the gradient of the loss with respect to lse): the float64 reference's dlse term
// proven by finite differences of loss = sum(g ∘ out) + sum(w ∘ lse), the CPU backward checked against that
// reference (every dtype, layouts, masks with fully masked rows, GQA, several blocks), dlse = 0 giving the same bits
// as no dlse, a caller built before the field existed, and the validation of dlse.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "cases.h"
#include "dispatch_fixture.h"
#include "reference.h"
#include "runner.h"

namespace fc = flashport::conformance;

namespace {

// dlse values for a case: normal, on every row (fully masked rows included, where they must change nothing).
std::vector<double> random_dlse(const fc::Case& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> w(static_cast<size_t>(c.batch * c.heads_q * c.seqlen_q));
  for (double& x : w) x = normal(rng);
  return w;
}

// loss = sum(out ∘ dout) + sum(dlse ∘ lse) of the float64 reference, over the rows that see some key (a fully masked
// row's lse is -inf whatever the inputs, so it is left out rather than making the loss -inf).
double reference_loss(const fc::Case& c, const fc::CaseInputs& in, const std::vector<double>& dlse) {
  const fc::ForwardResult f = fc::reference_forward(c, in.q, in.k, in.v);
  double loss = 0.0;
  for (size_t i = 0; i < f.out.size(); ++i) loss += f.out[i] * in.dout[i];
  for (size_t i = 0; i < f.lse.size(); ++i)
    if (std::isfinite(f.lse[i])) loss += f.lse[i] * dlse[i];
  return loss;
}

std::vector<double> finite_difference(const fc::Case& c, fc::CaseInputs in, const std::vector<double>& dlse,
                                      std::vector<double> fc::CaseInputs::*x) {
  constexpr double h = 1e-5;  // truncation ~h² ≈ 1e-10, round-off ~1e-16/h ≈ 1e-11
  std::vector<double> g((in.*x).size());
  for (size_t i = 0; i < g.size(); ++i) {
    const double saved = (in.*x)[i];
    (in.*x)[i] = saved + h;
    const double up = reference_loss(c, in, dlse);
    (in.*x)[i] = saved - h;
    const double down = reference_loss(c, in, dlse);
    (in.*x)[i] = saved;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

flashport_tensor host_tensor(fc::HostImage& img) {
  flashport_tensor t{};
  t.data = img.bytes.data();
  t.dtype = img.dtype;
  t.device_type = FLASHPORT_DEVICE_CPU;
  for (int i = 0; i < 4; ++i) {
    t.shape[i] = img.shape[i];
    t.strides[i] = img.strides[i];
  }
  return t;
}

struct Grads {
  fc::HostImage dq, dk, dv;
};

// flashport_backward on the CPU with the reference's out and lse as inputs, dlse when given (laid out like lse in the
// case's layout), every tensor in the case's layout.
Grads run_cpu_backward(const fc::Case& c, const fc::CaseInputs& in, const std::vector<double>* dlse) {
  const fc::ForwardResult f = fc::reference_forward(c, in.q, in.k, in.v);
  const std::array<int64_t, 4> qs{c.batch, c.seqlen_q, c.heads_q, c.head_dim_qk},
      ks{c.batch, c.seqlen_kv, c.heads_kv, c.head_dim_qk}, vs{c.batch, c.seqlen_kv, c.heads_kv, c.head_dim_v},
      os{c.batch, c.seqlen_q, c.heads_q, c.head_dim_v}, ls{c.batch, c.heads_q, c.seqlen_q, 1};
  auto make = [&](std::array<int64_t, 4> shape, const std::vector<double>* values, bool is_lse = false) {
    fc::HostImage img(shape, c.layout, is_lse ? FLASHPORT_DTYPE_F32 : c.dtype, is_lse);
    if (values != nullptr) img.fill(*values);
    return img;
  };
  fc::HostImage q = make(qs, &in.q), k = make(ks, &in.k), v = make(vs, &in.v), dout = make(os, &in.dout),
                out = make(os, &f.out), lse = make(ls, &f.lse, true);
  fc::HostImage dl = make(ls, dlse, true);
  Grads g{make(qs, nullptr), make(ks, nullptr), make(vs, nullptr)};
  flashport_backward_args a;
  flashport_backward_args_init(&a);
  std::tie(a.q, a.k, a.v, a.dout, a.out, a.lse) =
      std::make_tuple(host_tensor(q), host_tensor(k), host_tensor(v), host_tensor(dout), host_tensor(out),
                      host_tensor(lse));
  std::tie(a.dq, a.dk, a.dv) = std::make_tuple(host_tensor(g.dq), host_tensor(g.dk), host_tensor(g.dv));
  if (dlse != nullptr) a.dlse = host_tensor(dl);
  a.softmax_scale = c.softmax_scale;
  a.softcap = c.softcap;
  a.causal = c.causal ? 1 : 0;
  a.mask_alignment = c.alignment;
  a.window_left = c.window_left;
  a.window_right = c.window_right;
  a.backend = "cpu";
  REQUIRE_MESSAGE(flashport_backward(&a) == FLASHPORT_STATUS_OK, flashport_last_error());
  return g;
}

// Small problems where every option that changes the gradient is on in some combination, one with fully masked rows.
std::vector<fc::Case> small_cases() {
  std::vector<fc::Case> cases;
  fc::Case c = fc::Case::of_shape(1, 5, 6, 2, 1, 3, 4);
  c.seed = 41;
  cases.push_back(c);  // plain, GQA, Sq < Skv, Dv != Dqk
  c.causal = true;
  c.softcap = 1.5f;
  c.seed = 42;
  cases.push_back(c);  // causal (bottom-right) + softcap
  c.causal = false;
  c.softcap = 0.0f;
  c.seqlen_q = 7;
  c.seqlen_kv = 4;
  c.alignment = FLASHPORT_ALIGN_TOP_LEFT;
  c.window_left = 1;
  c.window_right = 1;
  c.softmax_scale = 0.7f;
  c.seed = 43;
  cases.push_back(c);  // top-left window with Sq > Skv: the last rows see no key
  return cases;
}

}  // namespace

TEST_CASE("dlse: reference gradient of sum(g*out) + sum(w*lse) matches finite differences, and cpu fp32 matches it") {
  for (const fc::Case& c : small_cases()) {
    CAPTURE(c.describe());
    const fc::CaseInputs in = fc::make_inputs(c);
    const std::vector<double> w = random_dlse(c, c.seed + 1000);
    const fc::BackwardResult g = fc::reference_backward(c, in.q, in.k, in.v, in.dout, nullptr, &w);
    // Gradients are O(1): 1e-7 is far above the finite-difference error (~1e-10) and far below any real bug.
    CHECK(max_abs_diff(g.dq, finite_difference(c, in, w, &fc::CaseInputs::q)) < 1e-7);
    CHECK(max_abs_diff(g.dk, finite_difference(c, in, w, &fc::CaseInputs::k)) < 1e-7);
    CHECK(max_abs_diff(g.dv, finite_difference(c, in, w, &fc::CaseInputs::v)) < 1e-7);
    // The lse term does change dq and dk (dv does not depend on lse): the test would see a dropped dlse.
    const fc::BackwardResult g0 = fc::reference_backward(c, in.q, in.k, in.v, in.dout);
    CHECK(max_abs_diff(g.dq, g0.dq) > 1e-3);
    CHECK(max_abs_diff(g.dk, g0.dk) > 1e-3);

    const Grads o = run_cpu_backward(c, in, &w);
    // The fp32 bound of the conformance runner (2e-5 + 2e-5 of an O(1) maximum), as for the gradients without dlse.
    CHECK(max_abs_diff(o.dq.dense(), g.dq) < 4e-5);
    CHECK(max_abs_diff(o.dk.dense(), g.dk) < 4e-5);
    CHECK(max_abs_diff(o.dv.dense(), g.dv) < 4e-5);
  }
}

TEST_CASE("dlse: cpu backward against the float64 reference, every dtype, layouts, masks, several blocks") {
  std::vector<fc::Case> cases;
  fc::Case c = fc::Case::of_shape(2, 150, 200, 4, 2, 64, 32);  // two query blocks and two key blocks of the backward
  c.causal = true;
  cases.push_back(c);
  c = fc::Case::of_shape(1, 130, 40, 2, 1, 32, 32);  // rows 40.. see nothing of the window [i-2, i]
  c.alignment = FLASHPORT_ALIGN_TOP_LEFT;
  c.window_left = 2;
  c.window_right = 0;
  c.softcap = 2.0f;
  cases.push_back(c);
  c = fc::Case::of_shape(3, 33, 257, 3, 1, 96, 96);  // MQA, batch·heads_kv = 3 (single-pass schedule)
  cases.push_back(c);
  uint64_t seed = 60;
  for (fc::Case base : cases) {
    for (flashport_dtype dtype : {FLASHPORT_DTYPE_F32, FLASHPORT_DTYPE_F16, FLASHPORT_DTYPE_BF16}) {
      for (fc::Layout layout : {fc::Layout::Contiguous, fc::Layout::Strided}) {
        fc::Case k = base;
        k.dtype = dtype;
        k.layout = layout;
        k.seed = seed++;
        CAPTURE(k.describe());
        const fc::CaseInputs in = fc::make_inputs(k);
        const std::vector<double> w = random_dlse(k, k.seed + 1000);
        const fc::BackwardResult g = fc::reference_backward(k, in.q, in.k, in.v, in.dout, nullptr, &w);
        fc::BackwardResult low;
        if (dtype != FLASHPORT_DTYPE_F32)
          low = fc::reference_backward(k, in.q, in.k, in.v, in.dout,
                                       [&](double x) { return fc::round_to_dtype(x, dtype); }, &w);
        const Grads o = run_cpu_backward(k, in, &w);
        // The conformance rule: fp32 2e-5 + 2e-5·max|ref|; fp16/bf16 twice the naive algorithm's error in that
        // dtype on top.
        auto check = [&](const char* name, const fc::HostImage& got, const std::vector<double>& ref,
                         const std::vector<double>& ref_low) {
          double max_ref = 0.0, low_err = 0.0;
          for (size_t i = 0; i < ref.size(); ++i) {
            max_ref = std::max(max_ref, std::abs(ref[i]));
            if (!ref_low.empty()) low_err = std::max(low_err, std::abs(ref_low[i] - ref[i]));
          }
          const double tol = 2e-5 + 2e-5 * max_ref + 2 * low_err;
          const double err = max_abs_diff(got.dense(), ref);
          INFO(name, ": max_abs_err ", err, " tolerance ", tol);
          CHECK(err <= tol);
        };
        check("dq", o.dq, g.dq, low.dq);
        check("dk", o.dk, g.dk, low.dk);
        check("dv", o.dv, g.dv, low.dv);
      }
    }
  }
}

TEST_CASE("dlse: zero dlse gives the same bits as no dlse, and an older caller's struct never reads the field") {
  using namespace dispatch_test;
  Backward with, without;
  REQUIRE(with.run_forward() == FLASHPORT_STATUS_OK);
  REQUIRE(without.run_forward() == FLASHPORT_STATUS_OK);
  Storage zero;
  zero.make_lse(2, 4, 5, nullptr);
  std::fill(zero.bytes.begin(), zero.bytes.end(), 0);
  with.args.dlse = zero.t;
  REQUIRE(flashport_backward(&with.args) == FLASHPORT_STATUS_OK);
  REQUIRE(flashport_backward(&without.args) == FLASHPORT_STATUS_OK);
  CHECK(with.dq.bytes == without.dq.bytes);
  CHECK(with.dk.bytes == without.dk.bytes);
  CHECK(with.dv.bytes == without.dv.bytes);

  // A caller built before dlse existed passes the old size; whatever lies after it is not read.
  Backward old;
  REQUIRE(old.run_forward() == FLASHPORT_STATUS_OK);
  old.args.struct_size = offsetof(flashport_backward_args, dlse);
  std::memset(static_cast<void*>(&old.args.dlse), 0x5A, sizeof old.args.dlse);
  REQUIRE_MESSAGE(flashport_backward(&old.args) == FLASHPORT_STATUS_OK, flashport_last_error());
  CHECK(old.dq.bytes == without.dq.bytes);
  CHECK(old.dk.bytes == without.dk.bytes);
}

TEST_CASE("dlse validation: named, checked like lse, nothing written") {
  using namespace dispatch_test;
  Backward b;
  Storage dlse;
  dlse.make_lse(2, 4, 5, nullptr);  // Shape{}: batch 2, heads_q 4, seqlen_q 5
  std::fill(dlse.bytes.begin(), dlse.bytes.end(), 0);
  b.args.dlse = dlse.t;
  auto expect = [&](flashport_status status, const std::string& needle) {
    const flashport_status got = flashport_backward(&b.args);
    const std::string msg = flashport_last_error();
    INFO("status ", flashport_status_string(got), ", last_error: ", msg);
    CHECK(got == status);
    CHECK(msg.find(needle) != std::string::npos);
    CHECK(b.outputs_untouched());
  };
  SUBCASE("not F32") {
    b.args.dlse.dtype = FLASHPORT_DTYPE_BF16;
    expect(FLASHPORT_STATUS_DTYPE_MISMATCH, "dlse.dtype = BF16; lse must be F32");
  }
  SUBCASE("shape") {
    b.args.dlse.shape[2] = 4;
    expect(FLASHPORT_STATUS_SHAPE_MISMATCH, "dlse.shape[2] (seqlen_q = 4) differs from q.shape[1] (seqlen_q = 5)");
    b.args.dlse.shape[2] = 5;
    b.args.dlse.shape[3] = 3;
    expect(FLASHPORT_STATUS_SHAPE_MISMATCH, "dlse.shape[3] = 3; must be 1");
  }
  SUBCASE("device") {
    b.args.dlse.device_type = FLASHPORT_DEVICE_ROCM;
    expect(FLASHPORT_STATUS_DEVICE_MISMATCH, "dlse is on ROCm device 0 but q is on CPU device 0");
  }
  SUBCASE("strides and reserved_") {
    // Negative strides are legal; one whose extent overflows is not.
    b.args.dlse.strides[1] = INT64_MAX;
    expect(FLASHPORT_STATUS_OVERFLOW, "dlse.strides[1] = 9223372036854775807");
    b.args.dlse.strides[1] = 5;
    b.args.dlse.reserved_ = 1;
    expect(FLASHPORT_STATUS_INVALID_ARGUMENT, "dlse.reserved_ = 1; must be 0");
  }
  SUBCASE("an output overlapping dlse") {
    b.args.dlse.data = b.dq.bytes.data();
    expect(FLASHPORT_STATUS_ALIASING, "output dq (");
    CHECK(std::string(flashport_last_error()).find(") overlaps dlse (") != std::string::npos);
  }
  SUBCASE("the workspace query validates it too") {
    b.args.dlse.dtype = FLASHPORT_DTYPE_F16;
    size_t bytes = 7;
    CHECK(flashport_backward_workspace_size(&b.args, &bytes) == FLASHPORT_STATUS_DTYPE_MISMATCH);
    CHECK(bytes == 7);
  }
  SUBCASE("data NULL means absent: its other fields are not looked at") {
    b.args.dlse.data = nullptr;
    b.args.dlse.dtype = 77;
    CHECK(flashport_backward(&b.args) == FLASHPORT_STATUS_OK);
  }
}
