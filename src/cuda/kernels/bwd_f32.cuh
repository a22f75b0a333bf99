// fp32 backward: the slower path that keeps fp32 inputs fp32-accurate (the tensor-core path rounds operands to 16
// bits), in the style of the fp32 forward (fwd_f32.cuh): one warp per row, lane l holds elements l, l + 32, ...
// (head dims up to 256), dot products are warp reductions, plain FMAs and the vendor header only.
//   bwd_f32_dkdv_kernel: one warp per key j; loops over the query rows (of every query head of the GQA group) that
//                        see j and accumulates dK_j, dV_j in registers.
//   bwd_f32_dq_kernel:   one warp per query row i; loops over the keys i sees and accumulates dQ_i in registers.
// Each gradient row is owned by one warp and summed in a fixed order, so the path is deterministic without atomics
// (at the price of computing S and dP twice). Both read D and lse * log2 e from bwd_preprocess's workspace rows.
#ifndef FLASHPORT_CUDA_KERNELS_BWD_F32_CUH
#define FLASHPORT_CUDA_KERNELS_BWD_F32_CUH

#include "kernels/bwd_params.cuh"
#include "kernels/common.cuh"
#include "kernels/mask.cuh"

namespace flashport::kernels {

constexpr int kBwdF32MaxDim = 256;
constexpr int kBwdF32Warps = 4;  // rows per block

// The probability and score gradient of one (query row, key) pair from its two dot products (see bwd_main.cuh).
FLASHPORT_DEVICE void bwd_f32_pair(const BwdParams& p, float qk, float dov, float lse_log2, float dsum, float* prob,
                                   float* ds) {
  float s2, dsc = 1.f;
  if (p.softcap > 0.f) {
    const float t = vendor::tanhf_(qk * p.scale * p.softcap_inv);
    s2 = p.softcap * kLog2e * t;
    dsc = 1.f - t * t;
  } else {
    s2 = qk * p.scale_log2;
  }
  // exp2f (not the approximate ex2) so that P carries fp32 accuracy.
  *prob = exp2f(s2 - lse_log2);
  *ds = *prob * (dov - dsum) * dsc;
}

template <int kWarp> FLASHPORT_DEVICE float bwd_f32_warp_sum(float x) {
#pragma unroll
  for (int off = kWarp / 2; off > 0; off >>= 1) x += vendor::shfl_xor(x, off);
  return x;
}

template <int kWarp> __global__ void __launch_bounds__(kBwdF32Warps * kWarp) bwd_f32_dkdv_kernel(const BwdParams p) {
  constexpr int kPer = kBwdF32MaxDim / kWarp;
  const int lane = vendor::lane_id();
  const int j = vendor::block_id_x() * kBwdF32Warps + vendor::warp_id();
  const int hk = vendor::block_id_y();
  const int b = vendor::block_id_z();
  if (j >= p.seqlen_kv) return;
  const float* kj =
      static_cast<const float*>(p.k) + b * p.k_stride[0] + int64_t(j) * p.k_stride[1] + hk * p.k_stride[2];
  const float* vj =
      static_cast<const float*>(p.v) + b * p.v_stride[0] + int64_t(j) * p.v_stride[1] + hk * p.v_stride[2];
  float kr[kPer], vr[kPer], dk[kPer], dv[kPer];
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    const int d = lane + e * kWarp;
    kr[e] = d < p.head_dim_qk ? kj[d] : 0.f;
    vr[e] = d < p.head_dim_v ? vj[d] : 0.f;
    dk[e] = dv[e] = 0.f;
  }
  // Rows i that see key j: j - off - right <= i <= j - off + left.
  int64_t lo = p.window_right < 0 ? 0 : j - p.mask_offset - p.window_right;
  int64_t hi = p.window_left < 0 ? p.seqlen_q : j - p.mask_offset + p.window_left + 1;
  lo = lo < 0 ? 0 : lo;
  hi = hi > p.seqlen_q ? p.seqlen_q : hi;
  for (int h = hk * p.group; h < (hk + 1) * p.group; ++h) {
    const int64_t row_base = (int64_t(b) * p.heads_q + h) * p.seqlen_q_pad;
    for (int64_t i = lo; i < hi; ++i) {
      const float* qi = static_cast<const float*>(p.q) + b * p.q_stride[0] + i * p.q_stride[1] + h * p.q_stride[2];
      const float* oi =
          static_cast<const float*>(p.dout) + b * p.dout_stride[0] + i * p.dout_stride[1] + h * p.dout_stride[2];
      float qv[kPer], ov[kPer], qk = 0.f, dov = 0.f;
#pragma unroll
      for (int e = 0; e < kPer; ++e) {
        const int d = lane + e * kWarp;
        qv[e] = d < p.head_dim_qk ? qi[d] : 0.f;
        ov[e] = d < p.head_dim_v ? oi[d] : 0.f;
        qk = fmaf(qv[e], kr[e], qk);
        dov = fmaf(ov[e], vr[e], dov);
      }
      qk = bwd_f32_warp_sum<kWarp>(qk);
      dov = bwd_f32_warp_sum<kWarp>(dov);
      float prob, ds;
      bwd_f32_pair(p, qk, dov, p.lse_log2[row_base + i], p.dsum[row_base + i], &prob, &ds);
#pragma unroll
      for (int e = 0; e < kPer; ++e) {
        dv[e] = fmaf(prob, ov[e], dv[e]);
        dk[e] = fmaf(ds, qv[e], dk[e]);
      }
    }
  }
  float* dkj = static_cast<float*>(p.dk) + b * p.dk_stride[0] + int64_t(j) * p.dk_stride[1] + hk * p.dk_stride[2];
  float* dvj = static_cast<float*>(p.dv) + b * p.dv_stride[0] + int64_t(j) * p.dv_stride[1] + hk * p.dv_stride[2];
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    const int d = lane + e * kWarp;
    if (d < p.head_dim_qk) dkj[d] = dk[e] * p.scale;
    if (d < p.head_dim_v) dvj[d] = dv[e];
  }
}

template <int kWarp> __global__ void __launch_bounds__(kBwdF32Warps * kWarp) bwd_f32_dq_kernel(const BwdParams p) {
  constexpr int kPer = kBwdF32MaxDim / kWarp;
  const int lane = vendor::lane_id();
  const int i = vendor::block_id_x() * kBwdF32Warps + vendor::warp_id();
  const int h = vendor::block_id_y();
  const int b = vendor::block_id_z();
  if (i >= p.seqlen_q) return;
  const int hk = h / p.group;
  const float* qi = static_cast<const float*>(p.q) + b * p.q_stride[0] + int64_t(i) * p.q_stride[1] + h * p.q_stride[2];
  const float* oi =
      static_cast<const float*>(p.dout) + b * p.dout_stride[0] + int64_t(i) * p.dout_stride[1] + h * p.dout_stride[2];
  float qv[kPer], ov[kPer], dq[kPer];
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    const int d = lane + e * kWarp;
    qv[e] = d < p.head_dim_qk ? qi[d] : 0.f;
    ov[e] = d < p.head_dim_v ? oi[d] : 0.f;
    dq[e] = 0.f;
  }
  const int64_t r = (int64_t(b) * p.heads_q + h) * p.seqlen_q_pad + i;
  const float lse_log2 = p.lse_log2[r], dsum = p.dsum[r];
  const MaskRule mask{p.seqlen_kv, p.mask_offset, p.window_left, p.window_right};
  int64_t lo, hi;
  mask.key_range(i, i, &lo, &hi);  // for one row: exactly its visible keys
  const float* k = static_cast<const float*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[2];
  const float* v = static_cast<const float*>(p.v) + b * p.v_stride[0] + hk * p.v_stride[2];
  for (int64_t j = lo; j < hi; ++j) {
    const float* kj = k + j * p.k_stride[1];
    const float* vj = v + j * p.v_stride[1];
    float kr[kPer], qk = 0.f, dov = 0.f;
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int d = lane + e * kWarp;
      kr[e] = d < p.head_dim_qk ? kj[d] : 0.f;
      qk = fmaf(qv[e], kr[e], qk);
      if (d < p.head_dim_v) dov = fmaf(ov[e], vj[d], dov);
    }
    qk = bwd_f32_warp_sum<kWarp>(qk);
    dov = bwd_f32_warp_sum<kWarp>(dov);
    float prob, ds;
    bwd_f32_pair(p, qk, dov, lse_log2, dsum, &prob, &ds);
#pragma unroll
    for (int e = 0; e < kPer; ++e) dq[e] = fmaf(ds, kr[e], dq[e]);
  }
  float* dqi = static_cast<float*>(p.dq) + b * p.dq_stride[0] + int64_t(i) * p.dq_stride[1] + h * p.dq_stride[2];
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    const int d = lane + e * kWarp;
    if (d < p.head_dim_qk) dqi[d] = dq[e] * p.scale;
  }
}

// Grids of the two fp32 kernels, blocks of kBwdF32Warps warps: one warp per key (dK, dV), one per query row (dQ).
FLASHPORT_HD void bwd_f32_grids(const BwdParams& p, unsigned dkdv[3], unsigned dq[3]) {
  dkdv[0] = unsigned((p.seqlen_kv + kBwdF32Warps - 1) / kBwdF32Warps);
  dkdv[1] = unsigned(p.heads_kv);
  dkdv[2] = unsigned(p.batch);
  dq[0] = unsigned((p.seqlen_q + kBwdF32Warps - 1) / kBwdF32Warps);
  dq[1] = unsigned(p.heads_q);
  dq[2] = unsigned(p.batch);
}

// Not compiled where launches go through another API (the HIP module's host pass, see fwd_f32.cuh).
#if !defined(FLASHPORT_NO_HOST_LAUNCHERS)
// Both fp32 kernels; the preprocessing kernel must have run on the same stream.
inline cudaError_t launch_bwd_f32(const BwdParams& p, cudaStream_t stream) {
  constexpr int kWarp = 32;
  unsigned kv[3], q[3];
  bwd_f32_grids(p, kv, q);
  bwd_f32_dkdv_kernel<kWarp><<<dim3(kv[0], kv[1], kv[2]), kBwdF32Warps * kWarp, 0, stream>>>(p);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  bwd_f32_dq_kernel<kWarp><<<dim3(q[0], q[1], q[2]), kBwdF32Warps * kWarp, 0, stream>>>(p);
  return cudaGetLastError();
}
#endif

}  // namespace flashport::kernels

#endif
