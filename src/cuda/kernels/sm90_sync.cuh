// Synchronisation primitives of the warp-specialised Hopper kernels (sm_90a): transaction barriers in shared
// memory (mbarrier), named barriers, and the per-warpgroup register budget (setmaxnreg). NVIDIA-only; compiled
// where FLASHPORT_HAS_WGMMA is defined (the kernels using them need sm_90a), elsewhere they trap and no kernel that
// uses them is selected.
//
// mbarrier: a 64-bit word in shared memory that completes a phase when `arrivals` threads have arrived and every
// byte announced with arrive_expect_tx has landed (TMA copies count their bytes down on it). Phases alternate
// parity 0, 1, 0, ...; mbarrier_wait(bar, parity) returns once the phase of that parity has completed. A freshly
// initialised barrier is in phase 0, so waiting on parity 1 returns at once: a ring's "empty" barriers need no
// initial arrivals (the producer's first pass waits on parity 1).
#ifndef FLASHPORT_KERNELS_SM90_SYNC_CUH
#define FLASHPORT_KERNELS_SM90_SYNC_CUH

#include <stdint.h>

#include "kernels/common.cuh"

namespace flashport::kernels {

#if defined(FLASHPORT_HAS_WGMMA)
// One thread initialises; the fence and a block barrier (or other synchronisation) must follow before any other
// thread or the TMA unit uses the barrier. `bar` is a shared-memory address (vendor::smem_addr), 8-byte aligned.
FLASHPORT_DEVICE void mbarrier_init(uint32_t bar, int arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(arrivals) : "memory");
}
FLASHPORT_DEVICE void mbarrier_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }

// One arrival (release: this thread's earlier accesses happen before the phase completes).
FLASHPORT_DEVICE void mbarrier_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// One arrival that also announces `bytes` of asynchronous copies completing on this barrier in the current phase.
FLASHPORT_DEVICE void mbarrier_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

// Spins until the phase of parity `parity` has completed (acquire: the data it guards is visible afterwards,
// including what TMA wrote). try_wait suspends the thread for a while in hardware between polls.
FLASHPORT_DEVICE void mbarrier_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}

// Named barriers 1..15 (0 is __syncthreads): bar.sync waits until `threads` threads (a multiple of 32) have arrived
// at barrier `id`, counting itself; bar.arrive counts itself without waiting. The id must be warp-uniform.
FLASHPORT_DEVICE void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
FLASHPORT_DEVICE void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// The register budget of the executing warpgroup (every warp of it executes the same call): dec releases
// registers to the SM's pool, inc waits until the pool can grant them. kRegs per thread, a multiple of 8 in
// [24, 256]. ptxas allocates the code after the call within the new budget; the kernel's launch bound sets the
// budget at entry.
template <int kRegs> FLASHPORT_DEVICE void setmaxnreg_dec() {
  static_assert(kRegs % 8 == 0 && kRegs >= 24 && kRegs <= 256, "setmaxnreg: a multiple of 8 in [24, 256]");
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs> FLASHPORT_DEVICE void setmaxnreg_inc() {
  static_assert(kRegs % 8 == 0 && kRegs >= 24 && kRegs <= 256, "setmaxnreg: a multiple of 8 in [24, 256]");
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
#else
FLASHPORT_DEVICE void mbarrier_init(uint32_t, int) { __trap(); }
FLASHPORT_DEVICE void mbarrier_init_fence() { __trap(); }
FLASHPORT_DEVICE void mbarrier_arrive(uint32_t) { __trap(); }
FLASHPORT_DEVICE void mbarrier_arrive_expect_tx(uint32_t, uint32_t) { __trap(); }
FLASHPORT_DEVICE void mbarrier_wait(uint32_t, uint32_t) { __trap(); }
FLASHPORT_DEVICE void named_barrier_sync(int, int) { __trap(); }
FLASHPORT_DEVICE void named_barrier_arrive(int, int) { __trap(); }
template <int kRegs> FLASHPORT_DEVICE void setmaxnreg_dec() { __trap(); }
template <int kRegs> FLASHPORT_DEVICE void setmaxnreg_inc() { __trap(); }
#endif

}  // namespace flashport::kernels

#endif
