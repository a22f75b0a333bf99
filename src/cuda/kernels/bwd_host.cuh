// Host side of the backward shared by the CUDA module (backward.cu, CUDA runtime launches) and the HIP module
// (src/hip/kernel_table.hip, launches through hipModuleLaunchKernel): the checks every backward problem needs, the
// workspace layout, the parameter block, and the launch sequence
//   workspace -> bwd_preprocess (D, lse*log2 e, zeroed dQ accumulator) -> main kernel(s) -> bwd_convert (dq)
// written once over a "launcher" policy that performs each step with its own runtime. Plain host C++: no kernel is
// launched from here, so the HIP module's host-only pass compiles it as well.
//
// Workspace layout (each region starts 256-byte aligned; R = batch * heads_q * seqlen_q_pad rows, [b][h][i] order,
// seqlen_q_pad = seqlen_q rounded up to the main kernel's query blocks of block_m rows):
//   dsum      float[R]                          D_i = rowsum(dO_i * O_i)
//   lse_log2  float[R]                          lse_i * log2(e) (+inf for rows that see no key; bwd_rows.cuh)
//   dq_accum  float[R * head_dim_qk]            fp32 dQ accumulator (unscaled); 16-bit dtypes only
//   dq_sem    int32[batch * heads_q * m_blocks] deterministic mode of 16-bit dtypes only: per query block, key
//                                               blocks added so far
// The fp32 path (kernels/bwd_f32.cuh) writes dq directly and is deterministic by construction: it needs only the
// first two regions. Size = end of the last region (no tail padding), so the workspace size is exact.
#ifndef FLASHPORT_CUDA_KERNELS_BWD_HOST_CUH
#define FLASHPORT_CUDA_KERNELS_BWD_HOST_CUH

#include <cstddef>
#include <cstdint>
#include <cstdio>

#include "dispatch/backend_abi.h"
#include "kernels/bwd_params.cuh"
#include "kernels/bwd_rows.cuh"

namespace flashport::kernels {

// What the host needs to know of the kernels selected for a problem (the launcher knows which kernels they are).
struct BwdShapeInfo {
  int block_m = 0, block_n = 0;  // the main kernel's block shape (fp32 path: 64 x 64, only pads workspace rows)
  bool accumulates = true;       // dQ goes through the fp32 workspace accumulator (and, deterministic, its counters)
};

// Messages go to (why|err, len) with std::snprintf, which writes nothing for (NULL, 0).

// Checks before kernel selection: head dims, head_dim strides of the backward's own tensors (the modules check q,
// k, v, out), and heads_kv (grid.y of the main kernel; the modules check batch and heads_q). `backend` names the
// backend in messages ("CUDA", "HIP").
inline bool bwd_check_problem(const flashport_problem& p, const char* backend, char* why, size_t why_len) {
  if (p.head_dim_qk > 256 || p.head_dim_v > 256) {
    std::snprintf(why, why_len, "backward: head dims (%lld, %lld): the %s backend supports up to 256",
                  (long long)p.head_dim_qk, (long long)p.head_dim_v, backend);
    return false;
  }
  struct Named {
    const char* name;
    const flashport_operand* op;
  };
  const Named ops[] = {{"dout", &p.dout}, {"dq", &p.dq}, {"dk", &p.dk}, {"dv", &p.dv}};
  for (const Named& o : ops) {
    if (o.op->stride[3] != 1) {
      std::snprintf(why, why_len,
                    "%s.strides[3] (head_dim stride) is %lld; the %s backend needs head_dim contiguous (1)", o.name,
                    (long long)o.op->stride[3], backend);
      return false;
    }
  }
  if (p.heads_kv > 65535) {
    std::snprintf(why, why_len, "backward: heads_kv %lld exceeds the %s grid limit 65535", (long long)p.heads_kv,
                  backend);
    return false;
  }
  return true;
}

// Checks after selection: the row kernels' grid (one block per kBwdRowsPerBlock padded rows in grid.x) and the
// main grid (bwd_main_grid: x = key blocks * heads_kv, z = batch; deterministic: x = batch * heads_kv, y = key
// blocks).
inline bool bwd_check_grids(const flashport_problem& p, const BwdShapeInfo& s, const char* backend, char* why,
                            size_t why_len) {
  const int64_t rows = p.batch * p.heads_q * (p.seqlen_q + s.block_m);
  if (rows / kBwdRowsPerBlock >= 0x7fffffffLL) {
    std::snprintf(why, why_len, "backward: batch * heads_q * seqlen_q = %lld rows exceeds the %s grid limit",
                  (long long)rows, backend);
    return false;
  }
  if (s.accumulates && p.deterministic &&
      ((p.seqlen_kv + s.block_n - 1) / s.block_n > 65535 || p.batch * p.heads_kv > 0x7fffffffLL)) {
    std::snprintf(why, why_len,
                  "backward: deterministic mode supports up to 65535 key blocks and 2^31 - 1 (batch, kv head) pairs "
                  "(seqlen_kv %lld, batch %lld, heads_kv %lld)",
                  (long long)p.seqlen_kv, (long long)p.batch, (long long)p.heads_kv);
    return false;
  }
  const int64_t n_blocks = (p.seqlen_kv + s.block_n - 1) / s.block_n;
  if (s.accumulates && !p.deterministic && (n_blocks * p.heads_kv > 0x7fffffffLL || p.batch > 65535)) {
    std::snprintf(why, why_len,
                  "backward: the %s grid holds up to 2^31 - 1 (key block, kv head) pairs and 65535 batch entries "
                  "(seqlen_kv %lld, heads_kv %lld, batch %lld)",
                  backend, (long long)p.seqlen_kv, (long long)p.heads_kv, (long long)p.batch);
    return false;
  }
  return true;
}

constexpr size_t kBwdWorkspaceAlign = 256;
inline size_t bwd_align_up(size_t x) { return (x + kBwdWorkspaceAlign - 1) / kBwdWorkspaceAlign * kBwdWorkspaceAlign; }
inline bool bwd_aligned(const void* ptr, size_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; }

struct BwdLayout {
  size_t dsum, lse_log2, dq_accum, dq_sem, total;
};
inline BwdLayout bwd_layout(const flashport_problem& p, const BwdShapeInfo& s) {
  const size_t m_blocks = size_t((p.seqlen_q + s.block_m - 1) / s.block_m);
  const size_t rows = size_t(p.batch) * size_t(p.heads_q) * m_blocks * size_t(s.block_m);
  BwdLayout l;
  l.dsum = 0;
  l.lse_log2 = bwd_align_up(l.dsum + rows * sizeof(float));
  l.dq_accum = bwd_align_up(l.lse_log2 + rows * sizeof(float));
  size_t end = l.dq_accum + (s.accumulates ? rows * size_t(p.head_dim_qk) * sizeof(float) : 0);
  l.dq_sem = 0;
  if (s.accumulates && p.deterministic) {
    l.dq_sem = bwd_align_up(end);
    end = l.dq_sem + size_t(p.batch) * size_t(p.heads_q) * m_blocks * sizeof(int32_t);
  }
  l.total = end;
  return l;
}

inline BwdParams bwd_params(const flashport_problem& p, const BwdShapeInfo& s, char* ws, const BwdLayout& l) {
  BwdParams b{};
  b.q = p.q.data;
  b.k = p.k.data;
  b.v = p.v.data;
  b.out = p.out.data;
  b.dout = p.dout.data;
  b.lse = static_cast<const float*>(p.lse.data);
  b.dq = p.dq.data;
  b.dk = p.dk.data;
  b.dv = p.dv.data;
  for (int i = 0; i < 3; ++i) {
    b.q_stride[i] = p.q.stride[i];
    b.k_stride[i] = p.k.stride[i];
    b.v_stride[i] = p.v.stride[i];
    b.out_stride[i] = p.out.stride[i];
    b.dout_stride[i] = p.dout.stride[i];
    b.lse_stride[i] = p.lse.stride[i];
    b.dq_stride[i] = p.dq.stride[i];
    b.dk_stride[i] = p.dk.stride[i];
    b.dv_stride[i] = p.dv.stride[i];
  }
  b.batch = int32_t(p.batch);
  b.seqlen_q = int32_t(p.seqlen_q);
  b.seqlen_kv = int32_t(p.seqlen_kv);
  b.heads_q = int32_t(p.heads_q);
  b.heads_kv = int32_t(p.heads_kv);
  b.group = int32_t(p.heads_q / p.heads_kv);
  b.head_dim_qk = int32_t(p.head_dim_qk);
  b.head_dim_v = int32_t(p.head_dim_v);
  b.scale = p.scale;
  b.scale_log2 = p.scale * kLog2e;
  b.softcap = p.softcap;
  b.softcap_inv = p.softcap > 0.f ? 1.f / p.softcap : 0.f;
  b.mask_offset = p.mask_offset;
  b.window_left = p.window_left;
  b.window_right = p.window_right;
  if (ws != nullptr) {  // nullptr: only the sizes and grids are wanted (HIP's launch-limit check)
    b.dsum = reinterpret_cast<float*>(ws + l.dsum);
    b.lse_log2 = reinterpret_cast<float*>(ws + l.lse_log2);
    b.dq_accum = s.accumulates ? reinterpret_cast<float*>(ws + l.dq_accum) : nullptr;
    b.dq_sem = s.accumulates && p.deterministic ? reinterpret_cast<int32_t*>(ws + l.dq_sem) : nullptr;
  }
  b.deterministic = p.deterministic ? 1 : 0;
  // 16-byte copies need every row start 16-byte aligned and whole 8-element chunks (16-bit dtypes; the fp32 path
  // reads elements).
  bool vec = p.dtype != FLASHPORT_DTYPE_F32 && p.head_dim_qk % 8 == 0 && p.head_dim_v % 8 == 0;
  for (const flashport_operand* o : {&p.q, &p.k, &p.v, &p.dout}) {
    vec = vec && bwd_aligned(o->data, 16);
    for (int i = 0; i < 3; ++i) vec = vec && o->stride[i] % 8 == 0;
  }
  b.vec_loads = vec;
  bool vec_out = true;
  for (const flashport_operand* o : {&p.dk, &p.dv}) {
    vec_out = vec_out && bwd_aligned(o->data, 4);
    for (int i = 0; i < 3; ++i) vec_out = vec_out && o->stride[i] % 2 == 0;
  }
  b.vec_stores = vec_out;
  b.block_m = s.block_m;
  b.block_n = s.block_n;
  b.m_blocks = int32_t((p.seqlen_q + s.block_m - 1) / s.block_m);
  b.n_blocks = int32_t((p.seqlen_kv + s.block_n - 1) / s.block_n);
  b.seqlen_q_pad = b.m_blocks * b.block_m;
  // Per kv head, a block reads the Q and dO rows of its query heads and adds into their fp32 dQ rows.
  const int64_t elem = p.dtype == FLASHPORT_DTYPE_F32 ? 4 : 2;
  const int64_t head_bytes =
      int64_t(b.group) * p.seqlen_q * ((p.head_dim_qk + p.head_dim_v) * elem + p.head_dim_qk * 4);
  b.order = BlockOrder::make(b.n_blocks, b.heads_kv, head_bytes,
                             mask_makes_costs_uneven(p.window_left, p.window_right));
  return b;
}

// Blocks of the row kernels (bwd_preprocess, bwd_convert): kBwdRowsPerBlock padded rows each, kBwdRowThreads threads.
inline int64_t bwd_row_blocks(const BwdParams& p) {
  return (int64_t(p.batch) * p.heads_q * p.seqlen_q_pad + kBwdRowsPerBlock - 1) / kBwdRowsPerBlock;
}

enum class BwdStep { kPreprocess, kMain, kConvert };

// The launch sequence of one backward, on the problem's stream. The launcher L does each step with its runtime and
// turns its runtime's errors into a flashport status with the message in err (prefixed by `what`):
//   int32_t alloc(size_t bytes, void** ptr, const char* what, char* err, size_t err_len)  stream-ordered allocation
//   int32_t release(void* ptr, const char* what, char* err, size_t err_len)               stream-ordered free
//   int32_t launch(BwdStep step, const BwdParams& b, const char* what, char* err, size_t err_len)
// kConvert is launched only when s.accumulates (the fp32 path's main kernels write dq). Uses p.workspace when it is
// not NULL (it must hold bwd_layout(p, s).total bytes, 256-byte aligned), else allocates and frees it
// stream-ordered within the call. Nothing is launched when the workspace is refused.
template <class L>
int32_t bwd_run(const flashport_problem& p, const BwdShapeInfo& s, L& launcher, char* err, size_t err_len) {
  const BwdLayout l = bwd_layout(p, s);
  char* ws = static_cast<char*>(p.workspace);
  bool owned = false;
  if (ws != nullptr) {
    if (p.workspace_size < l.total) {
      std::snprintf(err, err_len, "backward: workspace of %zu bytes is smaller than the %zu bytes this problem needs",
                    p.workspace_size, l.total);
      return FLASHPORT_STATUS_WORKSPACE_TOO_SMALL;
    }
    if (!bwd_aligned(ws, kBwdWorkspaceAlign)) {
      std::snprintf(err, err_len, "backward: workspace %p is not 256-byte aligned", p.workspace);
      return FLASHPORT_STATUS_INVALID_ARGUMENT;
    }
  } else {
    void* mem = nullptr;
    const int32_t st = launcher.alloc(l.total, &mem, "backward: workspace allocation", err, err_len);
    if (st != FLASHPORT_STATUS_OK) return st;
    ws = static_cast<char*>(mem);
    owned = true;
  }

  const BwdParams b = bwd_params(p, s, ws, l);
  int32_t status = launcher.launch(BwdStep::kPreprocess, b, "backward: preprocess kernel launch", err, err_len);
  if (status == FLASHPORT_STATUS_OK)
    status = launcher.launch(BwdStep::kMain, b, "backward: main kernel launch", err, err_len);
  if (status == FLASHPORT_STATUS_OK && s.accumulates)
    status = launcher.launch(BwdStep::kConvert, b, "backward: dq conversion kernel launch", err, err_len);
  if (owned) {
    // On an earlier failure that message is kept (the free's own failure would hide it).
    char scratch[256];
    const bool keep = status != FLASHPORT_STATUS_OK;
    const int32_t st = launcher.release(ws, "backward: workspace free", keep ? scratch : err,
                                        keep ? sizeof scratch : err_len);
    if (status == FLASHPORT_STATUS_OK) status = st;
  }
  return status;
}

}  // namespace flashport::kernels

#endif
