#include "dispatch/error.h"

namespace flashport {
namespace {
thread_local std::string t_message;
// Used when copying the message itself fails for lack of memory, so a failed call never reports "".
thread_local const char* t_fallback = nullptr;
}  // namespace

const char* status_name(int32_t status) noexcept {
  switch (status) {
#define FLASHPORT_STATUS_CASE(name) \
  case FLASHPORT_STATUS_##name:     \
    return "FLASHPORT_STATUS_" #name;
    FLASHPORT_STATUS_CASE(OK)
    FLASHPORT_STATUS_CASE(INVALID_ARGUMENT)
    FLASHPORT_STATUS_CASE(STRUCT_SIZE)
    FLASHPORT_STATUS_CASE(SHAPE_MISMATCH)
    FLASHPORT_STATUS_CASE(DTYPE_MISMATCH)
    FLASHPORT_STATUS_CASE(DEVICE_MISMATCH)
    FLASHPORT_STATUS_CASE(OVERFLOW)
    FLASHPORT_STATUS_CASE(ALIASING)
    FLASHPORT_STATUS_CASE(UNSUPPORTED)
    FLASHPORT_STATUS_CASE(NO_BACKEND)
    FLASHPORT_STATUS_CASE(BACKEND_UNAVAILABLE)
    FLASHPORT_STATUS_CASE(WORKSPACE_TOO_SMALL)
    FLASHPORT_STATUS_CASE(OUT_OF_MEMORY)
    FLASHPORT_STATUS_CASE(DEVICE_ERROR)
    FLASHPORT_STATUS_CASE(INTERNAL)
#undef FLASHPORT_STATUS_CASE
    default:
      return nullptr;
  }
}

void clear_last_error() noexcept {
  t_message.clear();  // keeps capacity: never allocates
  t_fallback = nullptr;
}

void set_last_error(const char* prefix, const char* detail) noexcept {
  try {
    t_message = prefix;
    t_message += detail;
    t_fallback = nullptr;
  } catch (...) {
    t_message.clear();
    t_fallback = "out of memory while recording the error message";
  }
}

const char* last_error() noexcept { return t_fallback != nullptr ? t_fallback : t_message.c_str(); }

}  // namespace flashport
