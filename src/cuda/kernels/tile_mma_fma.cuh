// Generic tile MMA policy (interface: tile_mma.cuh): plain fp32 FMAs, no matrix instructions. It is what AMD
// targets without matrix cores run (RDNA2 gfx1030, and any target this build has no MFMA/WMMA path for), and it
// compiles for NVIDIA as well, where the "cuda-fma" backend runs it so that the portable path is tested on the
// hardware we have.
//
// kLanes is the warp/wavefront width (32 on NVIDIA and RDNA, 64 on CDNA). The 16x16 accumulator is spread like the
// matrix-core policies: lane l holds row l % 16 and kAccElems = 256 / kLanes consecutive columns starting at
// (l / 16) * kAccElems, so the lanes sharing a row are l ^ 16 (and l ^ 32, l ^ 48 on 64 lanes). An A fragment is
// the lane's whole 16-element row; a B fragment the 16 x kAccElems block of B under the lane's columns.
#ifndef FLASHPORT_CUDA_KERNELS_TILE_MMA_FMA_CUH
#define FLASHPORT_CUDA_KERNELS_TILE_MMA_FMA_CUH

#include <stdint.h>

#include "kernels/common.cuh"

namespace flashport::kernels {

// The accumulator layout this policy shares with the AMD matrix-core policies (tile_mma_mfma.cuh,
// tile_mma_wmma.cuh): a 16x16 accumulator spread over kLanes lanes, lane l holding kAccElems elements of row l % 16,
// so the lanes that share a row are l ^ 16 (and l ^ 32, l ^ 48 on 64 lanes). The policies add their fragments,
// loads, mma and acc_to_a.
template <int kLanes> struct TileRowPerLane {
  static_assert(kLanes == 32 || kLanes == 64, "warps of 32 or 64 lanes");
  static constexpr int kWarpSize = kLanes;
  static constexpr int kM = 16, kN = 16, kK = 16;
  static constexpr int kGroups = kLanes / 16;       // lanes that share one accumulator row
  static constexpr int kAccElems = 16 / kGroups;    // columns per lane: 8 (32 lanes) or 4 (64 lanes)
  static constexpr int kRowSlots = 1;

  struct Acc { float v[kAccElems]; };

  FLASHPORT_DEVICE static int group() { return vendor::lane_id() >> 4; }
  FLASHPORT_DEVICE static int acc_row(int) { return vendor::lane_id() & 15; }
  // Consecutive columns, group g holding g * kAccElems.. (FMA, MFMA; WMMA interleaves and has its own acc_col).
  FLASHPORT_DEVICE static int acc_col(int e) { return group() * kAccElems + e; }
  FLASHPORT_DEVICE static constexpr int acc_slot(int) { return 0; }
  FLASHPORT_DEVICE static int slot_row(int) { return vendor::lane_id() & 15; }

  FLASHPORT_DEVICE static float row_max(float x) {
#pragma unroll
    for (int m = 16; m < kLanes; m <<= 1) x = fmaxf(x, vendor::shfl_xor(x, m));
    return x;
  }
  FLASHPORT_DEVICE static float row_sum(float x) {
#pragma unroll
    for (int m = 16; m < kLanes; m <<= 1) x += vendor::shfl_xor(x, m);
    return x;
  }

  FLASHPORT_DEVICE static void zero(Acc& acc) {
#pragma unroll
    for (int e = 0; e < kAccElems; ++e) acc.v[e] = 0.f;
  }
};

template <class T, int kLanes> struct TileMmaFma : TileRowPerLane<kLanes> {
  using Base = TileRowPerLane<kLanes>;
  using typename Base::Acc;
  using Base::acc_col;
  using Base::group;
  using Base::kAccElems;
  using Base::kGroups;
  using Base::kK;

  struct FragA { T a[kK]; };
  struct FragB { T b[kK][kAccElems]; };

  // Row tile_row + l % 16, columns col..col+15: two whole 16-byte chunks.
  template <class Tile> FLASHPORT_DEVICE static void load_a(FragA& a, const T* smem, int tile_row, int col) {
    const int row = tile_row + (vendor::lane_id() & 15);
#pragma unroll
    for (int c = 0; c < 2; ++c) copy8(&a.a[8 * c], smem + Tile::chunk_offset(row, (col >> 3) + c));
  }
  // B[k][n] = tile[n][k]: the lane's kAccElems rows n, 16 contiguous k each.
  template <class Tile> FLASHPORT_DEVICE static void load_b_nk(FragB& b, const T* smem, int n, int k) {
#pragma unroll
    for (int j = 0; j < kAccElems; ++j) {
      T row[kK];
#pragma unroll
      for (int c = 0; c < 2; ++c) copy8(&row[8 * c], smem + Tile::chunk_offset(n + acc_col(j), (k >> 3) + c));
#pragma unroll
      for (int kk = 0; kk < kK; ++kk) b.b[kk][j] = row[kk];
    }
  }
  // B[k][n] = tile[k][n]: 16 rows k, the lane's kAccElems contiguous columns in one chunk.
  template <class Tile> FLASHPORT_DEVICE static void load_b_kn(FragB& b, const T* smem, int k, int n) {
    const int col = n + acc_col(0);
#pragma unroll
    for (int kk = 0; kk < kK; ++kk) {
      const T* src = smem + Tile::chunk_offset(k + kk, col >> 3) + (col & 7);
#pragma unroll
      for (int j = 0; j < kAccElems; ++j) b.b[kk][j] = src[j];
    }
  }

  FLASHPORT_DEVICE static void mma(Acc& acc, const FragA& a, const FragB& b) {
#pragma unroll
    for (int kk = 0; kk < kK; ++kk) {
      const float x = vendor::to_float(a.a[kk]);
#pragma unroll
      for (int j = 0; j < kAccElems; ++j) acc.v[j] = fmaf(x, vendor::to_float(b.b[kk][j]), acc.v[j]);
    }
  }

  // The lane's row of probabilities, gathered from the kGroups lanes that share it, rounded to T.
  FLASHPORT_DEVICE static void acc_to_a(FragA& a, const Acc& acc) {
    const int g = group();
#pragma unroll
    for (int x = 0; x < kGroups; ++x)
#pragma unroll
      for (int e = 0; e < kAccElems; ++e) {
        const float v = x == 0 ? acc.v[e] : vendor::shfl_xor(acc.v[e], 16 * x);
        a.a[(g ^ x) * kAccElems + e] = vendor::from_float<T>(v);
      }
  }

 private:
  // Eight contiguous 16-bit elements (one swizzle chunk, 16-byte aligned) in one vector load.
  FLASHPORT_DEVICE static void copy8(T* dst, const T* src) {
    const uint4 v = *reinterpret_cast<const uint4*>(src);
    static_assert(sizeof(uint4) == 8 * sizeof(T), "16-bit elements");
    __builtin_memcpy(dst, &v, sizeof v);
  }
};

}  // namespace flashport::kernels

#endif
