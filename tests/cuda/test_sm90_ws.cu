// The warp-specialised Hopper forward (kernels/fwd_sm90_ws.cuh), launched directly, against the CUDA module's
// forward (flashport_forward with backend "cuda") on the same device inputs; then both timed.
//
// Correctness: every case draws random inputs, poisons both output buffers (and LSEs) with all-ones bytes (NaN in
// every dtype), runs both forwards and requires, element by element: no NaN, |new - module| within the dtype's
// rounding (one unit in the last place of the larger magnitude, plus 1e-5; where the module runs another kernel
// family, a head dim the new kernel pads, whose fp32 sums differ in order before the 16-bit rounding: two units plus
// one unit at 1/4), LSEs within 1e-5 relative (-inf equal),
// and every buffer element outside the output views still poison (nothing written outside).
// Timing (not with --quick): B * S = 32768 tokens, H * D = 2048, bf16, S 4096 and 16384, causal off and on; the
// median of CUDA-event times of back-to-back calls, as TFLOP/s = 4 B H S^2 D / t (half that under a causal mask);
// the outputs of the last timed calls are compared as above.
//
// Usage: flashport_sm90_ws_test [--quick]. Exit 0: all passed; 1: a failure; 77: no compute-9.0 device or no
// "cuda" backend (ctest: skipped).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "flashport/flashport.h"
#include "kernels/fwd_sm90_ws.cuh"

namespace fk = flashport::kernels;
namespace fv = flashport::vendor;

namespace {

#define CHECK_CUDA(call)                                                                                   \
  do {                                                                                                     \
    const cudaError_t check_cuda_err = (call);                                                             \
    if (check_cuda_err != cudaSuccess) {                                                                   \
      std::fprintf(stderr, "FAIL: %s:%d: %s: %s\n", __FILE__, __LINE__, #call,                             \
                   cudaGetErrorString(check_cuda_err));                                                    \
      std::exit(1);                                                                                        \
    }                                                                                                      \
  } while (0)

#define CHECK_FLASHPORT(call)                                                                              \
  do {                                                                                                     \
    const flashport_status check_fp_status = (call);                                                       \
    if (check_fp_status != FLASHPORT_STATUS_OK) {                                                          \
      std::fprintf(stderr, "FAIL: %s:%d: %s: %s: %s\n", __FILE__, __LINE__, #call,                         \
                   flashport_status_string(check_fp_status), flashport_last_error());                      \
      std::exit(1);                                                                                        \
    }                                                                                                      \
  } while (0)

enum class Dtype { bf16, f16 };
// Which instance of a head dim runs: its defaults, or the alternative timed against them.
enum Variant { kDefault, kStages3 /* D 128: 3 K/V stages */, kConsumers2 /* D 64: 2 consumer warpgroups */ };

struct Case {
  const char* name;
  Dtype dtype;
  int d;  // the kernel instance (64, 128, 256)
  int batch, seqlen_q, seqlen_kv, heads_q, heads_kv, head_dim;
  bool causal;
  int alignment;  // FLASHPORT_ALIGN_*
  int64_t window_left, window_right;
  float softcap;
  bool lse;
  bool heads_first;  // q, k, v stored [B, H, S, D]
  int out_pad;       // extra elements after each output row of head_dim (a strided out)
  Variant variant;
};

// A 4-D tensor on the device: shape [B, S, H, D] and element strides.
struct DevTensor {
  void* data = nullptr;
  size_t elems = 0;
  int64_t shape[4] = {};
  int64_t stride[4] = {};
};

uint16_t to_bits(float x, Dtype t) {
  if (t == Dtype::bf16) return __nv_bfloat16_raw(__float2bfloat16_rn(x)).x;
  return __half_raw(__float2half_rn(x)).x;
}
float from_bits(uint16_t u, Dtype t) {
  if (t == Dtype::bf16) {
    __nv_bfloat16_raw r;
    r.x = u;
    return __bfloat162float(__nv_bfloat16(r));
  }
  __half_raw r;
  r.x = u;
  return __half2float(__half(r));
}

// [B, S, H, D] with the given padding of each head's row; heads_first stores [B, H, S, D].
DevTensor make_tensor(int64_t b, int64_t s, int64_t h, int64_t d, bool heads_first, int pad) {
  DevTensor t;
  const int64_t row = d + pad;
  t.shape[0] = b, t.shape[1] = s, t.shape[2] = h, t.shape[3] = d;
  if (heads_first) {
    t.stride[3] = 1, t.stride[1] = row, t.stride[2] = s * row, t.stride[0] = h * s * row;
  } else {
    t.stride[3] = 1, t.stride[2] = row, t.stride[1] = h * row, t.stride[0] = s * h * row;
  }
  t.elems = size_t(b * s * h * row);
  CHECK_CUDA(cudaMalloc(&t.data, t.elems * 2));
  return t;
}

void fill_random(DevTensor& t, Dtype dtype, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<uint16_t> host(t.elems);
  for (auto& x : host) x = to_bits(u(rng), dtype);
  CHECK_CUDA(cudaMemcpy(t.data, host.data(), t.elems * 2, cudaMemcpyHostToDevice));
}

flashport_tensor api_tensor(const DevTensor& t, Dtype dtype) {
  flashport_tensor a{};
  a.data = t.data;
  a.dtype = dtype == Dtype::bf16 ? FLASHPORT_DTYPE_BF16 : FLASHPORT_DTYPE_F16;
  a.device_type = FLASHPORT_DEVICE_CUDA;
  a.device_id = 0;
  for (int i = 0; i < 4; ++i) a.shape[i] = t.shape[i], a.strides[i] = t.stride[i];
  return a;
}

struct Problem {
  Case c;
  DevTensor q, k, v, out_ref, out_new;
  float* lse_ref = nullptr;
  float* lse_new = nullptr;
  size_t lse_elems = 0;
  float scale = 0.f;

  explicit Problem(const Case& cs, std::mt19937& rng) : c(cs) {
    q = make_tensor(c.batch, c.seqlen_q, c.heads_q, c.head_dim, c.heads_first, 0);
    k = make_tensor(c.batch, c.seqlen_kv, c.heads_kv, c.head_dim, c.heads_first, 0);
    v = make_tensor(c.batch, c.seqlen_kv, c.heads_kv, c.head_dim, c.heads_first, 0);
    out_ref = make_tensor(c.batch, c.seqlen_q, c.heads_q, c.head_dim, false, c.out_pad);
    out_new = make_tensor(c.batch, c.seqlen_q, c.heads_q, c.head_dim, false, c.out_pad);
    fill_random(q, c.dtype, rng);
    fill_random(k, c.dtype, rng);
    fill_random(v, c.dtype, rng);
    lse_elems = size_t(c.batch) * c.heads_q * c.seqlen_q;
    if (c.lse) {
      CHECK_CUDA(cudaMalloc(&lse_ref, lse_elems * 4));
      CHECK_CUDA(cudaMalloc(&lse_new, lse_elems * 4));
    }
    scale = 1.f / std::sqrt(float(c.head_dim));
  }
  ~Problem() {
    for (void* p : {q.data, k.data, v.data, out_ref.data, out_new.data, static_cast<void*>(lse_ref),
                    static_cast<void*>(lse_new)})
      if (p != nullptr) CHECK_CUDA(cudaFree(p));
  }
  Problem(const Problem&) = delete;
  Problem& operator=(const Problem&) = delete;

  void poison() {
    CHECK_CUDA(cudaMemset(out_ref.data, 0xFF, out_ref.elems * 2));
    CHECK_CUDA(cudaMemset(out_new.data, 0xFF, out_new.elems * 2));
    if (c.lse) {
      CHECK_CUDA(cudaMemset(lse_ref, 0xFF, lse_elems * 4));
      CHECK_CUDA(cudaMemset(lse_new, 0xFF, lse_elems * 4));
    }
  }

  void run_module(cudaStream_t stream) {
    flashport_forward_args a;
    flashport_forward_args_init(&a);
    a.q = api_tensor(q, c.dtype);
    a.k = api_tensor(k, c.dtype);
    a.v = api_tensor(v, c.dtype);
    a.out = api_tensor(out_ref, c.dtype);
    if (c.lse) flashport_lse_init_contiguous(&a.lse, lse_ref, FLASHPORT_DEVICE_CUDA, 0, c.batch, c.heads_q, c.seqlen_q);
    a.softmax_scale = scale;
    a.softcap = c.softcap;
    a.causal = c.causal ? 1 : 0;
    a.mask_alignment = c.alignment;
    a.window_left = c.window_left;
    a.window_right = c.window_right;
    a.stream = stream;
    a.backend = "cuda";
    CHECK_FLASHPORT(flashport_forward(&a));
  }

  // The parameter block the module fills from a validated problem (causal folded into window_right).
  fk::FwdParams params() const {
    fk::FwdParams f{};
    f.q = q.data;
    f.k = k.data;
    f.v = v.data;
    f.out = out_new.data;
    f.lse = lse_new;
    for (int i = 0; i < 3; ++i) {
      f.q_stride[i] = q.stride[i];
      f.k_stride[i] = k.stride[i];
      f.v_stride[i] = v.stride[i];
      f.out_stride[i] = out_new.stride[i];
    }
    f.lse_stride[0] = int64_t(c.heads_q) * c.seqlen_q;
    f.lse_stride[1] = c.seqlen_q;
    f.lse_stride[2] = 1;
    f.batch = c.batch;
    f.seqlen_q = c.seqlen_q;
    f.seqlen_kv = c.seqlen_kv;
    f.heads_q = c.heads_q;
    f.heads_kv = c.heads_kv;
    f.head_dim_qk = c.head_dim;
    f.head_dim_v = c.head_dim;
    f.heads_ratio = c.heads_q / c.heads_kv;
    f.scale = scale;
    f.scale_log2 = scale * 1.4426950408889634f;
    f.softcap = c.softcap;
    f.mask_offset = c.alignment == FLASHPORT_ALIGN_TOP_LEFT ? 0 : int64_t(c.seqlen_kv) - c.seqlen_q;
    f.window_left = c.window_left;
    f.window_right = c.causal ? 0 : c.window_right;
    f.vec_loads = true;
    f.vec_stores = true;
    return f;
  }

  cudaError_t run_new(cudaStream_t stream) const {
    const fk::FwdParams p = params();
    const bool bf = c.dtype == Dtype::bf16;
    switch (c.d) {
      case 64:
        if (!bf) return cudaErrorInvalidValue;
        return c.variant == kConsumers2 ? fk::launch_fwd_sm90_ws<fv::bf16_t, 64, fk::kSm90WsStages<64>, 2>(p, stream)
                                        : fk::launch_fwd_sm90_ws<fv::bf16_t, 64>(p, stream);
      case 128:
        if (!bf) return fk::launch_fwd_sm90_ws<fv::half_t, 128>(p, stream);
        return c.variant == kStages3 ? fk::launch_fwd_sm90_ws<fv::bf16_t, 128, 3>(p, stream)
                                     : fk::launch_fwd_sm90_ws<fv::bf16_t, 128>(p, stream);
      case 256: return bf ? fk::launch_fwd_sm90_ws<fv::bf16_t, 256>(p, stream) : cudaErrorInvalidValue;
      default: return cudaErrorInvalidValue;
    }
  }

  bool supported() const {
    const fk::FwdParams p = params();
    switch (c.d) {
      case 64: return fk::fwd_sm90_ws_supports<64>(p);
      case 128: return fk::fwd_sm90_ws_supports<128>(p);
      case 256: return fk::fwd_sm90_ws_supports<256>(p);
      default: return false;
    }
  }
};

// Compares the two outputs (and LSEs) as the header says; prints one line.
bool compare(Problem& pr) {
  const Case& c = pr.c;
  std::vector<uint16_t> ref(pr.out_ref.elems), got(pr.out_new.elems);
  CHECK_CUDA(cudaMemcpy(ref.data(), pr.out_ref.data, ref.size() * 2, cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(got.data(), pr.out_new.data, got.size() * 2, cudaMemcpyDeviceToHost));
  const double ulp = c.dtype == Dtype::bf16 ? 1.0 / 128 : 1.0 / 1024;  // spacing in [1, 2)
  // Same arithmetic (the module runs fwd_sm90 at this head dim) or another kernel family (a padded head dim).
  const bool same_family = c.head_dim == c.d;
  const double tol_rel = same_family ? ulp : 2 * ulp, tol_abs = same_family ? 1e-5 : ulp / 4;
  std::vector<char> in_view(ref.size(), 0);
  double max_abs = 0.0;
  size_t bad = 0, nan_ref = 0, nan_new = 0, written_outside = 0;
  const DevTensor& t = pr.out_new;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t s = 0; s < c.seqlen_q; ++s)
      for (int64_t h = 0; h < c.heads_q; ++h)
        for (int64_t d = 0; d < c.head_dim; ++d) {
          const size_t i = size_t(b * t.stride[0] + s * t.stride[1] + h * t.stride[2] + d);
          in_view[i] = 1;
          const float x = from_bits(ref[i], c.dtype), y = from_bits(got[i], c.dtype);
          if (std::isnan(x)) ++nan_ref;
          if (std::isnan(y)) ++nan_new;
          if (std::isnan(x) || std::isnan(y)) continue;
          const double diff = std::fabs(double(x) - double(y));
          max_abs = std::max(max_abs, diff);
          if (!(diff <= tol_rel * std::max(std::fabs(x), std::fabs(y)) + tol_abs)) ++bad;
        }
  for (size_t i = 0; i < ref.size(); ++i)
    if (!in_view[i] && (got[i] != 0xFFFF || ref[i] != 0xFFFF)) ++written_outside;

  size_t lse_bad = 0, lse_nan = 0;
  double lse_max = 0.0;
  if (c.lse) {
    std::vector<float> lr(pr.lse_elems), ln(pr.lse_elems);
    CHECK_CUDA(cudaMemcpy(lr.data(), pr.lse_ref, lr.size() * 4, cudaMemcpyDeviceToHost));
    CHECK_CUDA(cudaMemcpy(ln.data(), pr.lse_new, ln.size() * 4, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < lr.size(); ++i) {
      if (std::isnan(lr[i]) || std::isnan(ln[i])) {
        ++lse_nan;
        continue;
      }
      if (std::isinf(lr[i]) || std::isinf(ln[i])) {
        if (lr[i] != ln[i]) ++lse_bad;
        continue;
      }
      const double diff = std::fabs(double(lr[i]) - double(ln[i]));
      lse_max = std::max(lse_max, diff);
      if (!(diff <= 1e-5 * std::max(1.0, std::fabs(double(lr[i]))))) ++lse_bad;
    }
  }
  const bool pass = bad == 0 && nan_ref == 0 && nan_new == 0 && written_outside == 0 && lse_bad == 0 && lse_nan == 0;
  std::printf("%s %-44s max|diff| %.3g%s", pass ? "PASS" : "FAIL", c.name, max_abs, c.lse ? "" : "\n");
  if (c.lse) std::printf(", lse %.3g\n", lse_max);
  if (!pass)
    std::printf("     out: %zu over tolerance, NaN module %zu / new %zu, %zu written outside the view; lse: %zu over "
                "tolerance, %zu NaN\n",
                bad, nan_ref, nan_new, written_outside, lse_bad, lse_nan);
  return pass;
}

bool run_case(const Case& c, std::mt19937& rng, cudaStream_t stream) {
  Problem pr(c, rng);
  if (!pr.supported()) {
    std::printf("FAIL %-44s fwd_sm90_ws_supports refused it\n", c.name);
    return false;
  }
  pr.poison();
  pr.run_module(stream);
  CHECK_CUDA(pr.run_new(stream));
  CHECK_CUDA(cudaStreamSynchronize(stream));
  return compare(pr);
}

// Median milliseconds of `reps` calls of f, each between two events, all queued back to back.
template <class F> double time_ms(F&& f, cudaStream_t stream, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<cudaEvent_t> ev(2 * reps);
  for (auto& e : ev) CHECK_CUDA(cudaEventCreate(&e));
  for (int i = 0; i < reps; ++i) {
    CHECK_CUDA(cudaEventRecord(ev[2 * i], stream));
    f();
    CHECK_CUDA(cudaEventRecord(ev[2 * i + 1], stream));
  }
  CHECK_CUDA(cudaStreamSynchronize(stream));
  std::vector<float> ms(reps);
  for (int i = 0; i < reps; ++i) CHECK_CUDA(cudaEventElapsedTime(&ms[i], ev[2 * i], ev[2 * i + 1]));
  for (auto& e : ev) CHECK_CUDA(cudaEventDestroy(e));
  std::sort(ms.begin(), ms.end());
  return ms[reps / 2];
}

// Times both forwards on one problem, then checks the outputs of their last calls against each other (a time is
// only worth reporting for a kernel that computed the right thing). False on a mismatch.
bool time_case(const Case& c, std::mt19937& rng, cudaStream_t stream) {
  Problem pr(c, rng);
  pr.poison();
  const double flops = 4.0 * c.batch * c.heads_q * double(c.seqlen_q) * c.seqlen_kv * c.head_dim * (c.causal ? 0.5 : 1);
  const int reps = c.seqlen_q >= 16384 ? 10 : 20;
  const double t_ref = time_ms([&] { pr.run_module(stream); }, stream, 3, reps);
  const double t_new = time_ms([&] { CHECK_CUDA(pr.run_new(stream)); }, stream, 3, reps);
  const char* variant = c.variant == kStages3 ? "3 stages" : c.variant == kConsumers2 ? "2 consumers" : "default";
  std::printf("time D %3d S %5d B %d H %2d causal %d (%s): module %6.1f TFLOP/s (%.3f ms), ws %6.1f TFLOP/s "
              "(%.3f ms), x %.2f\n",
              c.head_dim, c.seqlen_q, c.batch, c.heads_q, c.causal ? 1 : 0, variant, flops / t_ref * 1e-9, t_ref,
              flops / t_new * 1e-9, t_new, t_ref / t_new);
  return compare(pr);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
      return 2;
    }
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("SKIP: no CUDA device\n");
    return 77;
  }
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  if (prop.major != 9 || prop.minor != 0) {
    std::printf("SKIP: device 0 (%s) has compute capability %d.%d; the kernel needs 9.0\n", prop.name, prop.major,
                prop.minor);
    return 77;
  }
  bool have_cuda_backend = false;
  for (int32_t i = 0; i < flashport_backend_count(); ++i) {
    flashport_backend_info info;
    flashport_backend_info_init(&info);
    if (flashport_backend_info_get(i, &info) == FLASHPORT_STATUS_OK && std::strcmp(info.name, "cuda") == 0)
      have_cuda_backend = info.available != 0;
  }
  if (!have_cuda_backend) {
    std::printf("SKIP: the \"cuda\" backend is not available\n");
    return 77;
  }
  std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);

  constexpr int kBR = FLASHPORT_ALIGN_BOTTOM_RIGHT, kTL = FLASHPORT_ALIGN_TOP_LEFT;
  constexpr Dtype bf = Dtype::bf16, f16 = Dtype::f16;
  // name, dtype, instance D, B, Sq, Skv, Hq, Hkv, head_dim, causal, alignment, window left/right, softcap, lse,
  // heads_first, out_pad, variant
  const Case cases[] = {
      {"D128 S128 one tile", bf, 128, 2, 128, 128, 4, 4, 128, false, kBR, -1, -1, 0.f, true, false, 0, kDefault},
      {"D128 S1000 tail", bf, 128, 1, 1000, 1000, 3, 3, 128, false, kBR, -1, -1, 0.f, true, false, 0, kDefault},
      {"D128 Sq 777 Skv 1500", bf, 128, 2, 777, 1500, 2, 2, 128, false, kBR, -1, -1, 0.f, true, false, 0, kDefault},
      {"D128 Sq 1 Skv 300", bf, 128, 2, 1, 300, 4, 4, 128, false, kBR, -1, -1, 0.f, true, false, 0, kDefault},
      {"D128 Skv 17", bf, 128, 1, 200, 17, 2, 2, 128, false, kBR, -1, -1, 0.f, true, false, 0, kDefault},
      {"D128 causal bottom-right S2048", bf, 128, 1, 2048, 2048, 4, 4, 128, true, kBR, -1, -1, 0.f, true, false,
       0, kDefault},
      {"D128 causal bottom-right Sq 1500 Skv 700", bf, 128, 1, 1500, 700, 2, 2, 128, true, kBR, -1, -1, 0.f, true,
       false, 0, kDefault},  // rows 0..799 see no key: zeros and -inf
      {"D128 causal top-left Sq 1024 Skv 1300", bf, 128, 2, 1024, 1300, 2, 2, 128, true, kTL, -1, -1, 0.f, true,
       false, 0, kDefault},
      {"D128 causal top-left Sq 900 Skv 333", bf, 128, 1, 900, 333, 3, 3, 128, true, kTL, -1, -1, 0.f, true, false, 0,
       kDefault},
      {"D128 GQA 8/2 causal S1024", bf, 128, 2, 1024, 1024, 8, 2, 128, true, kBR, -1, -1, 0.f, true, false,
       0, kDefault},
      {"D128 window (100, 20) S2000", bf, 128, 1, 2000, 2000, 2, 2, 128, false, kBR, 100, 20, 0.f, true, false,
       0, kDefault},
      {"D128 window left 256 only", bf, 128, 1, 1500, 1800, 2, 2, 128, false, kTL, 256, -1, 0.f, true, false,
       0, kDefault},
      {"D128 window (0, 0)", bf, 128, 1, 700, 700, 2, 2, 128, false, kBR, 0, 0, 0.f, true, false, 0, kDefault},
      {"D128 softcap 30 causal S1024", bf, 128, 1, 1024, 1024, 4, 4, 128, true, kBR, -1, -1, 30.f, true, false, 0,
       kDefault},
      {"D128 heads-first inputs, padded out", bf, 128, 2, 600, 600, 3, 3, 128, false, kBR, -1, -1, 0.f, true, true,
       64, kDefault},
      {"D128 S4096 causal", bf, 128, 1, 4096, 4096, 2, 2, 128, true, kBR, -1, -1, 0.f, true, false, 0, kDefault},
      {"D128 S4096, 3 stages", bf, 128, 1, 4096, 4096, 2, 2, 128, false, kBR, -1, -1, 0.f, true, false, 0, kStages3},
      {"D128 no lse", bf, 128, 1, 512, 512, 2, 2, 128, true, kBR, -1, -1, 0.f, false, false, 0, kDefault},
      {"head_dim 96 in the D128 kernel, padded out", bf, 128, 1, 500, 640, 2, 1, 96, true, kBR, -1, -1, 0.f, true,
       false, 32, kDefault},
      {"fp16 D128 S1000", f16, 128, 2, 1000, 1000, 2, 2, 128, false, kBR, -1, -1, 0.f, true, false, 0, kDefault},
      {"fp16 D128 causal softcap", f16, 128, 1, 1333, 1333, 2, 2, 128, true, kBR, -1, -1, 20.f, true, false,
       0, kDefault},
      {"D64 S1000", bf, 64, 2, 1000, 1000, 4, 4, 64, false, kBR, -1, -1, 0.f, true, false, 0, kDefault},
      {"D64 causal top-left Sq 800 Skv 1200", bf, 64, 1, 800, 1200, 4, 2, 64, true, kTL, -1, -1, 0.f, true, false, 0,
       kDefault},
      {"D64 2 consumers, causal S1000", bf, 64, 2, 1000, 1000, 4, 4, 64, true, kBR, -1, -1, 0.f, true, false, 0,
       kConsumers2},
      {"D256 S1000", bf, 256, 2, 1000, 1000, 2, 2, 256, false, kBR, -1, -1, 0.f, true, false, 0, kDefault},
      {"D256 causal bottom-right window 300", bf, 256, 1, 1200, 1000, 2, 1, 256, true, kBR, 300, -1, 0.f, true, false,
       0, kDefault},
  };

  std::mt19937 rng(20261203);
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreate(&stream));
  int failures = 0;
  for (const Case& c : cases) failures += run_case(c, rng, stream) ? 0 : 1;
  std::printf("%d of %zu cases failed\n", failures, sizeof(cases) / sizeof(cases[0]));

  if (!quick && failures == 0) {
    // B * S = 32768 tokens, H * D = 2048 (flashport-bench's grid), bf16, no LSE.
    const int seqs[] = {4096, 16384};
    const int dims[] = {128, 64, 256};
    for (int d : dims)
      for (int s : seqs)
        for (int causal = 0; causal < 2; ++causal) {
          Case c{"timed problem, last calls", bf, d, 32768 / s, s, s, 2048 / d, 2048 / d, d, causal != 0, kBR, -1, -1,
                 0.f, false, false, 0, kDefault};
          failures += time_case(c, rng, stream) ? 0 : 1;
          if (d != 256) {
            c.variant = d == 128 ? kStages3 : kConsumers2;
            failures += time_case(c, rng, stream) ? 0 : 1;
          }
        }
  }
  CHECK_CUDA(cudaStreamDestroy(stream));
  if (failures != 0) std::printf("FAILED: %d\n", failures);
  return failures == 0 ? 0 : 1;
}
