// Host-side error reporting shared by the CUDA module's translation units (module.cu, backward.cu): messages into
// the core's buffers and CUDA errors turned into flashport statuses.
#ifndef FLASHPORT_CUDA_HOST_STATUS_H
#define FLASHPORT_CUDA_HOST_STATUS_H

#include <cuda_runtime.h>

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>

#include "dispatch/backend_abi.h"

namespace flashport::cuda_host {

// printf into the core's reason/error buffer (NULL or empty buffers are ignored).
inline void say(char* buf, size_t len, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
inline void say(char* buf, size_t len, const char* fmt, ...) {
  if (buf == nullptr || len == 0) return;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

// "<what> failed: cudaErrorX (text)" and the matching status.
inline int32_t cuda_failure(cudaError_t e, const char* what, char* err, size_t len) {
  say(err, len, "%s failed: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
  return e == cudaErrorMemoryAllocation ? FLASHPORT_STATUS_OUT_OF_MEMORY : FLASHPORT_STATUS_DEVICE_ERROR;
}

}  // namespace flashport::cuda_host

#endif
