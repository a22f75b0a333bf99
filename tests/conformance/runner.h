// Runs one conformance case on a backend through the public API and measures it against the float64 reference.
//
// run_case draws the inputs (seeded by the case, rounded to its dtype so that the reference sees exactly what the
// backend sees), lays them out as the case says on the backend's device, poisons every output buffer with NaN
// bytes, calls flashport_forward (and flashport_backward, with the reference's out and lse as inputs) forcing
// the backend, then checks that every element of every output was written, that nothing outside the outputs' views
// was, and that the error is within tolerance (see tolerance rules in runner.cpp).
#ifndef FLASHPORT_TESTS_CONFORMANCE_RUNNER_H
#define FLASHPORT_TESTS_CONFORMANCE_RUNNER_H

#include <string>
#include <vector>

#include "cases.h"
#include "device_memory.h"

namespace flashport::conformance {

using tools::DeviceMemory;

// The comparison of one output tensor with the reference.
struct OutputCheck {
  std::string name;          // "out", "lse", "dq", "dk", "dv"
  double max_abs_err = 0.0;  // max |backend - reference| over the elements
  double rel_err = 0.0;      // max_abs_err / max |reference| (0 when the reference is all 0)
  double tolerance = 0.0;    // bound on max_abs_err
  bool pass = true;
};

struct Result {
  bool pass = false;
  bool skipped = false;  // the backend declined the case (status NO_BACKEND or UNSUPPORTED); message says why
  std::string message;   // the case, then every failure found (or the skip reason)
  std::vector<OutputCheck> outputs;
};

// Runs forward, and backward too when with_backward is set. `backend` is a name as in args->backend ("cpu",
// "cuda", ...); memory must belong to that backend's device.
Result run_case(const Case& c, const char* backend, DeviceMemory& memory, bool with_backward = true);

// The inputs of a case as the reference sees them (float64, dense [B, S, H, D], already rounded to the dtype).
struct CaseInputs {
  std::vector<double> q, k, v, dout;
};
CaseInputs make_inputs(const Case& c);

}  // namespace flashport::conformance

#endif
