// The Hopper backward main kernel (kernels/bwd_sm90.cuh: wgmma, sm_90a) as backward.cu sees it: the launchers'
// declarations and the block shape the workspace is laid out for, one instance per head dim in
// instances/bwd_sm90_*.cu. Built only when FLASHPORT_CUDA_ARCHS lists 90a (CMake then defines
// FLASHPORT_CUDA_HAVE_SM90).
#ifndef FLASHPORT_CUDA_BWD_SM90_H
#define FLASHPORT_CUDA_BWD_SM90_H

#include "kernels/bwd_launch.cuh"

namespace flashport::kernels {

// Equal head dims kD in {64, 128, 256} (actual ones <= kD are zero-padded), 16-bit T; p.deterministic selects the
// kernel's deterministic instance (dQ added in key-block order).
template <class T, int kD> cudaError_t launch_bwd_sm90(const BwdParams& p, cudaStream_t stream);
// Queries and keys per block of that kernel for head dim kD (Sm90BwdConfig): 128 x 128 at D 64, where each
// warpgroup then computes dQ for its own 64 queries; 64 x 128 at D 128, where the warpgroups split dQ's columns;
// 64 x 64 at D 256, where they split every product's head-dim columns (dK, dV, dQ) and S^T's queries.
constexpr int sm90_bwd_block_m(int d) { return d <= 64 ? 128 : 64; }
constexpr int sm90_bwd_block_n(int d) { return d <= 128 ? 128 : 64; }

}  // namespace flashport::kernels

#endif
