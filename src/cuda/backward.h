// The CUDA backend's backward pass (FlashAttention-2 style), as seen by the module (src/cuda/module.cu).
//
// The module's backend table calls these three for problems with direction == FLASHPORT_DIRECTION_BACKWARD; the
// problem has been validated by src/dispatch, so they trust every field. All three share one kernel selector
// (backward.cu), so "supported", "how much workspace" and "what runs" can never disagree. The launch sequence, the
// workspace layout and the parameter block are shared with the HIP module (kernels/bwd_host.cuh).
//
// Work is queued asynchronously on p->stream. Nothing is written to dq/dk/dv when a function fails before launching.
#ifndef FLASHPORT_CUDA_BACKWARD_H
#define FLASHPORT_CUDA_BACKWARD_H

#include <stddef.h>
#include <stdint.h>

#include "dispatch/backend_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/** 1 when the backward kernels can run p, else 0 with the reason in why (e.g. "head_dim 80 has no backward
 *  kernel", "dq.stride[3] must be 1"). Pure: launches nothing. */
int32_t flashport_cuda_backward_supports(const flashport_problem* p, char* why, size_t why_len);

/** Exact scratch bytes the backward of p needs (always > 0: it holds the fp32 dQ accumulator, D = rowsum(dO∘O) and
 *  the rescaled lse; the deterministic mode adds one semaphore per query block). Layout: docs/perf/cuda-backward.md
 *  and backward.cu. 0 when p is not supported. */
size_t flashport_cuda_backward_workspace_size(const flashport_problem* p);

/** Run the backward of p on p->stream, on the current device (module.cu makes p->device_id current first):
 *  preprocessing, main and dQ-conversion kernels (fp32: preprocessing and the two fp32 kernels). Uses p->workspace
 *  when it is not NULL (it must hold flashport_cuda_backward_workspace_size(p) bytes, 256-byte aligned), else
 *  allocates the workspace stream-ordered (cudaMallocAsync) and frees it stream-ordered within the call.
 *  @return a flashport_status; err holds the message on failure. */
int32_t flashport_cuda_backward_run(const flashport_problem* p, char* err, size_t err_len);

/** The same three for the "cuda-fma" backend variant: the main kernel with the generic FMA tiles and AMD's block
 *  shapes (kernels/bwd_launch.cuh, BwdShapeAmd), i.e. the arithmetic AMD gfx1030 runs; fp32 runs the same kernels as
 *  above. In a build without -DFLASHPORT_CUDA_FMA=ON, supports() declines with that reason and
 *  workspace_size() is 0. */
int32_t flashport_cuda_fma_backward_supports(const flashport_problem* p, char* why, size_t why_len);
size_t flashport_cuda_fma_backward_workspace_size(const flashport_problem* p);
int32_t flashport_cuda_fma_backward_run(const flashport_problem* p, char* err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif
