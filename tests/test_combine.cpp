// flashport_combine on the CPU backend: against a float64 reference of the contract (1-8 parts, random lse with
// empty parts, fully masked rows, NaN, every pair of part and out dtypes, strided and stacked layouts), the split-KV
// identity (attention over N key chunks, combined, equals attention over all keys), and the validation of every
// argument (named in the message, nothing written).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cases.h"
#include "reference.h"
#include "runner.h"

namespace fc = flashport::conformance;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A CPU tensor over a HostImage's bytes.
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

struct Dims {
  int64_t b, s, h, d;
  size_t out_at(int64_t bi, int64_t si, int64_t hi, int64_t di) const {
    return static_cast<size_t>(((bi * s + si) * h + hi) * d + di);
  }
  size_t lse_at(int64_t bi, int64_t hi, int64_t si) const { return static_cast<size_t>((bi * h + hi) * s + si); }
  size_t out_count() const { return static_cast<size_t>(b * s * h * d); }
  size_t lse_count() const { return static_cast<size_t>(b * h * s); }
};

struct Combined {
  std::vector<double> out, lse;
};

// The contract in float64, straight from the header: lse = log(sum_i exp(lse_i)), out = sum_i exp(lse_i - lse) out_i
// over the parts with lse_i > -inf; every lse_i -inf gives out 0, lse -inf; a NaN or +inf lse_i gives a NaN row.
Combined reference_combine(const Dims& n, const std::vector<std::vector<double>>& outs,
                           const std::vector<std::vector<double>>& lses) {
  Combined r{std::vector<double>(n.out_count()), std::vector<double>(n.lse_count())};
  for (int64_t b = 0; b < n.b; ++b) {
    for (int64_t h = 0; h < n.h; ++h) {
      for (int64_t i = 0; i < n.s; ++i) {
        double m = -kInf;
        bool nan = false;
        for (const auto& l : lses) {
          const double x = l[n.lse_at(b, h, i)];
          nan = nan || std::isnan(x);
          if (!std::isnan(x)) m = std::max(m, x);
        }
        double lse, fill = 0.0;
        if (nan || m == kInf) {
          lse = fill = kNaN;
        } else if (m == -kInf) {
          lse = -kInf;
        } else {
          double sum = 0.0;
          for (const auto& l : lses) sum += std::exp(l[n.lse_at(b, h, i)] - m);
          lse = m + std::log(sum);
        }
        r.lse[n.lse_at(b, h, i)] = lse;
        for (int64_t d = 0; d < n.d; ++d) {
          double acc = fill;
          if (std::isfinite(lse)) {
            for (size_t k = 0; k < outs.size(); ++k) {
              const double l = lses[k][n.lse_at(b, h, i)];
              if (l != -kInf) acc += std::exp(l - lse) * outs[k][n.out_at(b, i, h, d)];
            }
          }
          r.out[n.out_at(b, i, h, d)] = acc;
        }
      }
    }
  }
  return r;
}

// Half a unit in the last place, relative: what rounding a result to the dtype may add.
double rounding_of(flashport_dtype dtype) {
  return dtype == FLASHPORT_DTYPE_BF16 ? 0x1p-8 : dtype == FLASHPORT_DTYPE_F16 ? 0x1p-11 : 0.0;
}

// Compares got (an output image) with ref elementwise: NaN where ref is NaN, the same infinity where ref is infinite,
// else |got - ref| <= atol + rtol·|ref|. Also checks that nothing outside the view was written (the 0xFF poison).
struct Mismatches {
  size_t values = 0, special = 0, outside = 0;
  double worst = 0.0;  // max |got - ref| / tolerance over finite elements
  bool none() const { return values == 0 && special == 0 && outside == 0; }
};
Mismatches compare(const fc::HostImage& got, const std::vector<double>& ref, double atol, double rtol) {
  Mismatches m;
  got.for_each([&](size_t i, size_t off) {
    const double g = got.get(off), r = ref[i];
    if (std::isnan(r) || std::isinf(r)) {
      if (!(std::isnan(r) ? std::isnan(g) : g == r)) ++m.special;
      return;
    }
    const double tol = atol + rtol * std::abs(r);
    if (!(std::abs(g - r) <= tol)) ++m.values;  // NaN g counts
    if (std::isfinite(g)) m.worst = std::max(m.worst, std::abs(g - r) / tol);
  });
  const size_t esize = got.dtype == FLASHPORT_DTYPE_F32 ? 4 : 2;
  for (size_t e = 0; e < got.in_view.size(); ++e)
    if (!got.in_view[e])
      for (size_t byte = 0; byte < esize; ++byte) m.outside += got.bytes[e * esize + byte] != 0xFF;
  return m;
}

// What a random case puts in its lse: finite values, empty parts (-inf), fully masked rows, NaN.
struct LseMix {
  double empty_part = 0.2;    // probability that a part's lse of a row is -inf
  double masked_row = 0.1;    // probability that every part's lse of a row is -inf
  bool nan = false;           // plant NaN: in one lse, in the out of a contributing part, in the out of empty parts
};

struct CombineCase {
  Dims n;
  int parts;
  flashport_dtype part_dtype, out_dtype;
  fc::Layout part_layout, out_layout;
  bool with_lse;
  bool stacked;  // parts as views into one buffer [parts, B, S, H, D] (strides of a contiguous part)
  uint64_t seed;
  LseMix mix;

  std::string describe() const {
    const char* dt[] = {"?", "f32", "f16", "bf16"};
    const char* ly[] = {"contiguous", "heads-first", "strided"};
    return "parts " + std::to_string(parts) + " b" + std::to_string(n.b) + " s" + std::to_string(n.s) + " h" +
           std::to_string(n.h) + " d" + std::to_string(n.d) + " " + dt[part_dtype] + "->" + dt[out_dtype] + " " +
           (stacked ? "stacked" : ly[static_cast<int>(part_layout)]) + "->" + ly[static_cast<int>(out_layout)] +
           (with_lse ? " +lse" : "") + (mix.nan ? " nan" : "") + " seed " + std::to_string(seed);
  }
};

void run_combine_case(const CombineCase& c) {
  CAPTURE(c.describe());
  std::mt19937_64 rng(c.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const Dims& n = c.n;
  const std::array<int64_t, 4> out_shape{n.b, n.s, n.h, n.d}, lse_shape{n.b, n.h, n.s, 1};

  // lse values: spread (sd 4) so that weights range over many orders of magnitude.
  std::vector<std::vector<double>> lses(c.parts, std::vector<double>(n.lse_count()));
  for (size_t r = 0; r < n.lse_count(); ++r) {
    const bool masked = uniform(rng) < c.mix.masked_row;
    for (auto& l : lses) l[r] = masked || uniform(rng) < c.mix.empty_part ? -kInf : 4.0 * normal(rng);
  }
  std::vector<std::vector<double>> outs(c.parts, std::vector<double>(n.out_count()));
  for (auto& o : outs)
    for (double& x : o) x = normal(rng);
  if (c.mix.nan) {
    lses[c.parts - 1][0] = kNaN;  // row 0: NaN lse -> NaN row
    const size_t r1 = n.lse_count() > 1 ? 1 : 0;
    if (r1 != 0) {  // row (b 0, h 0, i 1) or (b 0, h 1, i 0): a NaN out in a contributing part
      lses[0][r1] = 0.5;
      const int64_t i = n.s > 1 ? 1 : 0, h = n.s > 1 ? 0 : 1;
      outs[0][n.out_at(0, i, h, n.d - 1)] = kNaN;
    }
    // Every row whose part 0 is empty gets NaN and Inf in that part's out: they must not reach anything.
    for (int64_t b = 0; b < n.b; ++b)
      for (int64_t h = 0; h < n.h; ++h)
        for (int64_t i = 0; i < n.s; ++i)
          if (lses[0][n.lse_at(b, h, i)] == -kInf)
            for (int64_t d = 0; d < n.d; ++d) outs[0][n.out_at(b, i, h, d)] = d % 2 ? kNaN : kInf;
  }

  // The parts in their dtype; the reference sees the rounded values.
  std::vector<fc::HostImage> part_out_img, part_lse_img;
  fc::HostImage stack;
  std::vector<flashport_tensor> parts_out(c.parts), parts_lse(c.parts);
  if (c.stacked) {
    stack = fc::HostImage({c.parts * n.b, n.s, n.h, n.d}, fc::Layout::Contiguous, c.part_dtype, false);
    std::vector<double> all;
    for (const auto& o : outs) all.insert(all.end(), o.begin(), o.end());
    stack.fill(all);
    const std::vector<double> rounded = stack.dense();
    const size_t esize = c.part_dtype == FLASHPORT_DTYPE_F32 ? 4 : 2;
    for (int k = 0; k < c.parts; ++k) {
      outs[k].assign(rounded.begin() + k * n.out_count(), rounded.begin() + (k + 1) * n.out_count());
      flashport_tensor_init_contiguous(&parts_out[k], stack.bytes.data() + k * n.out_count() * esize,
                                       static_cast<flashport_dtype>(c.part_dtype), FLASHPORT_DEVICE_CPU, 0, n.b, n.s,
                                       n.h, n.d);
    }
  } else {
    for (int k = 0; k < c.parts; ++k) {
      part_out_img.emplace_back(out_shape, c.part_layout, c.part_dtype, false);
      part_out_img.back().fill(outs[k]);
      outs[k] = part_out_img.back().dense();
    }
    for (int k = 0; k < c.parts; ++k) parts_out[k] = host_tensor(part_out_img[k]);
  }
  for (int k = 0; k < c.parts; ++k) {
    part_lse_img.emplace_back(lse_shape, c.part_layout, FLASHPORT_DTYPE_F32, true);
    part_lse_img.back().fill(lses[k]);
    lses[k] = part_lse_img.back().dense();
  }
  for (int k = 0; k < c.parts; ++k) parts_lse[k] = host_tensor(part_lse_img[k]);

  fc::HostImage out_img(out_shape, c.out_layout, c.out_dtype, false);
  fc::HostImage lse_img(lse_shape, c.out_layout, FLASHPORT_DTYPE_F32, true);
  flashport_combine_args args;
  flashport_combine_args_init(&args);
  args.num_parts = c.parts;
  args.parts_out = parts_out.data();
  args.parts_lse = parts_lse.data();
  args.out = host_tensor(out_img);
  if (c.with_lse) args.lse = host_tensor(lse_img);
  REQUIRE_MESSAGE(flashport_combine(&args) == FLASHPORT_STATUS_OK, flashport_last_error());

  const Combined ref = reference_combine(n, outs, lses);
  // fp32 arithmetic: the weights carry a few roundings of exp, the sum and the division (relative ~ parts·u), the
  // sum over parts as many again; 2e-6 of an O(1) value is several times that. Low-precision outs add the rounding.
  const Mismatches mo = compare(out_img, ref.out, 2e-6, 2e-6 + rounding_of(c.out_dtype));
  CAPTURE(mo.worst);
  CHECK(mo.values == 0);
  CHECK(mo.special == 0);
  CHECK(mo.outside == 0);
  if (c.with_lse) {
    // lse = m + log(sum): exact m, a log of a sum of <= 8 terms each within an ulp or two.
    const Mismatches ml = compare(lse_img, ref.lse, 2e-6, 4e-7);
    CAPTURE(ml.worst);
    CHECK(ml.none());
  } else {
    CHECK(std::all_of(lse_img.bytes.begin(), lse_img.bytes.end(), [](uint8_t x) { return x == 0xFF; }));
  }
}

const flashport_dtype kDtypes[] = {FLASHPORT_DTYPE_F32, FLASHPORT_DTYPE_F16, FLASHPORT_DTYPE_BF16};
const fc::Layout kLayouts[] = {fc::Layout::Contiguous, fc::Layout::HeadsFirst, fc::Layout::Strided};

}  // namespace

TEST_CASE("combine: 1-8 parts against the float64 reference, every dtype pair and layout") {
  const Dims shapes[] = {{1, 1, 1, 1}, {2, 5, 3, 7}, {1, 9, 2, 64}, {3, 4, 4, 16}, {1, 3, 2, 300}, {2, 2, 1, 128}};
  uint64_t seed = 100;
  int index = 0;
  for (int parts = 1; parts <= 8; ++parts) {
    for (int pair = 0; pair < 9; ++pair, ++index) {
      CombineCase c;
      c.n = shapes[index % 6];
      c.parts = parts;
      c.part_dtype = kDtypes[pair / 3];
      c.out_dtype = kDtypes[pair % 3];
      c.part_layout = kLayouts[index % 3];
      c.out_layout = kLayouts[(index / 3) % 3];
      c.with_lse = index % 4 != 3;
      c.stacked = index % 5 == 4;
      c.seed = seed++;
      run_combine_case(c);
    }
  }
}

TEST_CASE("combine: empty parts, fully masked rows and NaN") {
  uint64_t seed = 500;
  for (int parts : {1, 2, 3, 8}) {
    for (flashport_dtype dtype : kDtypes) {
      CombineCase c;
      c.n = {2, 6, 3, 9};
      c.parts = parts;
      c.part_dtype = FLASHPORT_DTYPE_F32;
      c.out_dtype = dtype;
      c.part_layout = fc::Layout::Strided;
      c.out_layout = fc::Layout::HeadsFirst;
      c.with_lse = true;
      c.stacked = false;
      c.seed = seed++;
      c.mix.empty_part = 0.4;
      c.mix.masked_row = 0.3;
      c.mix.nan = true;
      run_combine_case(c);
    }
  }
}

TEST_CASE("combine: fully masked rows give exactly out 0 and lse -inf, and one part is copied through") {
  // Two parts, every lse -inf, parts' outs holding NaN: out must be exactly 0 and lse exactly -inf.
  std::vector<float> out0(2 * 3, kNaN), out1(2 * 3, 1.0f), lse_in(2, -INFINITY), out(2 * 3, 7.0f), lse(2, 7.0f);
  flashport_tensor po[2], pl[2];
  flashport_tensor_init_contiguous(&po[0], out0.data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 2, 1, 3);
  flashport_tensor_init_contiguous(&po[1], out1.data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 2, 1, 3);
  flashport_lse_init_contiguous(&pl[0], lse_in.data(), FLASHPORT_DEVICE_CPU, 0, 1, 1, 2);
  pl[1] = pl[0];  // both parts read the same lse: inputs may share memory
  flashport_combine_args a;
  flashport_combine_args_init(&a);
  a.num_parts = 2;
  a.parts_out = po;
  a.parts_lse = pl;
  flashport_tensor_init_contiguous(&a.out, out.data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 2, 1, 3);
  flashport_lse_init_contiguous(&a.lse, lse.data(), FLASHPORT_DEVICE_CPU, 0, 1, 1, 2);
  REQUIRE(flashport_combine(&a) == FLASHPORT_STATUS_OK);
  for (float x : out) CHECK(x == 0.0f);
  for (float x : lse) CHECK(x == -INFINITY);

  // One part: out is out_0 and lse is lse_0, bit for bit.
  std::vector<float> vals{0.1f, -2.5f, 3.25f, 1e-3f, 7.0f, -0.0f}, l{-1.5f, 30.0f};
  flashport_tensor_init_contiguous(&po[0], vals.data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 2, 1, 3);
  flashport_lse_init_contiguous(&pl[0], l.data(), FLASHPORT_DEVICE_CPU, 0, 1, 1, 2);
  a.num_parts = 1;
  REQUIRE(flashport_combine(&a) == FLASHPORT_STATUS_OK);
  CHECK(out == vals);
  CHECK(lse == l);
}

// Attention over keys [j0, j1) of the full problem, as a forward of its own: k/v views of the chunk, and the causal
// rule of the full problem (j <= i + Skv - Sq, bottom-right) restated for the chunk: with the chunk's own
// bottom-right offset Skv_c - Sq, key j0 + j' is visible when j' <= i + (Skv_c - Sq) + (Skv - j1), i.e.
// window_right = Skv - j1.
TEST_CASE("combine: split-KV identity, attention over N key chunks combined equals attention over all keys") {
  for (flashport_dtype dtype : kDtypes) {
    for (bool causal : {false, true}) {
      for (int chunks : {1, 2, 3, 5, 8}) {
        fc::Case c = fc::Case::of_shape(2, 37, 301, 4, 2, 64, 48);  // GQA, Sq < Skv, Dv != Dqk, uneven chunks
        c.dtype = dtype;
        c.causal = causal;
        c.layout = chunks % 2 ? fc::Layout::Contiguous : fc::Layout::Strided;
        c.seed = 700 + chunks + (causal ? 10 : 0);
        CAPTURE(c.describe());
        CAPTURE(chunks);
        const fc::CaseInputs in = fc::make_inputs(c);
        const std::array<int64_t, 4> q_shape{c.batch, c.seqlen_q, c.heads_q, c.head_dim_qk},
            k_shape{c.batch, c.seqlen_kv, c.heads_kv, c.head_dim_qk}, v_shape{c.batch, c.seqlen_kv, c.heads_kv,
                                                                              c.head_dim_v},
            o_shape{c.batch, c.seqlen_q, c.heads_q, c.head_dim_v}, l_shape{c.batch, c.heads_q, c.seqlen_q, 1};
        fc::HostImage q(q_shape, c.layout, dtype, false), k(k_shape, c.layout, dtype, false),
            v(v_shape, c.layout, dtype, false);
        q.fill(in.q);
        k.fill(in.k);
        v.fill(in.v);

        std::vector<fc::HostImage> part_out, part_lse;
        for (int ci = 0; ci < chunks; ++ci) {
          part_out.emplace_back(o_shape, fc::Layout::Contiguous, dtype, false);
          part_lse.emplace_back(l_shape, fc::Layout::Contiguous, FLASHPORT_DTYPE_F32, true);
        }
        std::vector<flashport_tensor> parts_out, parts_lse;
        const size_t esize = dtype == FLASHPORT_DTYPE_F32 ? 4 : 2;
        for (int ci = 0; ci < chunks; ++ci) {
          // Uneven chunk boundaries: the last chunk of a causal problem is the only one every row sees.
          const int64_t j0 = c.seqlen_kv * ci * ci / (chunks * chunks);
          const int64_t j1 = c.seqlen_kv * (ci + 1) * (ci + 1) / (chunks * chunks);
          REQUIRE(j1 > j0);
          flashport_forward_args f;
          flashport_forward_args_init(&f);
          f.q = host_tensor(q);
          f.k = host_tensor(k);
          f.v = host_tensor(v);
          f.k.data = k.bytes.data() + j0 * k.strides[1] * esize;
          f.v.data = v.bytes.data() + j0 * v.strides[1] * esize;
          f.k.shape[1] = f.v.shape[1] = j1 - j0;
          if (causal) f.window_right = c.seqlen_kv - j1;
          f.out = host_tensor(part_out[ci]);
          f.lse = host_tensor(part_lse[ci]);
          REQUIRE_MESSAGE(flashport_forward(&f) == FLASHPORT_STATUS_OK, flashport_last_error());
          parts_out.push_back(f.out);
          parts_lse.push_back(f.lse);
        }

        fc::HostImage out(o_shape, fc::Layout::HeadsFirst, dtype, false);
        fc::HostImage lse(l_shape, fc::Layout::Contiguous, FLASHPORT_DTYPE_F32, true);
        flashport_combine_args a;
        flashport_combine_args_init(&a);
        a.num_parts = chunks;
        a.parts_out = parts_out.data();
        a.parts_lse = parts_lse.data();
        a.out = host_tensor(out);
        a.lse = host_tensor(lse);
        REQUIRE_MESSAGE(flashport_combine(&a) == FLASHPORT_STATUS_OK, flashport_last_error());

        // Against the float64 reference of the full problem, with the conformance rule for the dtype: fp32 2e-5
        // + 2e-5·max; fp16/bf16 twice the error of the naive algorithm in that dtype plus the fp32 bound, plus one
        // more rounding of out (the parts are rounded to the dtype before they are combined).
        const fc::ForwardResult ref = fc::reference_forward(c, in.q, in.k, in.v);
        double max_ref = 0.0, low_err = 0.0;
        if (dtype != FLASHPORT_DTYPE_F32) {
          const fc::ForwardResult low =
              fc::reference_forward(c, in.q, in.k, in.v, [&](double x) { return fc::round_to_dtype(x, dtype); });
          for (size_t i = 0; i < ref.out.size(); ++i) low_err = std::max(low_err, std::abs(low.out[i] - ref.out[i]));
        }
        for (double x : ref.out) max_ref = std::max(max_ref, std::abs(x));
        const double atol = 2e-5 + 2e-5 * max_ref + 2 * low_err + rounding_of(dtype) * max_ref;
        const Mismatches mo = compare(out, ref.out, atol, 0.0);
        CAPTURE(mo.worst);
        CHECK(mo.none());
        const Mismatches ml = compare(lse, ref.lse, 2e-5, 2e-5);
        CAPTURE(ml.worst);
        CHECK(ml.none());
      }
    }
  }
}

// ---- Validation ----------------------------------------------------------------------------------------------------

namespace {

constexpr unsigned char kSentinel = 0xA5;

// A valid three-part F32 combine of [2, 5, 3, 4] outs on the CPU; outputs hold a sentinel byte pattern.
struct Valid {
  static constexpr int64_t B = 2, S = 5, H = 3, D = 4;
  static constexpr int kParts = 3;
  std::vector<float> part_out[kParts], part_lse[kParts];
  std::vector<unsigned char> out_bytes, lse_bytes;
  flashport_tensor parts_out[kParts], parts_lse[kParts];
  flashport_combine_args args;

  Valid() {
    for (int k = 0; k < kParts; ++k) {
      part_out[k].assign(B * S * H * D, 0.25f * static_cast<float>(k + 1));
      part_lse[k].assign(B * H * S, static_cast<float>(k));
      flashport_tensor_init_contiguous(&parts_out[k], part_out[k].data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU,
                                       0, B, S, H, D);
      flashport_lse_init_contiguous(&parts_lse[k], part_lse[k].data(), FLASHPORT_DEVICE_CPU, 0, B, H, S);
    }
    out_bytes.assign(B * S * H * D * 4, kSentinel);
    lse_bytes.assign(B * H * S * 4, kSentinel);
    flashport_combine_args_init(&args);
    args.num_parts = kParts;
    args.parts_out = parts_out;
    args.parts_lse = parts_lse;
    flashport_tensor_init_contiguous(&args.out, out_bytes.data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, B, S,
                                     H, D);
    flashport_lse_init_contiguous(&args.lse, reinterpret_cast<float*>(lse_bytes.data()), FLASHPORT_DEVICE_CPU, 0, B,
                                  H, S);
  }
  Valid(const Valid&) = delete;
  bool untouched() const {
    auto clean = [](const std::vector<unsigned char>& v) {
      return std::all_of(v.begin(), v.end(), [](unsigned char c) { return c == kSentinel; });
    };
    return clean(out_bytes) && clean(lse_bytes);
  }
};

bool has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

void expect_rejected(Valid& v, flashport_status status, const std::string& needle) {
  const flashport_status got = flashport_combine(&v.args);
  const std::string message = flashport_last_error();
  INFO("status: ", flashport_status_string(got), ", last_error: ", message);
  CHECK(got == status);
  CHECK(has(message, needle));
  CHECK(v.untouched());
}

}  // namespace

TEST_CASE("combine validation: the valid request runs") {
  Valid v;
  REQUIRE(flashport_combine(&v.args) == FLASHPORT_STATUS_OK);
  CHECK(std::string(flashport_last_error()).empty());
  CHECK_FALSE(v.untouched());
}

TEST_CASE("combine validation: args, struct_size, num_parts and the arrays") {
  Valid v;
  SUBCASE("args NULL") {
    CHECK(flashport_combine(nullptr) == FLASHPORT_STATUS_INVALID_ARGUMENT);
    CHECK(has(flashport_last_error(), "args is NULL"));
  }
  SUBCASE("struct_size 0") {
    v.args.struct_size = 0;
    expect_rejected(v, FLASHPORT_STATUS_STRUCT_SIZE, "args->struct_size is 0; call flashport_combine_args_init()");
  }
  SUBCASE("struct_size smaller than the first layout") {
    v.args.struct_size = offsetof(flashport_combine_args, backend);
    expect_rejected(v, FLASHPORT_STATUS_STRUCT_SIZE, "is smaller than the smallest flashport_combine_args");
    CHECK(has(flashport_last_error(), "the v0.2 layout"));
  }
  SUBCASE("struct_size of a newer caller") {
    v.args.struct_size = sizeof(flashport_combine_args) + 8;
    expect_rejected(v, FLASHPORT_STATUS_STRUCT_SIZE, "newer flashport header");
  }
  SUBCASE("num_parts 0 (the default) and negative") {
    v.args.num_parts = 0;
    expect_rejected(v, FLASHPORT_STATUS_INVALID_ARGUMENT, "num_parts = 0; must be >= 1");
    v.args.num_parts = -2;
    expect_rejected(v, FLASHPORT_STATUS_INVALID_ARGUMENT, "num_parts = -2; must be >= 1");
  }
  SUBCASE("parts_out / parts_lse NULL") {
    v.args.parts_out = nullptr;
    expect_rejected(v, FLASHPORT_STATUS_INVALID_ARGUMENT, "parts_out is NULL; it must point to num_parts = 3");
    v.args.parts_out = v.parts_out;
    v.args.parts_lse = nullptr;
    expect_rejected(v, FLASHPORT_STATUS_INVALID_ARGUMENT, "parts_lse is NULL; it must point to num_parts = 3");
  }
  SUBCASE("init leaves everything absent") {
    flashport_combine_args fresh;
    std::memset(&fresh, 0x5A, sizeof fresh);
    flashport_combine_args_init(&fresh);
    CHECK(fresh.struct_size == sizeof fresh);
    CHECK(fresh.num_parts == 0);
    CHECK(fresh.parts_out == nullptr);
    CHECK(fresh.parts_lse == nullptr);
    CHECK(fresh.out.data == nullptr);
    CHECK(fresh.lse.data == nullptr);
    CHECK(fresh.stream == nullptr);
    CHECK(fresh.backend == nullptr);
  }
}

TEST_CASE("combine validation: each tensor's own fields, named with its index") {
  Valid v;
  SUBCASE("data NULL") {
    v.parts_out[1].data = nullptr;
    expect_rejected(v, FLASHPORT_STATUS_INVALID_ARGUMENT, "parts_out[1].data is NULL");
    v.parts_out[1].data = v.part_out[1].data();
    v.parts_lse[2].data = nullptr;
    expect_rejected(v, FLASHPORT_STATUS_INVALID_ARGUMENT, "parts_lse[2].data is NULL");
    v.parts_lse[2].data = v.part_lse[2].data();
    v.args.out.data = nullptr;
    expect_rejected(v, FLASHPORT_STATUS_INVALID_ARGUMENT, "out.data is NULL");
  }
  SUBCASE("reserved_") {
    v.parts_lse[1].reserved_ = 3;
    expect_rejected(v, FLASHPORT_STATUS_INVALID_ARGUMENT, "parts_lse[1].reserved_ = 3; must be 0");
  }
  SUBCASE("unknown dtype, device type, negative device id") {
    v.parts_out[2].dtype = 9;
    expect_rejected(v, FLASHPORT_STATUS_DTYPE_MISMATCH, "parts_out[2].dtype = 9 is not a flashport_dtype");
    v.parts_out[2].dtype = FLASHPORT_DTYPE_F32;
    v.args.out.device_type = 5;
    expect_rejected(v, FLASHPORT_STATUS_DEVICE_MISMATCH, "out.device_type = 5 is not a flashport_device_type");
    v.args.out.device_type = FLASHPORT_DEVICE_CPU;
    v.args.lse.device_id = -1;
    expect_rejected(v, FLASHPORT_STATUS_INVALID_ARGUMENT, "lse.device_id = -1; must be >= 0");
  }
  SUBCASE("sizes < 1 and negative strides") {
    v.parts_out[0].shape[3] = 0;
    expect_rejected(v, FLASHPORT_STATUS_SHAPE_MISMATCH, "parts_out[0].shape[3] (head_dim_v) = 0");
    v.parts_out[0].shape[3] = Valid::D;
    // Negative strides are legal (reversed views); one whose extent overflows is not.
    v.parts_lse[1].strides[2] = INT64_MIN;
    expect_rejected(v, FLASHPORT_STATUS_OVERFLOW, "parts_lse[1]");
  }
}

TEST_CASE("combine validation: dtypes and devices agree") {
  Valid v;
  SUBCASE("an lse that is not F32") {
    v.parts_lse[2].dtype = FLASHPORT_DTYPE_F16;
    expect_rejected(v, FLASHPORT_STATUS_DTYPE_MISMATCH, "parts_lse[2].dtype = F16; lse tensors must be F32");
    v.parts_lse[2].dtype = FLASHPORT_DTYPE_F32;
    v.args.lse.dtype = FLASHPORT_DTYPE_BF16;
    expect_rejected(v, FLASHPORT_STATUS_DTYPE_MISMATCH, "lse.dtype = BF16; lse tensors must be F32");
  }
  SUBCASE("parts of different dtypes") {
    v.parts_out[1].dtype = FLASHPORT_DTYPE_BF16;
    expect_rejected(v, FLASHPORT_STATUS_DTYPE_MISMATCH,
                    "parts_out[1].dtype = BF16 differs from parts_out[0].dtype = F32; every parts_out tensor");
  }
  SUBCASE("out of another dtype than the parts is fine") {
    std::vector<uint16_t> out16(Valid::B * Valid::S * Valid::H * Valid::D, 0xFFFF);
    flashport_tensor_init_contiguous(&v.args.out, out16.data(), FLASHPORT_DTYPE_BF16, FLASHPORT_DEVICE_CPU, 0,
                                     Valid::B, Valid::S, Valid::H, Valid::D);
    CHECK(flashport_combine(&v.args) == FLASHPORT_STATUS_OK);
    // Weights e^0, e^1, e^2 of 0.25, 0.5, 0.75: (0.25 + 0.5e + 0.75e²) / (1 + e + e²) = 0.64380..., in bf16
    // 0.64453125 (0x3F25)
    CHECK(out16[0] == 0x3F25);
  }
  SUBCASE("another device") {
    v.parts_lse[1].device_type = FLASHPORT_DEVICE_CUDA;
    expect_rejected(v, FLASHPORT_STATUS_DEVICE_MISMATCH,
                    "parts_lse[1] is on CUDA device 0 but parts_out[0] is on CPU device 0");
    v.parts_lse[1].device_type = FLASHPORT_DEVICE_CPU;
    v.args.out.device_id = 1;
    expect_rejected(v, FLASHPORT_STATUS_DEVICE_MISMATCH, "out is on CPU device 1 but parts_out[0] is on CPU device 0");
  }
}

TEST_CASE("combine validation: shapes agree with parts_out[0]") {
  Valid v;
  SUBCASE("a part's out") {
    v.parts_out[2].shape[1] = 4;
    expect_rejected(v, FLASHPORT_STATUS_SHAPE_MISMATCH,
                    "parts_out[2].shape[1] (seqlen_q = 4) differs from parts_out[0].shape[1] (seqlen_q = 5)");
  }
  SUBCASE("a part's lse") {
    v.parts_lse[1].shape[1] = 2;
    expect_rejected(v, FLASHPORT_STATUS_SHAPE_MISMATCH,
                    "parts_lse[1].shape[1] (heads_q = 2) differs from parts_out[0].shape[2] (heads_q = 3)");
    v.parts_lse[1].shape[1] = Valid::H;
    v.parts_lse[1].shape[3] = 2;
    expect_rejected(v, FLASHPORT_STATUS_SHAPE_MISMATCH, "parts_lse[1].shape[3] = 2; must be 1");
  }
  SUBCASE("out and lse") {
    v.args.out.shape[3] = 5;
    expect_rejected(v, FLASHPORT_STATUS_SHAPE_MISMATCH,
                    "out.shape[3] (head_dim_v = 5) differs from parts_out[0].shape[3] (head_dim_v = 4)");
    v.args.out.shape[3] = Valid::D;
    v.args.lse.shape[0] = 1;
    expect_rejected(v, FLASHPORT_STATUS_SHAPE_MISMATCH,
                    "lse.shape[0] (batch = 1) differs from parts_out[0].shape[0] (batch = 2)");
  }
  SUBCASE("head dims past attention's 256 are accepted") {
    std::vector<float> wide_out(300, 1.0f), wide_lse(1, 0.0f), out(300, 0.0f);
    flashport_tensor po, pl;
    flashport_tensor_init_contiguous(&po, wide_out.data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 1, 1, 300);
    flashport_lse_init_contiguous(&pl, wide_lse.data(), FLASHPORT_DEVICE_CPU, 0, 1, 1, 1);
    flashport_combine_args a;
    flashport_combine_args_init(&a);
    a.num_parts = 1;
    a.parts_out = &po;
    a.parts_lse = &pl;
    flashport_tensor_init_contiguous(&a.out, out.data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 1, 1, 300);
    CHECK(flashport_combine(&a) == FLASHPORT_STATUS_OK);
    CHECK(out == wide_out);
  }
}

TEST_CASE("combine validation: overflow and aliasing") {
  Valid v;
  SUBCASE("an extent past int64") {
    v.parts_out[1].strides[0] = INT64_MAX;
    expect_rejected(v, FLASHPORT_STATUS_OVERFLOW, "makes the tensor's extent overflow int64");
    CHECK(has(flashport_last_error(), "parts_out[1]."));
  }
  SUBCASE("out overlaps a part") {
    v.args.out.data = v.part_out[1].data() + 3;
    expect_rejected(v, FLASHPORT_STATUS_ALIASING, "output out (");
    CHECK(has(flashport_last_error(), ") overlaps parts_out[1] ("));
    // and the part kept its values: nothing was written
    CHECK(std::all_of(v.part_out[1].begin(), v.part_out[1].end(), [](float x) { return x == 0.5f; }));
  }
  SUBCASE("lse overlaps a part's lse") {
    v.args.lse.data = v.part_lse[0].data();
    expect_rejected(v, FLASHPORT_STATUS_ALIASING, "output lse (");
    CHECK(has(flashport_last_error(), ") overlaps parts_lse[0] ("));
  }
  SUBCASE("out and lse overlap each other") {
    v.args.lse.data = v.out_bytes.data() + 8;
    const flashport_status got = flashport_combine(&v.args);
    CHECK(got == FLASHPORT_STATUS_ALIASING);
    CHECK(has(flashport_last_error(), "overlaps"));
  }
  SUBCASE("an out whose elements share addresses") {
    v.args.out.strides[2] = 0;
    expect_rejected(v, FLASHPORT_STATUS_ALIASING, "out.strides[2] = 0 while out.shape[2] = 3");
  }
  SUBCASE("parts may share memory with each other (inputs)") {
    v.parts_out[2] = v.parts_out[0];
    v.parts_lse[1] = v.parts_lse[0];
    CHECK(flashport_combine(&v.args) == FLASHPORT_STATUS_OK);
  }
}

TEST_CASE("combine: backends that cannot run it are named with the reason, never crash") {
  Valid v;
  SUBCASE("an unknown forced backend") {
    v.args.backend = "no-such-backend";
    expect_rejected(v, FLASHPORT_STATUS_BACKEND_UNAVAILABLE, "backend \"no-such-backend\" (forced by args->backend)");
  }
  SUBCASE("CUDA tensors: no backend of this build can run them") {
    // Never dereferenced: validation passes, and every CUDA backend declines (absent module or no combine slot).
    for (flashport_tensor* t : {&v.parts_out[0], &v.parts_out[1], &v.parts_out[2], &v.parts_lse[0], &v.parts_lse[1],
                                &v.parts_lse[2], &v.args.out, &v.args.lse})
      t->device_type = FLASHPORT_DEVICE_CUDA;
    expect_rejected(v, FLASHPORT_STATUS_NO_BACKEND, "no backend can run this request on CUDA device 0: cuda");
  }
}
