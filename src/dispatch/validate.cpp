#include "dispatch/validate.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "dispatch/error.h"

namespace flashport {
namespace {

constexpr int64_t kMaxHeadDim = 256;

// No tensor can span more bytes than a process can address: x86-64 and AArch64 have 48-bit virtual addresses (their
// 57- and 52-bit extensions are opt-in, and no allocator hands out a block anywhere near this size).
constexpr int kAddressBits = 48;
constexpr uint64_t kMaxExtentBytes = uint64_t{1} << kAddressBits;

// The seven problem sizes (plus the constant 1 of lse's last dim) that tensor shapes are made of.
enum Dim : int { kBatch, kSeqQ, kSeqKv, kHeadsQ, kHeadsKv, kDimQk, kDimV, kOne, kDimCount };
const char* const kDimLabel[kDimCount] = {"batch",    "seqlen_q",    "seqlen_kv",  "heads_q",
                                          "heads_kv", "head_dim_qk", "head_dim_v", "1"};

using Layout = std::array<Dim, FLASHPORT_RANK>;
constexpr Layout kQLayout{kBatch, kSeqQ, kHeadsQ, kDimQk};
constexpr Layout kKLayout{kBatch, kSeqKv, kHeadsKv, kDimQk};
constexpr Layout kVLayout{kBatch, kSeqKv, kHeadsKv, kDimV};
constexpr Layout kOutLayout{kBatch, kSeqQ, kHeadsQ, kDimV};
constexpr Layout kLseLayout{kBatch, kHeadsQ, kSeqQ, kOne};

enum class Role { input, output };

struct Operand {
  const char* name;
  const flashport_tensor* t;
  Layout layout;
  Role role;
  flashport_operand* dst;  // where the problem receives it
  const char* null_hint;   // appended to the "data is NULL" message
  // Set by check_extent(): the bytes from the lowest to the end of the highest addressed element (with negative
  // strides the lowest lies below data), and the address of the lowest byte (0 while data is NULL).
  uint64_t bytes = 0;
  uintptr_t first = 0;
};

// The caller's options, common to forward and backward.
struct Options {
  float softmax_scale;
  float softcap;
  int32_t causal;
  int32_t mask_alignment;
  int64_t window_left;
  int64_t window_right;
  int32_t deterministic;
};

int64_t element_size(int32_t dtype) { return dtype == FLASHPORT_DTYPE_F32 ? 4 : 2; }

bool known_dtype(int32_t d) {
  return d == FLASHPORT_DTYPE_F32 || d == FLASHPORT_DTYPE_F16 || d == FLASHPORT_DTYPE_BF16;
}

bool known_device(int32_t d) {
  return d == FLASHPORT_DEVICE_CPU || d == FLASHPORT_DEVICE_CUDA || d == FLASHPORT_DEVICE_ROCM;
}

std::string device_name(const flashport_tensor& t) {
  return cat(device_type_name(t.device_type), " device ", t.device_id);
}

void check_flag(int32_t value, const char* name) {
  if (value != 0 && value != 1) fail(FLASHPORT_STATUS_INVALID_ARGUMENT, name, " = ", value, "; must be 0 or 1");
}

// The score factors every backend forms from the options (include/flashport/flashport.h, softmax_scale and
// softcap): the GPU kernels multiply scores by softmax_scale * log2(e), or by softcap * log2(e) after the tanh, in
// float with this log2(e) (kernels/common.cuh's kLog2e), and by softmax_scale / softcap and softmax_scale *
// (1 / softcap) before it; the CPU multiplies q by softmax_scale / softcap and dk by softmax_scale divided by that.
// Where such a factor overflowed or fell to 0, rows with visible keys would come out NaN or 0 whatever the data.
constexpr float kLog2e = 1.4426950408889634f;
// The largest float x with x * kLog2e finite: FLT_MAX / log2(e) rounded down (the next float's product is inf).
constexpr float kMaxScoreFactor = 0x1.62e42ep+127f;
static_assert(kMaxScoreFactor * kLog2e <= std::numeric_limits<float>::max(), "softmax_scale * log2(e) overflows");

// The shortest decimal that reads back as x, so that a bound in a message can be passed as it is printed.
std::string float_text(float x) {
  char buf[32];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

void check_options(const Options& o) {
  if (!std::isfinite(o.softmax_scale) || o.softmax_scale < 0 || o.softmax_scale > kMaxScoreFactor)
    fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "softmax_scale = ", float_text(o.softmax_scale),
         "; must be finite, >= 0 and <= ", float_text(kMaxScoreFactor),
         " (FLT_MAX / log2(e): the kernels multiply scores by softmax_scale * log2(e)); 0 means 1/sqrt(head_dim_qk)");
  if (!std::isfinite(o.softcap) || o.softcap < 0)
    fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "softcap = ", float_text(o.softcap),
         "; must be finite and >= 0 (0 means off)");
  if (o.softcap > 0 && (o.softcap < std::numeric_limits<float>::min() || o.softcap > kMaxScoreFactor))
    fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "softcap = ", float_text(o.softcap), "; must be 0 (off) or in [",
         float_text(std::numeric_limits<float>::min()), ", ", float_text(kMaxScoreFactor),
         "] (FLT_MIN to FLT_MAX / log2(e): the kernels use 1 / softcap and softcap * log2(e))");
  check_flag(o.causal, "causal");
  check_flag(o.deterministic, "deterministic");
  if (o.mask_alignment != FLASHPORT_ALIGN_BOTTOM_RIGHT && o.mask_alignment != FLASHPORT_ALIGN_TOP_LEFT)
    fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "mask_alignment = ", o.mask_alignment,
         "; must be FLASHPORT_ALIGN_BOTTOM_RIGHT (0) or FLASHPORT_ALIGN_TOP_LEFT (1)");
}

// softcap > 0 with the resolved scale: softmax_scale / softcap and softmax_scale * (1 / softcap), the factors of
// the scores before the tanh, must be finite normal floats (a subnormal or zero one loses the scores' bits, and the
// CPU backward divides by it). check_options() has bounded each option on its own.
bool softcap_factors_ok(float scale, float softcap) {
  const float a = scale / softcap, b = scale * (1.0f / softcap);
  const float lo = std::numeric_limits<float>::min(), hi = std::numeric_limits<float>::max();
  return a >= lo && a <= hi && b >= lo && b <= hi;
}

// The first u in [lo, end) with pred(u), where pred is false and then true over the range; end when it never holds.
template <class Pred>
uint32_t first_where(uint32_t lo, uint32_t end, Pred pred) {
  while (lo < end) {
    const uint32_t mid = lo + (end - lo) / 2;
    if (pred(mid)) {
      end = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

void check_softcap_factor(float scale, float softcap) {
  if (softcap_factors_ok(scale, softcap)) return;
  // The softcaps that work with this scale form one interval (both factors fall as softcap grows): its ends, found
  // over the bit patterns of [FLT_MIN, kMaxScoreFactor] (positive floats are ordered as their bits are).
  const auto bits = [](float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
  };
  const auto value = [](uint32_t u) {
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
  };
  const float max = std::numeric_limits<float>::max();
  const uint32_t end = bits(kMaxScoreFactor) + 1;
  const uint32_t first = first_where(bits(std::numeric_limits<float>::min()), end, [&](uint32_t u) {
    return scale / value(u) <= max && scale * (1.0f / value(u)) <= max;
  });
  const uint32_t past = first_where(first, end, [&](uint32_t u) { return !softcap_factors_ok(scale, value(u)); });
  fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "softcap = ", float_text(softcap), " with the resolved softmax_scale ",
       float_text(scale), ": softmax_scale / softcap = ", float_text(scale / softcap),
       " must be a finite normal float (the kernels multiply scores by it before the tanh); with this scale softcap "
       "must be in [",
       float_text(value(first)), ", ", float_text(value(past - 1)), "]");
}

// Checks of one tensor on its own.
void check_tensor(const Operand& op, DataPointers data) {
  const flashport_tensor& t = *op.t;
  const char* n = op.name;
  if (data == DataPointers::required && t.data == nullptr)
    fail(FLASHPORT_STATUS_INVALID_ARGUMENT, n, ".data is NULL", op.null_hint);
  if (t.reserved_ != 0) fail(FLASHPORT_STATUS_INVALID_ARGUMENT, n, ".reserved_ = ", t.reserved_, "; must be 0");
  if (!known_dtype(t.dtype))
    fail(FLASHPORT_STATUS_DTYPE_MISMATCH, n, ".dtype = ", t.dtype,
         " is not a flashport_dtype (F32 1, F16 2, BF16 3)");
  if (!known_device(t.device_type))
    fail(FLASHPORT_STATUS_DEVICE_MISMATCH, n, ".device_type = ", t.device_type,
         " is not a flashport_device_type (CPU 1, CUDA 2, ROCm 10)");
  if (t.device_id < 0) fail(FLASHPORT_STATUS_INVALID_ARGUMENT, n, ".device_id = ", t.device_id, "; must be >= 0");
  // Every element is then aligned too: strides count elements.
  if (reinterpret_cast<uintptr_t>(t.data) % static_cast<uint64_t>(element_size(t.dtype)) != 0)
    fail(FLASHPORT_STATUS_INVALID_ARGUMENT, n, ".data = ", t.data, " is not aligned to its element size (",
         element_size(t.dtype), " bytes for ", dtype_name(t.dtype), ")");
  for (int d = 0; d < FLASHPORT_RANK; ++d) {
    if (t.shape[d] < 1)
      fail(FLASHPORT_STATUS_SHAPE_MISMATCH, n, ".shape[", d, "] (", kDimLabel[op.layout[d]], ") = ", t.shape[d],
           "; every size must be >= 1");
  }
}

// dtype and device agreement with q (the first operand), lse always F32.
void check_agreement(const std::vector<Operand>& ops) {
  const Operand& ref = ops.front();
  for (const Operand& op : ops) {
    const flashport_tensor& t = *op.t;
    if (op.layout == kLseLayout) {
      if (t.dtype != FLASHPORT_DTYPE_F32)
        fail(FLASHPORT_STATUS_DTYPE_MISMATCH, op.name, ".dtype = ", dtype_name(t.dtype), "; lse must be F32");
    } else if (t.dtype != ref.t->dtype) {
      fail(FLASHPORT_STATUS_DTYPE_MISMATCH, op.name, ".dtype = ", dtype_name(t.dtype), " differs from ", ref.name,
           ".dtype = ", dtype_name(ref.t->dtype), "; all tensors but lse must share one dtype");
    }
    if (t.device_type != ref.t->device_type || t.device_id != ref.t->device_id)
      fail(FLASHPORT_STATUS_DEVICE_MISMATCH, op.name, " is on ", device_name(t), " but ", ref.name, " is on ",
           device_name(*ref.t), "; all tensors must be on one device");
  }
}

// Binds every Dim to the first operand that has it and checks that all others agree. Dims no operand has stay 0.
std::array<int64_t, kDimCount> bind_sizes(const std::vector<Operand>& ops) {
  std::array<int64_t, kDimCount> size{};
  std::array<const Operand*, kDimCount> from{};
  std::array<int, kDimCount> from_dim{};
  size[kOne] = 1;
  for (const Operand& op : ops) {
    for (int d = 0; d < FLASHPORT_RANK; ++d) {
      const Dim dim = op.layout[d];
      const int64_t s = op.t->shape[d];
      if (dim == kOne) {
        if (s != 1) fail(FLASHPORT_STATUS_SHAPE_MISMATCH, op.name, ".shape[", d, "] = ", s, "; must be 1");
      } else if (from[dim] == nullptr) {
        size[dim] = s;
        from[dim] = &op;
        from_dim[dim] = d;
      } else if (s != size[dim]) {
        fail(FLASHPORT_STATUS_SHAPE_MISMATCH, op.name, ".shape[", d, "] (", kDimLabel[dim], " = ", s,
             ") differs from ", from[dim]->name, ".shape[", from_dim[dim], "] (", kDimLabel[dim], " = ", size[dim],
             ")");
      }
    }
  }
  return size;
}

// The limits of attention's sizes (bound by bind_sizes from q, k, v, out).
void check_attention_sizes(const std::array<int64_t, kDimCount>& size) {
  if (size[kHeadsQ] % size[kHeadsKv] != 0)
    fail(FLASHPORT_STATUS_SHAPE_MISMATCH, "k.shape[2] (heads_kv = ", size[kHeadsKv], ") does not divide q.shape[2] (heads_q = ",
         size[kHeadsQ], ")");
  if (size[kDimQk] > kMaxHeadDim)
    fail(FLASHPORT_STATUS_UNSUPPORTED, "q.shape[3] (head_dim_qk = ", size[kDimQk], ") exceeds the supported maximum ",
         kMaxHeadDim);
  if (size[kDimV] > kMaxHeadDim)
    fail(FLASHPORT_STATUS_UNSUPPORTED, "v.shape[3] (head_dim_v = ", size[kDimV], ") exceeds the supported maximum ",
         kMaxHeadDim);
}

// The element count, every (size - 1) * stride, the lowest and highest element offsets (strides may be negative),
// the element extent and the byte extent fit in int64; the byte extent fits in the address space, and the byte range
// neither starts below address 0 nor wraps past the top. Sets op.bytes and op.first.
void check_extent(Operand& op) {
  const flashport_tensor& t = *op.t;
  const char* n = op.name;
  int64_t numel = 1;
  for (int d = 0; d < FLASHPORT_RANK; ++d) {
    if (__builtin_mul_overflow(numel, t.shape[d], &numel))
      fail(FLASHPORT_STATUS_OVERFLOW, n, ".shape[", d, "] = ", t.shape[d], " makes the element count of ", n,
           " (shape [", t.shape[0], ", ", t.shape[1], ", ", t.shape[2], ", ", t.shape[3], "]) overflow int64");
  }
  int64_t lowest = 0, highest = 0;  // element offsets from data, over all indices
  for (int d = 0; d < FLASHPORT_RANK; ++d) {
    int64_t last = 0;  // offset of index shape - 1 along d: it lowers the lowest offset or raises the highest
    const bool overflow = __builtin_mul_overflow(t.shape[d] - 1, t.strides[d], &last);
    int64_t& bound = last < 0 ? lowest : highest;
    if (overflow || __builtin_add_overflow(bound, last, &bound))
      fail(FLASHPORT_STATUS_OVERFLOW, n, ".shape[", d, "] = ", t.shape[d], " with ", n, ".strides[", d, "] = ",
           t.strides[d], " makes the tensor's extent overflow int64");
  }
  int64_t span = 0, bytes = 0;  // elements from the lowest to the highest, and their bytes
  if (__builtin_sub_overflow(highest, lowest, &span) || __builtin_add_overflow(span, int64_t{1}, &span))
    fail(FLASHPORT_STATUS_OVERFLOW, n, "'s element offsets run from ", lowest, " to ", highest,
         ": the extent overflows int64");
  const int64_t esize = element_size(t.dtype);
  if (__builtin_mul_overflow(span, esize, &bytes))
    fail(FLASHPORT_STATUS_OVERFLOW, n, " spans ", span, " elements of ", esize,
         " bytes: the byte extent overflows int64");
  if (static_cast<uint64_t>(bytes) > kMaxExtentBytes)
    fail(FLASHPORT_STATUS_OVERFLOW, n, " spans ", bytes, " bytes (", span, " elements of ", esize,
         "), more than 2^", kAddressBits, " = ", kMaxExtentBytes,
         " bytes, the whole 48-bit virtual address space of x86-64 and AArch64: no allocation can hold it");
  op.bytes = static_cast<uint64_t>(bytes);
  if (t.data == nullptr) return;
  // |lowest| * esize <= bytes <= 2^48: no overflow below.
  const uintptr_t data = reinterpret_cast<uintptr_t>(t.data);
  const uint64_t below = static_cast<uint64_t>(-lowest) * static_cast<uint64_t>(esize);
  if (data < below)
    fail(FLASHPORT_STATUS_OVERFLOW, n, ".data = ", t.data, " with element offsets down to ", lowest,
         " (negative strides) reaches below address 0");
  op.first = data - below;
  if (op.first > std::numeric_limits<uintptr_t>::max() - op.bytes)
    fail(FLASHPORT_STATUS_OVERFLOW, n, ".data = ", t.data, " plus its extent of ", bytes,
         " bytes wraps the address space");
}

// An output whose strides send two elements to one address would be written concurrently. Sorted by |stride|, each
// dim of size > 1 must step past everything the smaller dims span; this also accepts every ordinary layout. The sign
// of a stride does not matter: reversing a dim's index order moves every offset by the same constant.
void check_distinct_elements(const Operand& op) {
  const flashport_tensor& t = *op.t;
  // |stride| as uint64 (INT64_MIN has no int64 magnitude); a dim of size 1 has no second element and is skipped.
  auto magnitude = [&](int d) {
    return t.strides[d] < 0 ? uint64_t{0} - static_cast<uint64_t>(t.strides[d]) : static_cast<uint64_t>(t.strides[d]);
  };
  std::array<int, FLASHPORT_RANK> order{0, 1, 2, 3};
  std::sort(order.begin(), order.end(), [&](int a, int b) { return magnitude(a) < magnitude(b); });
  uint64_t span = 0;
  for (int d : order) {
    if (t.shape[d] == 1) continue;
    if (t.strides[d] == 0)
      fail(FLASHPORT_STATUS_ALIASING, op.name, ".strides[", d, "] = 0 while ", op.name, ".shape[", d, "] = ",
           t.shape[d], ": those output elements would all be written to one address");
    if (magnitude(d) <= span)
      fail(FLASHPORT_STATUS_ALIASING, op.name, ".strides[", d, "] = ", t.strides[d],
           " is not larger in magnitude than the ", span,
           " elements spanned by its smaller-stride dims: distinct output elements would share an address");
    span += static_cast<uint64_t>(t.shape[d] - 1) * magnitude(d);  // fits: check_extent() ran first
  }
}

// No output may share a byte with any other operand.
void check_aliasing(const std::vector<Operand>& ops) {
  for (const Operand& out : ops) {
    if (out.role != Role::output) continue;
    check_distinct_elements(out);
    if (out.t->data == nullptr) continue;
    // Byte ranges [first, first + bytes) from each tensor's lowest to its highest element, whatever the strides'
    // signs; check_extent() made both ends representable.
    for (const Operand& other : ops) {
      if (&other == &out || other.t->data == nullptr) continue;
      if (out.first < other.first + other.bytes && other.first < out.first + out.bytes)
        fail(FLASHPORT_STATUS_ALIASING, "output ", out.name, " (", out.bytes, " bytes from ",
             reinterpret_cast<const void*>(out.first), ") overlaps ", other.name, " (", other.bytes, " bytes from ",
             reinterpret_cast<const void*>(other.first), "); outputs must not share memory with any other tensor");
    }
  }
}

// A window bound that cannot exclude any key is the same as no bound; -1 lets backends skip the mask entirely and
// keeps i + offset +- window far from int64 overflow. (Over all rows, i + offset lies in [-seqlen_q, seqlen_kv).)
int64_t normalise_window(int64_t w, int64_t seqlen_q, int64_t seqlen_kv) {
  return (w < 0 || w >= seqlen_q + seqlen_kv) ? -1 : w;
}

// Fills everything of p but direction, stream and workspace.
void validate_common(std::vector<Operand>& ops, const Options& o, DataPointers data, flashport_problem& p) {
  check_options(o);
  for (const Operand& op : ops) check_tensor(op, data);
  check_agreement(ops);
  const std::array<int64_t, kDimCount> size = bind_sizes(ops);
  check_attention_sizes(size);
  for (Operand& op : ops) check_extent(op);
  check_aliasing(ops);

  const flashport_tensor& q = *ops.front().t;
  p.dtype = q.dtype;
  p.device_type = q.device_type;
  p.device_id = q.device_id;
  p.batch = size[kBatch];
  p.seqlen_q = size[kSeqQ];
  p.seqlen_kv = size[kSeqKv];
  p.heads_q = size[kHeadsQ];
  p.heads_kv = size[kHeadsKv];
  p.head_dim_qk = size[kDimQk];
  p.head_dim_v = size[kDimV];
  p.scale = o.softmax_scale != 0.0f ? o.softmax_scale
                                    : static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.head_dim_qk)));
  p.softcap = o.softcap;
  if (p.softcap > 0) check_softcap_factor(p.scale, p.softcap);
  p.causal = o.causal;
  p.deterministic = o.deterministic;
  p.mask_offset = o.mask_alignment == FLASHPORT_ALIGN_BOTTOM_RIGHT ? p.seqlen_kv - p.seqlen_q : 0;
  p.window_left = normalise_window(o.window_left, p.seqlen_q, p.seqlen_kv);
  p.window_right = normalise_window(o.window_right, p.seqlen_q, p.seqlen_kv);
  if (o.causal) p.window_right = 0;  // j <= i + offset is at least as strict as any window_right >= 0
  for (const Operand& op : ops) {
    op.dst->data = op.t->data;
    std::copy(op.t->strides, op.t->strides + FLASHPORT_RANK, op.dst->stride);
  }
}

// The fields forward and backward args share under the same names.
template <class Args>
Request finish(const Args& a, std::vector<Operand>& ops, const Options& o, DataPointers data, Request& r,
               flashport_direction direction) {
  validate_common(ops, o, data, r.problem);
  if (data == DataPointers::required) {  // a size query ignores the workspace fields
    if (a.workspace == nullptr && a.workspace_size != 0)
      fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "workspace_size = ", a.workspace_size,
           " but workspace is NULL; pass both, or neither to let the backend allocate");
    if (reinterpret_cast<uintptr_t>(a.workspace) % 256 != 0)
      fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "workspace = ", a.workspace, " is not 256-byte aligned");
  }
  r.problem.direction = direction;
  r.problem.stream = a.stream;
  r.problem.workspace = a.workspace;
  r.problem.workspace_size = a.workspace_size;
  r.backend = a.backend;
  return r;
}

}  // namespace

const char* dtype_name(int32_t dtype) {
  switch (dtype) {
    case FLASHPORT_DTYPE_F32: return "F32";
    case FLASHPORT_DTYPE_F16: return "F16";
    case FLASHPORT_DTYPE_BF16: return "BF16";
    default: return "unknown dtype";
  }
}

std::string device_type_name(int32_t device_type) {
  switch (device_type) {
    case FLASHPORT_DEVICE_CPU: return "CPU";
    case FLASHPORT_DEVICE_CUDA: return "CUDA";
    case FLASHPORT_DEVICE_ROCM: return "ROCm";
    default: return cat("unknown device type ", device_type);
  }
}

void check_struct_size(size_t struct_size, size_t v01_size, size_t known_size, const char* what, const char* type,
                       const char* init, const char* since) {
  if (struct_size == 0)
    fail(FLASHPORT_STATUS_STRUCT_SIZE, what, " is 0; call ", init, "() before filling the ", type);
  if (struct_size < v01_size)
    fail(FLASHPORT_STATUS_STRUCT_SIZE, what, " = ", struct_size, " is smaller than the smallest ", type,
         " this library accepts (", v01_size, " bytes, the ", since, " layout)");
  if (struct_size > known_size)
    fail(FLASHPORT_STATUS_STRUCT_SIZE, what, " = ", struct_size, " is larger than the ", known_size, "-byte ", type,
         " this library knows: the caller was built against a newer flashport header than this library (",
         FLASHPORT_VERSION_MAJOR, ".", FLASHPORT_VERSION_MINOR, ".", FLASHPORT_VERSION_PATCH, ")");
}

// The steps both directions share. The caller's struct, copied at the size it was built with (NULL refused):
template <class Args>
Args copy_args(const Args* in, size_t v01_size, const char* type, void (*init_sized)(Args*, size_t),
               const char* init_name, const char* since = "v0.1") {
  if (in == nullptr) fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "args is NULL");
  return versioned_copy(in, v01_size, type, init_sized, init_name, since);
}

// q, k, v and out, the operands both directions start with, in this order. q first: every size is bound to (and
// reported against) q where q has it. out is the forward's output and an input of the backward.
template <class Args>
std::vector<Operand> attention_operands(const Args& a, flashport_problem& p, Role out_role) {
  return {
      {"q", &a.q, kQLayout, Role::input, &p.q, ""},
      {"k", &a.k, kKLayout, Role::input, &p.k, ""},
      {"v", &a.v, kVLayout, Role::input, &p.v, ""},
      {"out", &a.out, kOutLayout, out_role, &p.out, ""},
  };
}

// The scale and mask options both directions have; deterministic exists in backward only (0 for forward).
template <class Args>
Options options_of(const Args& a, int32_t deterministic) {
  return {a.softmax_scale, a.softcap, a.causal, a.mask_alignment, a.window_left, a.window_right, deterministic};
}

Request validate_forward(const flashport_forward_args* in, DataPointers data) {
  const flashport_forward_args a =
      copy_args(in, FLASHPORT_PREFIX_END(flashport_forward_args, backend), "flashport_forward_args",
                flashport_forward_args_init_sized, "flashport_forward_args_init");
  Request r{};
  std::vector<Operand> ops = attention_operands(a, r.problem, Role::output);
  // lse is optional in forward: data == NULL means "not requested", and then its other fields are not looked at.
  if (a.lse.data != nullptr) ops.push_back({"lse", &a.lse, kLseLayout, Role::output, &r.problem.lse, ""});
  return finish(a, ops, options_of(a, 0), data, r, FLASHPORT_DIRECTION_FORWARD);
}

Request validate_backward(const flashport_backward_args* in, DataPointers data) {
  const flashport_backward_args a =
      copy_args(in, FLASHPORT_PREFIX_END(flashport_backward_args, deterministic), "flashport_backward_args",
                flashport_backward_args_init_sized, "flashport_backward_args_init");
  Request r{};
  flashport_problem& p = r.problem;
  std::vector<Operand> ops = attention_operands(a, p, Role::input);
  ops.insert(ops.end(), {
      {"lse", &a.lse, kLseLayout, Role::input, &p.lse,
       " (backward requires the log-sum-exp written by the forward call)"},
      {"dout", &a.dout, kOutLayout, Role::input, &p.dout, ""},
      {"dq", &a.dq, kQLayout, Role::output, &p.dq, ""},
      {"dk", &a.dk, kKLayout, Role::output, &p.dk, ""},
      {"dv", &a.dv, kVLayout, Role::output, &p.dv, ""},
  });
  // dlse is optional: data == NULL means absent (zero), and then its other fields are not looked at.
  if (a.dlse.data != nullptr) ops.push_back({"dlse", &a.dlse, kLseLayout, Role::input, &p.dlse, ""});
  return finish(a, ops, options_of(a, a.deterministic), data, r, FLASHPORT_DIRECTION_BACKWARD);
}

namespace {

// Combine's dtype and device rules: one device for all; lse operands F32; the parts share parts_out[0]'s dtype;
// out may have any dtype (check_tensor has checked that it is one).
void check_combine_agreement(const std::vector<Operand>& ops, const flashport_tensor* out) {
  const Operand& ref = ops.front();  // parts_out[0]
  for (const Operand& op : ops) {
    const flashport_tensor& t = *op.t;
    if (op.layout == kLseLayout) {
      if (t.dtype != FLASHPORT_DTYPE_F32)
        fail(FLASHPORT_STATUS_DTYPE_MISMATCH, op.name, ".dtype = ", dtype_name(t.dtype), "; lse tensors must be F32");
    } else if (op.t != out && t.dtype != ref.t->dtype) {
      fail(FLASHPORT_STATUS_DTYPE_MISMATCH, op.name, ".dtype = ", dtype_name(t.dtype), " differs from ", ref.name,
           ".dtype = ", dtype_name(ref.t->dtype), "; every parts_out tensor must have one dtype");
    }
    if (t.device_type != ref.t->device_type || t.device_id != ref.t->device_id)
      fail(FLASHPORT_STATUS_DEVICE_MISMATCH, op.name, " is on ", device_name(t), " but ", ref.name, " is on ",
           device_name(*ref.t), "; all tensors must be on one device");
  }
}

}  // namespace

void validate_combine(const flashport_combine_args* in, CombineRequest* r) {
  const flashport_combine_args a =
      copy_args(in, FLASHPORT_PREFIX_END(flashport_combine_args, backend), "flashport_combine_args",
                flashport_combine_args_init_sized, "flashport_combine_args_init", "v0.2");
  if (a.num_parts < 1) fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "num_parts = ", a.num_parts, "; must be >= 1");
  if (a.parts_out == nullptr)
    fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "parts_out is NULL; it must point to num_parts = ", a.num_parts,
         " tensors");
  if (a.parts_lse == nullptr)
    fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "parts_lse is NULL; it must point to num_parts = ", a.num_parts,
         " tensors");
  const size_t n = static_cast<size_t>(a.num_parts);
  // Operand names point into `names`, which is complete (never reallocated) before any Operand is made.
  std::vector<std::string> names;
  names.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    names.push_back(cat("parts_out[", i, "]"));
    names.push_back(cat("parts_lse[", i, "]"));
  }
  flashport_combine_problem& p = r->problem;
  p = flashport_combine_problem{};
  r->parts_out.assign(n, flashport_operand{});
  r->parts_lse.assign(n, flashport_operand{});
  // parts_out[0] first: every size is bound to (and reported against) it.
  std::vector<Operand> ops;
  ops.reserve(2 * n + 2);
  for (size_t i = 0; i < n; ++i) {
    ops.push_back({names[2 * i].c_str(), &a.parts_out[i], kOutLayout, Role::input, &r->parts_out[i], ""});
    ops.push_back({names[2 * i + 1].c_str(), &a.parts_lse[i], kLseLayout, Role::input, &r->parts_lse[i], ""});
  }
  ops.push_back({"out", &a.out, kOutLayout, Role::output, &p.out, ""});
  // lse is optional: data == NULL means "not requested", and then its other fields are not looked at.
  if (a.lse.data != nullptr) ops.push_back({"lse", &a.lse, kLseLayout, Role::output, &p.lse, ""});

  for (const Operand& op : ops) check_tensor(op, DataPointers::required);
  check_combine_agreement(ops, &a.out);
  const std::array<int64_t, kDimCount> size = bind_sizes(ops);
  for (Operand& op : ops) check_extent(op);
  check_aliasing(ops);

  p.part_dtype = a.parts_out[0].dtype;
  p.out_dtype = a.out.dtype;
  p.device_type = a.out.device_type;
  p.device_id = a.out.device_id;
  p.num_parts = a.num_parts;
  p.batch = size[kBatch];
  p.seqlen_q = size[kSeqQ];
  p.heads_q = size[kHeadsQ];
  p.head_dim_v = size[kDimV];
  for (const Operand& op : ops) {
    op.dst->data = op.t->data;
    std::copy(op.t->strides, op.t->strides + FLASHPORT_RANK, op.dst->stride);
  }
  p.parts_out = r->parts_out.data();
  p.parts_lse = r->parts_lse.data();
  p.stream = a.stream;
  r->backend = a.backend;
}

}  // namespace flashport
