// Runs one conformance case on a backend through the public API and measures it against the float64 reference.
//
// run_case draws the inputs (seeded by the case, rounded to its dtype so that the reference sees exactly what the
// backend sees), lays them out as the case says on the backend's device, poisons every output buffer with NaN
// bytes, calls flashport_forward (and flashport_backward, with the reference's out and lse as inputs) forcing
// the backend, then checks that every element of every output was written, that nothing outside the outputs' views
// was, and that the error is within tolerance (the tolerance rules are stated in runner.cpp).
#ifndef FLASHPORT_TESTS_CONFORMANCE_RUNNER_H
#define FLASHPORT_TESTS_CONFORMANCE_RUNNER_H

#include <array>
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

// A [B, S, H, D] tensor (or lse [B, H, S, 1]) laid out per the case, as the bytes of its dtype on the host, with a
// map of which buffer elements belong to the view. Everything outside the view is poison (all-ones bytes: NaN in
// every dtype), and so is the view until filled. Strides may be negative: element [0, 0, 0, 0] is then not the
// first of the buffer but sits at buffer element `origin`, and the tensor's data pointer points there.
struct HostImage {
  std::array<int64_t, 4> shape{}, strides{};
  int64_t origin = 0;  // buffer element of [0, 0, 0, 0]
  flashport_dtype dtype = FLASHPORT_DTYPE_F32;
  std::vector<uint8_t> bytes;
  std::vector<char> in_view;

  HostImage() = default;
  HostImage(std::array<int64_t, 4> shape, Layout layout, flashport_dtype dtype, bool is_lse);
  // f(dense index, buffer element offset) over the view in dense row-major order.
  template <typename F>
  void for_each(F&& f) const {
    size_t dense = 0;
    for (int64_t a = 0; a < shape[0]; ++a)
      for (int64_t b = 0; b < shape[1]; ++b)
        for (int64_t c = 0; c < shape[2]; ++c)
          for (int64_t d = 0; d < shape[3]; ++d)
            f(dense++,
              static_cast<size_t>(origin + a * strides[0] + b * strides[1] + c * strides[2] + d * strides[3]));
  }
  void set(size_t offset, double x);
  double get(size_t offset) const;
  void fill(const std::vector<double>& dense);
  std::vector<double> dense() const;  // the view's values in dense order
};

// What a backend wrote, downloaded to the host. status is the first failing call's status (OK when all ran);
// error says what failed. Backward outputs are empty images unless backward ran.
struct BackendOutputs {
  flashport_status status = FLASHPORT_STATUS_OK;
  std::string error;
  HostImage out, lse, dq, dk, dv;
};

// Runs the backend on the given inputs: forward, then (with_backward) backward fed with fwd_out / fwd_lse (dense, as
// the reference's ForwardResult) so that the backward is measured on its own. For tests that look at raw results
// (bitwise determinism, fully masked rows, finite differences).
BackendOutputs run_backend(const Case& c, const CaseInputs& in, const std::vector<double>& fwd_out,
                           const std::vector<double>& fwd_lse, const char* backend, DeviceMemory& memory,
                           bool with_backward);

}  // namespace flashport::conformance

#endif
