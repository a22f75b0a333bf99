// Run-time choice of the CPU backend's block products (see cpu_isa.h).
#include "cpu/cpu_isa.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

namespace flashport::cpu {

namespace {

// Linux's arch_prctl codes for the permission to use dynamically enabled XSAVE state (AMX tile data), from
// <asm/prctl.h>, which older C libraries' headers lack.
constexpr int kArchGetXcompPerm = 0x1022;
constexpr int kArchReqXcompPerm = 0x1023;
constexpr int kXfeatureXtiledata = 18;

uint64_t read_xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

// The fp32 path's SIMD level: fixed at build time by -march (FLASHPORT_CPU_ARCH), since Eigen is compiled once.
const char* fp32_build_isa() {
#if defined(__AVX512F__)
  return "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "AVX2+FMA";
#elif defined(__AVX__)
  return "AVX";
#else
  return "SSE2";
#endif
}

IsaChoice choose() {
  IsaChoice c;
  const IsaSupport s = detect_isa_support();
  const char* env = std::getenv("FLASHPORT_CPU_ISA");
  const std::string want = env != nullptr ? env : "";
  const bool forced = !want.empty() && want != "auto";
  const std::string fp32 = std::string("fp32 Eigen GEMM built for ") + fp32_build_isa();

  IsaPath path = IsaPath::Fp32;
  if (!forced) {
    path = s.amx ? IsaPath::Amx : s.avx512bf16 ? IsaPath::Avx512Bf16 : IsaPath::Fp32;
  } else if (want == "amx") {
    if (!s.amx) {
      c.error = "FLASHPORT_CPU_ISA=amx, but this machine cannot run AMX-BF16: " + s.amx_why;
      return c;
    }
    path = IsaPath::Amx;
  } else if (want == "avx512bf16") {
    if (!s.avx512bf16) {
      c.error = "FLASHPORT_CPU_ISA=avx512bf16, but this machine cannot run AVX512-BF16: " + s.avx512bf16_why;
      return c;
    }
    path = IsaPath::Avx512Bf16;
  } else if (want == "fp32") {
    path = IsaPath::Fp32;
  } else {
    c.error = "FLASHPORT_CPU_ISA=\"" + want + "\" is not one of auto, amx, avx512bf16, fp32";
    return c;
  }

  c.ok = true;
  c.path = path;
  const std::string how = forced ? " (forced by FLASHPORT_CPU_ISA)" : " (chosen from CPUID; FLASHPORT_CPU_ISA forces)";
  switch (path) {
    case IsaPath::Amx:
      c.bf16 = &amx_bf16_kernels();
      c.description = "bf16 block products on AMX-BF16 tiles, f32/f16 on " + fp32 + how;
      break;
    case IsaPath::Avx512Bf16:
      c.bf16 = &avx512bf16_kernels();
      c.description = "bf16 block products on AVX512-BF16, f32/f16 on " + fp32 + how;
      break;
    case IsaPath::Fp32:
      c.description = "every dtype on " + fp32 + how;
      break;
  }
  return c;
}

}  // namespace

IsaSupport detect_isa_support() {
  IsaSupport s;
  unsigned a, b, c, d;
  if (!__get_cpuid_count(1, 0, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) {
    s.avx512bf16_why = s.amx_why = "no XSAVE enabled by the OS";
    return s;
  }
  const uint64_t xcr0 = read_xcr0();
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 7) {
    s.avx512bf16_why = s.amx_why = "no CPUID leaf 7";
    return s;
  }
  unsigned b7, c7, d7, a71 = 0, b71, c71, d71;
  __cpuid_count(7, 0, a, b7, c7, d7);
  const unsigned subleaves = a;
  if (subleaves >= 1) __cpuid_count(7, 1, a71, b71, c71, d71);
  const bool avx512 = (b7 & bit_AVX512F) && (b7 & bit_AVX512BW) && (b7 & bit_AVX512VL) && (b7 & bit_AVX512DQ);
  const bool bf16 = (a71 & (1u << 5)) != 0;              // CPUID.(7,1):EAX[5] AVX512_BF16
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;           // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
  if (!avx512) {
    s.avx512bf16_why = "the CPU lacks AVX512-F/BW/VL/DQ";
  } else if (!bf16) {
    s.avx512bf16_why = "the CPU lacks AVX512-BF16";
  } else if (!zmm_state) {
    s.avx512bf16_why = "the OS does not enable AVX-512 state (XCR0)";
  } else {
    s.avx512bf16 = true;
  }

  const bool amx_tile = (d7 & (1u << 24)) != 0, amx_bf16 = (d7 & (1u << 22)) != 0;
  if (!s.avx512bf16) {
    s.amx_why = s.avx512bf16_why;
  } else if (!amx_tile || !amx_bf16) {
    s.amx_why = "the CPU lacks AMX-TILE/AMX-BF16";
  } else if ((xcr0 & (3u << 17)) != (3u << 17)) {
    s.amx_why = "the OS does not enable AMX tile state (XCR0 bits 17-18)";
  } else {
    // Linux (5.16+) hands out the 8 KiB tile data state only to processes that ask: once granted it stays granted,
    // so asking again is harmless.
    uint64_t perm = 0;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0 ||
        syscall(SYS_arch_prctl, kArchGetXcompPerm, &perm) != 0 || !(perm & (1ull << kXfeatureXtiledata))) {
      s.amx_why = "Linux refused the AMX tile-data permission (arch_prctl ARCH_REQ_XCOMP_PERM)";
    } else {
      s.amx = true;
    }
  }
  return s;
}

const IsaChoice& isa_choice() {
  static const IsaChoice choice = choose();
  return choice;
}

const char* isa_path_name(IsaPath path) {
  switch (path) {
    case IsaPath::Amx: return "amx";
    case IsaPath::Avx512Bf16: return "avx512bf16";
    default: return "fp32";
  }
}

}  // namespace flashport::cpu
