// The work list of one Hopper backward block (bwd_sm90.cuh): key block n_block of kv head hk meets the (query head
// of the GQA group, query block) items below, visited head-major, and reads the operand rows named here.
// bwd_main.cuh still computes the same list inline: folding this struct in there changes that kernel's register
// allocation (SASS differs in every instance), so it waits for a GPU run to measure it.
#ifndef FLASHPORT_CUDA_KERNELS_BWD_ITEMS_CUH
#define FLASHPORT_CUDA_KERNELS_BWD_ITEMS_CUH

#include "kernels/bwd_params.cuh"
#include "kernels/common.cuh"

namespace flashport::kernels {

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
