// AMD RDNA3 tile MMA policy (interface: tile_mma.cuh): one v_wmma_f32_16x16x16_{f16,bf16} per tile operation on a
// 32-lane wavefront (gfx11xx).
//
// The instruction takes a whole 16-element row of its A operand and column of its B operand per lane (lanes l and
// l + 16 hold the same data) and leaves lane l holding D[2e + l / 16][l % 16], e = 0..7: down a column, every other
// row. As with MFMA the policy computes D^T = B^T A^T (B's fragment in the instruction's A slot), and it also feeds
// B's columns in the order pi(i) = 4 (i / 4) + 2 (i % 2) + (i % 4) / 2, which makes lane l hold
// D[l % 16][4 (e / 2) + 2 (l / 16) + e % 2]: pairs e, e + 1 are adjacent columns of one row, as the interface
// requires. Converting probabilities back to an A fragment (a full row per lane) takes one exchange with lane l ^ 16.
// Included by tile_mma_amd.cuh (after TileMmaMatrixCore, which holds the operand types and mma).
#ifndef FLASHPORT_CUDA_KERNELS_TILE_MMA_WMMA_CUH
#define FLASHPORT_CUDA_KERNELS_TILE_MMA_WMMA_CUH

namespace flashport::kernels {

template <class T> struct TileMmaWmma : TileMmaMatrixCore<TileMmaWmma<T>, T, 32, 16> {
  using Base = TileMmaMatrixCore<TileMmaWmma<T>, T, 32, 16>;
  using typename Base::AccVec;
  using typename Base::Acc;
  using typename Base::FragA;  // A[l % 16][0..15]
  using typename Base::FragB;  // B[0..15][pi(l % 16)]
  using typename Base::Operand;
  using Base::group;
  using Base::kAccElems;
  using Base::kK;

  FLASHPORT_DEVICE static int acc_col(int e) { return 4 * (e >> 1) + 2 * group() + (e & 1); }

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

  // Lane l holds columns 4q + 2h + s of its row (h = l / 16); lane l ^ 16 holds the other half.
  FLASHPORT_DEVICE static void acc_to_a(FragA& a, const Acc& acc) {
    const int h = group();
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

 public:
  // v_wmma_f32_16x16x16_{f16,bf16}, issued by TileMmaMatrixCore::mma with the operands swapped; a trap in device
  // passes without the instruction (the host never launches a kernel there).
  FLASHPORT_DEVICE static AccVec instr(Operand x, Operand y, AccVec c) {
    if constexpr (std::is_same<T, vendor::half_t>::value) {
#if defined(FLASHPORT_HAS_WMMA)
      return __builtin_amdgcn_wmma_f32_16x16x16_f16_w32(x, y, c);
#endif
    } else {
#if defined(FLASHPORT_HAS_WMMA)
      return __builtin_amdgcn_wmma_f32_16x16x16_bf16_w32(x, y, c);
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
