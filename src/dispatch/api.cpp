// The public C API (include/flashport/flashport.h). Every entry point that does work runs inside guarded(): it clears
// the calling thread's last error first and no exception crosses the C ABI. The pure helpers (versions,
// status strings, *_init) leave last_error alone, so `flashport_status_string(s), flashport_last_error()` in one
// printf argument list works in either evaluation order.
#include <cstring>
#include <limits>

#include "dispatch/dispatch.h"
#include "dispatch/error.h"
#include "dispatch/registry.h"
#include "dispatch/validate.h"

using namespace flashport;

namespace {

#define FLASHPORT_STR2(x) #x
#define FLASHPORT_STR(x) FLASHPORT_STR2(x)

template <class Args>
flashport_status workspace_query(const Args* args, size_t* bytes, Request (*validate)(const Args*, DataPointers)) {
  return guarded([&] {
    if (bytes == nullptr) fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "bytes is NULL");
    const size_t need = request_workspace_size(validate(args, DataPointers::optional));
    *bytes = need;
    return FLASHPORT_STATUS_OK;
  });
}

// Writes the defaults into the first struct_size bytes of the caller's struct (the caller's sizeof, which may be
// smaller than ours for an older caller, or larger for a newer one: then the unknown tail is zeroed).
template <class Args>
void init_sized(Args* args, size_t struct_size, const Args& defaults) {
  if (args == nullptr) return;
  const size_t known = struct_size < sizeof(Args) ? struct_size : sizeof(Args);
  std::memcpy(static_cast<void*>(args), static_cast<const void*>(&defaults), known);
  if (struct_size > known) std::memset(reinterpret_cast<unsigned char*>(args) + known, 0, struct_size - known);
  if (struct_size >= sizeof(size_t)) args->struct_size = struct_size;
}

// Defaults shared by the forward and backward args: zero everything, then the non-zero ones.
template <class Args>
void init_args(Args* args, size_t struct_size) {
  Args defaults{};
  defaults.mask_alignment = FLASHPORT_ALIGN_BOTTOM_RIGHT;
  defaults.window_left = -1;
  defaults.window_right = -1;
  init_sized(args, struct_size, defaults);
}

}  // namespace

extern "C" {

uint32_t flashport_version(void) { return FLASHPORT_VERSION_NUMBER; }

const char* flashport_version_string(void) {
  return FLASHPORT_STR(FLASHPORT_VERSION_MAJOR) "." FLASHPORT_STR(FLASHPORT_VERSION_MINOR) "." FLASHPORT_STR(
      FLASHPORT_VERSION_PATCH);
}

uint32_t flashport_abi_version(void) { return FLASHPORT_ABI_VERSION; }

const char* flashport_status_string(flashport_status status) {
  const char* name = status_name(status);
  return name != nullptr ? name : "unknown status";
}

const char* flashport_last_error(void) { return last_error(); }

void flashport_tensor_init_contiguous(flashport_tensor* t, void* data, flashport_dtype dtype,
                                      flashport_device_type device_type, int32_t device_id, int64_t batch,
                                      int64_t seqlen, int64_t heads, int64_t head_dim) {
  if (t == nullptr) return;
  *t = flashport_tensor{};
  t->data = data;
  t->dtype = dtype;
  t->device_type = device_type;
  t->device_id = device_id;
  const int64_t shape[FLASHPORT_RANK] = {batch, seqlen, heads, head_dim};
  // Checked products. A stride that does not fit saturates at INT64_MAX, and so does every stride outside it: the
  // element count, a multiple of that stride's true value, does not fit either, so validation refuses the tensor
  // with FLASHPORT_STATUS_OVERFLOW naming its shape. (Sizes < 1 are refused as SHAPE_MISMATCH before that.)
  constexpr int64_t kSaturated = std::numeric_limits<int64_t>::max();
  int64_t s1 = 0, s0 = 0;
  const bool s1_fits = !__builtin_mul_overflow(head_dim, heads, &s1);
  const bool s0_fits = s1_fits && !__builtin_mul_overflow(s1, seqlen, &s0);
  const int64_t strides[FLASHPORT_RANK] = {s0_fits ? s0 : kSaturated, s1_fits ? s1 : kSaturated, head_dim, 1};
  std::memcpy(t->shape, shape, sizeof shape);
  std::memcpy(t->strides, strides, sizeof strides);
}

void flashport_lse_init_contiguous(flashport_tensor* t, float* data, flashport_device_type device_type,
                                   int32_t device_id, int64_t batch, int64_t heads_q, int64_t seqlen_q) {
  // {batch, heads_q, seqlen_q, 1} is laid out exactly like a contiguous [batch, heads_q, seqlen_q, 1] tensor.
  flashport_tensor_init_contiguous(t, data, FLASHPORT_DTYPE_F32, device_type, device_id, batch, heads_q, seqlen_q, 1);
}

void flashport_forward_args_init_sized(flashport_forward_args* args, size_t struct_size) {
  init_args(args, struct_size);
}

void flashport_backward_args_init_sized(flashport_backward_args* args, size_t struct_size) {
  init_args(args, struct_size);
}

flashport_status flashport_forward(const flashport_forward_args* args) {
  return guarded([&] { return run_request(validate_forward(args, DataPointers::required)); });
}

flashport_status flashport_forward_workspace_size(const flashport_forward_args* args, size_t* bytes) {
  return workspace_query(args, bytes, validate_forward);
}

flashport_status flashport_backward(const flashport_backward_args* args) {
  return guarded([&] { return run_request(validate_backward(args, DataPointers::required)); });
}

flashport_status flashport_backward_workspace_size(const flashport_backward_args* args, size_t* bytes) {
  return workspace_query(args, bytes, validate_backward);
}

void flashport_combine_args_init_sized(flashport_combine_args* args, size_t struct_size) {
  init_sized(args, struct_size, flashport_combine_args{});  // every default is zero / NULL
}

flashport_status flashport_combine(const flashport_combine_args* args) {
  return guarded([&] {
    CombineRequest r;
    validate_combine(args, &r);
    return run_combine(r);
  });
}

void flashport_backend_info_init_sized(flashport_backend_info* info, size_t struct_size) {
  init_sized(info, struct_size, flashport_backend_info{});
}

int32_t flashport_backend_count(void) {
  int32_t count = 0;
  guarded([&] {
    count = static_cast<int32_t>(registry().size());
    return FLASHPORT_STATUS_OK;
  });
  return count;  // 0 only when building the registry failed (out of memory); last_error says so
}

flashport_status flashport_backend_info_get(int32_t index, flashport_backend_info* info) {
  return guarded([&] {
    if (info == nullptr) fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "info is NULL");
    check_struct_size(info->struct_size, FLASHPORT_PREFIX_END(flashport_backend_info, module_path), sizeof *info,
                      "info->struct_size", "flashport_backend_info", "flashport_backend_info_init");
    const std::vector<BackendEntry>& entries = registry();
    if (index < 0 || static_cast<size_t>(index) >= entries.size())
      fail(FLASHPORT_STATUS_INVALID_ARGUMENT, "index = ", index, " is out of range: there are ", entries.size(),
           " backends (flashport_backend_count())");
    const BackendEntry& e = entries[static_cast<size_t>(index)];
    flashport_backend_info local{};
    local.struct_size = info->struct_size;
    local.name = e.name.c_str();
    local.device_type = e.device_type;
    local.available = e.available() ? 1 : 0;
    local.device_count = e.device_count;
    local.status_message = e.status_message.c_str();
    local.module_path = e.module_path.c_str();
    std::memcpy(static_cast<void*>(info), &local, info->struct_size);  // only the fields the caller knows
    return FLASHPORT_STATUS_OK;
  });
}

}  // extern "C"
