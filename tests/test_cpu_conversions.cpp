// The CPU backend's element conversions (src/cpu/cpu_common.h) are hand-written for speed: prove them exact against
// Eigen's own conversion over every 16-bit pattern.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu/cpu_common.h"

namespace {

template <typename T>
void check_every_bit_pattern() {
  for (uint32_t bits = 0; bits <= 0xffffu; ++bits) {
    const T x = Eigen::numext::bit_cast<T>(static_cast<uint16_t>(bits));
    const float expected = static_cast<float>(x);
    const float got = flashport::cpu::to_float(x);
    if (std::isnan(expected)) {
      REQUIRE_MESSAGE(std::isnan(got), "bits 0x" << std::hex << bits);
      continue;
    }
    uint32_t e = 0, g = 0;
    std::memcpy(&e, &expected, 4);
    std::memcpy(&g, &got, 4);
    REQUIRE_MESSAGE(e == g, "bits 0x" << std::hex << bits << ": expected " << expected << ", got " << got);
  }
}

}  // namespace

TEST_CASE("cpu conversion: fp16 -> fp32 is exact for all 65536 values, signed zeros, subnormals, Inf, NaN") {
  check_every_bit_pattern<Eigen::half>();
}

TEST_CASE("cpu conversion: bf16 -> fp32 is exact for all 65536 values") {
  check_every_bit_pattern<Eigen::bfloat16>();
}
