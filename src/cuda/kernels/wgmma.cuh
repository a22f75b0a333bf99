// Hopper warpgroup matrix multiply (wgmma, sm_90a) and the shared-memory layout it reads: NVIDIA-only building blocks
// of kernels/fwd_sm90.cuh. Device passes for sm_90a define FLASHPORT_HAS_WGMMA (vendors/cuda.h); elsewhere the
// primitives trap and the module never selects a kernel that uses them.
//
// Shared-memory operands use the 128-byte swizzle: a tile of [rows x cols] 16-bit elements is stored as cols / 64
// column blocks, each [rows x 64] with 128-byte rows, and the 16-byte chunk c of row r sits at chunk c ^ (r % 8).
// Eight rows make one 1024-byte swizzle atom (atoms must be 1024-byte aligned). A wgmma descriptor names the
// start address of one k16 slice and the strides between atoms:
//   K-major operand (Q for S = Q K^T, K as its B): the slice is 32 bytes inside each 128-byte row, so the k-th
//     slice of column block kb starts at kb * (rows * 128) + (k % 4) * 32; 8-row groups are 1024 bytes apart (SBO).
//   N-major B (V for O = P V, N = head dim contiguous): the slice is 16 rows = 2 atoms, 2048 bytes per k16 step;
//     8-row groups 1024 bytes apart along K (SBO), column blocks rows * 128 bytes apart along N (LBO).
#ifndef FLASHPORT_CUDA_KERNELS_WGMMA_CUH
#define FLASHPORT_CUDA_KERNELS_WGMMA_CUH

#include <stdint.h>

#include "kernels/common.cuh"

namespace flashport::kernels {

template <int kRows_, int kCols> struct SmemTileSw128 {
  static_assert(kCols % 64 == 0, "128-byte swizzle: columns in blocks of 64 elements");
  static_assert(kRows_ % 8 == 0, "128-byte swizzle: rows in atoms of 8");
  static constexpr int kRows = kRows_;
  static constexpr int kChunks = kCols / 8;
  static constexpr int kElems = kRows_ * kCols;
  static constexpr int kBytes = kElems * 2;
  static constexpr int kColBlockBytes = kRows_ * 128;
  // Element offset of the chunk holding logical (row, chunk): the interface load_tile (copy.cuh) writes through.
  FLASHPORT_DEVICE static int chunk_offset(int row, int chunk) {
    return (chunk >> 3) * (kRows_ * 64) + row * 64 + (((chunk & 7) ^ (row & 7)) << 3);
  }
};

// A shared-memory matrix descriptor with the 128-byte swizzle (layout type 1 in bits 62-63); the byte offsets are
// stored in units of 16 bytes. The swizzle is applied to absolute address bits, so atoms must be 1024-byte aligned
// (base offset 0) and a start address may step by 32 bytes inside an atom's rows.
FLASHPORT_DEVICE uint64_t wgmma_desc(uint32_t smem_byte_addr, uint32_t leading_bytes, uint32_t stride_bytes) {
  return static_cast<uint64_t>((smem_byte_addr & 0x3FFFF) >> 4) |
         (static_cast<uint64_t>((leading_bytes & 0x3FFFF) >> 4) << 16) |
         (static_cast<uint64_t>((stride_bytes & 0x3FFFF) >> 4) << 32) | (1ull << 62);
}

// The descriptor of the same operand layout `bytes` further on: only the start-address field (the low 14 bits, in
// 16-byte units) changes, and shared-memory addresses stay below 256 KB, so the addition never carries out of it.
// Building one descriptor per block and stepping it this way costs one integer add per wgmma, where wgmma_desc
// costs six (ncu showed those uniform-datapath instructions among the backward's most issued).
FLASHPORT_DEVICE uint64_t wgmma_desc_step(uint64_t desc, uint32_t bytes) {
  const uint32_t lo = static_cast<uint32_t>(desc) + (bytes >> 4);
  return (desc & 0xFFFFFFFF00000000ull) | lo;
}

#if defined(FLASHPORT_HAS_WGMMA)
// Before the first wgmma of a batch: orders this warpgroup's earlier register and shared-memory accesses.
FLASHPORT_DEVICE void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
FLASHPORT_DEVICE void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> FLASHPORT_DEVICE void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Shared memory written through the generic proxy (cp.async, st.shared) becomes visible to wgmma (async proxy) only
// after this fence in each writing thread, followed by the barrier.
FLASHPORT_DEVICE void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
#else
FLASHPORT_DEVICE void wgmma_fence() { __trap(); }
FLASHPORT_DEVICE void wgmma_commit() { __trap(); }
template <int N> FLASHPORT_DEVICE void wgmma_wait() { __trap(); }
FLASHPORT_DEVICE void fence_proxy_async() { __trap(); }
#endif

// Registers written by an in-flight wgmma (accumulators) or read by one (A fragments) must not be touched by the
// compiler until wgmma_wait: passing them through an empty asm after the wait pins every later use behind it and
// keeps A fragments alive (unreused) until then.
FLASHPORT_DEVICE void fence_registers(float* r, int n) {
#pragma unroll
  for (int i = 0; i < n; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
FLASHPORT_DEVICE void fence_registers(uint32_t* r, int n) {
#pragma unroll
  for (int i = 0; i < n; ++i) asm volatile("" : "+r"(r[i])::"memory");
}

}  // namespace flashport::kernels

#if defined(FLASHPORT_HAS_WGMMA)
#include "kernels/wgmma_ops.cuh"
#endif

#endif
