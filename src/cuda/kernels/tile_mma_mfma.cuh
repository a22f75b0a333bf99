// AMD CDNA tile MMA policy (interface: tile_mma.cuh): one v_mfma_f32_16x16x16{f16,bf16_1k} per tile operation on a
// 64-lane wavefront (gfx90a, gfx94x; f16 also gfx908).
//
// The instruction leaves lane l holding D[4 * (l / 16) + e][l % 16], e = 0..3: a lane's elements run down a
// column. The interface wants them along a row (pairs e, e + 1 are adjacent columns), so the policy computes
// D^T = B^T A^T instead: B's fragment goes in the instruction's A slot and A's in its B slot. Then lane l holds
// D[l % 16][4 * (l / 16) + e], its A fragment is A[l % 16][4 * (l / 16) + j] (one 8-byte LDS read) and the
// accumulator of probabilities already is an A fragment: acc_to_a moves no data between lanes.
// Included by tile_mma_amd.cuh (after TileMmaMatrixCore, which holds the operand types and mma).
#ifndef FLASHPORT_CUDA_KERNELS_TILE_MMA_MFMA_CUH
#define FLASHPORT_CUDA_KERNELS_TILE_MMA_MFMA_CUH

namespace flashport::kernels {

template <class T> struct TileMmaMfma : TileMmaMatrixCore<TileMmaMfma<T>, T, 64, 4> {
  using Base = TileMmaMatrixCore<TileMmaMfma<T>, T, 64, 4>;
  using typename Base::AccVec;
  using typename Base::Acc;
  using typename Base::FragA;  // A[l % 16][4 * (l / 16) + j]
  using typename Base::FragB;  // B[4 * (l / 16) + j][l % 16]
  using typename Base::Operand;

  template <class Tile> FLASHPORT_DEVICE static void load_a(FragA& a, const T* smem, int row, int col) {
    const int l = vendor::lane_id();
    a.r = load4<Tile>(smem, row + (l & 15), col + 4 * (l >> 4));
  }
  template <class Tile> FLASHPORT_DEVICE static void load_b_nk(FragB& b, const T* smem, int n, int k) {
    const int l = vendor::lane_id();
    b.r = load4<Tile>(smem, n + (l & 15), k + 4 * (l >> 4));
  }
  template <class Tile> FLASHPORT_DEVICE static void load_b_kn(FragB& b, const T* smem, int k, int n) {
    const int l = vendor::lane_id();
    const int col = n + (l & 15);
    const int k0 = k + 4 * (l >> 4);
    T e[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) e[j] = smem[Tile::chunk_offset(k0 + j, col >> 3) + (col & 7)];
    __builtin_memcpy(&b.r, e, sizeof e);
  }

  FLASHPORT_DEVICE static void acc_to_a(FragA& a, const Acc& acc) {
    T e[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) e[j] = vendor::from_float<T>(acc.v[j]);
    __builtin_memcpy(&a.r, e, sizeof e);
  }

 private:
  // Four contiguous elements of one row (8-byte aligned: col is a multiple of 4 inside a 16-byte chunk).
  template <class Tile> FLASHPORT_DEVICE static Operand load4(const T* smem, int row, int col) {
    Operand r;
    __builtin_memcpy(&r, smem + Tile::chunk_offset(row, col >> 3) + (col & 7), sizeof r);
    return r;
  }

 public:
  // v_mfma_f32_16x16x16{f16,bf16_1k}, issued by TileMmaMatrixCore::mma with the operands swapped; a trap in device
  // passes without the instruction (the host never launches a kernel there).
  FLASHPORT_DEVICE static AccVec instr(Operand x, Operand y, AccVec c) {
    if constexpr (std::is_same<T, vendor::half_t>::value) {
#if defined(FLASHPORT_HAS_MFMA_F16)
      return __builtin_amdgcn_mfma_f32_16x16x16f16(x, y, c, 0, 0, 0);
#endif
    } else {
#if defined(FLASHPORT_HAS_MFMA_BF16)
      return __builtin_amdgcn_mfma_f32_16x16x16bf16_1k(x, y, c, 0, 0, 0);
#endif
    }
    (void)x;
    (void)y;
    __builtin_trap();
    return c;
  }
};

}  // namespace flashport::kernels

#endif
