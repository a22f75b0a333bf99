// Host pass over the kernel templates of src/cuda: which kernel runs a problem, its launch shape and its parameter
// block, forward and backward. See kernel_table.h. The backward's checks, workspace layout, parameter block and
// launch sequence are the CUDA module's (kernels/bwd_host.cuh); only the launcher (HipBwdLauncher) is HIP's.
// Compiled by clang -x hip --cuda-host-only: it only reads constexpr configuration and asks the compiler for
// device-side symbol names, so it emits no device code and references no HIP runtime symbol.
// No <<<>>> launcher bodies in this pass (see kernels/fwd_f32.cuh): they would reference the HIP runtime.
#define FLASHPORT_NO_HOST_LAUNCHERS 1

#include "hip/kernel_table.h"

#include <climits>
#include <cstdio>
#include <cstdint>

#include "kernels/bwd_f32.cuh"
#include "kernels/bwd_host.cuh"
#include "kernels/bwd_main.cuh"
#include "kernels/bwd_rows.cuh"
#include "kernels/fwd.cuh"
#include "kernels/fwd_f32.cuh"

namespace flashport::hip {
namespace {

using kernels::BwdConfig;
using kernels::BwdParams;
using kernels::BwdShapeInfo;
using kernels::BwdStep;
using kernels::FwdConfig;
using kernels::FwdParams;
using kernels::TileMmaFma;
using kernels::TileMmaMfma;
using kernels::TileMmaWmma;
// Element-type names of fwd_instances.inc (generated from the instance file names).
using f16 = vendor::half_t;
using bf16 = vendor::bf16_t;

template <class T> constexpr int32_t dtype_of();
template <> constexpr int32_t dtype_of<f16>() { return FLASHPORT_DTYPE_F16; }
template <> constexpr int32_t dtype_of<bf16>() { return FLASHPORT_DTYPE_BF16; }
template <> constexpr int32_t dtype_of<float>() { return FLASHPORT_DTYPE_F32; }

// One kernel variant: its symbol and shape; the grid's x extent is ceil(seqlen_q / rows_per_block).
struct Variant {
  const char* name;
  int rows_per_block;
  int threads;
  int shared_bytes;
};

template <class T, int kDqk, int kDv, class P> constexpr Variant fwd_variant() {
  using Cfg = FwdConfig<P, kDqk, kDv>;
  return {__builtin_get_device_side_mangled_name(kernels::fwd_kernel<T, kDqk, kDv, P>), Cfg::kBlockM,
          Cfg::kThreads, Cfg::kSmemBytes};
}

// Every policy a target may have compiled this instance with (kernels/tile_mma_amd.cuh); a code object holds one.
constexpr int kVariants = 4;
struct FwdInstance {
  int32_t dtype;
  int dqk, dv;
  Variant variants[kVariants];
};

template <class T, int kDqk, int kDv> constexpr FwdInstance fwd_instance() {
  constexpr int kBlockM = FwdConfig<TileMmaMfma<T>, kDqk, kDv>::kBlockM;
  static_assert(FwdConfig<TileMmaWmma<T>, kDqk, kDv>::kBlockM == kBlockM &&
                    FwdConfig<TileMmaFma<T, 64>, kDqk, kDv>::kBlockM == kBlockM &&
                    FwdConfig<TileMmaFma<T, 32>, kDqk, kDv>::kBlockM == kBlockM,
                "the host computes one grid and block order for every AMD policy: their block heights must agree");
  return {dtype_of<T>(),
          kDqk,
          kDv,
          {fwd_variant<T, kDqk, kDv, TileMmaMfma<T>>(), fwd_variant<T, kDqk, kDv, TileMmaWmma<T>>(),
           fwd_variant<T, kDqk, kDv, TileMmaFma<T, 64>>(), fwd_variant<T, kDqk, kDv, TileMmaFma<T, 32>>()}};
}

const FwdInstance kFwdInstances[] = {
#define FLASHPORT_HIP_FWD_INSTANCE(T, dqk, dv) fwd_instance<T, dqk, dv>(),
#include "fwd_instances.inc"
#undef FLASHPORT_HIP_FWD_INSTANCE
};

// fp32: one wavefront per query row. The instance file instantiates the 32-lane kernel (CUDA's launcher);
// device_kernels.hip adds the target's own wavefront width, which is listed first so that 64-lane targets take it.
template <int kWarp> constexpr Variant fwd_f32_variant() {
  return {__builtin_get_device_side_mangled_name(kernels::fwd_f32_kernel<kWarp>), kernels::kF32Warps,
          kernels::kF32Warps * kWarp, 0};
}
const Variant kFwdF32Variants[] = {fwd_f32_variant<64>(), fwd_f32_variant<32>()};

// The smallest instance that covers both head dims (zero-padded columns change nothing): the same choice as the CUDA
// module's padding (192/128 runs as 192x128, other unequal pairs as the larger square instance).
const FwdInstance* select_16bit(const flashport_problem& p) {
  const FwdInstance* best = nullptr;
  for (const FwdInstance& f : kFwdInstances) {
    if (f.dtype != p.dtype || f.dqk < p.head_dim_qk || f.dv < p.head_dim_v) continue;
    if (best == nullptr || f.dqk + f.dv < best->dqk + best->dv) best = &f;
  }
  return best;
}

bool aligned(const void* ptr, size_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; }

FwdParams forward_params(const flashport_problem& p) {
  FwdParams f{};
  f.q = p.q.data;
  f.k = p.k.data;
  f.v = p.v.data;
  f.out = p.out.data;
  f.lse = static_cast<float*>(p.lse.data);
  for (int i = 0; i < 3; ++i) {
    f.q_stride[i] = p.q.stride[i];
    f.k_stride[i] = p.k.stride[i];
    f.v_stride[i] = p.v.stride[i];
    f.out_stride[i] = p.out.stride[i];
    f.lse_stride[i] = p.lse.stride[i];
  }
  f.batch = static_cast<int>(p.batch);
  f.seqlen_q = static_cast<int>(p.seqlen_q);
  f.seqlen_kv = static_cast<int>(p.seqlen_kv);
  f.heads_q = static_cast<int>(p.heads_q);
  f.heads_kv = static_cast<int>(p.heads_kv);
  f.head_dim_qk = static_cast<int>(p.head_dim_qk);
  f.head_dim_v = static_cast<int>(p.head_dim_v);
  f.heads_ratio = static_cast<int>(p.heads_q / p.heads_kv);
  f.scale = p.scale;
  f.scale_log2 = p.scale * kernels::kLog2e;
  f.softcap = p.softcap;
  f.mask_offset = p.mask_offset;
  f.window_left = p.window_left;
  f.window_right = p.window_right;
  // Whole 16-byte chunks need every row start 16-byte aligned (base pointers and row strides).
  const size_t elem = p.dtype == FLASHPORT_DTYPE_F32 ? 4 : 2;
  const int64_t per_chunk = static_cast<int64_t>(16 / elem);
  bool vec = p.head_dim_qk % per_chunk == 0 && p.head_dim_v % per_chunk == 0;
  for (const flashport_operand* o : {&p.q, &p.k, &p.v}) {
    vec = vec && aligned(o->data, 16);
    for (int i = 0; i < 3; ++i) vec = vec && o->stride[i] % per_chunk == 0;
  }
  f.vec_loads = vec;
  bool vec_out = aligned(p.out.data, 2 * elem);
  for (int i = 0; i < 3; ++i) vec_out = vec_out && p.out.stride[i] % 2 == 0;
  f.vec_stores = vec_out;
  return f;
}

// Checks of both directions: head_dim strides of q, k, v, out and the sizes every grid is held to (the backward's
// grids are also checked launch by launch, bwd_grids_fit).
bool common_supported(const flashport_problem& p, std::string* why) {
  const struct {
    const char* name;
    const flashport_operand* op;
  } ops[] = {{"q", &p.q}, {"k", &p.k}, {"v", &p.v}, {"out", &p.out}};
  for (const auto& o : ops) {
    if (o.op->stride[3] != 1) {
      *why = std::string(o.name) + ".strides[3] (head_dim stride) is " + std::to_string(o.op->stride[3]) +
             "; the HIP backend needs head_dim contiguous (1)";
      return false;
    }
  }
  int dim = 0;
  int64_t stride = 0;
  if (const char* name = flashport_problem_negative_stride(&p, &dim, &stride)) {
    *why = std::string(name) + ".strides[" + std::to_string(dim) + "] is " + std::to_string(stride) +
           "; the HIP backend needs non-negative strides (its kernels are not verified with negative ones)";
    return false;
  }
  // Grid: x = query blocks, y = heads_q, z = batch (y and z at most 65535); row indices are int.
  if (p.heads_q > 65535 || p.batch > 65535 || p.seqlen_q > INT_MAX / 2 || p.seqlen_kv > INT_MAX / 2) {
    *why = "batch " + std::to_string(p.batch) + " / heads_q " + std::to_string(p.heads_q) + " / seqlens (" +
           std::to_string(p.seqlen_q) + ", " + std::to_string(p.seqlen_kv) +
           ") exceed the HIP launch limits (65535 batch, 65535 heads, 2^30 rows)";
    return false;
  }
  return true;
}

// The variants that can run the forward p, or nullptr with the reason.
const Variant* select_forward(const flashport_problem& p, size_t* count, std::string* why) {
  if (p.dtype == FLASHPORT_DTYPE_F32) {
    if (p.head_dim_qk > kernels::kF32MaxDim || p.head_dim_v > kernels::kF32MaxDim) {
      *why = "head dims (" + std::to_string(p.head_dim_qk) + ", " + std::to_string(p.head_dim_v) +
             "): the HIP fp32 kernel supports up to " + std::to_string(kernels::kF32MaxDim);
      return nullptr;
    }
    *count = sizeof kFwdF32Variants / sizeof kFwdF32Variants[0];
    return kFwdF32Variants;
  }
  const FwdInstance* f = select_16bit(p);
  if (f == nullptr) {
    *why = "head dims (" + std::to_string(p.head_dim_qk) + ", " + std::to_string(p.head_dim_v) +
           ") have no HIP forward instance for this dtype (largest: 256)";
    return nullptr;
  }
  *count = kVariants;
  return f->variants;
}

// ---- Backward --------------------------------------------------------------------------------------------------

// One main-kernel variant per policy, each checked to fit 64 KB of LDS (every head dim up to 256: at D 256 the shape
// reloads V, kernels/bwd_launch.cuh). The block shape (BwdShapeAmd) is the same for every AMD policy, so the
// workspace layout and the grid do not depend on which one a device's code object holds; only the block's thread
// count (wavefront width) does.
template <class T, int kDqk, int kDv, class P> constexpr Variant bwd_variant() {
  using Cfg = BwdConfig<P, kDqk, kDv>;
  static_assert(Cfg::kSmemBytes <= 64 * 1024, "AMD workgroups have 64 KB of LDS");
  return {__builtin_get_device_side_mangled_name(kernels::bwd_main_kernel<T, kDqk, kDv, P>), Cfg::kBlockN,
          Cfg::kThreads, Cfg::kSmemBytes};
}

struct BwdInstance {
  int32_t dtype;
  int dqk, dv;
  int block_m, block_n;
  Variant variants[kVariants];
};

template <class T, int kDqk, int kDv> constexpr BwdInstance bwd_instance() {
  using Mfma = BwdConfig<TileMmaMfma<T>, kDqk, kDv>;
  using Wmma = BwdConfig<TileMmaWmma<T>, kDqk, kDv>;
  using Fma64 = BwdConfig<TileMmaFma<T, 64>, kDqk, kDv>;
  using Fma32 = BwdConfig<TileMmaFma<T, 32>, kDqk, kDv>;
  static_assert(Mfma::kBlockM == Wmma::kBlockM && Mfma::kBlockM == Fma64::kBlockM && Mfma::kBlockM == Fma32::kBlockM &&
                    Mfma::kBlockN == Wmma::kBlockN && Mfma::kBlockN == Fma64::kBlockN &&
                    Mfma::kBlockN == Fma32::kBlockN,
                "the host sizes the workspace and the grid once for every AMD policy: their block shapes must agree");
  return {dtype_of<T>(),
          kDqk,
          kDv,
          Mfma::kBlockM,
          Mfma::kBlockN,
          {bwd_variant<T, kDqk, kDv, TileMmaMfma<T>>(), bwd_variant<T, kDqk, kDv, TileMmaWmma<T>>(),
           bwd_variant<T, kDqk, kDv, TileMmaFma<T, 64>>(), bwd_variant<T, kDqk, kDv, TileMmaFma<T, 32>>()}};
}

const BwdInstance kBwdInstances[] = {
#define FLASHPORT_HIP_BWD_INSTANCE(T, dqk, dv) bwd_instance<T, dqk, dv>(),
#include "bwd_instances.inc"
#undef FLASHPORT_HIP_BWD_INSTANCE
};

// The row kernels (32-lane row groups on any wavefront width) and the fp32 kernels at the target's wavefront width
// (device_kernels.hip instantiates exactly that one, so a code object holds one of the two).
template <class T> constexpr const char* bwd_preprocess_name() {
  return __builtin_get_device_side_mangled_name(kernels::bwd_preprocess_kernel<T>);
}
template <class T> constexpr const char* bwd_convert_name() {
  return __builtin_get_device_side_mangled_name(kernels::bwd_convert_kernel<T>);
}
template <int kWarp> constexpr Variant bwd_f32_dkdv_variant() {
  return {__builtin_get_device_side_mangled_name(kernels::bwd_f32_dkdv_kernel<kWarp>), kernels::kBwdF32Warps,
          kernels::kBwdF32Warps * kWarp, 0};
}
template <int kWarp> constexpr Variant bwd_f32_dq_variant() {
  return {__builtin_get_device_side_mangled_name(kernels::bwd_f32_dq_kernel<kWarp>), kernels::kBwdF32Warps,
          kernels::kBwdF32Warps * kWarp, 0};
}
const Variant kBwdF32DkdvVariants[] = {bwd_f32_dkdv_variant<64>(), bwd_f32_dkdv_variant<32>()};
const Variant kBwdF32DqVariants[] = {bwd_f32_dq_variant<64>(), bwd_f32_dq_variant<32>()};
constexpr size_t kBwdF32VariantCount = sizeof kBwdF32DkdvVariants / sizeof kBwdF32DkdvVariants[0];

// What runs a backward problem. main == nullptr: the fp32 path (its two kernels instead of one main kernel).
struct BwdSelection {
  BwdShapeInfo shape;
  const char* preprocess = nullptr;
  const char* convert = nullptr;  // nullptr for fp32: its kernels write dq
  const Variant* main = nullptr;
};

// The same padding rule as the forward and as the CUDA backward: the smallest instance that covers both head dims.
const BwdInstance* select_bwd_16bit(const flashport_problem& p) {
  const BwdInstance* best = nullptr;
  for (const BwdInstance& b : kBwdInstances) {
    if (b.dtype != p.dtype || b.dqk < p.head_dim_qk || b.dv < p.head_dim_v) continue;
    if (best == nullptr || b.dqk + b.dv < best->dqk + best->dv) best = &b;
  }
  return best;
}

bool select_backward(const flashport_problem& p, BwdSelection* s, std::string* why) {
  char buf[512];
  if (!kernels::bwd_check_problem(p, "HIP", buf, sizeof buf)) {
    *why = buf;
    return false;
  }
  switch (p.dtype) {
    case FLASHPORT_DTYPE_F16:
    case FLASHPORT_DTYPE_BF16: {
      const BwdInstance* b = select_bwd_16bit(p);
      if (b == nullptr) {
        *why = "backward: head dims (" + std::to_string(p.head_dim_qk) + ", " + std::to_string(p.head_dim_v) +
               ") have no HIP backward instance for this dtype (largest: 256)";
        return false;
      }
      const bool half = p.dtype == FLASHPORT_DTYPE_F16;
      s->shape.block_m = b->block_m;
      s->shape.block_n = b->block_n;
      s->shape.accumulates = true;
      s->preprocess = half ? bwd_preprocess_name<f16>() : bwd_preprocess_name<bf16>();
      s->convert = half ? bwd_convert_name<f16>() : bwd_convert_name<bf16>();
      s->main = b->variants;
      return true;
    }
    case FLASHPORT_DTYPE_F32:
      s->shape.block_m = 64;  // only pads the workspace rows; the fp32 kernels work row by row
      s->shape.block_n = 64;
      s->shape.accumulates = false;
      s->preprocess = bwd_preprocess_name<float>();
      s->convert = nullptr;
      s->main = nullptr;
      return true;
    default:
      *why = "backward: dtype " + std::to_string(p.dtype) + " has no HIP kernel";
      return false;
  }
}

// The launches of one step: at most two (fp32 main: dK/dV, then dQ), each with its variants (a code object holds
// one of them).
struct StepLaunches {
  KernelLaunch launch[2][kVariants];
  size_t candidates[2] = {0, 0};
  size_t count = 0;
};

KernelLaunch launch_of(const char* name, const unsigned grid[3], unsigned threads, unsigned shared) {
  return {name, {grid[0], grid[1], grid[2]}, threads, shared};
}

StepLaunches bwd_step(const BwdSelection& s, BwdStep step, const BwdParams& b) {
  StepLaunches out;
  if (step == BwdStep::kPreprocess || step == BwdStep::kConvert) {
    const unsigned grid[3] = {static_cast<unsigned>(kernels::bwd_row_blocks(b)), 1, 1};
    out.launch[0][0] = launch_of(step == BwdStep::kPreprocess ? s.preprocess : s.convert, grid,
                                 kernels::kBwdRowThreads, 0);
    out.candidates[0] = 1;
    out.count = 1;
  } else if (s.main != nullptr) {
    unsigned grid[3];
    kernels::bwd_main_grid(b, grid);
    for (size_t i = 0; i < static_cast<size_t>(kVariants); ++i)
      out.launch[0][i] = launch_of(s.main[i].name, grid, static_cast<unsigned>(s.main[i].threads),
                                   static_cast<unsigned>(s.main[i].shared_bytes));
    out.candidates[0] = kVariants;
    out.count = 1;
  } else {
    unsigned kv[3], q[3];
    kernels::bwd_f32_grids(b, kv, q);
    for (size_t i = 0; i < kBwdF32VariantCount; ++i) {
      out.launch[0][i] = launch_of(kBwdF32DkdvVariants[i].name, kv,
                                   static_cast<unsigned>(kBwdF32DkdvVariants[i].threads), 0);
      out.launch[1][i] = launch_of(kBwdF32DqVariants[i].name, q,
                                   static_cast<unsigned>(kBwdF32DqVariants[i].threads), 0);
    }
    out.candidates[0] = out.candidates[1] = kBwdF32VariantCount;
    out.count = 2;
  }
  return out;
}

// hipModuleLaunchKernel counts work-items: grid extent times block size must fit 32 bits in each dimension (the
// y and z extents are held to 65535). Checked on every launch a problem would make, in both directions.
bool launch_fits(const KernelLaunch& k, const char* direction, std::string* why) {
  if (uint64_t(k.grid[0]) * k.block <= 0xffffffffULL && k.grid[1] <= 65535 && k.grid[2] <= 65535) return true;
  *why = std::string(direction) + ": the grid (" + std::to_string(k.grid[0]) + ", " + std::to_string(k.grid[1]) +
         ", " + std::to_string(k.grid[2]) + ") of " + std::to_string(k.block) +
         "-thread blocks exceeds the HIP launch limits (2^32 work-items in x, 65535 blocks in y and z)";
  return false;
}

bool bwd_grids_fit(const flashport_problem& p, const BwdSelection& s, std::string* why) {
  const BwdParams b = kernels::bwd_params(p, s.shape, nullptr, kernels::bwd_layout(p, s.shape));
  for (BwdStep step : {BwdStep::kPreprocess, BwdStep::kMain, BwdStep::kConvert}) {
    if (step == BwdStep::kConvert && !s.shape.accumulates) continue;
    const StepLaunches l = bwd_step(s, step, b);
    for (size_t i = 0; i < l.count; ++i)
      for (size_t v = 0; v < l.candidates[i]; ++v)
        if (!launch_fits(l.launch[i][v], "backward", why)) return false;
  }
  return true;
}

// The forward's launch candidates (one per policy variant) and parameter block, or false with the reason: what
// plan_supported checks and plan_run queues.
bool forward_plan(const flashport_problem& p, KernelLaunch (&launches)[kVariants], size_t* count, FwdParams* params,
                  std::string* why) {
  const Variant* variants = select_forward(p, count, why);
  if (variants == nullptr) return false;
  // One grid for every candidate: their block heights agree (fwd_instance). fp32 (fwd_f32.cuh): query-row blocks x
  // heads x batch; 16-bit (fwd.cuh): the block order of kernels/fwd_common.cuh.
  *params = forward_params(p);
  const int rows = variants[0].rows_per_block;
  unsigned grid[3] = {static_cast<unsigned>((p.seqlen_q + rows - 1) / rows), static_cast<unsigned>(p.heads_q),
                      static_cast<unsigned>(p.batch)};
  if (p.dtype != FLASHPORT_DTYPE_F32 && !kernels::fwd_grid_order(params, rows, 2, grid)) {
    *why = "forward: " + std::to_string(p.seqlen_q) + " queries x " + std::to_string(p.heads_q) +
           " heads need more than 2^31 - 1 blocks";
    return false;
  }
  for (size_t i = 0; i < *count; ++i) {
    const Variant& v = variants[i];
    launches[i] = {v.name, {grid[0], grid[1], grid[2]}, static_cast<unsigned>(v.threads),
                   static_cast<unsigned>(v.shared_bytes)};
    if (!launch_fits(launches[i], "forward", why)) return false;
  }
  return true;
}

bool backward_supported(const flashport_problem& p, BwdSelection* s, std::string* why) {
  if (p.dlse.data != nullptr) {  // the preprocess kernel's row sums do not take the lse gradient yet
    *why = "dlse not supported by this backend yet";
    return false;
  }
  char buf[512];
  if (!select_backward(p, s, why)) return false;
  if (!kernels::bwd_check_grids(p, s->shape, "HIP", buf, sizeof buf)) {
    *why = buf;
    return false;
  }
  return bwd_grids_fit(p, *s, why);
}

// The HIP side of the shared launch sequence (kernels/bwd_host.cuh).
struct HipBwdLauncher {
  const flashport_problem& p;
  const BwdSelection& s;
  bool stream_ordered = true;

  static int32_t fail(int32_t status, const char* what, const std::string& msg, char* err, size_t err_len) {
    std::snprintf(err, err_len, "%s: %s", what, msg.c_str());
    return status;
  }
  int32_t alloc(size_t bytes, void** ptr, const char* what, char* err, size_t err_len) {
    std::string msg;
    const int32_t st = device_alloc(p.device_id, bytes, p.stream, ptr, &stream_ordered, &msg);
    return st == FLASHPORT_STATUS_OK ? st : fail(st, what, msg, err, err_len);
  }
  int32_t release(void* ptr, const char* what, char* err, size_t err_len) {
    std::string msg;
    const int32_t st = device_free(p.device_id, ptr, p.stream, stream_ordered, &msg);
    return st == FLASHPORT_STATUS_OK ? st : fail(st, what, msg, err, err_len);
  }
  int32_t launch(BwdStep step, const BwdParams& b, const char* what, char* err, size_t err_len) {
    const StepLaunches l = bwd_step(s, step, b);
    for (size_t i = 0; i < l.count; ++i) {
      BwdParams params = b;  // the runtime copies the block at launch
      std::string msg;
      const int32_t st = launch_kernel(p.device_id, l.launch[i], l.candidates[i], p.stream, &params, &msg);
      if (st != FLASHPORT_STATUS_OK) return fail(st, what, msg, err, err_len);
    }
    return FLASHPORT_STATUS_OK;
  }
};

}  // namespace

bool plan_supported(const flashport_problem& p, std::string* why) {
  if (!common_supported(p, why)) return false;
  if (p.direction == FLASHPORT_DIRECTION_BACKWARD) {
    BwdSelection s;
    return backward_supported(p, &s, why);
  }
  KernelLaunch launches[kVariants];
  size_t count = 0;
  FwdParams params;
  return forward_plan(p, launches, &count, &params, why);
}

size_t plan_workspace_size(const flashport_problem& p) {
  if (p.direction != FLASHPORT_DIRECTION_BACKWARD) return 0;  // the forward needs none
  BwdSelection s;
  std::string why;
  if (!common_supported(p, &why) || !backward_supported(p, &s, &why)) return 0;
  return kernels::bwd_layout(p, s.shape).total;
}

int32_t plan_run(const flashport_problem& p, std::string* err) {
  if (!common_supported(p, err)) return FLASHPORT_STATUS_UNSUPPORTED;
  if (p.direction == FLASHPORT_DIRECTION_BACKWARD) {
    BwdSelection s;
    if (!backward_supported(p, &s, err)) return FLASHPORT_STATUS_UNSUPPORTED;
    HipBwdLauncher launcher{p, s};
    char buf[1024];
    const int32_t status = kernels::bwd_run(p, s.shape, launcher, buf, sizeof buf);
    if (status != FLASHPORT_STATUS_OK) *err = buf;
    return status;
  }
  KernelLaunch launches[kVariants];
  size_t count = 0;
  FwdParams params;
  if (!forward_plan(p, launches, &count, &params, err)) return FLASHPORT_STATUS_UNSUPPORTED;
  return launch_kernel(p.device_id, launches, count, p.stream, &params, err);
}

std::vector<KernelGroup> kernel_groups() {
  std::vector<KernelGroup> out;
  const auto dims = [](int dqk, int dv) { return std::to_string(dqk) + "x" + std::to_string(dv); };
  const auto dtype_name = [](int32_t d) {
    return std::string(d == FLASHPORT_DTYPE_F16 ? "f16" : d == FLASHPORT_DTYPE_BF16 ? "bf16" : "f32");
  };
  const auto names = [](const Variant* v, size_t n) {
    std::vector<std::string> r;
    for (size_t i = 0; i < n; ++i) r.push_back(v[i].name);
    return r;
  };
  for (const FwdInstance& f : kFwdInstances)
    out.push_back({"fwd " + dtype_name(f.dtype) + " " + dims(f.dqk, f.dv), names(f.variants, kVariants)});
  out.push_back({"fwd f32", names(kFwdF32Variants, sizeof kFwdF32Variants / sizeof kFwdF32Variants[0])});
  for (const BwdInstance& b : kBwdInstances)
    out.push_back({"bwd_main " + dtype_name(b.dtype) + " " + dims(b.dqk, b.dv), names(b.variants, kVariants)});
  out.push_back({"bwd_preprocess f16", {bwd_preprocess_name<f16>()}});
  out.push_back({"bwd_preprocess bf16", {bwd_preprocess_name<bf16>()}});
  out.push_back({"bwd_preprocess f32", {bwd_preprocess_name<float>()}});
  out.push_back({"bwd_convert f16", {bwd_convert_name<f16>()}});
  out.push_back({"bwd_convert bf16", {bwd_convert_name<bf16>()}});
  out.push_back({"bwd_f32_dkdv", names(kBwdF32DkdvVariants, kBwdF32VariantCount)});
  out.push_back({"bwd_f32_dq", names(kBwdF32DqVariants, kBwdF32VariantCount)});
  return out;
}

}  // namespace flashport::hip
