#include "bench_data.h"

#include <cmath>
#include <cstring>

namespace flashport::bench {
namespace {

// splitmix64: a counter-based generator, so each element depends only on (seed, index) and the fill can be split
// across threads without changing the values.
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint16_t f32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // keep NaN a NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) return sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u);  // NaN, Inf
  if (a >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: overflows to Inf
  if (a < 0x38800000u) {                        // below 2^-14: a subnormal (or zero) half
    float af;
    std::memcpy(&af, &a, sizeof af);
    // Units of 2^-24; nearbyint rounds to nearest even in the default mode. 0x400 lands on the smallest normal.
    return sign | static_cast<uint16_t>(std::nearbyint(af * 16777216.0f));
  }
  uint32_t h = ((((a >> 23) - 127u + 15u) << 10) | ((a & 0x7fffffu) >> 13));
  const uint32_t rest = a & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // carries into the exponent correctly
  return sign | static_cast<uint16_t>(h);
}

}  // namespace

std::vector<float> random_floats(size_t count, uint64_t seed) {
  std::vector<float> out(count);
  const uint64_t base = splitmix64(seed);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) {
    // 24 random bits -> [0, 1) exactly representable, then [-1, 1). Zero has probability 2^-24 per element; nudge
    // it so that no input is ever exactly zero.
    const float u = static_cast<float>(splitmix64(base + static_cast<uint64_t>(i)) >> 40) * (1.0f / 16777216.0f);
    const float v = 2.0f * u - 1.0f;
    out[static_cast<size_t>(i)] = v == 0.0f ? 0.5f : v;
  }
  return out;
}

size_t dtype_size(flashport_dtype dtype) {
  switch (dtype) {
    case FLASHPORT_DTYPE_F32: return 4;
    case FLASHPORT_DTYPE_F16:
    case FLASHPORT_DTYPE_BF16: return 2;
  }
  return 0;
}

const char* dtype_name(flashport_dtype dtype) {
  switch (dtype) {
    case FLASHPORT_DTYPE_F32: return "f32";
    case FLASHPORT_DTYPE_F16: return "f16";
    case FLASHPORT_DTYPE_BF16: return "bf16";
  }
  return "?";
}

std::vector<uint8_t> convert_from_f32(const std::vector<float>& src, flashport_dtype dtype) {
  std::vector<uint8_t> out(src.size() * dtype_size(dtype));
  if (dtype == FLASHPORT_DTYPE_F32) {
    if (!src.empty()) std::memcpy(out.data(), src.data(), out.size());
    return out;
  }
  auto* dst = reinterpret_cast<uint16_t*>(out.data());
  const bool bf16 = dtype == FLASHPORT_DTYPE_BF16;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < static_cast<int64_t>(src.size()); ++i)
    dst[i] = bf16 ? f32_to_bf16(src[static_cast<size_t>(i)]) : f32_to_f16(src[static_cast<size_t>(i)]);
  return out;
}

}  // namespace flashport::bench
