// CPU baselines measured in the same run as flashport, on the same threads: Eigen's fp32 GEMM rate (the ceiling a
// GEMM-based attention can reach) and a naive attention that materialises the full S_q x S_kv score matrix with
// Eigen (the speed and memory baseline FlashAttention's tiling is meant to beat).
#ifndef FLASHPORT_BENCH_BASELINES_H
#define FLASHPORT_BENCH_BASELINES_H

#include <cstdint>
#include <vector>

namespace flashport::bench {

// Best GFLOP/s of C = A * B with square n x n fp32 matrices (2 n^3 FLOP per product), over `reps` products
// after one warm-up, with Eigen's own OpenMP parallelism on the current thread count.
double eigen_sgemm_gflops(int n, int reps);

// Shape of one attention problem in the [batch, seqlen, heads, head_dim] layout, contiguous.
struct AttentionShape {
  int64_t batch, heads_q, heads_kv, seqlen_q, seqlen_kv, head_dim, head_dim_v;
  bool causal;  // bottom-right aligned, as flashport's default
};

// fp32 tensors of a naive forward/backward. Inputs are contiguous [B, S, H, D]; outputs are written here (sized on
// first use; size them beforehand to keep their allocation out of a memory measurement).
struct NaiveTensors {
  const float* q;
  const float* k;
  const float* v;
  const float* dout;     // backward only
  std::vector<float> out, lse, dq, dk, dv;
};

// Naive forward: per (batch, head) S = scale Q K^T (all S_q x S_kv entries, masked ones set to -inf), row softmax,
// O = P V. GEMMs by Eigen (parallel inside), the softmax parallel over rows.
void naive_forward(const AttentionShape& shape, NaiveTensors& t);

// Naive backward from the forward's out and lse: recomputes P, dP = dO V^T, dS = P o (dP - rowsum(dO o O)),
// dQ = scale dS K, dK = scale dS^T Q, dV = P^T dO (summed over the query heads of a GQA group). Two S x S matrices.
void naive_backward(const AttentionShape& shape, NaiveTensors& t);

}  // namespace flashport::bench

#endif
