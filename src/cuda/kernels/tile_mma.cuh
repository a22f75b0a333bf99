// The warp-level tile matrix-multiply interface. Everything above it (online softmax, masking, tiling, the copy
// pipeline in fwd.cuh and the backward kernels) is written against this interface and vendors/vendor.h only; one
// policy per hardware family implements it:
//   TileMmaSm80<T>   NVIDIA sm_80+: ldmatrix + mma.sync.m16n8k16, 32 lanes          (tile_mma_sm80.cuh)
//   AMD policies     MFMA (CDNA, 64 lanes), WMMA (RDNA3, 32 lanes), generic FMA       (the HIP module's headers)
//
// A policy P<T> (T = vendor::half_t or vendor::bf16_t) is a struct of static members:
//   kWarpSize                 lanes of the warp/wavefront that executes one tile operation
//   kM, kN, kK                one operation: acc[kM x kN] += A[kM x kK] * B[kK x kN]; all three are 16 here, so a
//                             16x16 P accumulator converts into exactly one A operand for P*V
//   FragA, FragB              opaque register fragments of A (kM x kK) and B (kK x kN)
//   Acc                       fp32 accumulator fragment of kM x kN; Acc::v[kAccElems] are this lane's elements
//   kAccElems                 accumulator elements per lane
//   kRowSlots                 distinct tile rows a lane's accumulator elements fall in
//   acc_row(e), acc_col(e)    (row, col) inside the kM x kN tile of this lane's element e
//   acc_slot(e)               which of the lane's kRowSlots rows element e belongs to; slot_row(s) is that row
//   row_max(x), row_sum(x)    reduce x over the lanes that hold elements of the same row (result in all of them)
//   zero(acc)                 clear an accumulator
//   load_a(a, smem, tile_row, col)    A from a row-major SmemTile (rows = M, contiguous = K): rows tile_row..+kM,
//                                     columns col..+kK (Q tiles; dO tiles in backward)
//   load_b_nk(b, smem, n, k)  B where the tile stores rows = N, contiguous = K (K for S = Q*K^T)
//   load_b_kn(b, smem, k, n)  B where the tile stores rows = K, contiguous = N (V for O = P*V)
//   mma(acc, a, b)            acc += a * b
//   acc_to_a(a, acc)          the kM x kN accumulator (probabilities) rounded to T as an A operand
//   kFwdMTiles (optional)     m-tiles per warp the forward may use (default 1; sm80 sets 2: fragment reuse)
// A policy header defines FLASHPORT_HAS_TILE_MMA in the device passes where it can run; kernels built for other
// targets compile to a trap stub.
// The smem argument of the loads is `const T*` to the start of a SmemTile<rows, cols>; the policy template takes
// the tile type so that it computes swizzled addresses with SmemTile::chunk_offset.
// Changes to this interface are additive only (announced in commit messages): the backward and HIP work build on it.
#ifndef FLASHPORT_CUDA_KERNELS_TILE_MMA_CUH
#define FLASHPORT_CUDA_KERNELS_TILE_MMA_CUH

#include "kernels/common.cuh"

#if defined(__HIP__)
// The HIP module provides its policies and `template <class T> using TileMmaDefault = ...;` here.
#include "kernels/tile_mma_amd.cuh"
#else
#include "kernels/tile_mma_sm80.cuh"
namespace flashport::kernels {
template <class T> using TileMmaDefault = TileMmaSm80<T>;
}
#endif

#endif
