// Conformance cases: one struct that names a whole attention problem (shapes, options, dtype, memory layout,
// seed), and the fixed list of cases every backend is checked against.
#ifndef FLASHPORT_TESTS_CONFORMANCE_CASES_H
#define FLASHPORT_TESTS_CONFORMANCE_CASES_H

#include <cstdint>
#include <string>
#include <vector>

#include "flashport/flashport.h"

namespace flashport::conformance {

// How the [batch, seqlen, heads, dim] tensors of a case are laid out in memory.
enum class Layout {
  Contiguous,  // the API's row-major default
  HeadsFirst,  // stored [batch, heads, seqlen, dim] (a transposed view)
  Strided,     // head_dim stride 2 and padding after every head, row and batch (no dim is contiguous)
  Reversed,    // contiguous storage read with seqlen and heads backwards (NumPy's x[:, ::-1, ::-1]): negative
               // strides on both, head_dim contiguous
  ReversedAll, // contiguous storage read with every dim backwards (x[::-1, ::-1, ::-1, ::-1]): all strides negative
};

struct Case {
  int64_t batch = 1;
  int64_t seqlen_q = 1;
  int64_t seqlen_kv = 1;
  int64_t heads_q = 1;
  int64_t heads_kv = 1;
  int64_t head_dim_qk = 64;
  int64_t head_dim_v = 64;
  flashport_dtype dtype = FLASHPORT_DTYPE_F32;
  Layout layout = Layout::Contiguous;
  float softmax_scale = 0.0f;  // 0 = 1/sqrt(head_dim_qk), as in the API
  float softcap = 0.0f;
  bool causal = false;
  flashport_mask_alignment alignment = FLASHPORT_ALIGN_BOTTOM_RIGHT;
  int64_t window_left = -1;
  int64_t window_right = -1;
  bool with_lse = true;     // forward: request lse
  bool deterministic = false;  // backward flag
  uint64_t seed = 1;

  // A case of this shape with every option at its default.
  static Case of_shape(int64_t batch, int64_t seqlen_q, int64_t seqlen_kv, int64_t heads_q, int64_t heads_kv,
                       int64_t head_dim_qk, int64_t head_dim_v);

  // The scale the API resolves: softmax_scale, or 1/sqrt(head_dim_qk) when it is 0.
  double resolved_scale() const;
  // Whether query row i may see key j under the public contract (causal, alignment, window).
  bool visible(int64_t i, int64_t j) const;
  // A one-line description for messages: "b2 sq33 skv33 hq4 hkv2 d64/64 bf16 strided causal(br) ...".
  std::string describe() const;
};

// The fixed, deterministic list: odd sizes (1, 7, 33, 257), Sq != Skv both ways, GQA and MQA, Dv != Dqk, causal with
// both alignments, windows (including ones that leave rows fully masked), softcap, every layout, every dtype, head
// dims 32..256; then odd head dims (3..21, rows that are no multiple of any vector or cache line) and the negative
// stride layouts. Small enough to run the whole list under sanitizers.
std::vector<Case> conformance_cases();

}  // namespace flashport::conformance

#endif
