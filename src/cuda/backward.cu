// Host side of the CUDA backward (backward.h): kernel selection, the workspace layout, and the three launches
//   bwd_preprocess (D, lse*log2 e, zeroed dQ accumulator) -> bwd_main (dK, dV, dQ accumulation) -> bwd_convert (dq).
// Selection, workspace sizing and launching all go through select_backward(), so they cannot disagree.
//
// Workspace layout (each region starts 256-byte aligned; R = batch * heads_q * seqlen_q_pad rows, [b][h][i] order,
// seqlen_q_pad = seqlen_q rounded up to the main kernel's 64-row query blocks):
//   dsum      float[R]                          D_i = rowsum(dO_i * O_i)
//   lse_log2  float[R]                          lse_i * log2(e) (+inf for lse = -inf)
//   dq_accum  float[R * head_dim_qk]            fp32 dQ accumulator (unscaled); 16-bit dtypes only
//   dq_sem    int32[batch * heads_q * m_blocks] deterministic mode of 16-bit dtypes only: per query block, key
//                                               blocks added so far
// The fp32 path (kernels/bwd_f32.cuh) writes dq directly and is deterministic by construction: it needs only the
// first two regions.
// Size = end of the last region (no tail padding), so workspace_size() is exact.
#include <cuda_runtime.h>

#include <cstdio>

#include "backward.h"
#include "host_status.h"
#include "kernels/bwd_f32.cuh"
#include "kernels/bwd_launch.cuh"
#include "kernels/bwd_rows.cuh"

namespace {

using flashport::kernels::BwdParams;
namespace fk = flashport::kernels;
namespace fv = flashport::vendor;

using flashport::cuda_host::cuda_failure;
using flashport::cuda_host::say;

using MainFn = cudaError_t (*)(const BwdParams&, cudaStream_t);
using RowFn = cudaError_t (*)(const BwdParams&, cudaStream_t);

// What runs a problem: the main kernel instance, its block shape, and the row kernels of its dtype.
struct Selection {
  MainFn main = nullptr;
  RowFn preprocess = nullptr;
  RowFn convert = nullptr;  // nullptr: main writes dq itself (fp32 path)
  int block_m = 0, block_n = 0;
  bool accumulates = true;  // dQ goes through the fp32 workspace accumulator (and, deterministic, its counters)
};

template <class T, int kDqk, int kDv> Selection pick() {
  Selection s;
  s.main = fk::launch_bwd_main<T, kDqk, kDv>;
  s.preprocess = fk::launch_bwd_preprocess<T>;
  s.convert = fk::launch_bwd_convert<T>;
  s.block_m = fk::BwdShape<kDqk, kDv>::kBlockM;
  s.block_n = fk::BwdShape<kDqk, kDv>::kBlockN;
  return s;
}

// Actual head dims run on the smallest instantiated (padded) pair that holds them: zero-filled columns add nothing.
template <class T> Selection select_16bit(int64_t dqk, int64_t dv) {
  if (dqk <= 32 && dv <= 32) return pick<T, 32, 32>();
  if (dqk <= 64 && dv <= 64) return pick<T, 64, 64>();
  if (dqk <= 96 && dv <= 96) return pick<T, 96, 96>();
  if (dqk <= 128 && dv <= 128) return pick<T, 128, 128>();
  if (dqk <= 192 && dv <= 128) return pick<T, 192, 128>();
  if (dqk <= 192 && dv <= 192) return pick<T, 192, 192>();
  return pick<T, 256, 256>();
}

// The one selector. Returns an empty Selection (main == nullptr) with the reason in why.
Selection select_backward(const flashport_problem* p, char* why, size_t why_len) {
  if (p->head_dim_qk > 256 || p->head_dim_v > 256) {
    say(why, why_len, "backward: head dims (%lld, %lld): the CUDA backend supports up to 256",
        (long long)p->head_dim_qk, (long long)p->head_dim_v);
    return {};
  }
  struct Named {
    const char* name;
    const flashport_operand* op;
  };
  // module.cu checks q, k, v, out; the backward's own tensors too.
  const Named ops[] = {{"dout", &p->dout}, {"dq", &p->dq}, {"dk", &p->dk}, {"dv", &p->dv}};
  for (const Named& o : ops) {
    if (o.op->stride[3] != 1) {
      say(why, why_len, "%s.strides[3] (head_dim stride) is %lld; the CUDA backend needs head_dim contiguous (1)",
          o.name, (long long)o.op->stride[3]);
      return {};
    }
  }
  if (p->heads_kv > 65535) {  // grid.y of the main kernel (module.cu checks batch and heads_q)
    say(why, why_len, "backward: heads_kv %lld exceeds the CUDA grid limit 65535", (long long)p->heads_kv);
    return {};
  }
  switch (p->dtype) {
    case FLASHPORT_DTYPE_F16: return select_16bit<fv::half_t>(p->head_dim_qk, p->head_dim_v);
    case FLASHPORT_DTYPE_BF16: return select_16bit<fv::bf16_t>(p->head_dim_qk, p->head_dim_v);
    case FLASHPORT_DTYPE_F32: {
      Selection s;
      s.main = fk::launch_bwd_f32;
      s.preprocess = fk::launch_bwd_preprocess<float>;
      s.block_m = 64;  // only pads the workspace rows; the fp32 kernels work row by row
      s.block_n = 64;
      s.accumulates = false;
      return s;
    }
    default: say(why, why_len, "backward: dtype %d has no CUDA kernel", p->dtype); return {};
  }
}

constexpr size_t kAlign = 256;
size_t align_up(size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

struct Layout {
  size_t dsum, lse_log2, dq_accum, dq_sem, total;
};
Layout layout(const flashport_problem* p, const Selection& s) {
  const size_t m_blocks = size_t((p->seqlen_q + s.block_m - 1) / s.block_m);
  const size_t rows = size_t(p->batch) * size_t(p->heads_q) * m_blocks * size_t(s.block_m);
  Layout l;
  l.dsum = 0;
  l.lse_log2 = align_up(l.dsum + rows * sizeof(float));
  l.dq_accum = align_up(l.lse_log2 + rows * sizeof(float));
  size_t end = l.dq_accum + (s.accumulates ? rows * size_t(p->head_dim_qk) * sizeof(float) : 0);
  l.dq_sem = 0;
  if (s.accumulates && p->deterministic) {
    l.dq_sem = align_up(end);
    end = l.dq_sem + size_t(p->batch) * size_t(p->heads_q) * m_blocks * sizeof(int32_t);
  }
  l.total = end;
  return l;
}

bool aligned(const void* ptr, size_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; }

BwdParams make_params(const flashport_problem* p, const Selection& s, char* ws, const Layout& l) {
  BwdParams b{};
  b.q = p->q.data;
  b.k = p->k.data;
  b.v = p->v.data;
  b.out = p->out.data;
  b.dout = p->dout.data;
  b.lse = static_cast<const float*>(p->lse.data);
  b.dq = p->dq.data;
  b.dk = p->dk.data;
  b.dv = p->dv.data;
  for (int i = 0; i < 3; ++i) {
    b.q_stride[i] = p->q.stride[i];
    b.k_stride[i] = p->k.stride[i];
    b.v_stride[i] = p->v.stride[i];
    b.out_stride[i] = p->out.stride[i];
    b.dout_stride[i] = p->dout.stride[i];
    b.lse_stride[i] = p->lse.stride[i];
    b.dq_stride[i] = p->dq.stride[i];
    b.dk_stride[i] = p->dk.stride[i];
    b.dv_stride[i] = p->dv.stride[i];
  }
  b.batch = int32_t(p->batch);
  b.seqlen_q = int32_t(p->seqlen_q);
  b.seqlen_kv = int32_t(p->seqlen_kv);
  b.heads_q = int32_t(p->heads_q);
  b.heads_kv = int32_t(p->heads_kv);
  b.group = int32_t(p->heads_q / p->heads_kv);
  b.head_dim_qk = int32_t(p->head_dim_qk);
  b.head_dim_v = int32_t(p->head_dim_v);
  b.scale = p->scale;
  b.scale_log2 = p->scale * fk::kLog2e;
  b.softcap = p->softcap;
  b.softcap_inv = p->softcap > 0.f ? 1.f / p->softcap : 0.f;
  b.mask_offset = p->mask_offset;
  b.window_left = p->window_left;
  b.window_right = p->window_right;
  b.dsum = reinterpret_cast<float*>(ws + l.dsum);
  b.lse_log2 = reinterpret_cast<float*>(ws + l.lse_log2);
  b.dq_accum = s.accumulates ? reinterpret_cast<float*>(ws + l.dq_accum) : nullptr;
  b.dq_sem = s.accumulates && p->deterministic ? reinterpret_cast<int32_t*>(ws + l.dq_sem) : nullptr;
  b.deterministic = p->deterministic ? 1 : 0;
  // 16-byte copies need every row start 16-byte aligned and whole 8-element chunks (16-bit dtypes; the fp32 path
  // reads elements).
  bool vec = p->dtype != FLASHPORT_DTYPE_F32 && p->head_dim_qk % 8 == 0 && p->head_dim_v % 8 == 0;
  for (const flashport_operand* o : {&p->q, &p->k, &p->v, &p->dout}) {
    vec = vec && aligned(o->data, 16);
    for (int i = 0; i < 3; ++i) vec = vec && o->stride[i] % 8 == 0;
  }
  b.vec_loads = vec;
  bool vec_out = true;
  for (const flashport_operand* o : {&p->dk, &p->dv}) {
    vec_out = vec_out && aligned(o->data, 4);
    for (int i = 0; i < 3; ++i) vec_out = vec_out && o->stride[i] % 2 == 0;
  }
  b.vec_stores = vec_out;
  b.block_m = s.block_m;
  b.block_n = s.block_n;
  b.m_blocks = int32_t((p->seqlen_q + s.block_m - 1) / s.block_m);
  b.n_blocks = int32_t((p->seqlen_kv + s.block_n - 1) / s.block_n);
  b.seqlen_q_pad = b.m_blocks * b.block_m;
  return b;
}

}  // namespace

namespace flashport::kernels {

static int64_t bwd_row_blocks(const BwdParams& p) {
  return (int64_t(p.batch) * p.heads_q * p.seqlen_q_pad + kBwdRowsPerBlock - 1) / kBwdRowsPerBlock;
}

template <class T> cudaError_t launch_bwd_preprocess(const BwdParams& p, cudaStream_t stream) {
  bwd_preprocess_kernel<T><<<unsigned(bwd_row_blocks(p)), kBwdRowThreads, 0, stream>>>(p);
  return cudaGetLastError();
}
template <class T> cudaError_t launch_bwd_convert(const BwdParams& p, cudaStream_t stream) {
  bwd_convert_kernel<T><<<unsigned(bwd_row_blocks(p)), kBwdRowThreads, 0, stream>>>(p);
  return cudaGetLastError();
}
template cudaError_t launch_bwd_preprocess<vendor::half_t>(const BwdParams&, cudaStream_t);
template cudaError_t launch_bwd_preprocess<vendor::bf16_t>(const BwdParams&, cudaStream_t);
template cudaError_t launch_bwd_convert<vendor::half_t>(const BwdParams&, cudaStream_t);
template cudaError_t launch_bwd_convert<vendor::bf16_t>(const BwdParams&, cudaStream_t);
template cudaError_t launch_bwd_preprocess<float>(const BwdParams&, cudaStream_t);

}  // namespace flashport::kernels

extern "C" int32_t flashport_cuda_backward_supports(const flashport_problem* p, char* why, size_t why_len) {
  const Selection s = select_backward(p, why, why_len);
  if (s.main == nullptr) return 0;
  // Row kernels: one block per 4 (padded) rows in grid.x (2^31 - 1 blocks); deterministic main grid.y = key blocks.
  const int64_t rows = p->batch * p->heads_q * (p->seqlen_q + s.block_m);
  if (rows / fk::kBwdRowsPerBlock >= 0x7fffffffLL) {
    say(why, why_len, "backward: batch * heads_q * seqlen_q = %lld rows exceeds the CUDA grid limit",
        (long long)rows);
    return 0;
  }
  // Deterministic main grid: x = batch * heads_kv, y = key blocks.
  if (s.accumulates && p->deterministic &&
      ((p->seqlen_kv + s.block_n - 1) / s.block_n > 65535 || p->batch * p->heads_kv > 0x7fffffffLL)) {
    say(why, why_len, "backward: deterministic mode supports up to 65535 key blocks and 2^31 - 1 (batch, kv head) "
        "pairs (seqlen_kv %lld, batch %lld, heads_kv %lld)", (long long)p->seqlen_kv, (long long)p->batch,
        (long long)p->heads_kv);
    return 0;
  }
  return 1;
}

extern "C" size_t flashport_cuda_backward_workspace_size(const flashport_problem* p) {
  const Selection s = select_backward(p, nullptr, 0);
  return s.main == nullptr ? 0 : layout(p, s).total;
}

extern "C" int32_t flashport_cuda_backward_run(const flashport_problem* p, char* err, size_t err_len) {
  if (!flashport_cuda_backward_supports(p, err, err_len)) return FLASHPORT_STATUS_UNSUPPORTED;
  const Selection s = select_backward(p, err, err_len);
  const Layout l = layout(p, s);
  const cudaStream_t stream = static_cast<cudaStream_t>(p->stream);

  char* ws = static_cast<char*>(p->workspace);
  bool owned = false;
  if (ws != nullptr) {
    if (p->workspace_size < l.total) {
      say(err, err_len, "backward: workspace of %zu bytes is smaller than the %zu bytes this problem needs",
          p->workspace_size, l.total);
      return FLASHPORT_STATUS_WORKSPACE_TOO_SMALL;
    }
    if (!aligned(ws, kAlign)) {
      say(err, err_len, "backward: workspace %p is not 256-byte aligned", p->workspace);
      return FLASHPORT_STATUS_INVALID_ARGUMENT;
    }
  } else {
    // Stream-ordered: no device synchronisation, and the memory returns to the pool when the stream reaches the
    // free below.
    cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&ws), l.total, stream);
    if (e != cudaSuccess) return cuda_failure(e, "backward: cudaMallocAsync(workspace)", err, err_len);
    owned = true;
  }

  const BwdParams b = make_params(p, s, ws, l);
  int32_t status = FLASHPORT_STATUS_OK;
  cudaError_t e = s.preprocess(b, stream);
  if (e != cudaSuccess) {
    status = cuda_failure(e, "backward: preprocess kernel launch", err, err_len);
  } else if ((e = s.main(b, stream)) != cudaSuccess) {
    status = cuda_failure(e, "backward: main kernel launch", err, err_len);
  } else if (s.convert != nullptr && (e = s.convert(b, stream)) != cudaSuccess) {
    status = cuda_failure(e, "backward: dq conversion kernel launch", err, err_len);
  }
  if (owned) {
    e = cudaFreeAsync(ws, stream);
    if (e != cudaSuccess && status == FLASHPORT_STATUS_OK)
      status = cuda_failure(e, "backward: cudaFreeAsync", err, err_len);
  }
  return status;
}
