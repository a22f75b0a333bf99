// Block product providers: the products the forward and backward templates need per block, behind one small
// interface so that the same algorithm (blocking, mask, online softmax, schedules) runs on Eigen's fp32 GEMM or on
// the 16-bit dot-product/matrix units. Internal to src/cpu.
//
// A provider P has two per-thread parts, each carved from the thread's scratch after the template's own blocks:
//   P::Fwd (forward):  load_q, load_kv, scores (S = Q·Kᵀ scaled, then softcap and mask), add_pv (O += P·V)
//   P::Bwd (backward): load_query (Q, dO), load_keys (K, V), scores, dp (dP = dO·Vᵀ), add_dv (dV += Pᵀ·dO),
//                      add_dk (dK += dSᵀ·Q), add_dq (dQ += dS·K)
// P::kScaledQ says whether Q·Kᵀ already carries the ScoreRule's q_mul through Q (Eigen: Q is loaded multiplied by
// it) or applies it to the product (bf16: Q stays exact in bf16, as the inputs are), which the backward's dK
// factor follows. Every product is fp32-accumulated; softmax statistics stay in fp32 in the templates.
#ifndef FLASHPORT_CPU_CPU_PRODUCTS_H
#define FLASHPORT_CPU_CPU_PRODUCTS_H

#include <cstring>

#include "cpu/cpu_scores.h"
#include "cpu/mx_kernels.h"

namespace flashport::cpu {

// ---- fp32 through Eigen: every dtype converted to fp32 on load ---------------------------------------------------

template <typename T>
struct EigenProducts {
  static constexpr bool kScaledQ = true;

  struct Fwd {
    static size_t floats(int64_t dqk, int64_t dv) {
      return Carver::size(kFwdBlockQ * dqk) + Carver::size(kFwdBlockK * dqk) + Carver::size(kFwdBlockK * dv);
    }
    Fwd(const EigenProducts&, Carver& carve, int64_t dqk, int64_t dv)
        : dqk_(dqk), dv_(dv), qs_(carve.take(kFwdBlockQ * dqk)), ks_(carve.take(kFwdBlockK * dqk)),
          vs_(carve.take(kFwdBlockK * dv)) {}

    void load_q(const Tensor4<T>& q, int64_t b, int64_t h, int64_t i0, int64_t rows, float q_mul) {
      load_block(q, b, h, i0, rows, dqk_, q_mul, qs_);
    }
    void load_kv(const Tensor4<T>& k, const Tensor4<T>& v, int64_t b, int64_t h, int64_t j0, int64_t cols) {
      kb_ = view_block(k, b, h, j0, cols, dqk_, ks_);
      vb_ = view_block(v, b, h, j0, cols, dv_, vs_);
    }
    // s (n x cols) for rows [r0, r0 + n) of the query block, which are rows i0.. of the problem.
    void scores(const ScoreRule& rule, const Mask& mask, bool full, int64_t i0, int64_t r0, int64_t n, int64_t j0,
                int64_t cols, float* s) const {
      score_block(rule, mask, full, i0, n, j0, cols, dqk_, qs_ + r0 * dqk_, kb_, s, nullptr);
    }
    // o (n x dv block of the accumulator) += p (n x cols, row-major) · V.
    template <typename Dst>
    void add_pv(Dst&& o, int64_t n, int64_t cols, float* p) const {
      o.noalias() += MatMap(p, n, cols) * vb_.map(cols, dv_);
    }

   private:
    int64_t dqk_, dv_;
    float *qs_, *ks_, *vs_;
    BlockView kb_{}, vb_{};
  };

  // Q, dO, K, V live in the backward's own fp32 blocks (q, dout, k, v: kBwdBlockQ/K rows, dense).
  struct Bwd {
    static size_t floats(int64_t, int64_t) { return 0; }
    Bwd(const EigenProducts&, Carver&, int64_t dqk, int64_t dv, float* q, float* dout, float* k, float* v)
        : dqk_(dqk), dv_(dv), q_(q), dout_(dout), k_(k), v_(v) {}

    template <typename U>
    void load_query(const Tensor4<U>& q, const Tensor4<U>& dout, int64_t b, int64_t h, int64_t i0, int64_t rows,
                    float q_mul) {
      load_block(q, b, h, i0, rows, dqk_, q_mul, q_);
      load_block(dout, b, h, i0, rows, dv_, 1.0f, dout_);
    }
    // in_place: fp32 rows with a contiguous head dim may be used where they are.
    template <typename U>
    void load_keys(const Tensor4<U>& k, const Tensor4<U>& v, int64_t b, int64_t h, int64_t j0, int64_t cols,
                   bool in_place) {
      if (in_place) {
        kb_ = view_block(k, b, h, j0, cols, dqk_, k_);
        vb_ = view_block(v, b, h, j0, cols, dv_, v_);
      } else {
        load_block(k, b, h, j0, cols, dqk_, 1.0f, k_);
        load_block(v, b, h, j0, cols, dv_, 1.0f, v_);
        kb_ = BlockView{k_, dqk_};
        vb_ = BlockView{v_, dv_};
      }
    }
    void scores(const ScoreRule& rule, const Mask& mask, bool full, int64_t i0, int64_t rows, int64_t j0,
                int64_t cols, float* s, float* t) const {
      score_block(rule, mask, full, i0, rows, j0, cols, dqk_, q_, kb_, s, t);
    }
    void dp(int64_t rows, int64_t cols, float* ds) const {
      MatMap(ds, rows, cols).noalias() =
          Eigen::Map<const RowMat, Eigen::Aligned64>(dout_, rows, dv_) * vb_.map(cols, dv_).transpose();
    }
    template <typename Dst>
    void add_dv(Dst&& dv, int64_t rows, int64_t cols, float* p) {
      dv.noalias() += MatMap(p, rows, cols).transpose() * MatMap(dout_, rows, dv_);
    }
    template <typename Dst>
    void add_dk(Dst&& dk, int64_t rows, int64_t cols, float* ds) {
      dk.noalias() += MatMap(ds, rows, cols).transpose() * MatMap(q_, rows, dqk_);
    }
    template <typename Dst>
    void add_dq(Dst&& dq, int64_t rows, int64_t cols, float* ds) {
      dq.noalias() += MatMap(ds, rows, cols) * kb_.map(cols, dqk_);
    }

   private:
    int64_t dqk_, dv_;
    float *q_, *dout_, *k_, *v_;
    BlockView kb_{}, vb_{};
  };
};

// ---- bf16 on the dot-product / matrix units -----------------------------------------------------------------------

namespace mx {

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// The bits of a bf16 value.
inline uint16_t bits(Eigen::bfloat16 x) { return Eigen::numext::bit_cast<uint16_t>(x); }

// fp32 -> bf16, rounding to nearest even (as vcvtneps2bf16); NaN stays a quiet NaN. Branch-free so that it vectorises.
inline uint16_t round_bf16(float x) {
  const uint32_t u = Eigen::numext::bit_cast<uint32_t>(x);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded);
}

// Counts of uint16 values, as scratch floats.
inline size_t halves(int64_t n) { return Carver::size(static_cast<size_t>((n + 1) / 2)); }
inline uint16_t* take_halves(Carver& c, int64_t n) { return reinterpret_cast<uint16_t*>(c.take((n + 1) / 2)); }

// A operand (see mx_kernels.h) from rows [s0, s0 + rows) of head h of a bf16 tensor: k values a row, zeros to kp.
inline void pack_a(const Tensor4<Eigen::bfloat16>& t, int64_t b, int64_t h, int64_t s0, int64_t rows, int64_t k,
                   int64_t kp, uint16_t* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    const Eigen::bfloat16* src = t.row(b, s0 + r, h);
    uint16_t* out = dst + r * kp;
    if (t.sd == 1) {
      std::memcpy(out, src, sizeof(uint16_t) * k);
    } else {
      for (int64_t d = 0; d < k; ++d) out[d] = bits(src[d * t.sd]);
    }
    std::fill(out + k, out + kp, uint16_t(0));
  }
}

// B operand holding Xᵀ, X being those rows (rows x k): pair row dd, column j = (X[j][2dd], X[j][2dd + 1]).
// np = rows rounded up to 16; kp / 2 pair rows.
inline void pack_bt(const Tensor4<Eigen::bfloat16>& t, int64_t b, int64_t h, int64_t s0, int64_t rows, int64_t k,
                    int64_t kp, uint16_t* dst) {
  const int64_t np = round_up(rows, 16);
  std::fill(dst, dst + kp * np, uint16_t(0));
  for (int64_t j = 0; j < rows; ++j) {
    const Eigen::bfloat16* src = t.row(b, s0 + j, h);
    for (int64_t d = 0; d < k; ++d) dst[(d / 2) * 2 * np + 2 * j + (d & 1)] = bits(src[d * t.sd]);
  }
}

// B operand holding X itself (rows x k, rows the inner dimension): pair row jj, column d = (X[2jj][d], X[2jj+1][d]).
// np = k rounded up to 16; rows rounded up to 32 (zeros) make the pair rows.
inline void pack_b(const Tensor4<Eigen::bfloat16>& t, int64_t b, int64_t h, int64_t s0, int64_t rows, int64_t k,
                   uint16_t* dst) {
  const int64_t np = round_up(k, 16), kp = round_up(rows, 32);
  std::fill(dst, dst + kp * np, uint16_t(0));
  for (int64_t j = 0; j < rows; ++j) {
    const Eigen::bfloat16* src = t.row(b, s0 + j, h);
    uint16_t* out = dst + (j / 2) * 2 * np + (j & 1);
    for (int64_t d = 0; d < k; ++d) out[2 * d] = bits(src[d * t.sd]);
  }
}

// A operand from an fp32 block (rows x cols, row-major, ld cols), rounded to bf16; kp = cols rounded up to 32.
inline void round_a(const float* src, int64_t rows, int64_t cols, uint16_t* dst) {
  const int64_t kp = round_up(cols, 32);
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = src + r * cols;
    uint16_t* out = dst + r * kp;
    for (int64_t c = 0; c < cols; ++c) out[c] = round_bf16(in[c]);
    std::fill(out + cols, out + kp, uint16_t(0));
  }
}

// A operand holding srcᵀ (cols x rows), rounded to bf16; kp = rows rounded up to 32.
inline void round_a_t(const float* src, int64_t rows, int64_t cols, uint16_t* dst) {
  const int64_t kp = round_up(rows, 32);
  for (int64_t c = 0; c < cols; ++c) std::fill(dst + c * kp + rows, dst + (c + 1) * kp, uint16_t(0));
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = src + r * cols;
    for (int64_t c = 0; c < cols; ++c) dst[c * kp + r] = round_bf16(in[c]);
  }
}

}  // namespace mx

// bf16 inputs, exact in bf16; P and dS rounded to bf16 for their products, as every bf16 attention does (the
// conformance rule measures against the naive algorithm with the same roundings). Only for T = Eigen::bfloat16.
struct MxProducts {
  static constexpr bool kScaledQ = false;
  using T = Eigen::bfloat16;
  const MxKernels* kernels;

  struct Fwd {
    static size_t floats(int64_t dqk, int64_t dv) {
      const int64_t kq = mx::round_up(dqk, 32);
      return mx::halves(kFwdBlockQ * kq) + mx::halves(kq * kFwdBlockK) +
             mx::halves(kFwdBlockK * mx::round_up(dv, 16)) + mx::halves(kFwdBlockQ * kFwdBlockK);
    }
    Fwd(const MxProducts& p, Carver& carve, int64_t dqk, int64_t dv)
        : k_(p.kernels), dqk_(dqk), dv_(dv), kq_(mx::round_up(dqk, 32)), qa_(mx::take_halves(carve, kFwdBlockQ * kq_)),
          kt_(mx::take_halves(carve, kq_ * kFwdBlockK)),
          vp_(mx::take_halves(carve, kFwdBlockK * mx::round_up(dv, 16))),
          pa_(mx::take_halves(carve, kFwdBlockQ * kFwdBlockK)) {}

    void load_q(const Tensor4<T>& q, int64_t b, int64_t h, int64_t i0, int64_t rows, float q_mul) {
      mx::pack_a(q, b, h, i0, rows, dqk_, kq_, qa_);
      q_mul_ = q_mul;
    }
    void load_kv(const Tensor4<T>& k, const Tensor4<T>& v, int64_t b, int64_t h, int64_t j0, int64_t cols) {
      mx::pack_bt(k, b, h, j0, cols, dqk_, kq_, kt_);
      mx::pack_b(v, b, h, j0, cols, dv_, vp_);
    }
    void scores(const ScoreRule& rule, const Mask& mask, bool full, int64_t i0, int64_t r0, int64_t n, int64_t j0,
                int64_t cols, float* s) const {
      k_->gemm(n, cols, kq_, qa_ + r0 * kq_, kq_, kt_, s, cols, q_mul_, false);
      score_epilogue(rule, mask, full, i0, n, j0, cols, s, nullptr);
    }
    template <typename Dst>
    void add_pv(Dst&& o, int64_t n, int64_t cols, float* p) const {
      mx::round_a(p, n, cols, pa_);
      k_->gemm(n, dv_, mx::round_up(cols, 32), pa_, mx::round_up(cols, 32), vp_, o.data(), o.outerStride(), 1.0f,
               true);
    }

   private:
    const MxKernels* k_;
    int64_t dqk_, dv_, kq_;
    float q_mul_ = 1.0f;
    uint16_t *qa_, *kt_, *vp_, *pa_;
  };

  // The fp32 blocks the backward template passes are not used: every operand is packed here. The right operands
  // that only some schedules need (Q and dO row pairs, K row pairs) are packed on first use after each load.
  struct Bwd {
    static size_t floats(int64_t dqk, int64_t dv) {
      const int64_t kq = mx::round_up(dqk, 32), kv = mx::round_up(dv, 32), nq = mx::round_up(dqk, 16),
                    nv = mx::round_up(dv, 16), bq = mx::round_up(kBwdBlockQ, 32), bk = mx::round_up(kBwdBlockK, 32);
      return mx::halves(kBwdBlockQ * kq) + mx::halves(bq * nq) + mx::halves(kBwdBlockQ * kv) + mx::halves(bq * nv) +
             mx::halves(kq * bk) + mx::halves(kv * bk) + mx::halves(bk * nq) + 3 * mx::halves(bq * bk);
    }
    Bwd(const MxProducts& p, Carver& carve, int64_t dqk, int64_t dv, float*, float*, float*, float*)
        : k_(p.kernels), dqk_(dqk), dv_(dv), kq_(mx::round_up(dqk, 32)), kv_(mx::round_up(dv, 32)) {
      const int64_t nq = mx::round_up(dqk, 16), nv = mx::round_up(dv, 16), bq = mx::round_up(kBwdBlockQ, 32),
                    bk = mx::round_up(kBwdBlockK, 32);
      qa_ = mx::take_halves(carve, kBwdBlockQ * kq_);
      qp_ = mx::take_halves(carve, bq * nq);
      da_ = mx::take_halves(carve, kBwdBlockQ * kv_);
      dp_ = mx::take_halves(carve, bq * nv);
      kt_ = mx::take_halves(carve, kq_ * bk);
      vt_ = mx::take_halves(carve, kv_ * bk);
      kp_ = mx::take_halves(carve, bk * nq);
      pt_ = mx::take_halves(carve, bq * bk);
      dst_ = mx::take_halves(carve, bq * bk);
      dsa_ = mx::take_halves(carve, bq * bk);
    }

    void load_query(const Tensor4<T>& q, const Tensor4<T>& dout, int64_t b, int64_t h, int64_t i0, int64_t rows,
                    float q_mul) {
      mx::pack_a(q, b, h, i0, rows, dqk_, kq_, qa_);
      mx::pack_a(dout, b, h, i0, rows, dv_, kv_, da_);
      q_ = &q;
      dout_ = &dout;
      qb_ = b, qh_ = h, qi0_ = i0, qrows_ = rows;
      q_mul_ = q_mul;
      q_pairs_ = d_pairs_ = false;
    }
    void load_keys(const Tensor4<T>& k, const Tensor4<T>& v, int64_t b, int64_t h, int64_t j0, int64_t cols, bool) {
      mx::pack_bt(k, b, h, j0, cols, dqk_, kq_, kt_);
      mx::pack_bt(v, b, h, j0, cols, dv_, kv_, vt_);
      k_src_ = &k;
      kb_ = b, kh_ = h, kj0_ = j0, kcols_ = cols;
      k_pairs_ = false;
    }
    void scores(const ScoreRule& rule, const Mask& mask, bool full, int64_t i0, int64_t rows, int64_t j0,
                int64_t cols, float* s, float* t) const {
      k_->gemm(rows, cols, kq_, qa_, kq_, kt_, s, cols, q_mul_, false);
      score_epilogue(rule, mask, full, i0, rows, j0, cols, s, t);
    }
    void dp(int64_t rows, int64_t cols, float* ds) const {
      k_->gemm(rows, cols, kv_, da_, kv_, vt_, ds, cols, 1.0f, false);
    }
    template <typename Dst>
    void add_dv(Dst&& dv, int64_t rows, int64_t cols, float* p) {
      if (!d_pairs_) mx::pack_b(*dout_, qb_, qh_, qi0_, qrows_, dv_, dp_);
      d_pairs_ = true;
      mx::round_a_t(p, rows, cols, pt_);
      k_->gemm(cols, dv_, mx::round_up(rows, 32), pt_, mx::round_up(rows, 32), dp_, dv.data(), dv.outerStride(),
               1.0f, true);
    }
    template <typename Dst>
    void add_dk(Dst&& dk, int64_t rows, int64_t cols, float* ds) {
      if (!q_pairs_) mx::pack_b(*q_, qb_, qh_, qi0_, qrows_, dqk_, qp_);
      q_pairs_ = true;
      mx::round_a_t(ds, rows, cols, dst_);
      k_->gemm(cols, dqk_, mx::round_up(rows, 32), dst_, mx::round_up(rows, 32), qp_, dk.data(), dk.outerStride(),
               1.0f, true);
    }
    template <typename Dst>
    void add_dq(Dst&& dq, int64_t rows, int64_t cols, float* ds) {
      if (!k_pairs_) mx::pack_b(*k_src_, kb_, kh_, kj0_, kcols_, dqk_, kp_);
      k_pairs_ = true;
      mx::round_a(ds, rows, cols, dsa_);
      k_->gemm(rows, dqk_, mx::round_up(cols, 32), dsa_, mx::round_up(cols, 32), kp_, dq.data(), dq.outerStride(),
               1.0f, true);
    }

   private:
    const MxKernels* k_;
    int64_t dqk_, dv_, kq_, kv_;
    float q_mul_ = 1.0f;
    uint16_t *qa_, *qp_, *da_, *dp_, *kt_, *vt_, *kp_, *pt_, *dst_, *dsa_;
    // Where the current query block and key block came from, for the operands packed on first use.
    const Tensor4<T>* q_ = nullptr;
    const Tensor4<T>* dout_ = nullptr;
    const Tensor4<T>* k_src_ = nullptr;
    int64_t qb_ = 0, qh_ = 0, qi0_ = 0, qrows_ = 0, kb_ = 0, kh_ = 0, kj0_ = 0, kcols_ = 0;
    bool q_pairs_ = false, d_pairs_ = false, k_pairs_ = false;
  };
};

}  // namespace flashport::cpu

#endif
