#include "runner.h"

#include <Eigen/Core>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <tuple>

#include "reference.h"

namespace flashport::conformance {

namespace {

// ---- Tolerances --------------------------------------------------------------------------------------------------
//
// fp32 (and lse for every dtype, which the API returns in fp32 computed from the rounded inputs): the backend
// accumulates in fp32, the reference in fp64. The errors come from the Q·K dot products (up to 256 terms), the
// softmax over up to ~300 keys and the P·V / gradient sums (up to a few hundred terms); with fp32 unit roundoff
// u = 6e-8 and the random-walk growth of rounding errors, sqrt(n)·u·(terms of magnitude ~ the output) stays
// well below 1e-5 of the largest output. Bound: atol 2e-5 + rtol 2e-5 · max|reference|. The CPU backend's largest
// error on this list is 31% of it (a gradient that is exactly 0 in fp64 and ~3e-6 in fp32), lse 2%.
constexpr double kAtol32 = 2e-5;
constexpr double kRtol32 = 2e-5;

// fp16 / bf16 outputs (FlashAttention's rule): no worse than twice the error of the same naive algorithm run in that
// dtype (inputs, scores, probabilities, dP, dS and outputs rounded to it; reference_* with a Rounding), plus the
// fp32 bound above as a floor, since the backend does its arithmetic in fp32 before rounding its output. The CPU
// backend reaches at most 58% of this bound (bf16) and 49% (fp16): about 1x the low-precision error, i.e. little
// more than the rounding of its output.
double tolerance_for(flashport_dtype dtype, double max_ref, double low_precision_err) {
  const double fp32 = kAtol32 + kRtol32 * max_ref;
  return dtype == FLASHPORT_DTYPE_F32 ? fp32 : 2.0 * low_precision_err + fp32;
}

// ---- Deterministic random inputs ---------------------------------------------------------------------------------

// splitmix64 + Box-Muller: the same numbers on every platform and standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 0x1234567ull) {}
  double uniform() {  // in (0, 1)
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (static_cast<double>(z >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  }
  double normal() { return std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform()); }

 private:
  uint64_t state_;
};

std::vector<double> random_tensor(Rng& rng, size_t n, flashport_dtype dtype) {
  std::vector<double> x(n);
  for (double& e : x) e = round_to_dtype(rng.normal(), dtype);
  return x;
}

// ---- Host images of strided device tensors ---------------------------------------------------------------------

size_t element_size(flashport_dtype dtype) { return dtype == FLASHPORT_DTYPE_F32 ? 4 : 2; }

// A HostImage plus its device buffer.
struct DeviceTensor {
  HostImage image;
  tools::DeviceBuffer buffer;

  DeviceTensor(DeviceMemory& memory, HostImage img, std::string* why)
      : image(std::move(img)), buffer(memory, image.bytes.size(), why) {}
  bool upload(std::string* why) { return buffer.ok() && buffer.upload(image.bytes.data(), why); }
  bool download(std::string* why) { return buffer.download(image.bytes.data(), why); }
  flashport_tensor tensor(const DeviceMemory& memory) const {
    flashport_tensor t{};
    t.data = static_cast<char*>(buffer.get()) + image.origin * static_cast<int64_t>(element_size(image.dtype));
    t.dtype = image.dtype;
    t.device_type = memory.device_type();
    t.device_id = memory.device_id();
    for (int i = 0; i < 4; ++i) {
      t.shape[i] = image.shape[i];
      t.strides[i] = image.strides[i];
    }
    return t;
  }
};

// Compares a downloaded output with the reference (and its low-precision twin), appending failures to msg.
OutputCheck check_output(const char* name, const HostImage& got, const std::vector<double>& ref,
                         const std::vector<double>* low, flashport_dtype dtype, std::ostringstream& msg) {
  OutputCheck oc;
  oc.name = name;
  double max_ref = 0.0, low_err = 0.0;
  size_t unwritten = 0, inf_mismatch = 0;
  got.for_each([&](size_t i, size_t off) {
    const double g = got.get(off), r = ref[i];
    if (std::isnan(g)) {
      ++unwritten;
      return;
    }
    if (std::isinf(r) || std::isinf(g)) {  // only lse may be -inf, and exactly where the reference is
      if (g != r) ++inf_mismatch;
      return;
    }
    max_ref = std::max(max_ref, std::abs(r));
    oc.max_abs_err = std::max(oc.max_abs_err, std::abs(g - r));
    if (low != nullptr) low_err = std::max(low_err, std::abs((*low)[i] - r));
  });
  size_t outside = 0;
  const size_t esize = element_size(got.dtype);
  for (size_t e = 0; e < got.in_view.size(); ++e) {
    if (got.in_view[e]) continue;
    for (size_t byte = 0; byte < esize; ++byte) outside += got.bytes[e * esize + byte] != 0xFF;
  }
  oc.rel_err = max_ref > 0 ? oc.max_abs_err / max_ref : 0.0;
  oc.tolerance = tolerance_for(low != nullptr ? dtype : FLASHPORT_DTYPE_F32, max_ref, low_err);
  oc.pass = unwritten == 0 && inf_mismatch == 0 && outside == 0 && oc.max_abs_err <= oc.tolerance;
  if (!oc.pass) {
    msg << "\n  " << name << ": max_abs_err " << oc.max_abs_err << " (rel " << oc.rel_err << ") tolerance "
        << oc.tolerance;
    if (unwritten) msg << "; " << unwritten << " elements not written (still NaN)";
    if (inf_mismatch) msg << "; " << inf_mismatch << " elements infinite where the reference is not, or vice versa";
    if (outside) msg << "; " << outside << " bytes written outside the view";
  }
  return oc;
}

std::array<int64_t, 4> dims(int64_t b, int64_t s, int64_t h, int64_t d) { return {b, s, h, d}; }

}  // namespace

HostImage::HostImage(std::array<int64_t, 4> shape_, Layout layout, flashport_dtype dtype_, bool is_lse)
    : shape(shape_), dtype(dtype_) {
  const int64_t n1 = shape[1], n2 = shape[2], n3 = shape[3];
  const bool reversed = layout == Layout::Reversed || layout == Layout::ReversedAll;
  if (is_lse) {  // [B, H, S]: contiguous, or every other element with padding
    strides = layout == Layout::Strided ? std::array<int64_t, 4>{n1 * (2 * n2 + 1) + 3, 2 * n2 + 1, 2, 1}
                                        : std::array<int64_t, 4>{n1 * n2, n2, 1, 1};
  } else if (layout == Layout::Contiguous || reversed) {
    strides = {n1 * n2 * n3, n2 * n3, n3, 1};
  } else if (layout == Layout::HeadsFirst) {
    strides = {n2 * n1 * n3, n3, n1 * n3, 1};
  } else {
    const int64_t sh = 2 * n3 + 1, ss = n2 * sh + 3, sb = n1 * ss + 5;
    strides = {sb, ss, sh, 2};
  }
  // The reversed layouts walk the same storage backwards: dims 1 and 2 (seqlen and heads; heads and seqlen of lse),
  // and for ReversedAll dims 0 and 3 too.
  if (reversed) {
    for (int i = 0; i < 4; ++i)
      if (layout == Layout::ReversedAll || i == 1 || i == 2) strides[i] = -strides[i];
  }
  size_t elems = 1;
  for (int i = 0; i < 4; ++i) {
    const int64_t last = (shape[i] - 1) * strides[i];
    elems += static_cast<size_t>(last < 0 ? -last : last);
    if (last < 0) origin -= last;
  }
  bytes.assign(elems * element_size(dtype), 0xFF);
  in_view.assign(elems, 0);
  for_each([&](size_t, size_t off) { in_view[off] = 1; });
}

void HostImage::set(size_t off, double x) {
  uint8_t* p = bytes.data() + off * element_size(dtype);
  if (dtype == FLASHPORT_DTYPE_F32) {
    const float f = static_cast<float>(x);
    std::memcpy(p, &f, 4);
  } else if (dtype == FLASHPORT_DTYPE_F16) {
    const Eigen::half h(static_cast<float>(x));
    std::memcpy(p, &h, 2);
  } else {
    const Eigen::bfloat16 h(static_cast<float>(x));
    std::memcpy(p, &h, 2);
  }
}

double HostImage::get(size_t off) const {
  const uint8_t* p = bytes.data() + off * element_size(dtype);
  if (dtype == FLASHPORT_DTYPE_F32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  if (dtype == FLASHPORT_DTYPE_F16) {
    Eigen::half h;
    std::memcpy(&h, p, 2);
    return static_cast<float>(h);
  }
  Eigen::bfloat16 h;
  std::memcpy(&h, p, 2);
  return static_cast<float>(h);
}

void HostImage::fill(const std::vector<double>& dense) {
  for_each([&](size_t i, size_t off) { set(off, dense[i]); });
}

std::vector<double> HostImage::dense() const {
  std::vector<double> d(static_cast<size_t>(shape[0] * shape[1] * shape[2] * shape[3]));
  for_each([&](size_t i, size_t off) { d[i] = get(off); });
  return d;
}

CaseInputs make_inputs(const Case& c) {
  Rng rng(c.seed);
  CaseInputs in;
  in.q = random_tensor(rng, c.batch * c.seqlen_q * c.heads_q * c.head_dim_qk, c.dtype);
  in.k = random_tensor(rng, c.batch * c.seqlen_kv * c.heads_kv * c.head_dim_qk, c.dtype);
  in.v = random_tensor(rng, c.batch * c.seqlen_kv * c.heads_kv * c.head_dim_v, c.dtype);
  in.dout = random_tensor(rng, c.batch * c.seqlen_q * c.heads_q * c.head_dim_v, c.dtype);
  return in;
}

namespace {

// Runs one API call and records the first failure in o.
bool call_ok(BackendOutputs& o, const char* what, flashport_status st) {
  if (st == FLASHPORT_STATUS_OK) return true;
  o.status = st;
  o.error = std::string(what) + ": " + flashport_status_string(st) + ": " + flashport_last_error();
  return false;
}

bool memory_ok(BackendOutputs& o, bool ok, const std::string& why) {
  if (ok) return true;
  o.status = FLASHPORT_STATUS_DEVICE_ERROR;
  o.error = "device memory: " + why;
  return false;
}

// The case's scale and mask options, and the backend, on forward or backward args.
template <class Args>
void set_case_options(Args& a, const Case& c, const char* backend) {
  a.softmax_scale = c.softmax_scale;
  a.softcap = c.softcap;
  a.causal = c.causal ? 1 : 0;
  a.mask_alignment = c.alignment;
  a.window_left = c.window_left;
  a.window_right = c.window_right;
  a.backend = backend;
}

}  // namespace

BackendOutputs run_backend(const Case& c, const CaseInputs& in, const std::vector<double>& fwd_out,
                           const std::vector<double>& fwd_lse, const char* backend, DeviceMemory& memory,
                           bool with_backward) {
  BackendOutputs o;
  std::string why;
  auto make = [&](std::array<int64_t, 4> shape, bool is_lse, const std::vector<double>* values) {
    HostImage img(shape, c.layout, is_lse ? FLASHPORT_DTYPE_F32 : c.dtype, is_lse);
    if (values != nullptr) img.fill(*values);
    return DeviceTensor(memory, std::move(img), &why);
  };
  const auto qs = dims(c.batch, c.seqlen_q, c.heads_q, c.head_dim_qk);
  const auto ks = dims(c.batch, c.seqlen_kv, c.heads_kv, c.head_dim_qk);
  const auto vs = dims(c.batch, c.seqlen_kv, c.heads_kv, c.head_dim_v);
  const auto os = dims(c.batch, c.seqlen_q, c.heads_q, c.head_dim_v);
  const auto ls = dims(c.batch, c.heads_q, c.seqlen_q, 1);

  DeviceTensor q = make(qs, false, &in.q), k = make(ks, false, &in.k), v = make(vs, false, &in.v);
  DeviceTensor out = make(os, false, nullptr), lse = make(ls, true, nullptr);
  if (!memory_ok(o, q.upload(&why) && k.upload(&why) && v.upload(&why) && out.upload(&why) && lse.upload(&why),
                 why))
    return o;

  flashport_forward_args fa;
  flashport_forward_args_init(&fa);
  fa.q = q.tensor(memory);
  fa.k = k.tensor(memory);
  fa.v = v.tensor(memory);
  fa.out = out.tensor(memory);
  if (c.with_lse) fa.lse = lse.tensor(memory);
  set_case_options(fa, c, backend);
  if (!call_ok(o, "forward", flashport_forward(&fa))) return o;
  if (!memory_ok(o, memory.synchronize(nullptr, &why) && out.download(&why) && lse.download(&why), why)) return o;
  o.out = out.image;
  o.lse = lse.image;
  if (!with_backward) return o;

  DeviceTensor dout = make(os, false, &in.dout), fout = make(os, false, &fwd_out), flse = make(ls, true, &fwd_lse);
  DeviceTensor dq = make(qs, false, nullptr), dk = make(ks, false, nullptr), dv = make(vs, false, nullptr);
  if (!memory_ok(o, dout.upload(&why) && fout.upload(&why) && flse.upload(&why) && dq.upload(&why) &&
                        dk.upload(&why) && dv.upload(&why),
                 why))
    return o;
  flashport_backward_args ba;
  flashport_backward_args_init(&ba);
  std::tie(ba.q, ba.k, ba.v) = std::tie(fa.q, fa.k, fa.v);
  std::tie(ba.dout, ba.out, ba.lse) = std::make_tuple(dout.tensor(memory), fout.tensor(memory), flse.tensor(memory));
  std::tie(ba.dq, ba.dk, ba.dv) = std::make_tuple(dq.tensor(memory), dk.tensor(memory), dv.tensor(memory));
  set_case_options(ba, c, backend);
  ba.deterministic = c.deterministic ? 1 : 0;
  if (!call_ok(o, "backward", flashport_backward(&ba))) return o;
  if (!memory_ok(o, memory.synchronize(nullptr, &why) && dq.download(&why) && dk.download(&why) && dv.download(&why),
                 why))
    return o;
  o.dq = dq.image;
  o.dk = dk.image;
  o.dv = dv.image;
  return o;
}

Result run_case(const Case& c, const char* backend, DeviceMemory& memory, bool with_backward) {
  Result res;
  std::ostringstream msg;
  msg << c.describe() << " on " << backend << ":";
  const CaseInputs in = make_inputs(c);
  const ForwardResult ref = reference_forward(c, in.q, in.k, in.v);
  const BackendOutputs got = run_backend(c, in, ref.out, ref.lse, backend, memory, with_backward);
  if (got.status == FLASHPORT_STATUS_NO_BACKEND || got.status == FLASHPORT_STATUS_UNSUPPORTED) {
    res.skipped = true;
    res.message = msg.str() + " skipped: " + got.error;
    return res;
  }
  if (got.status != FLASHPORT_STATUS_OK) {
    res.message = msg.str() + " " + got.error;
    return res;
  }
  const bool low = c.dtype != FLASHPORT_DTYPE_F32;
  const Rounding round = [&](double x) { return round_to_dtype(x, c.dtype); };
  const ForwardResult ref_low = low ? reference_forward(c, in.q, in.k, in.v, round) : ForwardResult{};
  res.outputs.push_back(check_output("out", got.out, ref.out, low ? &ref_low.out : nullptr, c.dtype, msg));
  if (c.with_lse) res.outputs.push_back(check_output("lse", got.lse, ref.lse, nullptr, c.dtype, msg));
  if (with_backward) {
    const BackwardResult g = reference_backward(c, in.q, in.k, in.v, in.dout);
    const BackwardResult g_low = low ? reference_backward(c, in.q, in.k, in.v, in.dout, round) : BackwardResult{};
    res.outputs.push_back(check_output("dq", got.dq, g.dq, low ? &g_low.dq : nullptr, c.dtype, msg));
    res.outputs.push_back(check_output("dk", got.dk, g.dk, low ? &g_low.dk : nullptr, c.dtype, msg));
    res.outputs.push_back(check_output("dv", got.dv, g.dv, low ? &g_low.dv : nullptr, c.dtype, msg));
  }
  res.pass = true;
  for (const OutputCheck& oc : res.outputs) res.pass = res.pass && oc.pass;
  res.message = msg.str() + (res.pass ? " ok" : "");
  return res;
}

}  // namespace flashport::conformance
