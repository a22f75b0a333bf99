// The HIP module's device code for one target: every kernel instance of src/cuda, compiled once per --offload-arch
// by src/hip/CMakeLists.txt (one translation unit per target, so that a target's kernels share one code object).
//
// The instance files explicitly instantiate the host launch templates (launch_fwd<...>, launch_bwd_main<...>); in
// this device-only pass that makes clang emit exactly the kernels those launchers name, with the target's default
// tile policy (kernels/tile_mma_amd.cuh). Their host code is parsed, never compiled: the module launches the same
// kernels through hipModuleLaunchKernel (kernel_table.hip).
#include "vendors/vendor.h"

#include "kernel_instances.inc"
#include "kernels/bwd_f32.cuh"
#include "kernels/bwd_rows.cuh"

// The fp32 forward at this target's wavefront width: CUDA's launcher (instances/fwd_f32.cu) names the 32-lane
// kernel only, and the kernel's lane arithmetic must match the hardware's (64 on CDNA).
template __global__ void flashport::kernels::fwd_f32_kernel<flashport::vendor::kWaveSize>(
    const flashport::kernels::FwdParams);

// The backward's row kernels (CUDA instantiates them in backward.cu, which the HIP build does not compile) and its
// fp32 kernels at this target's wavefront width (the kernels' lane arithmetic must match the hardware's).
template __global__ void flashport::kernels::bwd_preprocess_kernel<flashport::vendor::half_t>(
    const flashport::kernels::BwdParams);
template __global__ void flashport::kernels::bwd_preprocess_kernel<flashport::vendor::bf16_t>(
    const flashport::kernels::BwdParams);
template __global__ void flashport::kernels::bwd_preprocess_kernel<float>(const flashport::kernels::BwdParams);
template __global__ void flashport::kernels::bwd_convert_kernel<flashport::vendor::half_t>(
    const flashport::kernels::BwdParams);
template __global__ void flashport::kernels::bwd_convert_kernel<flashport::vendor::bf16_t>(
    const flashport::kernels::BwdParams);
template __global__ void flashport::kernels::bwd_f32_dkdv_kernel<flashport::vendor::kWaveSize>(
    const flashport::kernels::BwdParams);
template __global__ void flashport::kernels::bwd_f32_dq_kernel<flashport::vendor::kWaveSize>(
    const flashport::kernels::BwdParams);
