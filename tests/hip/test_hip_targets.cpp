// Host-side pieces of the HIP module that decide which code object a device gets, tested without a GPU:
// target matching (targets.h) and reading the architecture name out of hipDeviceProp_t, whose layout differs
// between ROCm 5 and ROCm 6 (runtime_loader.cpp, with a fake runtime filling the struct).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "hip/runtime_loader.h"
#include "hip/targets.h"

using flashport::hip::target_runs_on;

TEST_CASE("targets: a featureless target runs in every mode of its architecture") {
  CHECK(target_runs_on("gfx90a", "gfx90a:sramecc+:xnack-"));
  CHECK(target_runs_on("gfx90a", "gfx90a"));
  CHECK(target_runs_on("gfx942", "gfx942:sramecc+:xnack-"));
  CHECK(target_runs_on("gfx1100", "gfx1100"));
}

TEST_CASE("targets: features must match, architectures must be equal") {
  CHECK(target_runs_on("gfx90a:xnack+", "gfx90a:sramecc+:xnack+"));
  CHECK_FALSE(target_runs_on("gfx90a:xnack+", "gfx90a:sramecc+:xnack-"));
  CHECK_FALSE(target_runs_on("gfx90a", "gfx908:sramecc+:xnack-"));
  CHECK_FALSE(target_runs_on("gfx942", "gfx940"));  // gfx940 code does not load on gfx942
  CHECK_FALSE(target_runs_on("gfx1100", "gfx1101"));
  CHECK_FALSE(target_runs_on("gfx1030", "gfx1030x"));
}

namespace {

// Fake hipGetDeviceProperties: device name at offset 0, architecture name at g_arch_offset (0 = none).
size_t g_arch_offset = 0;
const char* g_name = "";
const char* g_arch = "";
int fake_props(void* props, int) {
  char* p = static_cast<char*>(props);
  std::strcpy(p, g_name);
  // The int before gcnArchName in ROCm 5's struct is the deprecated gcnArch, e.g. 910: not a NUL byte before it.
  if (g_arch_offset != 0) {
    p[g_arch_offset - 4] = static_cast<char>(0x8e);
    p[g_arch_offset - 3] = 0x03;
    std::strcpy(p + g_arch_offset, g_arch);
  }
  return 0;
}
const char* fake_name(int) { return "hipErrorX"; }

flashport::hip::HipRuntime fake_runtime() {
  flashport::hip::HipRuntime rt;
  rt.loaded = true;
  rt.api.GetDeviceProperties = fake_props;
  rt.api.GetErrorName = fake_name;
  rt.api.GetErrorString = fake_name;
  return rt;
}

std::string arch_for(const char* name, size_t offset, const char* arch, bool* ok) {
  g_name = name;
  g_arch_offset = offset;
  g_arch = arch;
  std::string out, why;
  const auto rt = fake_runtime();
  *ok = flashport::hip::device_arch_name(rt, 0, &out, &why);
  return *ok ? out : why;
}

}  // namespace

TEST_CASE("arch name: found by content at the ROCm 5 and ROCm 6 offsets") {
  bool ok = false;
  // ROCm 5.x hipDeviceProp_t (Debian's 5.2 header): gcnArchName follows gcnArch, a few hundred bytes in.
  CHECK(arch_for("AMD Instinct MI210", 396, "gfx90a:sramecc+:xnack-", &ok) == "gfx90a:sramecc+:xnack-");
  CHECK(ok);
  // ROCm 6 R0600: after the reserved ints, past 1 KB.
  CHECK(arch_for("AMD Instinct MI300X", 1160, "gfx942:sramecc+:xnack-", &ok) == "gfx942:sramecc+:xnack-");
  CHECK(ok);
  // A device name that itself starts with "gfx" is not taken for the architecture.
  CHECK(arch_for("gfx1100 engineering sample", 700, "gfx1100", &ok) == "gfx1100");
  CHECK(ok);
}

TEST_CASE("arch name: a runtime that reports none is a reason, not a guess") {
  bool ok = true;
  const std::string why = arch_for("AMD Radeon", 0, "", &ok);
  CHECK_FALSE(ok);
  CHECK(why.find("no gfx architecture name") != std::string::npos);
}
