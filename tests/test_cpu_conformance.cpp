// The conformance list against the CPU backend: forward, lse and backward of every case, forced onto "cpu" through
// the public API, measured against the float64 reference with the per-dtype tolerances of tests/conformance.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cases.h"
#include "runner.h"

namespace fc = flashport::conformance;

TEST_CASE("cpu backend: conformance cases (forward, lse, backward)") {
  std::string why;
  auto memory = flashport::tools::device_memory_for("cpu", &why);
  REQUIRE_MESSAGE(memory != nullptr, why);
  // FLASHPORT_TEST_VERBOSE=1 prints every case's errors against its tolerances (for calibrating tolerances).
  const bool verbose = std::getenv("FLASHPORT_TEST_VERBOSE") != nullptr;
  for (const fc::Case& c : fc::conformance_cases()) {
    const fc::Result r = fc::run_case(c, "cpu", *memory);
    if (verbose) {
      std::printf("%s\n", r.message.c_str());
      for (const fc::OutputCheck& o : r.outputs)
        std::printf("    %-3s err %.3g rel %.3g tol %.3g (%.0f%% of tol)\n", o.name.c_str(), o.max_abs_err, o.rel_err,
                    o.tolerance, 100.0 * o.max_abs_err / o.tolerance);
    }
    CAPTURE(r.message);
    CHECK_FALSE(r.skipped);
    CHECK_MESSAGE(r.pass, r.message);
  }
}
