// The HIP module's states on a machine without an AMD GPU (CI), through the public API only:
//   "runtime absent":  FLASHPORT_HIP_RUNTIME names paths that do not exist (ctest sets it) -> the hip backend is
//                      listed, unavailable, and its reason names every path tried;
//   "no AMD GPU":      the real runtime loads (Debian's libamdhip64-5) and finds no device -> the reason carries
//                      hipGetDeviceCount's error; skipped (exit 77) where no libamdhip64 is installed;
// and in both, a forward and a backward request on ROCm tensors fail with NO_BACKEND and a message that gives hip's
// reason, and the device-memory helpers refuse the backend with the same reason.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "device_memory.h"
#include "flashport/flashport.h"

namespace {

bool has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

flashport_backend_info hip_info() {
  for (int32_t i = 0; i < flashport_backend_count(); ++i) {
    flashport_backend_info info;
    flashport_backend_info_init(&info);
    REQUIRE(flashport_backend_info_get(i, &info) == FLASHPORT_STATUS_OK);
    if (std::string(info.name) == "hip") return info;
  }
  FAIL("no backend named hip is listed");
  return flashport_backend_info{};
}

// A valid f16 forward on ROCm tensors. The pointers are never dereferenced: no backend can take the request.
flashport_status forward_on_rocm() {
  static char fake_device_memory[4096];
  void* d = fake_device_memory;
  flashport_forward_args args;
  flashport_forward_args_init(&args);
  flashport_tensor_init_contiguous(&args.q, d, FLASHPORT_DTYPE_F16, FLASHPORT_DEVICE_ROCM, 0, 1, 8, 2, 64);
  flashport_tensor_init_contiguous(&args.k, d, FLASHPORT_DTYPE_F16, FLASHPORT_DEVICE_ROCM, 0, 1, 8, 2, 64);
  flashport_tensor_init_contiguous(&args.v, d, FLASHPORT_DTYPE_F16, FLASHPORT_DEVICE_ROCM, 0, 1, 8, 2, 64);
  // A distinct output buffer so that the aliasing check does not answer first.
  static char fake_out[4096];
  flashport_tensor_init_contiguous(&args.out, fake_out, FLASHPORT_DTYPE_F16, FLASHPORT_DEVICE_ROCM, 0, 1, 8, 2, 64);
  return flashport_forward(&args);
}

// A valid f16 backward (D 64) on ROCm tensors, every operand in its own (never dereferenced) buffer.
flashport_status backward_on_rocm(int32_t deterministic) {
  static char buffers[9][4096];
  flashport_backward_args args;
  flashport_backward_args_init(&args);
  flashport_tensor* const tensors[] = {&args.dout, &args.q, &args.k, &args.v, &args.out, &args.dq, &args.dk, &args.dv};
  for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; ++i)
    flashport_tensor_init_contiguous(tensors[i], buffers[i], FLASHPORT_DTYPE_F16, FLASHPORT_DEVICE_ROCM, 0, 1, 8, 2,
                                     64);
  // lse: F32 {B, Hq, Sq, 1}.
  flashport_tensor_init_contiguous(&args.lse, buffers[8], FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_ROCM, 0, 1, 2, 8, 1);
  args.deterministic = deterministic;
  return flashport_backward(&args);
}

void check_unavailable(const std::string& reason_part) {
  const flashport_backend_info info = hip_info();
  CHECK(info.available == 0);
  CHECK(info.device_type == FLASHPORT_DEVICE_ROCM);
  CHECK(std::string(info.module_path).find("libflashport_hip.so") != std::string::npos);
  const std::string status = info.status_message;
  INFO("hip status: ", status);
  CHECK(has(status, reason_part));

  CHECK(forward_on_rocm() == FLASHPORT_STATUS_NO_BACKEND);
  const std::string err = flashport_last_error();
  INFO("forward error: ", err);
  CHECK(has(err, "hip"));
  CHECK(has(err, reason_part));

  for (int32_t deterministic : {0, 1}) {
    CHECK(backward_on_rocm(deterministic) == FLASHPORT_STATUS_NO_BACKEND);
    const std::string bwd_err = flashport_last_error();
    INFO("backward error: ", bwd_err);
    CHECK(has(bwd_err, "hip"));
    CHECK(has(bwd_err, reason_part));
  }

  std::string why;
  CHECK(flashport::tools::device_memory_for("hip", &why) == nullptr);
  INFO("device memory: ", why);
  CHECK(has(why, reason_part));
}

}  // namespace

TEST_CASE("runtime absent") {
  const char* env = std::getenv("FLASHPORT_HIP_RUNTIME");
  REQUIRE_MESSAGE(env != nullptr, "ctest sets FLASHPORT_HIP_RUNTIME to paths that do not exist");
  check_unavailable("no HIP runtime");
  const std::string status = hip_info().status_message;
  // Every name tried is listed.
  const std::string list(env);
  size_t start = 0;
  while (start < list.size()) {
    size_t end = list.find(':', start);
    if (end == std::string::npos) end = list.size();
    CHECK(has(status, list.substr(start, end - start)));
    start = end + 1;
  }
}

TEST_CASE("no AMD GPU") {
  check_unavailable("no AMD GPU: hipGetDeviceCount returned");
  // Debian's ROCm 5.2 runtime on a machine without a GPU answers hipErrorNoDevice.
  CHECK(has(hip_info().status_message, "(100)"));
}

// --needs-runtime: exit 77 (ctest: skipped) unless a HIP runtime library can be loaded on this machine.
int main(int argc, char** argv) {
  doctest::Context context;
  bool needs_runtime = false;
  for (int i = 1; i < argc; ++i) needs_runtime = needs_runtime || std::strcmp(argv[i], "--needs-runtime") == 0;
  if (needs_runtime) {
    bool found = false;
    for (const char* name : {"libamdhip64.so.7", "libamdhip64.so.6", "libamdhip64.so.5"}) {
      void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (h != nullptr) {
        found = true;
        dlclose(h);
        break;
      }
    }
    if (!found) {
      std::printf("skipped: no libamdhip64 on this machine (install Debian's libamdhip64-5)\n");
      return 77;
    }
  }
  context.applyCommandLine(argc, argv);
  return context.run();
}
