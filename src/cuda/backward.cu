// Host side of the CUDA backward (backward.h): kernel selection and the CUDA launcher of the shared launch sequence
// (kernels/bwd_host.cuh, which also holds the workspace layout and the parameter block; the HIP module runs the same
// sequence through hipModuleLaunchKernel)
//   bwd_preprocess (D, lse*log2 e, zeroed dQ accumulator) -> bwd_main (dK, dV, dQ accumulation) -> bwd_convert (dq).
// Selection, workspace sizing and launching all go through select_backward(), so they cannot disagree. Two variants:
// the tensor-core kernels ("cuda") and, in builds with FLASHPORT_CUDA_HAVE_FMA, the same main kernel with the generic
// FMA tiles and the block shapes that AMD runs ("cuda-fma", fwd_fma.h). fp32 runs kernels/bwd_f32.cuh in both.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>

#include "backward.h"
#if defined(FLASHPORT_CUDA_HAVE_FMA)
#include "fwd_fma.h"
#endif
#if defined(FLASHPORT_CUDA_HAVE_SM90)
#include "bwd_sm90.h"
#endif
#include "host_devices.h"
#include "host_status.h"
#include "kernels/bwd_f32.cuh"
#include "kernels/bwd_host.cuh"
#include "kernels/bwd_launch.cuh"
#include "kernels/bwd_rows.cuh"

namespace {

using flashport::kernels::BwdParams;
using flashport::kernels::BwdShapeInfo;
using flashport::kernels::BwdStep;
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
  BwdShapeInfo shape;
};

// The main kernel of each variant and the block shape its kernel is compiled with (BwdShapeFor, bwd_launch.cuh).
template <class T, int kDqk, int kDv> struct TensorCoreMain {
  using Shape = fk::BwdShape<kDqk, kDv>;
  static MainFn fn() { return fk::launch_bwd_main<T, kDqk, kDv>; }
};
template <class T, int kDqk, int kDv> struct FmaMain {
  using Shape = typename fk::BwdShapeFor<fk::TileMmaFma<T, 32>, kDqk, kDv>::type;
  static MainFn fn() {
#if defined(FLASHPORT_CUDA_HAVE_FMA)
    return fk::launch_bwd_main_fma<T, kDqk, kDv>;
#else
    return nullptr;  // built without -DFLASHPORT_CUDA_FMA=ON: the cuda-fma entry points decline first
#endif
  }
};

template <class T, int kDqk, int kDv, template <class, int, int> class Main> Selection pick() {
  using M = Main<T, kDqk, kDv>;
  Selection s;
  s.main = M::fn();
  s.preprocess = fk::launch_bwd_preprocess<T>;
  s.convert = fk::launch_bwd_convert<T>;
  s.shape.block_m = M::Shape::kBlockM;
  s.shape.block_n = M::Shape::kBlockN;
  return s;
}

// Actual head dims run on the smallest instantiated (padded) pair that holds them: zero-filled columns add nothing.
template <class T, template <class, int, int> class Main> Selection select_16bit(int64_t dqk, int64_t dv) {
  if (dqk <= 32 && dv <= 32) return pick<T, 32, 32, Main>();
  if (dqk <= 64 && dv <= 64) return pick<T, 64, 64, Main>();
  if (dqk <= 96 && dv <= 96) return pick<T, 96, 96, Main>();
  if (dqk <= 128 && dv <= 128) return pick<T, 128, 128, Main>();
  if (dqk <= 192 && dv <= 128) return pick<T, 192, 128, Main>();
  if (dqk <= 192 && dv <= 192) return pick<T, 192, 192, Main>();
  return pick<T, 256, 256, Main>();
}

// The Hopper main kernel (bwd_sm90.h: wgmma) for 16-bit head dims up to 128 and 193..256 where the Hopper kernels run
// (host_devices.h), deterministic mode included. Empty Selection: the portable tensor-core kernel.
template <class T> Selection select_sm90(const flashport_problem* p) {
#if defined(FLASHPORT_CUDA_HAVE_SM90)
  const int64_t widest = std::max(p->head_dim_qk, p->head_dim_v);
  // 129..192 keep the mma.sync kernel's own 192 instances rather than padding to 256.
  if ((widest > 128 && widest <= 192) || widest > 256 ||
      !flashport::cuda_host::hopper_kernels(p->device_id))
    return {};
  Selection s;
  const int d = widest <= 64 ? 64 : widest <= 128 ? 128 : 256;
  s.main = d == 64 ? fk::launch_bwd_sm90<T, 64> : d == 128 ? fk::launch_bwd_sm90<T, 128> : fk::launch_bwd_sm90<T, 256>;
  s.preprocess = fk::launch_bwd_preprocess<T>;
  s.convert = fk::launch_bwd_convert<T>;
  s.shape.block_m = fk::sm90_bwd_block_m(d);
  s.shape.block_n = fk::sm90_bwd_block_n(d);
  return s;
#else
  (void)p;
  return {};
#endif
}

template <class T> Selection select_tensor_core(const flashport_problem* p) {
  const Selection hopper = select_sm90<T>(p);
  return hopper.main != nullptr ? hopper : select_16bit<T, TensorCoreMain>(p->head_dim_qk, p->head_dim_v);
}

// The one selector. Returns an empty Selection (main == nullptr) with the reason in why.
Selection select_backward(const flashport_problem* p, bool fma, char* why, size_t why_len) {
  if (!fk::bwd_check_problem(*p, "CUDA", why, why_len)) return {};
  switch (p->dtype) {
    case FLASHPORT_DTYPE_F16:
      return fma ? select_16bit<fv::half_t, FmaMain>(p->head_dim_qk, p->head_dim_v)
                 : select_tensor_core<fv::half_t>(p);
    case FLASHPORT_DTYPE_BF16:
      return fma ? select_16bit<fv::bf16_t, FmaMain>(p->head_dim_qk, p->head_dim_v)
                 : select_tensor_core<fv::bf16_t>(p);
    case FLASHPORT_DTYPE_F32: {  // plain FMAs already: the same kernels for both variants
      Selection s;
      s.main = fk::launch_bwd_f32;
      s.preprocess = fk::launch_bwd_preprocess<float>;
      s.shape.block_m = 64;  // only pads the workspace rows; the fp32 kernels work row by row
      s.shape.block_n = 64;
      s.shape.accumulates = false;
      return s;
    }
    default: say(why, why_len, "backward: dtype %d has no CUDA kernel", p->dtype); return {};
  }
}

// The CUDA runtime side of the shared launch sequence (kernels/bwd_host.cuh).
struct CudaLauncher {
  const Selection& s;
  cudaStream_t stream;

  int32_t alloc(size_t bytes, void** ptr, const char*, char* err, size_t err_len) {
    // Stream-ordered: no device synchronisation, and the memory returns to the pool when the stream reaches the
    // free.
    const cudaError_t e = cudaMallocAsync(ptr, bytes, stream);
    return e == cudaSuccess ? FLASHPORT_STATUS_OK
                            : cuda_failure(e, "backward: cudaMallocAsync(workspace)", err, err_len);
  }
  int32_t release(void* ptr, const char*, char* err, size_t err_len) {
    const cudaError_t e = cudaFreeAsync(ptr, stream);
    return e == cudaSuccess ? FLASHPORT_STATUS_OK : cuda_failure(e, "backward: cudaFreeAsync", err, err_len);
  }
  int32_t launch(BwdStep step, const BwdParams& b, const char* what, char* err, size_t err_len) {
    const RowFn fn = step == BwdStep::kPreprocess ? s.preprocess : step == BwdStep::kMain ? s.main : s.convert;
    const cudaError_t e = fn(b, stream);
    return e == cudaSuccess ? FLASHPORT_STATUS_OK : cuda_failure(e, what, err, err_len);
  }
};

int32_t supports_variant(const flashport_problem* p, bool fma, char* why, size_t why_len) {
  if (p->dlse.data != nullptr) {  // the preprocess kernel's row sums do not take the lse gradient yet
    say(why, why_len, "dlse not supported by this backend yet");
    return 0;
  }
  const Selection s = select_backward(p, fma, why, why_len);
  if (s.main == nullptr) return 0;
  return fk::bwd_check_grids(*p, s.shape, "CUDA", why, why_len) ? 1 : 0;
}

size_t workspace_size_variant(const flashport_problem* p, bool fma) {
  const Selection s = select_backward(p, fma, nullptr, 0);
  return s.main == nullptr ? 0 : fk::bwd_layout(*p, s.shape).total;
}

int32_t run_variant(const flashport_problem* p, bool fma, char* err, size_t err_len) {
  if (!supports_variant(p, fma, err, err_len)) return FLASHPORT_STATUS_UNSUPPORTED;
  const Selection s = select_backward(p, fma, err, err_len);
  CudaLauncher launcher{s, static_cast<cudaStream_t>(p->stream)};
  return fk::bwd_run(*p, s.shape, launcher, err, err_len);
}

}  // namespace

namespace flashport::kernels {

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
  return supports_variant(p, false, why, why_len);
}
extern "C" size_t flashport_cuda_backward_workspace_size(const flashport_problem* p) {
  return workspace_size_variant(p, false);
}
extern "C" int32_t flashport_cuda_backward_run(const flashport_problem* p, char* err, size_t err_len) {
  return run_variant(p, false, err, err_len);
}

extern "C" int32_t flashport_cuda_fma_backward_supports(const flashport_problem* p, char* why, size_t why_len) {
#if defined(FLASHPORT_CUDA_HAVE_FMA)
  return supports_variant(p, true, why, why_len);
#else
  say(why, why_len, "this libflashport_cuda.so was built without the cuda-fma kernels (configure with "
                    "-DFLASHPORT_CUDA_FMA=ON)");
  return 0;
#endif
}
extern "C" size_t flashport_cuda_fma_backward_workspace_size(const flashport_problem* p) {
#if defined(FLASHPORT_CUDA_HAVE_FMA)
  return workspace_size_variant(p, true);
#else
  (void)p;
  return 0;
#endif
}
extern "C" int32_t flashport_cuda_fma_backward_run(const flashport_problem* p, char* err, size_t err_len) {
  if (!flashport_cuda_fma_backward_supports(p, err, err_len)) return FLASHPORT_STATUS_UNSUPPORTED;
  return run_variant(p, true, err, err_len);
}
