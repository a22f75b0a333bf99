// The CPU backend's interface table: it accepts every validated request and dispatches on (direction, dtype) to the
// kernel instantiations. No exception leaves this file.
#include "cpu/cpu_backend.h"

#include <cstdio>
#include <new>
#include <string>

#include "cpu/cpu_combine.h"
#include "cpu/cpu_isa.h"
#include "cpu/cpu_kernels.h"

namespace {

void write_message(char* buf, size_t len, const char* text) {
  if (buf != nullptr && len > 0) std::snprintf(buf, len, "%s", text);
}

// Unavailable only when FLASHPORT_CPU_ISA forces a path this machine cannot run (or names none).
int32_t cpu_probe(char* why, size_t why_len) {
  const flashport::cpu::IsaChoice& isa = flashport::cpu::isa_choice();
  if (!isa.ok) {
    write_message(why, why_len, isa.error.c_str());
    return 0;
  }
  write_message(why, why_len, "host CPU (Eigen + OpenMP)");
  return 1;
}

// Validation has checked dtypes, shapes and strides; the kernels take any strides and every dtype of the API.
int32_t cpu_supports(const flashport_problem* p, char* why, size_t why_len) {
  if (p->device_type != FLASHPORT_DEVICE_CPU) {
    write_message(why, why_len, "the cpu backend runs host tensors only");
    return 0;
  }
  switch (p->dtype) {
    case FLASHPORT_DTYPE_F32:
    case FLASHPORT_DTYPE_F16:
    case FLASHPORT_DTYPE_BF16:
      return 1;
    default:
      write_message(why, why_len, "the cpu backend runs F32, F16 and BF16 only");
      return 0;
  }
}

// Scratch lives in per-thread buffers the backend allocates itself.
size_t cpu_workspace_size(const flashport_problem*) { return 0; }

template <typename T>
void run_typed(const flashport_problem& p) {
  if (p.direction == FLASHPORT_DIRECTION_FORWARD)
    flashport::cpu::forward<T>(p);
  else
    flashport::cpu::backward<T>(p);
}

// bf16 goes to the 16-bit units when the process-wide choice has them.
void run_bf16(const flashport_problem& p) {
  const flashport::cpu::MxKernels* mx = flashport::cpu::isa_choice().bf16;
  if (mx == nullptr)
    run_typed<Eigen::bfloat16>(p);
  else if (p.direction == FLASHPORT_DIRECTION_FORWARD)
    flashport::cpu::forward_mx(p, *mx);
  else
    flashport::cpu::backward_mx(p, *mx);
}

int32_t cpu_run(const flashport_problem* p, char* err, size_t err_len) {
  if (!flashport::cpu::isa_choice().ok) {  // the probe has said so already; a registry never calls run then
    write_message(err, err_len, flashport::cpu::isa_choice().error.c_str());
    return FLASHPORT_STATUS_UNSUPPORTED;
  }
  try {
    switch (p->dtype) {
      case FLASHPORT_DTYPE_F32:
        run_typed<float>(*p);
        break;
      case FLASHPORT_DTYPE_F16:
        run_typed<Eigen::half>(*p);
        break;
      case FLASHPORT_DTYPE_BF16:
        run_bf16(*p);
        break;
      default:
        write_message(err, err_len, "cpu backend: unsupported dtype");
        return FLASHPORT_STATUS_UNSUPPORTED;
    }
  } catch (const std::bad_alloc&) {
    write_message(err, err_len, "cpu backend: out of host memory for its scratch buffers");
    return FLASHPORT_STATUS_OUT_OF_MEMORY;
  } catch (...) {
    write_message(err, err_len, "cpu backend: unexpected exception");
    return FLASHPORT_STATUS_INTERNAL;
  }
  return FLASHPORT_STATUS_OK;
}

// Every validated combine on host tensors: any dtype pair, any strides, any head dim and part count.
int32_t cpu_combine_supports(const flashport_combine_problem* p, char* why, size_t why_len) {
  if (p->device_type != FLASHPORT_DEVICE_CPU) {
    write_message(why, why_len, "the cpu backend runs host tensors only");
    return 0;
  }
  return 1;
}

int32_t cpu_combine_run(const flashport_combine_problem* p, char* err, size_t err_len) {
  try {
    flashport::cpu::combine(*p);
  } catch (const std::bad_alloc&) {
    write_message(err, err_len, "cpu backend: out of host memory for its scratch buffers");
    return FLASHPORT_STATUS_OUT_OF_MEMORY;
  } catch (...) {
    write_message(err, err_len, "cpu backend: unexpected exception");
    return FLASHPORT_STATUS_INTERNAL;
  }
  return FLASHPORT_STATUS_OK;
}

const flashport_backend_iface kCpuIface = {
    /* .name = */ "cpu",
    /* .device_type = */ FLASHPORT_DEVICE_CPU,
    /* .description = */ "FlashAttention-2 on the host CPU with Eigen block GEMMs and OpenMP; the reference backend",
    /* .probe = */ cpu_probe,
    /* .supports = */ cpu_supports,
    /* .workspace_size = */ cpu_workspace_size,
    /* .run = */ cpu_run,
    /* .mem_alloc = */ nullptr,
    /* .mem_free = */ nullptr,
    /* .mem_copy = */ nullptr,
    /* .synchronize = */ nullptr,
    /* .combine_supports = */ cpu_combine_supports,
    /* .combine_run = */ cpu_combine_run,
};

}  // namespace

// The table with the description extended by the block products in use (decided here, once per process).
extern "C" const flashport_backend_iface* flashport_cpu_backend_iface(void) {
  static const std::string description =
      std::string(kCpuIface.description) + "; " + flashport::cpu::isa_choice().description;
  static const flashport_backend_iface iface = [] {
    flashport_backend_iface t = kCpuIface;
    t.description = description.c_str();
    return t;
  }();
  return &iface;
}
