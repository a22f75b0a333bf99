// The non-finite policy on the CPU backend (tests/conformance/nonfinite.h): NaN and infinite inputs and scores
// propagate in both directions as the formulas' IEEE arithmetic has them, masked keys and rows that see no key stay
// out of it. Lengths span several blocks of both directions (forward 256 x 128, backward 128 x 128): 260 both, 140
// the backward's and the forward's key blocks.
#include <doctest/doctest.h>

#include <string>

#include "nonfinite.h"

namespace fc = flashport::conformance;

TEST_CASE("cpu backend: non-finite inputs and overflowing scores propagate, both directions") {
  std::string why;
  auto memory = flashport::tools::device_memory_for("cpu", &why);
  REQUIRE_MESSAGE(memory != nullptr, why);
  struct Config {
    flashport_dtype dtype;
    int64_t dqk, dv, seqlen;
  };
  const Config configs[] = {{FLASHPORT_DTYPE_F32, 64, 64, 260}, {FLASHPORT_DTYPE_BF16, 40, 24, 140},
                            {FLASHPORT_DTYPE_F16, 64, 64, 70}};
  for (const Config& cfg : configs)
    for (const fc::NonFiniteScenario& s : fc::nonfinite_scenarios(cfg.dtype, cfg.dqk, cfg.dv, cfg.seqlen)) {
      const fc::Result r = fc::run_nonfinite(s, "cpu", *memory);
      CAPTURE(r.message);
      CHECK_FALSE(r.skipped);
      CHECK_MESSAGE(r.pass, r.message);
    }
}
