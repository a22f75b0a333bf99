// The AMD tile MMA policies and the default one per target (included by tile_mma.cuh in HIP passes).
//
// Which policy a device pass uses is decided by the capability macros of vendors/hip.h, per element type:
//   MFMA (CDNA, 64 lanes) where FLASHPORT_HAS_MFMA_F16 / _BF16, WMMA (RDNA3, 32 lanes) where FLASHPORT_HAS_WMMA,
//   and the generic FMA tiles at the target's wavefront width everywhere else (RDNA2, bf16 on gfx908, new targets).
// The host pass has no target: the HIP module's host code names policies explicitly (src/hip/kernel_table.hip) and
// finds out which one a code object holds by looking the kernel up in it.
#ifndef FLASHPORT_CUDA_KERNELS_TILE_MMA_AMD_CUH
#define FLASHPORT_CUDA_KERNELS_TILE_MMA_AMD_CUH

#include <type_traits>

#include "kernels/common.cuh"
#include "kernels/tile_mma_fma.cuh"

namespace flashport::kernels {

// What the two matrix-core policies (MFMA, WMMA) share on top of the accumulator layout of TileRowPerLane
// (tile_mma_fma.cuh): operands are vectors of kOperandElems 16-bit elements as the builtins take them (f16 as
// _Float16, bf16 as its bit patterns in shorts), the accumulator is one float vector, and a tile operation is one
// instruction, Derived::instr(x, y, c), issued as D^T = B^T A^T (B's fragment in the instruction's A slot), which
// puts a lane's accumulator elements along a row (see each policy's header).
template <class Derived, class T, int kLanes, int kOperandElems> struct TileMmaMatrixCore : TileRowPerLane<kLanes> {
  using typename TileRowPerLane<kLanes>::Acc;
  using TileRowPerLane<kLanes>::kAccElems;
  using Operand = typename std::conditional<std::is_same<T, vendor::half_t>::value,
                                            _Float16 __attribute__((ext_vector_type(kOperandElems))),
                                            short __attribute__((ext_vector_type(kOperandElems)))>::type;
  using AccVec = float __attribute__((ext_vector_type(kAccElems)));

  struct FragA { Operand r; };
  struct FragB { Operand r; };

  FLASHPORT_DEVICE static void mma(Acc& acc, const FragA& a, const FragB& b) {
    AccVec c;
    __builtin_memcpy(&c, acc.v, sizeof c);
    c = Derived::instr(b.r, a.r, c);  // D^T = B^T A^T
    __builtin_memcpy(acc.v, &c, sizeof c);
  }
};

}  // namespace flashport::kernels

// The matrix-core policies build on TileMmaMatrixCore (included here only).
#include "kernels/tile_mma_mfma.cuh"
#include "kernels/tile_mma_wmma.cuh"

// Every AMD device pass can run some policy (FMA at worst).
#if defined(__HIP_DEVICE_COMPILE__)
#define FLASHPORT_HAS_TILE_MMA 1
#endif

namespace flashport::kernels {

template <class T> struct AmdTileMma { using type = TileMmaFma<T, vendor::kWaveSize>; };
#if defined(FLASHPORT_HAS_MFMA_F16)
template <> struct AmdTileMma<vendor::half_t> { using type = TileMmaMfma<vendor::half_t>; };
#endif
#if defined(FLASHPORT_HAS_MFMA_BF16)
template <> struct AmdTileMma<vendor::bf16_t> { using type = TileMmaMfma<vendor::bf16_t>; };
#endif
#if defined(FLASHPORT_HAS_WMMA)
template <> struct AmdTileMma<vendor::half_t> { using type = TileMmaWmma<vendor::half_t>; };
template <> struct AmdTileMma<vendor::bf16_t> { using type = TileMmaWmma<vendor::bf16_t>; };
#endif

template <class T> using TileMmaDefault = typename AmdTileMma<T>::type;

// Forward block shapes for AMD. An AMD workgroup has at most 64 KB of LDS (gfx9 and gfx11 alike), while fwd.cuh's
// FwdConfig is sized for NVIDIA's 163-227 KB (80 KB and more at D = 128). These specialisations of fwd.cuh's
// FwdConfig keep its member set (kept in step with it by hand: a member missing here is a compile error in every HIP
// build) with 4 wavefronts of one m-tile each (64 query rows), and key tiles narrowed so that Q + 2 x (K + V) fits:
// D <= 64 -> 64 keys (40 KB at D = 64), D <= 128 -> 32 keys (48 KB), larger -> 16 keys (64 KB at D = 256). Copies
// are synchronous here, so a third stage would buy nothing. Q stays in registers when its fragments take at most
// 32 registers per lane (always with MFMA's 4-element fragments; D <= 64 with WMMA's and FMA's 16-element ones).
template <class P, int kDqk, int kDv> struct FwdConfig;
template <class P, int kDqk, int kDv> struct AmdFwdConfig {
  static constexpr int kDmax = kDqk > kDv ? kDqk : kDv;
  static constexpr int kMT = 1;
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * P::kWarpSize;
  static constexpr int kBlockM = kWarps * kMT * P::kM;
  static constexpr int kBlockN = kDmax <= 64 ? 64 : (kDmax <= 128 ? 32 : 16);
  static constexpr int kStages = 2;
  static constexpr bool kQInRegs = sizeof(typename P::FragA) / 4 * (kDqk / P::kK) <= 32;
  static constexpr int kMinBlocks = 1;
  using QTile = SmemTile<kBlockM, kDqk>;
  using KTile = SmemTile<kBlockN, kDqk>;
  using VTile = SmemTile<kBlockN, kDv>;
  static constexpr int kSmemBytes = QTile::kBytes + kStages * (KTile::kBytes + VTile::kBytes);
  static_assert(kSmemBytes <= 64 * 1024, "AMD workgroups have 64 KB of LDS");
};
template <class T, int kDqk, int kDv>
struct FwdConfig<TileMmaMfma<T>, kDqk, kDv> : AmdFwdConfig<TileMmaMfma<T>, kDqk, kDv> {};
template <class T, int kDqk, int kDv>
struct FwdConfig<TileMmaWmma<T>, kDqk, kDv> : AmdFwdConfig<TileMmaWmma<T>, kDqk, kDv> {};
template <class T, int kLanes, int kDqk, int kDv>
struct FwdConfig<TileMmaFma<T, kLanes>, kDqk, kDv> : AmdFwdConfig<TileMmaFma<T, kLanes>, kDqk, kDv> {};

}  // namespace flashport::kernels

#endif
