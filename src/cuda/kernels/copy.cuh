// Global -> shared tile copies into the swizzled SmemTile layout (common.cuh), shared by every kernel.
#ifndef FLASHPORT_CUDA_KERNELS_COPY_CUH
#define FLASHPORT_CUDA_KERNELS_COPY_CUH

#include <stdint.h>

#include "kernels/common.cuh"

namespace flashport::kernels {

// Copy rows [0, Tile::kRows) of a tile whose row r starts at gmem + r * row_stride (elements contiguous) into
// smem. Rows >= rows_valid and columns >= cols_valid become zeros, so padded head dims and sequence tails
// contribute nothing to the products and can never inject NaN/Inf. `vec` (16-byte aligned rows, cols_valid a
// multiple of 8) takes whole 16-byte asynchronous copies; otherwise elements are gathered one by one and stored
// synchronously (ordered by the block barrier that precedes every use of a tile).
template <class Tile, int kThreads, class T>
FLASHPORT_DEVICE void load_tile(T* smem, const T* gmem, int64_t row_stride, int rows_valid, int cols_valid,
                                bool vec) {
  constexpr int kTotal = Tile::kRows * Tile::kChunks;
  constexpr int kIters = (kTotal + kThreads - 1) / kThreads;
  const int tid = vendor::thread_id();
#pragma unroll
  for (int it = 0; it < kIters; ++it) {
    const int idx = tid + it * kThreads;
    if (kTotal % kThreads != 0 && idx >= kTotal) break;
    const int row = idx / Tile::kChunks;
    const int chunk = idx % Tile::kChunks;
    const int col = chunk * 8;
    T* dst = smem + Tile::chunk_offset(row, chunk);
    const bool row_ok = row < rows_valid;
    const T* src = gmem + (row_ok ? row * row_stride : 0) + col;
    if (vec) {
      const bool ok = row_ok && col < cols_valid;
      vendor::copy16_async(dst, ok ? src : gmem, ok);
    } else {
      uint16_t e[8];
#pragma unroll
      for (int i = 0; i < 8; ++i)
        e[i] = (row_ok && col + i < cols_valid) ? reinterpret_cast<const uint16_t*>(src)[i] : uint16_t(0);
      uint4 packed;
      packed.x = e[0] | (uint32_t(e[1]) << 16);
      packed.y = e[2] | (uint32_t(e[3]) << 16);
      packed.z = e[4] | (uint32_t(e[5]) << 16);
      packed.w = e[6] | (uint32_t(e[7]) << 16);
      *reinterpret_cast<uint4*>(dst) = packed;
    }
  }
}

}  // namespace flashport::kernels

#endif
