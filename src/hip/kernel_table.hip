// Host pass over the kernel templates of src/cuda: which kernel runs a problem, its launch shape and its parameter
// block. See kernel_table.h. Compiled by clang -x hip --cuda-host-only: it only reads constexpr configuration and
// asks the compiler for device-side symbol names, so it emits no device code and references no HIP runtime symbol.
// No <<<>>> launcher bodies in this pass (see kernels/fwd_f32.cuh): they would reference the HIP runtime.
#define FLASHPORT_NO_HOST_LAUNCHERS 1

#include "hip/kernel_table.h"

#include <climits>
#include <cstdint>

#include "kernels/fwd.cuh"
#include "kernels/fwd_f32.cuh"

namespace flashport::hip {
namespace {

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

// The variants that can run p, or nullptr with the reason.
const Variant* select_forward(const flashport_problem& p, size_t* count, std::string* why) {
  if (p.direction != FLASHPORT_DIRECTION_FORWARD) {
    *why = "the HIP module runs the forward only: the backward kernels are compiled for every AMD target, but their "
           "host side (workspace and the three launches) is not ported yet";
    return nullptr;
  }
  const struct {
    const char* name;
    const flashport_operand* op;
  } ops[] = {{"q", &p.q}, {"k", &p.k}, {"v", &p.v}, {"out", &p.out}};
  for (const auto& o : ops) {
    if (o.op->stride[3] != 1) {
      *why = std::string(o.name) + ".strides[3] (head_dim stride) is " + std::to_string(o.op->stride[3]) +
             "; the HIP backend needs head_dim contiguous (1)";
      return nullptr;
    }
  }
  // Grid: x = query blocks, y = heads_q, z = batch (y and z at most 65535); row indices are int.
  if (p.heads_q > 65535 || p.batch > 65535 || p.seqlen_q > INT_MAX / 2 || p.seqlen_kv > INT_MAX / 2) {
    *why = "batch " + std::to_string(p.batch) + " / heads_q " + std::to_string(p.heads_q) + " / seqlens (" +
           std::to_string(p.seqlen_q) + ", " + std::to_string(p.seqlen_kv) +
           ") exceed the HIP launch limits (65535 batch, 65535 heads, 2^30 rows)";
    return nullptr;
  }
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

}  // namespace

bool plan_supported(const flashport_problem& p, std::string* why) {
  size_t count = 0;
  return select_forward(p, &count, why) != nullptr;
}

size_t plan_workspace_size(const flashport_problem&) { return 0; }  // the forward needs none

int32_t plan_run(const flashport_problem& p, std::string* err) {
  size_t count = 0;
  const Variant* variants = select_forward(p, &count, err);
  if (variants == nullptr) return FLASHPORT_STATUS_UNSUPPORTED;
  KernelLaunch launches[kVariants];
  for (size_t i = 0; i < count; ++i) {
    const Variant& v = variants[i];
    launches[i] = {v.name,
                   {static_cast<unsigned>((p.seqlen_q + v.rows_per_block - 1) / v.rows_per_block),
                    static_cast<unsigned>(p.heads_q), static_cast<unsigned>(p.batch)},
                   static_cast<unsigned>(v.threads),
                   static_cast<unsigned>(v.shared_bytes)};
  }
  FwdParams params = forward_params(p);
  return launch_kernel(p.device_id, launches, count, p.stream, &params, err);
}

}  // namespace flashport::hip
