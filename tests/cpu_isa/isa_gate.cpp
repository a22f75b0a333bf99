// flashport_isa_gate --refused VALUE: checks that FLASHPORT_CPU_ISA=VALUE makes the cpu backend unavailable with a
// message naming the variable (for values that are no path at all).
//
// flashport_isa_gate PATH COMMAND [ARGS...]: runs COMMAND with FLASHPORT_CPU_ISA=PATH when this machine can run that
// CPU path, else prints why and exits 77 (ctest's SKIP_RETURN_CODE), so that the suite runs every path the machine
// has and says which it skipped.
//
// Whether the machine can run a path is decided here independently of the library (the compiler's CPU feature test,
// and Linux's AMX permission asked for directly), and then compared with what the library reports for the forced
// path: a library that refuses a path the machine has, or accepts one it lacks, fails the test instead of skipping.
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <flashport/flashport.h>

namespace {

bool machine_runs(const std::string& path, std::string* why) {
  __builtin_cpu_init();
  const bool avx512bf16 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bf16");
  if (path == "fp32") return true;
  if (path == "avx512bf16") {
    if (!avx512bf16) *why = "this CPU has no AVX512-BF16";
    return avx512bf16;
  }
  if (path == "amx") {
    if (!avx512bf16 || !__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-bf16")) {
      *why = "this CPU has no AMX-BF16";
      return false;
    }
    constexpr int kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) {
      *why = "Linux refuses the AMX tile-data permission";
      return false;
    }
    return true;
  }
  *why = "unknown path " + path;
  return false;
}

// The cpu backend's availability and status message under the FLASHPORT_CPU_ISA already set.
bool library_runs(std::string* message) {
  for (int32_t i = 0; i < flashport_backend_count(); ++i) {
    flashport_backend_info info;
    flashport_backend_info_init(&info);
    if (flashport_backend_info_get(i, &info) != FLASHPORT_STATUS_OK || std::strcmp(info.name, "cpu") != 0) continue;
    *message = info.status_message != nullptr ? info.status_message : "";
    return info.available != 0;
  }
  *message = "no cpu backend listed";
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--refused") == 0) {
    setenv("FLASHPORT_CPU_ISA", argv[2], 1);
    std::string message;
    const bool runs = library_runs(&message);
    std::printf("FLASHPORT_CPU_ISA=%s: cpu backend %s: %s\n", argv[2], runs ? "available" : "unavailable",
                message.c_str());
    return !runs && message.find("FLASHPORT_CPU_ISA=") != std::string::npos ? 0 : 1;
  }
  if (argc < 3) {
    std::fprintf(stderr, "usage: flashport_isa_gate PATH COMMAND [ARGS...] | --refused VALUE\n");
    return 2;
  }
  const std::string path = argv[1];
  setenv("FLASHPORT_CPU_ISA", path.c_str(), 1);
  std::string why, message;
  const bool machine = machine_runs(path, &why);
  const bool library = library_runs(&message);
  if (machine != library) {
    std::fprintf(stderr, "FAIL: FLASHPORT_CPU_ISA=%s: the machine %s it (%s) but the library %s it: %s\n",
                 path.c_str(), machine ? "runs" : "cannot run", machine ? "CPUID" : why.c_str(),
                 library ? "accepts" : "refuses", message.c_str());
    return 1;
  }
  if (!machine) {
    std::printf("SKIP: FLASHPORT_CPU_ISA=%s: %s; the library says: %s\n", path.c_str(), why.c_str(),
                message.c_str());
    return 77;
  }
  std::printf("FLASHPORT_CPU_ISA=%s: %s\n", path.c_str(), message.c_str());
  std::fflush(stdout);
  execvp(argv[2], argv + 2);
  std::perror("flashport_isa_gate: exec");
  return 1;
}
