// AMD RDNA3 tile MMA policy (interface: tile_mma.cuh): one v_wmma_f32_16x16x16_{f16,bf16} per tile operation on a
// 32-lane wavefront (gfx11xx).
//
// The instruction takes a whole 16-element row of its A operand and column of its B operand per lane (lanes l and
// l + 16 hold the same data) and leaves lane l holding D[2e + l / 16][l % 16], e = 0..7: down a column, every other
// row. As with MFMA the policy computes D^T = B^T A^T (B's fragment in the instruction's A slot), and it also feeds
// B's columns in the order pi(i) = 4 (i / 4) + 2 (i % 2) + (i % 4) / 2, which makes lane l hold
// D[l % 16][4 (e / 2) + 2 (l / 16) + e % 2]: pairs e, e + 1 are adjacent columns of one row, as the interface
// requires. Converting probabilities back to an A fragment (a full row per lane) takes one exchange with lane l ^ 16.
#ifndef FLASHPORT_CUDA_KERNELS_TILE_MMA_WMMA_CUH
#define FLASHPORT_CUDA_KERNELS_TILE_MMA_WMMA_CUH

#include <stdint.h>

#include <type_traits>

#include "kernels/common.cuh"

namespace flashport::kernels {

template <class T> struct TileMmaWmma {
  static constexpr int kWarpSize = 32;
  static constexpr int kM = 16, kN = 16, kK = 16;
  static constexpr int kAccElems = 8;
  static constexpr int kRowSlots = 1;

  using Operand = typename std::conditional<std::is_same<T, vendor::half_t>::value,
                                            _Float16 __attribute__((ext_vector_type(16))),
                                            short __attribute__((ext_vector_type(16)))>::type;
  using AccVec = float __attribute__((ext_vector_type(8)));

  struct FragA { Operand r; };  // A[l % 16][0..15]
  struct FragB { Operand r; };  // B[0..15][pi(l % 16)]
  struct Acc { float v[kAccElems]; };

  FLASHPORT_DEVICE static int half() { return vendor::lane_id() >> 4; }
  FLASHPORT_DEVICE static int acc_row(int) { return vendor::lane_id() & 15; }
  FLASHPORT_DEVICE static int acc_col(int e) { return 4 * (e >> 1) + 2 * half() + (e & 1); }
  FLASHPORT_DEVICE static constexpr int acc_slot(int) { return 0; }
  FLASHPORT_DEVICE static int slot_row(int) { return vendor::lane_id() & 15; }

  FLASHPORT_DEVICE static float row_max(float x) { return fmaxf(x, vendor::shfl_xor(x, 16)); }
  FLASHPORT_DEVICE static float row_sum(float x) { return x + vendor::shfl_xor(x, 16); }

  FLASHPORT_DEVICE static void zero(Acc& acc) {
#pragma unroll
    for (int e = 0; e < kAccElems; ++e) acc.v[e] = 0.f;
  }

  template <class Tile> FLASHPORT_DEVICE static void load_a(FragA& a, const T* smem, int row, int col) {
    a.r = load_row<Tile>(smem, row + (vendor::lane_id() & 15), col);
  }
  template <class Tile> FLASHPORT_DEVICE static void load_b_nk(FragB& b, const T* smem, int n, int k) {
    b.r = load_row<Tile>(smem, n + pi(vendor::lane_id() & 15), k);
  }
  template <class Tile> FLASHPORT_DEVICE static void load_b_kn(FragB& b, const T* smem, int k, int n) {
    const int col = n + pi(vendor::lane_id() & 15);
    T e[kK];
#pragma unroll
    for (int kk = 0; kk < kK; ++kk) e[kk] = smem[Tile::chunk_offset(k + kk, col >> 3) + (col & 7)];
    __builtin_memcpy(&b.r, e, sizeof e);
  }

  FLASHPORT_DEVICE static void mma(Acc& acc, const FragA& a, const FragB& b) {
    AccVec c;
    __builtin_memcpy(&c, acc.v, sizeof c);
    c = wmma(b.r, a.r, c);  // D^T = B^T A^T: see the header comment
    __builtin_memcpy(acc.v, &c, sizeof c);
  }

  // Lane l holds columns 4q + 2h + s of its row (h = l / 16); lane l ^ 16 holds the other half.
  FLASHPORT_DEVICE static void acc_to_a(FragA& a, const Acc& acc) {
    const int h = half();
    T e[kK];
#pragma unroll
    for (int i = 0; i < kAccElems; ++i) {
      const float other = vendor::shfl_xor(acc.v[i], 16);
      const int k = 4 * (i >> 1) + (i & 1);
      e[k + 2 * h] = vendor::from_float<T>(acc.v[i]);
      e[k + 2 * (1 - h)] = vendor::from_float<T>(other);
    }
    __builtin_memcpy(&a.r, e, sizeof e);
  }

 private:
  FLASHPORT_DEVICE static int pi(int i) { return 4 * (i >> 2) + 2 * (i & 1) + ((i >> 1) & 1); }
  // Sixteen contiguous elements of one row: two 16-byte chunks.
  template <class Tile> FLASHPORT_DEVICE static Operand load_row(const T* smem, int row, int col) {
    Operand r;
    __builtin_memcpy(&r, smem + Tile::chunk_offset(row, col >> 3), 16);
    __builtin_memcpy(reinterpret_cast<char*>(&r) + 16, smem + Tile::chunk_offset(row, (col >> 3) + 1), 16);
    return r;
  }
  FLASHPORT_DEVICE static AccVec wmma(Operand x, Operand y, AccVec c);
};

template <> FLASHPORT_DEVICE typename TileMmaWmma<vendor::half_t>::AccVec TileMmaWmma<vendor::half_t>::wmma(
    Operand x, Operand y, AccVec c) {
#if defined(FLASHPORT_HAS_WMMA)
  return __builtin_amdgcn_wmma_f32_16x16x16_f16_w32(x, y, c);
#else
  (void)x; (void)y; __builtin_trap(); return c;
#endif
}
template <> FLASHPORT_DEVICE typename TileMmaWmma<vendor::bf16_t>::AccVec TileMmaWmma<vendor::bf16_t>::wmma(
    Operand x, Operand y, AccVec c) {
#if defined(FLASHPORT_HAS_WMMA)
  return __builtin_amdgcn_wmma_f32_16x16x16_bf16_w32(x, y, c);
#else
  (void)x; (void)y; __builtin_trap(); return c;
#endif
}

}  // namespace flashport::kernels

#endif
