// NVIDIA tile MMA policy (interface: tile_mma.cuh): ldmatrix + mma.sync.m16n8k16 with fp32 accumulators, sm_80+.
//
// One 16x16 tile operation is two m16n8k16 instructions. Lane l (g = l / 4, c = l % 4) holds accumulator
// elements e = 0..7 of the 16x16 tile at row g + 8 * ((e >> 1) & 1), column 8 * (e >> 2) + 2 * c + (e & 1): the
// register layout of the m16n8 C fragment, twice. Rows are shared by the 4 lanes of a quad (xor 1, 2).
#ifndef FLASHPORT_CUDA_KERNELS_TILE_MMA_SM80_CUH
#define FLASHPORT_CUDA_KERNELS_TILE_MMA_SM80_CUH

#include <stdint.h>

#include "kernels/common.cuh"

// Device passes that can run this policy say so; kernels test FLASHPORT_HAS_TILE_MMA, never an architecture.
#if defined(FLASHPORT_HAS_MMA_SYNC)
#define FLASHPORT_HAS_TILE_MMA 1
#endif

namespace flashport::kernels {

template <class T> struct TileMmaSm80 {
  static constexpr int kWarpSize = 32;
  static constexpr int kM = 16, kN = 16, kK = 16;
  static constexpr int kAccElems = 8;
  static constexpr int kRowSlots = 2;
  // Forward hint (fwd.cuh): two 16-row m-tiles per warp share every K/V fragment read from shared memory.
  static constexpr int kFwdMTiles = 2;

  struct FragA { uint32_t r[4]; };
  struct FragB { uint32_t r[4]; };  // r[0..1]: columns 0-7, r[2..3]: columns 8-15
  struct Acc { float v[kAccElems]; };

  FLASHPORT_DEVICE static int acc_row(int e) { return (vendor::lane_id() >> 2) + 8 * ((e >> 1) & 1); }
  FLASHPORT_DEVICE static int acc_col(int e) { return 8 * (e >> 2) + 2 * (vendor::lane_id() & 3) + (e & 1); }
  FLASHPORT_DEVICE static constexpr int acc_slot(int e) { return (e >> 1) & 1; }
  FLASHPORT_DEVICE static int slot_row(int s) { return (vendor::lane_id() >> 2) + 8 * s; }

  FLASHPORT_DEVICE static float row_max(float x) {
    x = fmaxf(x, vendor::shfl_xor(x, 1));
    return fmaxf(x, vendor::shfl_xor(x, 2));
  }
  FLASHPORT_DEVICE static float row_sum(float x) {
    x += vendor::shfl_xor(x, 1);
    return x + vendor::shfl_xor(x, 2);
  }

  FLASHPORT_DEVICE static void zero(Acc& acc) {
#pragma unroll
    for (int e = 0; e < kAccElems; ++e) acc.v[e] = 0.f;
  }

  // ldmatrix.x4: lane l supplies the address of row (l % 8) of 8x8 matrix l / 8.
  template <class Tile> FLASHPORT_DEVICE static void load_a(FragA& a, const T* smem, int row, int col) {
    const int l = vendor::lane_id();
    // matrices: (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15) = a0..a3
    const T* p = smem + Tile::chunk_offset(row + (l & 15), (col >> 3) + (l >> 4));
    ldmatrix_x4(a.r, p);
  }
  template <class Tile> FLASHPORT_DEVICE static void load_b_nk(FragB& b, const T* smem, int n, int k) {
    const int l = vendor::lane_id();
    // matrices: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) = b0, b1 of both n8 halves
    const T* p = smem + Tile::chunk_offset(n + ((l >> 4) << 3) + (l & 7), (k >> 3) + ((l >> 3) & 1));
    ldmatrix_x4(b.r, p);
  }
  template <class Tile> FLASHPORT_DEVICE static void load_b_kn(FragB& b, const T* smem, int k, int n) {
    const int l = vendor::lane_id();
    // transposed: (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15)
    const T* p = smem + Tile::chunk_offset(k + (((l >> 3) & 1) << 3) + (l & 7), (n >> 3) + (l >> 4));
    ldmatrix_x4_trans(b.r, p);
  }

  FLASHPORT_DEVICE static void mma(Acc& acc, const FragA& a, const FragB& b) {
    mma_16816(&acc.v[0], a, b.r[0], b.r[1]);
    mma_16816(&acc.v[4], a, b.r[2], b.r[3]);
  }

  // The A fragment of m16n8k16 holds (row g, k 2c..2c+1), (g+8, 2c..), (g, 8+2c..), (g+8, 8+2c..): exactly the
  // accumulator elements (0,1), (2,3), (4,5), (6,7), so the conversion needs no data movement between lanes.
  FLASHPORT_DEVICE static void acc_to_a(FragA& a, const Acc& acc) {
#pragma unroll
    for (int i = 0; i < 4; ++i) a.r[i] = vendor::pack2<T>(acc.v[2 * i], acc.v[2 * i + 1]);
  }

 private:
  FLASHPORT_DEVICE static void ldmatrix_x4(uint32_t (&r)[4], const T* p) {
#if defined(FLASHPORT_HAS_MMA_SYNC)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(vendor::smem_addr(p)));
#else
    (void)r; (void)p; __trap();
#endif
  }
  FLASHPORT_DEVICE static void ldmatrix_x4_trans(uint32_t (&r)[4], const T* p) {
#if defined(FLASHPORT_HAS_MMA_SYNC)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(vendor::smem_addr(p)));
#else
    (void)r; (void)p; __trap();
#endif
  }
  FLASHPORT_DEVICE static void mma_16816(float* c, const FragA& a, uint32_t b0, uint32_t b1);
};

template <> FLASHPORT_DEVICE void TileMmaSm80<vendor::half_t>::mma_16816(float* c, const FragA& a, uint32_t b0,
                                                                         uint32_t b1) {
#if defined(FLASHPORT_HAS_MMA_SYNC)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b0), "r"(b1));
#else
  (void)c; (void)a; (void)b0; (void)b1; __trap();
#endif
}
template <> FLASHPORT_DEVICE void TileMmaSm80<vendor::bf16_t>::mma_16816(float* c, const FragA& a, uint32_t b0,
                                                                         uint32_t b1) {
#if defined(FLASHPORT_HAS_MMA_SYNC)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b0), "r"(b1));
#else
  (void)c; (void)a; (void)b0; (void)b1; __trap();
#endif
}

}  // namespace flashport::kernels

#endif
