// Shared definitions of the flashport GPU kernels: the parameter block a launch receives and the swizzled
// shared-memory tile layout every tile MMA policy loads from. Vendor-neutral: includes only vendors/vendor.h and
// block_order.cuh.
#ifndef FLASHPORT_CUDA_KERNELS_COMMON_CUH
#define FLASHPORT_CUDA_KERNELS_COMMON_CUH

#include <stdint.h>

#include "kernels/block_order.cuh"
#include "vendors/vendor.h"

namespace flashport::kernels {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

template <class T> __host__ __device__ constexpr T ceil_div(T a, T b) { return (a + b - 1) / b; }

// Everything a forward launch needs, filled once on the host from the validated flashport_problem. Element strides
// are int64 (any layout); the head_dim stride is 1 (the module refuses other problems before launching).
struct FwdParams {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  float* lse;  // nullptr when not requested
  int64_t q_stride[3], k_stride[3], v_stride[3], out_stride[3];  // batch, seq, head
  int64_t lse_stride[3];                                         // batch, head, seq
  int batch, seqlen_q, seqlen_kv, heads_q, heads_kv;
  int head_dim_qk, head_dim_v;  // actual sizes; kernels may be instantiated for a larger padded size
  int heads_ratio;              // heads_q / heads_kv (GQA group size)
  float scale_log2;             // scale * log2(e): scores go straight into exp2 (no softcap)
  float scale;                  // plain scale (softcap path applies tanh before the log2(e) factor)
  float softcap;                // 0 = off
  int64_t mask_offset;          // key j visible from row i when window rules hold around i + mask_offset
  int64_t window_left, window_right;  // < 0 = unlimited
  // True when every q/k/v row start is 16-byte aligned and head dims are multiples of 8: then whole 16-byte chunks
  // are copied asynchronously; otherwise the element-wise path (any stride, any head dim) is taken.
  bool vec_loads;
  bool vec_stores;  // out rows 4-byte aligned: two elements per store
  BlockOrder order;  // set by fwd_grid_order (fwd_common.cuh)
};

// A [kRows x kCols] tile of 16-bit elements in shared memory, stored as 16-byte chunks whose index within a row is
// XORed with a function of the row. ldmatrix-style reads (8 rows, same logical chunk) and row-wise 16-byte writes
// then hit 8 distinct 16-byte bank groups: conflict-free on 32 banks of 4 bytes.
//   chunks per row a multiple of 8 (head dims 64, 128, 192, 256): chunk ^ (row % 8)
//   a multiple of 4 only (32, 96): two rows share a 128-byte line, so XOR with (row / 2) % 4 inside groups of 4.
template <int kRows_, int kCols> struct SmemTile {
  static_assert(kCols % 32 == 0, "tile width must be a multiple of 32 elements");
  static constexpr int kRows = kRows_;
  static constexpr int kChunks = kCols / 8;
  static constexpr int kElems = kRows_ * kCols;
  static constexpr int kBytes = kElems * 2;
  // Element offset of the chunk holding logical (row, chunk).
  FLASHPORT_DEVICE static int chunk_offset(int row, int chunk) {
    const int swz = (kChunks % 8 == 0) ? (row & 7) : ((row >> 1) & 3);
    return row * kCols + ((chunk ^ swz) << 3);
  }
};

// Launch a kernel that takes one parameter block and more than 48 KB of dynamic shared memory (which a kernel must
// opt in to; cheap, and per-device state, so it is set on every launch). Returns the launch's error.
// Host code, written with the CUDA runtime's names (vendors/hip.h maps them for the HIP passes).
template <class Params>
cudaError_t launch_with_smem(void (*kernel)(Params), dim3 grid, int threads, int smem_bytes, cudaStream_t stream,
                             const Params& p) {
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes);
  if (err != cudaSuccess) return err;
  kernel<<<grid, threads, smem_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace flashport::kernels

#endif
