// Which block products the CPU backend uses, decided once per process from the CPU's features, the OS's support
// and the FLASHPORT_CPU_ISA environment variable. Internal to src/cpu.
//
// FLASHPORT_CPU_ISA (read once, at the first use of the CPU backend):
//   unset, "" or "auto"  the fastest path this machine runs: amx, else avx512bf16, else fp32
//   "amx"                bf16 block products on AMX-BF16 tiles
//   "avx512bf16"         bf16 block products on AVX512-BF16 dot products
//   "fp32"               every dtype converted to fp32 and multiplied by Eigen, compiled for the build's -march
// A forced path the machine cannot run, or an unknown value, makes the CPU backend unavailable with a message that
// says why (flashport_backend_info, and the NO_BACKEND error of a call): never an illegal instruction.
// fp32 and fp16 inputs always take the fp32 path: fp16 would lose input precision as bf16, and this CPU code has no
// fp16 product with fp32 accumulation.
#ifndef FLASHPORT_CPU_CPU_ISA_H
#define FLASHPORT_CPU_CPU_ISA_H

#include <string>

#include "cpu/mx_kernels.h"

namespace flashport::cpu {

enum class IsaPath { Fp32, Avx512Bf16, Amx };

// What this machine can run (CPUID, XCR0, and for AMX Linux's tile-data permission, requested here).
struct IsaSupport {
  bool avx512bf16 = false;  // AVX512-F/BW/VL/DQ + AVX512-BF16, with the OS saving ZMM and opmask state
  bool amx = false;         // the above + AMX-TILE/AMX-BF16, tile state enabled in XCR0 and permitted by the kernel
  std::string amx_why;      // why amx is false ("" when true)
  std::string avx512bf16_why;
};
IsaSupport detect_isa_support();

struct IsaChoice {
  bool ok = false;           // false: FLASHPORT_CPU_ISA asks for something this machine cannot run; error says why
  std::string error;
  IsaPath path = IsaPath::Fp32;
  const MxKernels* bf16 = nullptr;  // the bf16 block product, or null for the fp32 path
  std::string description;          // for flashport_backend_info: the path in use, and how it was chosen
};

// The process-wide choice, made on the first call (thread-safe).
const IsaChoice& isa_choice();

// The name FLASHPORT_CPU_ISA takes for a path ("fp32", "avx512bf16", "amx").
const char* isa_path_name(IsaPath path);

}  // namespace flashport::cpu

#endif
