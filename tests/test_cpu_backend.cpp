// CPU backend beyond the conformance list: the float64 reference's backward proven by finite differences (and the
// CPU backward checked against it on the same problems), bitwise determinism across runs and thread counts, and
// fully masked rows.
#include <doctest/doctest.h>

#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "cases.h"
#include "reference.h"
#include "runner.h"

namespace fc = flashport::conformance;

namespace {

// Small problems where every option that changes the gradient is on in some combination.
std::vector<fc::Case> small_gradient_cases() {
  std::vector<fc::Case> cases;
  fc::Case c = fc::Case::of_shape(1, 5, 6, 2, 1, 3, 4);
  c.seed = 11;
  cases.push_back(c);  // plain, GQA, Sq < Skv, Dv != Dqk
  c.causal = true;
  c.softcap = 1.5f;
  c.seed = 12;
  cases.push_back(c);  // causal (bottom-right) + softcap
  c.causal = false;
  c.softcap = 0.0f;
  c.seqlen_q = 7;
  c.seqlen_kv = 4;
  c.alignment = FLASHPORT_ALIGN_TOP_LEFT;
  c.window_left = 1;
  c.window_right = 1;
  c.softmax_scale = 0.7f;
  c.seed = 13;
  cases.push_back(c);  // top-left window with Sq > Skv (the last rows see nothing), explicit scale
  return cases;
}

// Loss = sum(out ∘ dout) of the float64 reference.
double reference_loss(const fc::Case& c, const fc::CaseInputs& in) {
  const fc::ForwardResult f = fc::reference_forward(c, in.q, in.k, in.v);
  double loss = 0.0;
  for (size_t i = 0; i < f.out.size(); ++i) loss += f.out[i] * in.dout[i];
  return loss;
}

// Central differences of the loss with respect to every element of x (one of in's tensors).
std::vector<double> finite_difference(const fc::Case& c, fc::CaseInputs in, std::vector<double> fc::CaseInputs::*x) {
  constexpr double h = 1e-5;  // truncation error ~h² ≈ 1e-10, round-off ~1e-16/h ≈ 1e-11
  std::vector<double> g((in.*x).size());
  for (size_t i = 0; i < g.size(); ++i) {
    const double saved = (in.*x)[i];
    (in.*x)[i] = saved + h;
    const double up = reference_loss(c, in);
    (in.*x)[i] = saved - h;
    const double down = reference_loss(c, in);
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

std::unique_ptr<flashport::tools::DeviceMemory> host_memory() {
  std::string why;
  auto memory = flashport::tools::device_memory_for("cpu", &why);
  REQUIRE_MESSAGE(memory != nullptr, why);
  return memory;
}

// Runs forward + backward of c on the CPU backend with the reference's out and lse as backward inputs.
fc::BackendOutputs run_cpu(const fc::Case& c, const fc::CaseInputs& in, flashport::tools::DeviceMemory& memory) {
  const fc::ForwardResult ref = fc::reference_forward(c, in.q, in.k, in.v);
  fc::BackendOutputs o = fc::run_backend(c, in, ref.out, ref.lse, "cpu", memory, true);
  REQUIRE_MESSAGE(o.status == FLASHPORT_STATUS_OK, o.error);
  return o;
}

// Restores the OpenMP thread count a test changed.
struct ThreadCountGuard {
  int saved = omp_get_max_threads();
  ~ThreadCountGuard() { omp_set_num_threads(saved); }
};

}  // namespace

TEST_CASE("reference backward matches finite differences, and cpu fp32 backward matches the reference") {
  auto memory = host_memory();
  for (const fc::Case& c : small_gradient_cases()) {
    CAPTURE(c.describe());
    const fc::CaseInputs in = fc::make_inputs(c);
    const fc::BackwardResult g = fc::reference_backward(c, in.q, in.k, in.v, in.dout);
    // Gradients are O(1) here: 1e-7 is far above the finite-difference error (~1e-10) and far below any real bug.
    CHECK(max_abs_diff(g.dq, finite_difference(c, in, &fc::CaseInputs::q)) < 1e-7);
    CHECK(max_abs_diff(g.dk, finite_difference(c, in, &fc::CaseInputs::k)) < 1e-7);
    CHECK(max_abs_diff(g.dv, finite_difference(c, in, &fc::CaseInputs::v)) < 1e-7);

    // fp32 against the float64 reference just proven: the same fp32 bound as the conformance runner (2e-5 + 2e-5
    // of an O(1) maximum) is generous for sums of a handful of terms.
    const fc::BackendOutputs o = run_cpu(c, in, *memory);
    CHECK(max_abs_diff(o.dq.dense(), g.dq) < 4e-5);
    CHECK(max_abs_diff(o.dk.dense(), g.dk) < 4e-5);
    CHECK(max_abs_diff(o.dv.dense(), g.dv) < 4e-5);
  }
}

TEST_CASE("cpu backward with deterministic=1 is bitwise identical across runs and thread counts") {
  auto memory = host_memory();
  ThreadCountGuard guard;
  for (flashport_dtype dtype : {FLASHPORT_DTYPE_F32, FLASHPORT_DTYPE_BF16}) {
    // batch·heads_kv = 3: with 1 thread the CPU backward takes its single-pass schedule (3 tasks fill 1 thread),
    // with 2 threads its two-pass one (3 tasks fill 2 threads to 75%), so this also proves the two schedules give
    // the same bits. 300 x 260: three query blocks and three key blocks of the CPU backward.
    fc::Case c = fc::Case::of_shape(3, 300, 260, 4, 1, 64, 32);
    c.causal = true;
    c.dtype = dtype;
    c.deterministic = true;
    c.seed = 21;
    CAPTURE(c.describe());
    const fc::CaseInputs in = fc::make_inputs(c);
    omp_set_num_threads(2);
    const fc::BackendOutputs a = run_cpu(c, in, *memory);
    const fc::BackendOutputs b = run_cpu(c, in, *memory);
    omp_set_num_threads(1);
    const fc::BackendOutputs one = run_cpu(c, in, *memory);
    for (const fc::BackendOutputs* other : {&b, &one}) {
      CHECK(a.out.bytes == other->out.bytes);
      CHECK(a.lse.bytes == other->lse.bytes);
      CHECK(a.dq.bytes == other->dq.bytes);
      CHECK(a.dk.bytes == other->dk.bytes);
      CHECK(a.dv.bytes == other->dv.bytes);
    }
  }
}

TEST_CASE("cpu backend: fully masked rows give out 0, lse -inf, zero gradients and no NaN") {
  auto memory = host_memory();
  for (flashport_dtype dtype : {FLASHPORT_DTYPE_F32, FLASHPORT_DTYPE_F16, FLASHPORT_DTYPE_BF16}) {
    for (int variant = 0; variant < 2; ++variant) {
      fc::Case c = fc::Case::of_shape(1, 150, 40, 2, 1, 32, 32);  // 150 rows: more than one query block
      c.dtype = dtype;
      c.seed = 31 + variant;
      if (variant == 0) {
        c.causal = true;  // bottom-right: rows 0..109 come before the first key
      } else {
        c.alignment = FLASHPORT_ALIGN_TOP_LEFT;  // rows 40.. see no key of the window [i-2, i]
        c.window_left = 2;
        c.window_right = 0;
      }
      CAPTURE(c.describe());
      const fc::CaseInputs in = fc::make_inputs(c);
      const fc::BackendOutputs o = run_cpu(c, in, *memory);
      const std::vector<double> out = o.out.dense(), lse = o.lse.dense(), dq = o.dq.dense();
      int64_t masked_rows = 0, nonzero = 0, non_finite = 0;
      for (int64_t h = 0; h < c.heads_q; ++h) {
        for (int64_t i = 0; i < c.seqlen_q; ++i) {
          bool any = false;
          for (int64_t j = 0; j < c.seqlen_kv; ++j) any = any || c.visible(i, j);
          const double l = lse[h * c.seqlen_q + i];
          if (any) {
            CHECK(std::isfinite(l));
            continue;
          }
          ++masked_rows;
          CHECK(l == -std::numeric_limits<double>::infinity());
          for (int64_t d = 0; d < c.head_dim_v; ++d) nonzero += out[(i * c.heads_q + h) * c.head_dim_v + d] != 0.0;
          for (int64_t d = 0; d < c.head_dim_qk; ++d) nonzero += dq[(i * c.heads_q + h) * c.head_dim_qk + d] != 0.0;
        }
      }
      CHECK(masked_rows > 0);
      CHECK(nonzero == 0);  // out and dq of fully masked rows
      for (const fc::HostImage* img : {&o.out, &o.dq, &o.dk, &o.dv})
        for (double x : img->dense()) non_finite += !std::isfinite(x);
      CHECK(non_finite == 0);
    }
  }
}
