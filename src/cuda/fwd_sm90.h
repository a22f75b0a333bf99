// The Hopper forward (kernels/fwd_sm90.cuh: wgmma, sm_90a) as module.cu sees it: the launchers' declarations, one
// per head dim in instances/fwd_sm90_*.cu. Built only when FLASHPORT_CUDA_ARCHS lists 90a (CMake then defines
// FLASHPORT_CUDA_HAVE_SM90); chosen on compute-capability-9.0 devices unless FLASHPORT_CUDA_WGMMA=0.
#ifndef FLASHPORT_CUDA_FWD_SM90_H
#define FLASHPORT_CUDA_FWD_SM90_H

#include "kernels/fwd_launch.cuh"

namespace flashport::kernels {

// Equal head dims kD in {64, 128, 256} (actual ones <= kD are zero-padded), 16-bit T.
template <class T, int kD> cudaError_t launch_fwd_sm90(const FwdParams& p, cudaStream_t stream);

}  // namespace flashport::kernels

#endif
