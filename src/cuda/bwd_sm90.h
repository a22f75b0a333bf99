// The Hopper backward main kernel (kernels/bwd_sm90.cuh: wgmma, sm_90a) as backward.cu sees it: the launchers'
// declarations and the block shape the workspace is laid out for, one instance per head dim in
// instances/bwd_sm90_*.cu. Built only when FLASHPORT_CUDA_ARCHS lists 90a (CMake then defines
// FLASHPORT_CUDA_HAVE_SM90).
#ifndef FLASHPORT_CUDA_BWD_SM90_H
#define FLASHPORT_CUDA_BWD_SM90_H

#include "kernels/bwd_launch.cuh"

namespace flashport::kernels {

// Equal head dims kD in {64, 128} (actual ones <= kD are zero-padded), 16-bit T, non-deterministic dQ.
template <class T, int kD> cudaError_t launch_bwd_sm90(const BwdParams& p, cudaStream_t stream);
// Queries and keys per block of that kernel for head dim kD (Sm90BwdConfig): 128 queries at D 64, where each
// warpgroup then computes dQ for its own 64 of them, 64 at D 128, where the warpgroups split dQ's columns.
constexpr int sm90_bwd_block_m(int d) { return d <= 64 ? 128 : 64; }
constexpr int kSm90BwdBlockN = 128;

}  // namespace flashport::kernels

#endif
