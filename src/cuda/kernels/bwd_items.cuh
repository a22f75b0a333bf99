// What a backward main-kernel block works on. Both main kernels (bwd_main.cuh, bwd_sm90.cuh) take their grid
// coordinates (bwd_block_coords), deterministic dQ turns (dq_turn_*) and lse / D staging (stage_lse_dsum) from
// here. BwdItems, the work list, serves bwd_sm90.cuh: key block n_block of kv head hk meets the (query head of the
// GQA group, query block) items below, visited head-major, and reads the operand rows named here. bwd_main.cuh
// still computes the same list inline: folding this struct in there changes that kernel's SASS (+8 to +112
// instructions) and measured -2.6 to +0.3 % at D 192 on the H100 (docs/perf/cuda-backward.md, v4.6), so it stays
// on branch wip/bwd-main-items.
#ifndef FLASHPORT_CUDA_KERNELS_BWD_ITEMS_CUH
#define FLASHPORT_CUDA_KERNELS_BWD_ITEMS_CUH

#include "kernels/bwd_params.cuh"
#include "kernels/common.cuh"

namespace flashport::kernels {

// This block's key block, kv head and batch (grid: bwd_main_grid). Without the deterministic mode, p.order
// (block_order.cuh) with level 0 = key block 0, under a causal mask the one that meets the most queries: heads in
// L2-sized sections, heaviest key blocks first, so that the blocks in flight share a few heads' Q / dO and the
// lightest fill the tail. The deterministic mode puts (batch, kv head) fastest instead, so that blocks running at
// the same time are mostly of different heads and do not queue behind each other's dQ turns.
// `deterministic` is p.deterministic (a constant where the kernel is compiled for one mode).
FLASHPORT_DEVICE void bwd_block_coords(const BwdParams& p, bool deterministic, int* n_block, int* hk, int* b) {
  if (deterministic) {
    *n_block = vendor::block_id_y();
    *hk = vendor::block_id_x() % p.heads_kv;
    *b = vendor::block_id_x() / p.heads_kv;
  } else {
    p.order.decode(vendor::block_id_x(), n_block, hk);
    *b = vendor::block_id_z();
  }
}

// Deterministic mode: key blocks add into a query block's dQ one after another, in increasing order.
// dq_turn_wait returns once the n_block - first_n_block(m) lower key blocks that meet query block m have added
// theirs (they were issued before this block, lower linear block index, and never wait on it, so the wait always
// ends), with the counter (dq_turn_counter) that dq_turn_done then advances for this block. Both are block-wide
// (every thread calls them; they contain barriers); without p.deterministic they do nothing (the counter is null).
FLASHPORT_DEVICE int32_t* dq_turn_counter(const BwdParams& p, int b, int h, int m_block) {
  return p.dq_sem + (int64_t(b) * p.heads_q + h) * p.m_blocks + m_block;
}
FLASHPORT_DEVICE int32_t* dq_turn_wait(const BwdParams& p, int b, int h, int m_block, int n_block) {
  if (!p.deterministic) return nullptr;
  int32_t* sem = dq_turn_counter(p, b, h, m_block);
  const int32_t expected = n_block - first_n_block(p, m_block);
  if (vendor::thread_id() == 0) {
    const volatile int32_t* vs = sem;
    // A broken ordering invariant would hang the GPU; after ~2^24 polls (seconds) fail loudly instead.
    for (int32_t polls = 0; *vs != expected; ++polls)
      if (polls == (1 << 24)) __trap();
    __threadfence();
  }
  vendor::block_sync();
  return sem;
}
FLASHPORT_DEVICE void dq_turn_done(const BwdParams& p, int32_t* sem) {
  if (!p.deterministic) return;
  __threadfence();  // this thread's additions are visible device-wide before the count says so
  vendor::block_sync();
  if (vendor::thread_id() == 0) atomicAdd(sem, 1);
}

// lse * log2 e and D of query rows [m0, m0 + kRows) of head h into sLse / sDsum: whole 16-byte chunks of the
// workspace rows, which are padded to whole blocks and 16-byte aligned (bwd_params.cuh), one chunk per thread of
// the first 2 kRows / 4 (tid = the thread's index in the block). The caller commits the copies.
template <int kRows, int kThreads>
FLASHPORT_DEVICE void stage_lse_dsum(const BwdParams& p, int b, int h, int m0, float* sLse, float* sDsum, int tid) {
  constexpr int kChunks = kRows / 4;
  static_assert(2 * kChunks <= kThreads, "one 16-byte chunk per thread");
  if (tid < 2 * kChunks) {
    const int64_t row = (int64_t(b) * p.heads_q + h) * p.seqlen_q_pad + m0 + (tid % kChunks) * 4;
    float* dst = (tid < kChunks ? sLse : sDsum) + (tid % kChunks) * 4;
    vendor::copy16_async(dst, (tid < kChunks ? p.lse_log2 : p.dsum) + row, true);
  }
}

template <class T> struct BwdItems {
  int b, hk;
  int m_begin, m_count;  // query blocks [m_begin, m_begin + m_count) meet the key block (bwd_params.cuh)
  int items;             // m_count * group

  FLASHPORT_DEVICE BwdItems(const BwdParams& p, int b_, int hk_, int n_block) : b(b_), hk(hk_) {
    int32_t begin, end;
    m_block_range(p, n_block, &begin, &end);
    m_begin = begin;
    m_count = end - begin;
    items = m_count * p.group;
  }
  FLASHPORT_DEVICE int head(const BwdParams& p, int it) const { return hk * p.group + it / m_count; }
  FLASHPORT_DEVICE int block(int it) const { return m_begin + it % m_count; }

  // Row `row` of query head h of Q / dO, of this kv head's K / V.
  FLASHPORT_DEVICE const T* q(const BwdParams& p, int h, int row) const {
    return static_cast<const T*>(p.q) + b * p.q_stride[0] + int64_t(row) * p.q_stride[1] + h * p.q_stride[2];
  }
  FLASHPORT_DEVICE const T* dout(const BwdParams& p, int h, int row) const {
    return static_cast<const T*>(p.dout) + b * p.dout_stride[0] + int64_t(row) * p.dout_stride[1] +
           h * p.dout_stride[2];
  }
  FLASHPORT_DEVICE const T* k(const BwdParams& p, int row) const {
    return static_cast<const T*>(p.k) + b * p.k_stride[0] + int64_t(row) * p.k_stride[1] + hk * p.k_stride[2];
  }
  FLASHPORT_DEVICE const T* v(const BwdParams& p, int row) const {
    return static_cast<const T*>(p.v) + b * p.v_stride[0] + int64_t(row) * p.v_stride[1] + hk * p.v_stride[2];
  }
};

}  // namespace flashport::kernels

#endif
