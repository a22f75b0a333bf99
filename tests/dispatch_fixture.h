// Small, valid forward/backward requests on CPU tensors for the dispatch tests (validation, API, threads). Inputs
// hold random values, outputs a sentinel byte pattern, so a test can break one field and check that nothing was
// written.
#ifndef FLASHPORT_TESTS_DISPATCH_FIXTURE_H
#define FLASHPORT_TESTS_DISPATCH_FIXTURE_H

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "flashport/flashport.h"

namespace dispatch_test {

constexpr unsigned char kSentinel = 0xA5;

struct Shape {
  int64_t batch = 2, seqlen_q = 5, seqlen_kv = 7, heads_q = 4, heads_kv = 2, head_dim_qk = 8, head_dim_v = 6;
};

inline size_t element_size(flashport_dtype dtype) { return dtype == FLASHPORT_DTYPE_F32 ? 4 : 2; }

// One contiguous tensor and its memory. Inputs get values uniform in [-1, 1] (F32 or BF16), outputs the sentinel.
struct Storage {
  std::vector<unsigned char> bytes;
  flashport_tensor t{};

  void make(flashport_dtype dtype, int64_t b, int64_t s, int64_t h, int64_t d, std::mt19937* rng) {
    const size_t count = static_cast<size_t>(b * s * h * d);
    bytes.assign(count * element_size(dtype), kSentinel);
    if (rng != nullptr) {
      std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
      for (size_t i = 0; i < count; ++i) {
        const float x = dist(*rng);
        if (dtype == FLASHPORT_DTYPE_F32) {
          std::memcpy(&bytes[i * 4], &x, 4);
        } else {  // BF16: the upper half of the binary32 pattern (truncation is fine for test data)
          uint32_t u;
          std::memcpy(&u, &x, 4);
          const uint16_t hi = static_cast<uint16_t>(u >> 16);
          std::memcpy(&bytes[i * 2], &hi, 2);
        }
      }
    }
    flashport_tensor_init_contiguous(&t, bytes.data(), dtype, FLASHPORT_DEVICE_CPU, 0, b, s, h, d);
  }
  void make_lse(int64_t b, int64_t h, int64_t s, std::mt19937* rng) {
    make(FLASHPORT_DTYPE_F32, b, h, s, 1, rng);
    flashport_lse_init_contiguous(&t, reinterpret_cast<float*>(bytes.data()), FLASHPORT_DEVICE_CPU, 0, b, h, s);
  }
  bool untouched() const {
    return std::all_of(bytes.begin(), bytes.end(), [](unsigned char c) { return c == kSentinel; });
  }
};

// Forward args over the given tensors, every option at its default.
inline flashport_forward_args forward_args(const flashport_tensor& q, const flashport_tensor& k,
                                           const flashport_tensor& v, const flashport_tensor& out,
                                           const flashport_tensor& lse) {
  flashport_forward_args a;
  flashport_forward_args_init(&a);
  std::tie(a.q, a.k, a.v, a.out, a.lse) = std::tie(q, k, v, out, lse);
  return a;
}

// q, k, v with values from rng and out, shaped by s; out gets values only when out_rng is given (a backward input).
inline void make_attention_operands(const Shape& s, flashport_dtype dtype, std::mt19937& rng, Storage& q, Storage& k,
                                    Storage& v, Storage& out, std::mt19937* out_rng) {
  q.make(dtype, s.batch, s.seqlen_q, s.heads_q, s.head_dim_qk, &rng);
  k.make(dtype, s.batch, s.seqlen_kv, s.heads_kv, s.head_dim_qk, &rng);
  v.make(dtype, s.batch, s.seqlen_kv, s.heads_kv, s.head_dim_v, &rng);
  out.make(dtype, s.batch, s.seqlen_q, s.heads_q, s.head_dim_v, out_rng);
}

// A valid forward request with lse requested. Not copyable: args points into the storages.
struct Forward {
  Storage q, k, v, out, lse;
  flashport_forward_args args;

  explicit Forward(Shape s = {}, flashport_dtype dtype = FLASHPORT_DTYPE_F32, uint32_t seed = 1) {
    std::mt19937 rng(seed);
    make_attention_operands(s, dtype, rng, q, k, v, out, nullptr);
    lse.make_lse(s.batch, s.heads_q, s.seqlen_q, nullptr);
    args = forward_args(q.t, k.t, v.t, out.t, lse.t);
  }
  Forward(const Forward&) = delete;
  Forward& operator=(const Forward&) = delete;
  bool outputs_untouched() const { return out.untouched() && lse.untouched(); }
};

// A valid backward request (random out and lse: validation and dispatch do not care where they came from).
struct Backward {
  Storage dout, q, k, v, out, lse, dq, dk, dv;
  flashport_backward_args args;

  explicit Backward(Shape s = {}, flashport_dtype dtype = FLASHPORT_DTYPE_F32, uint32_t seed = 2) {
    std::mt19937 rng(seed);
    make_attention_operands(s, dtype, rng, q, k, v, out, &rng);
    dout.make(dtype, s.batch, s.seqlen_q, s.heads_q, s.head_dim_v, &rng);
    lse.make_lse(s.batch, s.heads_q, s.seqlen_q, &rng);
    dq.make(dtype, s.batch, s.seqlen_q, s.heads_q, s.head_dim_qk, nullptr);
    dk.make(dtype, s.batch, s.seqlen_kv, s.heads_kv, s.head_dim_qk, nullptr);
    dv.make(dtype, s.batch, s.seqlen_kv, s.heads_kv, s.head_dim_v, nullptr);
    flashport_backward_args_init(&args);
    std::tie(args.dout, args.q, args.k, args.v, args.out, args.lse, args.dq, args.dk, args.dv) =
        std::tie(dout.t, q.t, k.t, v.t, out.t, lse.t, dq.t, dk.t, dv.t);
  }
  Backward(const Backward&) = delete;
  Backward& operator=(const Backward&) = delete;
  // Makes out and lse those of a real forward call on q, k, v, so gradients are meaningful.
  flashport_status run_forward() {
    flashport_forward_args f = forward_args(q.t, k.t, v.t, out.t, lse.t);
    std::tie(f.softmax_scale, f.softcap, f.causal, f.mask_alignment, f.window_left, f.window_right) =
        std::tie(args.softmax_scale, args.softcap, args.causal, args.mask_alignment, args.window_left,
                 args.window_right);
    return flashport_forward(&f);
  }
  bool outputs_untouched() const { return dq.untouched() && dk.untouched() && dv.untouched(); }
};

}  // namespace dispatch_test

#endif
