// libflashport_cuda.so: the CUDA backend module. Exports flashport_module_init (src/dispatch/backend_abi.h) and
// one backend, "cuda". Forward problems go to the kernels in kernels/ (one instantiation per file in instances/),
// backward problems to backward.cu (backward.h). Everything is queued on the caller's stream; nothing here
// synchronises the device except the tool-only mem_copy/synchronize slots.
#include <cuda_runtime.h>

#include <climits>
#include <cstdio>

#include "dispatch/backend_abi.h"
#if defined(FLASHPORT_CUDA_HAVE_FMA)
#include "fwd_fma.h"
#endif
#if defined(FLASHPORT_CUDA_HAVE_SM90)
#include "fwd_sm90.h"
#endif
#include "host_devices.h"
#include "host_status.h"
#include "kernels/fwd_launch.cuh"
#if defined(FLASHPORT_CUDA_HAVE_BACKWARD)
#include "backward.h"
#endif

namespace {

using flashport::kernels::FwdParams;

using flashport::cuda_host::cuda_failure;
using flashport::cuda_host::say;

using flashport::cuda_host::DeviceTable;
using flashport::cuda_host::devices;

// The tensor-core kernels (mma.sync m16n8k16 bf16, cp.async, ldmatrix) need sm_80.
constexpr int kMinCC = 80;

int32_t probe(char* why, size_t why_len) {
  DeviceTable& t = devices();
  if (t.status == cudaErrorInsufficientDriver || t.status == cudaErrorStubLibrary) {
    say(why, why_len, "CUDA driver not found or older than this module's runtime (CUDA %d.%d): cudaGetDeviceCount "
        "returned %d (%s)", CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10, static_cast<int>(t.status),
        cudaGetErrorString(t.status));
    return 0;
  }
  if (t.status != cudaSuccess) {
    say(why, why_len, "no CUDA device: cudaGetDeviceCount returned %d (%s)", static_cast<int>(t.status),
        cudaGetErrorString(t.status));
    return 0;
  }
  int usable = 0;
  for (int cc : t.cc) usable += cc >= kMinCC;
  if (usable == 0) {
    if (t.cc.empty())
      say(why, why_len, "no CUDA device: cudaGetDeviceCount found 0 devices");
    else
      say(why, why_len, "no CUDA device of compute capability 8.0 or newer (device 0 is %d.%d)", t.cc[0] / 10,
          t.cc[0] % 10);
    return 0;
  }
  say(why, why_len, "%d CUDA device(s), compute capability 8.0+ (mma.sync tensor-core kernels)", usable);
  return static_cast<int32_t>(t.cc.size());
}

// ---- kernel selection: one function, used by supports() and run() ----------------------------------------------

using LaunchFn = cudaError_t (*)(const FwdParams&, cudaStream_t);

// Padded head dims that have tensor-core instantiations (src/cuda/generate_instances.py); actual head dims are
// rounded up to the next one (zero-filled columns change nothing).
constexpr int kPaddedDims[] = {32, 64, 96, 128, 192, 256};
int pad_dim(int64_t d) {
  for (int p : kPaddedDims)
    if (d <= p) return p;
  return 0;
}

// The forward launchers of one backend: the tensor-core kernels ("cuda") or the same kernel with the generic FMA
// tiles ("cuda-fma", fwd_fma.h); both are instantiated for the same padded head-dim pairs.
struct TensorCoreFwd {
  template <class T, int kDqk, int kDv> static LaunchFn get() { return flashport::kernels::launch_fwd<T, kDqk, kDv>; }
};
struct FmaFwd {
  template <class T, int kDqk, int kDv> static LaunchFn get() {
#if defined(FLASHPORT_CUDA_HAVE_FMA)
    return flashport::kernels::launch_fwd_fma<T, kDqk, kDv>;
#else
    return nullptr;  // built without -DFLASHPORT_CUDA_FMA=ON: supports_fma() says so before anything selects
#endif
  }
};

template <class Fwd, class T> LaunchFn select_16bit(int dqk, int dv) {
  if (dqk == 192 && dv <= 128) return Fwd::template get<T, 192, 128>();
  const int d = dqk > dv ? dqk : dv;  // other unequal pairs run as the larger square instance
  switch (d) {
    case 32: return Fwd::template get<T, 32, 32>();
    case 64: return Fwd::template get<T, 64, 64>();
    case 96: return Fwd::template get<T, 96, 96>();
    case 128: return Fwd::template get<T, 128, 128>();
    case 192: return Fwd::template get<T, 192, 192>();
    case 256: return Fwd::template get<T, 256, 256>();
    default: return nullptr;
  }
}

// The Hopper forward (wgmma) for equal padded head dims 64/128/256 where the Hopper kernels run (host_devices.h).
// nullptr: use the portable tensor-core kernel.
template <class T> LaunchFn select_sm90(const flashport_problem* p, int dqk, int dv) {
#if defined(FLASHPORT_CUDA_HAVE_SM90)
  if (dqk != dv || !flashport::cuda_host::hopper_kernels(p->device_id)) return nullptr;
  switch (dqk) {
    case 64: return flashport::kernels::launch_fwd_sm90<T, 64>;
    case 128: return flashport::kernels::launch_fwd_sm90<T, 128>;
    case 256: return flashport::kernels::launch_fwd_sm90<T, 256>;
    default: return nullptr;
  }
#else
  (void)p; (void)dqk; (void)dv;
  return nullptr;
#endif
}

template <class T> LaunchFn select_tensor_core(const flashport_problem* p, int dqk, int dv) {
  const LaunchFn hopper = select_sm90<T>(p, dqk, dv);
  return hopper != nullptr ? hopper : select_16bit<TensorCoreFwd, T>(dqk, dv);
}

// The forward kernel for p, or nullptr with the reason in why. p->device_id is valid (common_supports).
LaunchFn select_forward(const flashport_problem* p, char* why, size_t why_len, bool fma) {
  const int dqk = pad_dim(p->head_dim_qk), dv = pad_dim(p->head_dim_v);
  if (p->head_dim_qk > 256 || p->head_dim_v > 256 || dqk == 0 || dv == 0) {
    say(why, why_len, "head dims (%lld, %lld): the CUDA backend supports up to 256", (long long)p->head_dim_qk,
        (long long)p->head_dim_v);
    return nullptr;
  }
  switch (p->dtype) {
    case FLASHPORT_DTYPE_F16:
      return fma ? select_16bit<FmaFwd, flashport::vendor::half_t>(dqk, dv)
                 : select_tensor_core<flashport::vendor::half_t>(p, dqk, dv);
    case FLASHPORT_DTYPE_BF16:
      return fma ? select_16bit<FmaFwd, flashport::vendor::bf16_t>(dqk, dv)
                 : select_tensor_core<flashport::vendor::bf16_t>(p, dqk, dv);
    case FLASHPORT_DTYPE_F32: return flashport::kernels::launch_fwd_f32;
    default: say(why, why_len, "dtype %d has no CUDA kernel", p->dtype); return nullptr;
  }
}

// Checks shared by both directions: the device and the layout rules of the GPU kernels.
bool common_supports(const flashport_problem* p, char* why, size_t why_len) {
  DeviceTable& t = devices();
  if (p->device_id < 0 || p->device_id >= static_cast<int>(t.cc.size())) {
    say(why, why_len, "CUDA device %d does not exist (%zu found)", p->device_id, t.cc.size());
    return false;
  }
  if (t.cc[p->device_id] < kMinCC) {
    say(why, why_len, "CUDA device %d has compute capability %d.%d; the CUDA backend needs 8.0 or newer",
        p->device_id, t.cc[p->device_id] / 10, t.cc[p->device_id] % 10);
    return false;
  }
  struct Named { const char* name; const flashport_operand* op; };
  const Named ops[] = {{"q", &p->q}, {"k", &p->k}, {"v", &p->v}, {"out", &p->out}};
  for (const Named& o : ops) {
    if (o.op->stride[3] != 1) {
      say(why, why_len, "%s.strides[3] (head_dim stride) is %lld; the CUDA backend needs head_dim contiguous (1)",
          o.name, (long long)o.op->stride[3]);
      return false;
    }
  }
  int dim = 0;
  int64_t stride = 0;
  if (const char* name = flashport_problem_negative_stride(p, &dim, &stride)) {
    say(why, why_len, "%s.strides[%d] is %lld; the CUDA backend needs non-negative strides (its kernels are not "
        "verified with negative ones)", name, dim, (long long)stride);
    return false;
  }
  // Grid: x = query blocks, y = heads_q, z = batch (y and z are limited to 65535); row indices are int.
  if (p->heads_q > 65535 || p->batch > 65535 || p->seqlen_q > INT_MAX / 2 || p->seqlen_kv > INT_MAX / 2) {
    say(why, why_len, "batch %lld / heads_q %lld / seqlens (%lld, %lld) exceed the CUDA launch limits (65535 "
        "batch, 65535 heads, 2^30 rows)", (long long)p->batch, (long long)p->heads_q, (long long)p->seqlen_q,
        (long long)p->seqlen_kv);
    return false;
  }
  return true;
}

int32_t supports_variant(const flashport_problem* p, char* why, size_t why_len, bool fma) {
  if (!common_supports(p, why, why_len)) return 0;
  if (p->direction == FLASHPORT_DIRECTION_BACKWARD) {
#if defined(FLASHPORT_CUDA_HAVE_BACKWARD)
    // cuda-fma: the same backward with the FMA tiles and AMD's block shapes (fwd_fma.h).
    return fma ? flashport_cuda_fma_backward_supports(p, why, why_len)
               : flashport_cuda_backward_supports(p, why, why_len);
#else
    say(why, why_len, "backward not built yet (this module was built without src/cuda/backward.cu)");
    return 0;
#endif
  }
  return select_forward(p, why, why_len, fma) != nullptr ? 1 : 0;
}
int32_t supports(const flashport_problem* p, char* why, size_t why_len) { return supports_variant(p, why, why_len, false); }
int32_t supports_fma(const flashport_problem* p, char* why, size_t why_len) {
#if !defined(FLASHPORT_CUDA_HAVE_FMA)
  // The FMA instances are slow to compile (nvcc fully unrolls the scalar tile loops), so they are opt-in; the same
  // source is still compiled in every build of the HIP module (gfx1030 and the fallback use it).
  (void)p;
  say(why, why_len, "this libflashport_cuda.so was built without the cuda-fma kernels (configure with "
                    "-DFLASHPORT_CUDA_FMA=ON)");
  return 0;
#else
  return supports_variant(p, why, why_len, true);
#endif
}

size_t workspace_size(const flashport_problem* p) {
#if defined(FLASHPORT_CUDA_HAVE_BACKWARD)
  if (p->direction == FLASHPORT_DIRECTION_BACKWARD) return flashport_cuda_backward_workspace_size(p);
#endif
  (void)p;
  return 0;  // the forward keeps everything in registers and shared memory
}
size_t workspace_size_fma(const flashport_problem* p) {
#if defined(FLASHPORT_CUDA_HAVE_BACKWARD)
  if (p->direction == FLASHPORT_DIRECTION_BACKWARD) return flashport_cuda_fma_backward_workspace_size(p);
#endif
  (void)p;
  return 0;
}

bool aligned(const void* ptr, size_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; }

FwdParams forward_params(const flashport_problem* p) {
  FwdParams f{};
  f.q = p->q.data;
  f.k = p->k.data;
  f.v = p->v.data;
  f.out = p->out.data;
  f.lse = static_cast<float*>(p->lse.data);
  for (int i = 0; i < 3; ++i) {
    f.q_stride[i] = p->q.stride[i];
    f.k_stride[i] = p->k.stride[i];
    f.v_stride[i] = p->v.stride[i];
    f.out_stride[i] = p->out.stride[i];
    f.lse_stride[i] = p->lse.stride[i];
  }
  f.batch = static_cast<int>(p->batch);
  f.seqlen_q = static_cast<int>(p->seqlen_q);
  f.seqlen_kv = static_cast<int>(p->seqlen_kv);
  f.heads_q = static_cast<int>(p->heads_q);
  f.heads_kv = static_cast<int>(p->heads_kv);
  f.head_dim_qk = static_cast<int>(p->head_dim_qk);
  f.head_dim_v = static_cast<int>(p->head_dim_v);
  f.heads_ratio = static_cast<int>(p->heads_q / p->heads_kv);
  f.scale = p->scale;
  f.scale_log2 = p->scale * 1.4426950408889634f;
  f.softcap = p->softcap;
  f.mask_offset = p->mask_offset;
  f.window_left = p->window_left;
  f.window_right = p->window_right;
  // 16-byte chunks need every row start 16-byte aligned: base pointers and all row strides in 16-byte multiples.
  const size_t elem = p->dtype == FLASHPORT_DTYPE_F32 ? 4 : 2;
  const size_t per_chunk = 16 / elem;
  bool vec = p->head_dim_qk % per_chunk == 0 && p->head_dim_v % per_chunk == 0;
  for (const flashport_operand* o : {&p->q, &p->k, &p->v}) {
    vec = vec && aligned(o->data, 16);
    for (int i = 0; i < 3; ++i) vec = vec && o->stride[i] % static_cast<int64_t>(per_chunk) == 0;
  }
  f.vec_loads = vec;
  bool vec_out = aligned(p->out.data, 2 * elem);
  for (int i = 0; i < 3; ++i) vec_out = vec_out && p->out.stride[i] % 2 == 0;
  f.vec_stores = vec_out;
  return f;
}

// Makes device_id current for the duration of a call and restores the caller's device afterwards.
class DeviceGuard {
 public:
  cudaError_t enter(int device) {
    cudaError_t e = cudaGetDevice(&previous_);
    if (e != cudaSuccess) return e;
    if (previous_ == device) return cudaSuccess;
    e = cudaSetDevice(device);
    if (e == cudaSuccess) restore_ = true;
    return e;
  }
  ~DeviceGuard() {
    if (restore_) (void)cudaSetDevice(previous_);  // best effort: the call's own result is what is reported
  }

 private:
  int previous_ = 0;
  bool restore_ = false;
};

int32_t run_variant(const flashport_problem* p, char* err, size_t err_len, bool fma) {
  if (!common_supports(p, err, err_len)) return FLASHPORT_STATUS_UNSUPPORTED;
  if (p->direction == FLASHPORT_DIRECTION_BACKWARD) {
#if defined(FLASHPORT_CUDA_HAVE_BACKWARD)
    // The backward allocates (cudaMallocAsync) and launches on the current device: make it p->device_id.
    DeviceGuard guard;
    const cudaError_t e = guard.enter(p->device_id);
    if (e != cudaSuccess) return cuda_failure(e, "cudaSetDevice", err, err_len);
    return fma ? flashport_cuda_fma_backward_run(p, err, err_len) : flashport_cuda_backward_run(p, err, err_len);
#else
    say(err, err_len, "backward not built yet (this module was built without src/cuda/backward.cu)");
    return FLASHPORT_STATUS_UNSUPPORTED;
#endif
  }
  const LaunchFn launch = select_forward(p, err, err_len, fma);
  if (launch == nullptr) return FLASHPORT_STATUS_UNSUPPORTED;
  DeviceGuard guard;
  cudaError_t e = guard.enter(p->device_id);
  if (e != cudaSuccess) return cuda_failure(e, "cudaSetDevice", err, err_len);
  e = launch(forward_params(p), static_cast<cudaStream_t>(p->stream));
  if (e != cudaSuccess) return cuda_failure(e, "forward kernel launch", err, err_len);
  return FLASHPORT_STATUS_OK;
}

// ---- device memory slots for tools and tests --------------------------------------------------------------------

int32_t mem_alloc(int32_t device_id, size_t bytes, void** ptr, char* err, size_t err_len) {
  DeviceGuard guard;
  cudaError_t e = guard.enter(device_id);
  if (e != cudaSuccess) return cuda_failure(e, "cudaSetDevice", err, err_len);
  e = cudaMalloc(ptr, bytes);
  if (e != cudaSuccess) {
    char what[64];
    std::snprintf(what, sizeof what, "cudaMalloc(%zu bytes)", bytes);
    return cuda_failure(e, what, err, err_len);
  }
  return FLASHPORT_STATUS_OK;
}

int32_t mem_free(int32_t device_id, void* ptr, char* err, size_t err_len) {
  if (ptr == nullptr) return FLASHPORT_STATUS_OK;
  DeviceGuard guard;
  cudaError_t e = guard.enter(device_id);
  if (e != cudaSuccess) return cuda_failure(e, "cudaSetDevice", err, err_len);
  e = cudaFree(ptr);
  return e == cudaSuccess ? FLASHPORT_STATUS_OK : cuda_failure(e, "cudaFree", err, err_len);
}

int32_t mem_copy(int32_t device_id, void* dst, const void* src, size_t bytes, int32_t to_device, char* err,
                 size_t err_len) {
  DeviceGuard guard;
  cudaError_t e = guard.enter(device_id);
  if (e != cudaSuccess) return cuda_failure(e, "cudaSetDevice", err, err_len);
  e = cudaMemcpy(dst, src, bytes, to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost);
  return e == cudaSuccess ? FLASHPORT_STATUS_OK : cuda_failure(e, "cudaMemcpy", err, err_len);
}

int32_t synchronize(int32_t device_id, void* stream, char* err, size_t err_len) {
  DeviceGuard guard;
  cudaError_t e = guard.enter(device_id);
  if (e != cudaSuccess) return cuda_failure(e, "cudaSetDevice", err, err_len);
  e = cudaStreamSynchronize(static_cast<cudaStream_t>(stream));
  return e == cudaSuccess ? FLASHPORT_STATUS_OK : cuda_failure(e, "cudaStreamSynchronize", err, err_len);
}

int32_t run(const flashport_problem* p, char* err, size_t err_len) { return run_variant(p, err, err_len, false); }
int32_t run_fma(const flashport_problem* p, char* err, size_t err_len) { return run_variant(p, err, err_len, true); }

const flashport_backend_iface kBackends[] = {{
    /* .name = */ "cuda",
    /* .device_type = */ FLASHPORT_DEVICE_CUDA,
    /* .description = */ "NVIDIA GPUs (sm_80+): mma.sync tensor-core kernels for f16/bf16 (wgmma forward and backward "
                          "on Hopper in sm_90a builds), fp32 FMA path for f32",
    /* .probe = */ probe,
    /* .supports = */ supports,
    /* .workspace_size = */ workspace_size,
    /* .run = */ run,
    /* .mem_alloc = */ mem_alloc,
    /* .mem_free = */ mem_free,
    /* .mem_copy = */ mem_copy,
    /* .synchronize = */ synchronize,
    /* .combine_supports = */ nullptr,  // combine not implemented yet: reported as such, never called
    /* .combine_run = */ nullptr,
}, {
    // Listed after "cuda": requests on CUDA tensors go to the first backend that accepts them, and cuda-fma accepts
    // nothing that cuda declines, so it runs only when forced by name.
    /* .name = */ "cuda-fma",
    /* .device_type = */ FLASHPORT_DEVICE_CUDA,
    /* .description = */ "NVIDIA GPUs: forward and backward with the generic FMA tiles (and, in the backward, the "
                          "block shapes) that the HIP module runs on AMD gfx1030",
    /* .probe = */ probe,
    /* .supports = */ supports_fma,
    /* .workspace_size = */ workspace_size_fma,
    /* .run = */ run_fma,
    /* .mem_alloc = */ mem_alloc,
    /* .mem_free = */ mem_free,
    /* .mem_copy = */ mem_copy,
    /* .synchronize = */ synchronize,
    /* .combine_supports = */ nullptr,  // combine not implemented yet: reported as such, never called
    /* .combine_run = */ nullptr,
}};

}  // namespace

extern "C" FLASHPORT_MODULE_EXPORT int32_t flashport_module_init(uint32_t core_abi_version, flashport_module* out,
                                                                 char* why, size_t why_len) {
  if (out == nullptr) {
    say(why, why_len, "flashport_module_init: out is NULL");
    return 1;
  }
  out->abi_version = FLASHPORT_MODULE_ABI_VERSION;
  out->backend_count = 0;
  out->backends = nullptr;
  if (core_abi_version != FLASHPORT_MODULE_ABI_VERSION) {
    say(why, why_len, "libflashport_cuda.so was built for module ABI %u, the core has %u",
        FLASHPORT_MODULE_ABI_VERSION, core_abi_version);
    return 1;
  }
  out->backend_count = sizeof kBackends / sizeof kBackends[0];
  out->backends = kBackends;
  return 0;
}
