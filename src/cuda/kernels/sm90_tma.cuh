// Tensor Memory Accelerator copies (sm_90a): one thread moves a whole box of a tensor between global and shared
// memory, described by a tensor map (kernels/sm90/tensor_map.h) that the kernel receives as a __grid_constant__
// parameter. A load completes on an mbarrier (sync.cuh: the issuing thread announces the box's bytes with
// mbarrier_arrive_expect_tx first); a store is tracked per issuing thread in bulk groups.
//
// Coordinates are element indices per tensor dimension, innermost first, as signed 32-bit values; a box may reach
// past the tensor's edges: a load fills those elements with zeros, a store skips them. With the 128-byte swizzle of
// kernels/sm90/wgmma.cuh (the maps that tensor_map.h makes) a box of [rows x 64] 16-bit elements lands as one
// column block of SmemTileSw128, provided its shared-memory address is 1024-byte aligned.
//
// Shared memory written by ordinary stores is visible to a TMA store only after fence_proxy_async (wgmma.cuh) in
// each writing thread and a barrier between them and the issuing thread.
#ifndef FLASHPORT_KERNELS_SM90_TMA_CUH
#define FLASHPORT_KERNELS_SM90_TMA_CUH

#include <stdint.h>

#include "kernels/common.cuh"
#include "kernels/wgmma.cuh"

namespace flashport::kernels {

#if defined(FLASHPORT_HAS_WGMMA)
// Fetches the map into the TMA unit's descriptor cache ahead of its first use. `map`: the generic address of a
// __grid_constant__ parameter (or of global memory).
FLASHPORT_DEVICE void tma_prefetch_map(const void* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

// Loads the box at coordinates c[0..N) of `map` into shared memory at `dst` (a shared-memory address), counting its
// bytes down on the mbarrier `bar`. N = the map's rank, 2..5.
template <int N> FLASHPORT_DEVICE void tma_load(uint32_t dst, const void* map, uint32_t bar, const int (&c)[N]) {
  static_assert(N >= 2 && N <= 5, "TMA tensors have rank 2 to 5 here");
  const uint64_t m = reinterpret_cast<uint64_t>(map);
  if constexpr (N == 2) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], "
        "[%2];\n" ::"r"(dst), "l"(m), "r"(bar), "r"(c[0]), "r"(c[1])
        : "memory");
  } else if constexpr (N == 3) {
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5}], "
        "[%2];\n" ::"r"(dst), "l"(m), "r"(bar), "r"(c[0]), "r"(c[1]), "r"(c[2])
        : "memory");
  } else if constexpr (N == 4) {
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], "
        "[%1, {%3, %4, %5, %6}], [%2];\n" ::"r"(dst), "l"(m), "r"(bar), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3])
        : "memory");
  } else {
    asm volatile(
        "cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], "
        "[%1, {%3, %4, %5, %6, %7}], [%2];\n" ::"r"(dst), "l"(m), "r"(bar), "r"(c[0]), "r"(c[1]), "r"(c[2]),
        "r"(c[3]), "r"(c[4])
        : "memory");
  }
}

// Stores the box at coordinates c[0..N) of `map` from shared memory at `src` (a shared-memory address) into the
// issuing thread's current bulk group; tma_store_commit closes the group.
template <int N> FLASHPORT_DEVICE void tma_store(const void* map, uint32_t src, const int (&c)[N]) {
  static_assert(N >= 2 && N <= 5, "TMA tensors have rank 2 to 5 here");
  const uint64_t m = reinterpret_cast<uint64_t>(map);
  if constexpr (N == 2) {
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.tile.bulk_group [%0, {%2, %3}], [%1];\n" ::"l"(m),
                 "r"(src), "r"(c[0]), "r"(c[1])
                 : "memory");
  } else if constexpr (N == 3) {
    asm volatile("cp.async.bulk.tensor.3d.global.shared::cta.tile.bulk_group [%0, {%2, %3, %4}], [%1];\n" ::"l"(m),
                 "r"(src), "r"(c[0]), "r"(c[1]), "r"(c[2])
                 : "memory");
  } else if constexpr (N == 4) {
    asm volatile("cp.async.bulk.tensor.4d.global.shared::cta.tile.bulk_group [%0, {%2, %3, %4, %5}], [%1];\n" ::"l"(m),
                 "r"(src), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3])
                 : "memory");
  } else {
    asm volatile("cp.async.bulk.tensor.5d.global.shared::cta.tile.bulk_group [%0, {%2, %3, %4, %5, %6}], [%1];\n" ::"l"(
                     m),
                 "r"(src), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]), "r"(c[4])
                 : "memory");
  }
}
FLASHPORT_DEVICE void tma_store_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// Waits until at most N of this thread's committed store groups are still in flight (their global writes done).
template <int N> FLASHPORT_DEVICE void tma_store_wait() {
  asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(N) : "memory");
}
#else
FLASHPORT_DEVICE void tma_prefetch_map(const void*) { __trap(); }
template <int N> FLASHPORT_DEVICE void tma_load(uint32_t, const void*, uint32_t, const int (&)[N]) { __trap(); }
template <int N> FLASHPORT_DEVICE void tma_store(const void*, uint32_t, const int (&)[N]) { __trap(); }
FLASHPORT_DEVICE void tma_store_commit() { __trap(); }
template <int N> FLASHPORT_DEVICE void tma_store_wait() { __trap(); }
#endif

}  // namespace flashport::kernels

#endif
