// Host-side data for flashport-bench: random inputs and fp32 -> bf16/fp16 conversion.
#ifndef FLASHPORT_BENCH_DATA_H
#define FLASHPORT_BENCH_DATA_H

#include <cstddef>
#include <cstdint>
#include <vector>

#include "flashport/flashport.h"

namespace flashport::bench {

// Uniform values in [-1, 1): never zeros, so no kernel can shortcut and the softmax is neither flat nor one-hot
// (score std ~ 0.33 at any head dim after the 1/sqrt(D) scale). Deterministic for a seed, independent of threads.
std::vector<float> random_floats(size_t count, uint64_t seed);

// Bytes per element of a flashport dtype (0 for an unknown one).
size_t dtype_size(flashport_dtype dtype);

// `src` converted to `dtype` (F32: a byte copy; BF16/F16: round to nearest even), as raw bytes.
std::vector<uint8_t> convert_from_f32(const std::vector<float>& src, flashport_dtype dtype);

// Short name used on the command line and in the output: "f32", "bf16", "f16".
const char* dtype_name(flashport_dtype dtype);

}  // namespace flashport::bench

#endif
