// fp32 forward: the slower path that keeps fp32 inputs fp32-accurate (the tensor-core path rounds operands to 16
// bits). One warp per query row: lane l holds q and o elements l, l + 32, ... (head dims up to 256), each key's dot
// product is a warp reduction, and the online softmax runs on scalars. Plain FMAs and the vendor header only, so
// it builds for every target the HIP module has too.
#ifndef FLASHPORT_CUDA_KERNELS_FWD_F32_CUH
#define FLASHPORT_CUDA_KERNELS_FWD_F32_CUH

#include "kernels/common.cuh"
#include "kernels/fwd_launch.cuh"
#include "kernels/mask.cuh"

namespace flashport::kernels {

constexpr int kF32MaxDim = 256;
constexpr int kF32Warps = 4;  // rows per block

template <int kWarp> __global__ void __launch_bounds__(kF32Warps * kWarp) fwd_f32_kernel(const FwdParams p) {
  constexpr int kPer = kF32MaxDim / kWarp;  // elements per lane
  const int lane = vendor::lane_id();
  const int row = vendor::block_id_x() * kF32Warps + vendor::warp_id();
  const int h = vendor::block_id_y();
  const int b = vendor::block_id_z();
  if (row >= p.seqlen_q) return;
  const int hk = h / p.heads_ratio;
  const float* q = static_cast<const float*>(p.q) + b * p.q_stride[0] + int64_t(row) * p.q_stride[1] +
                   h * p.q_stride[2];
  const float* k = static_cast<const float*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[2];
  const float* v = static_cast<const float*>(p.v) + b * p.v_stride[0] + hk * p.v_stride[2];

  float qr[kPer], acc[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int d = lane + i * kWarp;
    qr[i] = d < p.head_dim_qk ? q[d] : 0.f;
    acc[i] = 0.f;
  }
  const MaskRule mask{p.seqlen_kv, p.mask_offset, p.window_left, p.window_right};
  int64_t lo, hi;
  mask.key_range(row, row, &lo, &hi);  // for one row this is exactly its visible keys
  const bool softcap = p.softcap > 0.f;
  float m = -INFINITY, l = 0.f;
  for (int64_t j = lo; j < hi; ++j) {
    const float* kj = k + j * p.k_stride[1];
    float dot = 0.f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int d = lane + i * kWarp;
      if (d < p.head_dim_qk) dot = fmaf(qr[i], kj[d], dot);
    }
#pragma unroll
    for (int off = kWarp / 2; off > 0; off >>= 1) dot += vendor::shfl_xor(dot, off);
    const float s = softcap ? p.softcap * kLog2e * vendor::tanhf_(dot * p.scale / p.softcap) : dot * p.scale_log2;
    const float m_new = fmaxf(m, s);
    // While every score so far is -inf, m stays -inf: shifting by 0 instead keeps exp2 at 0 rather than NaN
    // (-inf - -inf), so a -inf score weighs 0 as in softmax.cuh. (m = -inf: alpha = 0, nothing to rescale.)
    const float base = m_new == -INFINITY ? 0.f : m_new;
    const float alpha = vendor::exp2f_fast(m - base);
    const float pj = vendor::exp2f_fast(s - base);
    l = l * alpha + pj;
    m = m_new;
    const float* vj = v + j * p.v_stride[1];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int d = lane + i * kWarp;
      acc[i] = d < p.head_dim_v ? fmaf(pj, vj[d], acc[i] * alpha) : 0.f;
    }
  }
  // Settled by the mask, not by l (softmax.cuh's finish): a row without keys gives 0 (acc never moved) and -inf;
  // any other row acc / l and m + log l, NaN included.
  const bool sees = hi > lo;
  const float inv = sees ? 1.f / l : 0.f;
  float* out = static_cast<float*>(p.out) + b * p.out_stride[0] + int64_t(row) * p.out_stride[1] +
               h * p.out_stride[2];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int d = lane + i * kWarp;
    if (d < p.head_dim_v) out[d] = acc[i] * inv;
  }
  if (p.lse != nullptr && lane == 0)
    p.lse[b * p.lse_stride[0] + h * p.lse_stride[1] + int64_t(row) * p.lse_stride[2]] =
        sees ? (m + vendor::log2f_fast(l)) * kLn2 : -INFINITY;
}

// Not compiled where launches go through another API: the HIP module's host pass (src/hip/kernel_table.hip) reads
// the kernel's declaration and constants only, and a <<<>>> launch there would pull in HIP runtime registration.
#if !defined(FLASHPORT_NO_HOST_LAUNCHERS)
cudaError_t launch_fwd_f32(const FwdParams& p, cudaStream_t stream) {
  constexpr int kWarp = 32;
  const dim3 grid(ceil_div(p.seqlen_q, kF32Warps), p.heads_q, p.batch);
  fwd_f32_kernel<kWarp><<<grid, kF32Warps * kWarp, 0, stream>>>(p);
  return cudaGetLastError();
}
#endif

}  // namespace flashport::kernels

#endif
