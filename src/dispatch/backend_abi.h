/*
 * The interface between the core library (libflashport.so) and its backends.
 *
 * Not public: it is shared only by the core and the backend modules built from this repository
 * (libflashport_cuda.so, libflashport_hip.so, and the CPU backend compiled into the core). It is plain C so that
 * modules compiled by nvcc or clang-for-HIP link to the core without any C++ ABI assumptions.
 *
 * A request reaches a backend only after src/dispatch/validate.cpp has checked it completely: backends trust every
 * field of flashport_problem and only answer whether they can run it (with a reason when not) and then run it.
 *
 * A module is a shared library exporting one symbol, FLASHPORT_MODULE_INIT_SYMBOL, of type
 * flashport_module_init_fn. The loader refuses a module whose abi_version differs from the core's and reports why.
 */
#ifndef FLASHPORT_DISPATCH_BACKEND_ABI_H
#define FLASHPORT_DISPATCH_BACKEND_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "flashport/flashport.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Bumped on any change to the structs or function tables below. Exact match required: a module that does not know
 *  a field of flashport_problem would silently ignore it (and compute something else), and the core cannot tell how
 *  long an older module's backend table is. The modules are built with the core from this repository, so a bump
 *  only asks to rebuild them; an older module is listed as unavailable with the reason.
 *  2: flashport_problem.dlse, flashport_combine_problem and the combine_supports / combine_run slots. */
#define FLASHPORT_MODULE_ABI_VERSION 2

/** Name of the one function a backend module exports. */
#define FLASHPORT_MODULE_INIT_SYMBOL "flashport_module_init"

/** Size of the reason/error buffers the core passes to backends. */
#define FLASHPORT_MESSAGE_CAPACITY 1024

/** One validated tensor operand: the address of element [0, 0, 0, 0] (aligned to the element size) and signed
 *  element strides in [batch, seqlen, heads, head_dim] order. For lse the strides are [batch, heads, seqlen, unused].
 *  A stride may be negative: then elements lie below data (validation has checked that the whole byte range, lowest
 *  to highest element, is addressable and at most 2^48 bytes). Absent optional operands have data == NULL. */
typedef struct flashport_operand {
  void* data;
  int64_t stride[4];
} flashport_operand;

typedef enum flashport_direction {
  FLASHPORT_DIRECTION_FORWARD = 0,
  FLASHPORT_DIRECTION_BACKWARD = 1
} flashport_direction;

/**
 * A fully validated request, forward or backward. Sizes are positive, products fit in int64, dtypes agree, all
 * operands live on (device_type, device_id), outputs do not alias inputs. Strides may be negative (a backend whose
 * kernels assume otherwise refuses such a problem in supports()).
 *
 * Masks are already resolved into one rule. Key j is visible from query row i when
 *     (window_left  < 0 || j >= i + mask_offset - window_left) &&
 *     (window_right < 0 || j <= i + mask_offset + window_right)
 * (causal has been folded in as window_right = min(window_right, 0) with window_right >= 0).
 */
typedef struct flashport_problem {
  int32_t direction;     /**< flashport_direction */
  int32_t dtype;         /**< flashport_dtype of every operand except lse (always F32) */
  int32_t device_type;   /**< flashport_device_type */
  int32_t device_id;

  int64_t batch;
  int64_t seqlen_q;
  int64_t seqlen_kv;
  int64_t heads_q;
  int64_t heads_kv;
  int64_t head_dim_qk;
  int64_t head_dim_v;

  float scale;           /**< resolved: never 0 */
  float softcap;         /**< 0 = off */
  int32_t causal;        /**< informational: already folded into window_right */
  int32_t deterministic; /**< backward only */
  int64_t mask_offset;   /**< Skv - Sq (bottom-right) or 0 (top-left) */
  int64_t window_left;   /**< < 0 = unlimited */
  int64_t window_right;  /**< < 0 = unlimited */

  /* forward and backward */
  flashport_operand q, k, v, out, lse; /**< forward: lse.data may be NULL; backward: lse is an input */
  /* backward only */
  flashport_operand dout, dq, dk, dv;

  void* stream;          /**< caller's GPU stream or NULL */
  void* workspace;       /**< caller's workspace or NULL */
  size_t workspace_size;

  /* backward only */
  flashport_operand dlse; /**< optional input, lse strides; data NULL = absent (zero). A backend that cannot add it
                               to the row sums declines in supports() with "dlse not supported by this backend yet" */
} flashport_problem;

/**
 * A fully validated flashport_combine() request (see the public header for the semantics). num_parts >= 1, sizes
 * positive, every operand on (device_type, device_id), parts_lse / lse F32, outputs overlap nothing. The two arrays
 * belong to the core and are valid during supports and run only: a GPU backend copies what it needs (into kernel
 * parameters) before run returns.
 */
typedef struct flashport_combine_problem {
  int32_t part_dtype;    /**< flashport_dtype of every parts_out[i] */
  int32_t out_dtype;     /**< flashport_dtype of out (may differ from part_dtype) */
  int32_t device_type;   /**< flashport_device_type */
  int32_t device_id;

  int64_t num_parts;
  int64_t batch;
  int64_t seqlen_q;
  int64_t heads_q;
  int64_t head_dim_v;    /**< any size >= 1: no head-dim limit is imposed on combine by the validation */

  const flashport_operand* parts_out; /**< num_parts operands, [batch, seqlen, heads, dim] strides */
  const flashport_operand* parts_lse; /**< num_parts operands, lse strides [batch, heads, seqlen, unused] */
  flashport_operand out;
  flashport_operand lse;              /**< data NULL = not requested */

  void* stream;          /**< caller's GPU stream or NULL */
} flashport_combine_problem;

/**
 * For backends whose kernels take non-negative strides only: the name of the first operand of p ("q", "k", "v",
 * "out", "lse", "dout", "dq", "dk", "dv") with a negative stride on a dim of size > 1, with that dim and stride;
 * NULL when there is none. Absent operands (and the backward's in a forward problem) have zero strides, and a
 * workspace-size query, whose data pointers may be NULL, gets the same answer as the call. A dim of size 1 only
 * ever has index 0, so its stride is never used.
 */
static inline const char* flashport_problem_negative_stride(const flashport_problem* p, int* dim, int64_t* stride) {
  const int64_t q[4] = {p->batch, p->seqlen_q, p->heads_q, p->head_dim_qk};
  const int64_t k[4] = {p->batch, p->seqlen_kv, p->heads_kv, p->head_dim_qk};
  const int64_t v[4] = {p->batch, p->seqlen_kv, p->heads_kv, p->head_dim_v};
  const int64_t o[4] = {p->batch, p->seqlen_q, p->heads_q, p->head_dim_v};
  const int64_t l[4] = {p->batch, p->heads_q, p->seqlen_q, 1};
  const char* const names[9] = {"q", "k", "v", "out", "lse", "dout", "dq", "dk", "dv"};
  const flashport_operand* const ops[9] = {&p->q, &p->k, &p->v, &p->out, &p->lse, &p->dout, &p->dq, &p->dk, &p->dv};
  const int64_t* const sizes[9] = {q, k, v, o, l, o, q, k, v};
  int i, d;
  for (i = 0; i < 9; ++i) {
    for (d = 0; d < 4; ++d) {
      if (sizes[i][d] > 1 && ops[i]->stride[d] < 0) {
        *dim = d;
        *stride = ops[i]->stride[d];
        return names[i];
      }
    }
  }
  return NULL;
}

/**
 * One backend. Every slot is required unless marked (optional). `why`/`err` buffers are written with a
 * NUL-terminated reason of at most why_len bytes; the core provides them and owns them.
 */
typedef struct flashport_backend_iface {
  const char* name;       /**< short, unique, lower-case: "cpu", "cuda", "cuda-fma", "hip" */
  int32_t device_type;    /**< the flashport_device_type it serves */
  const char* description;

  /* .probe = */ /** Usable device count; 0 with a reason in why (e.g. "no CUDA device: cudaGetDeviceCount
                     returned 100 (no CUDA-capable device is detected)"). Called once, at registration. */
  int32_t (*probe)(char* why, size_t why_len);

  /* .supports = */ /** 1 if it can run this problem, else 0 with the reason in why. Pure; called per request. */
  int32_t (*supports)(const flashport_problem* p, char* why, size_t why_len);

  /* .workspace_size = */ /** Scratch bytes the problem needs (0 for none). */
  size_t (*workspace_size)(const flashport_problem* p);

  /* .run = */ /** Run p (forward or backward per p->direction). Must write no output when it fails before
                   launching work. Returns a flashport_status; err holds the message on failure. */
  int32_t (*run)(const flashport_problem* p, char* err, size_t err_len);

  /* Device memory helpers for tools and tests (flashport-check, the GPU conformance suite), so that they can move
   * data to a backend's device without linking its runtime. NULL for the CPU backend. Each returns a
   * flashport_status and writes err on failure. */
  /* .mem_alloc = */ /** (optional) Allocate bytes on device_id; *ptr receives the address. */
  int32_t (*mem_alloc)(int32_t device_id, size_t bytes, void** ptr, char* err, size_t err_len);
  /* .mem_free = */ /** (optional) Free what mem_alloc returned; NULL is accepted. */
  int32_t (*mem_free)(int32_t device_id, void* ptr, char* err, size_t err_len);
  /* .mem_copy = */ /** (optional) Synchronous copy; to_device = 1 host->device, 0 device->host. */
  int32_t (*mem_copy)(int32_t device_id, void* dst, const void* src, size_t bytes, int32_t to_device, char* err,
                      size_t err_len);
  /* .synchronize = */ /** (optional) Wait for all work on stream (NULL = default stream) and report any
                           asynchronous error raised by it. */
  int32_t (*synchronize)(int32_t device_id, void* stream, char* err, size_t err_len);

  /* flashport_combine(). Both slots or neither: a backend without them is reported as not implementing combine
   * (the request goes to the next backend, or fails with NO_BACKEND and that reason); a table with only one of them
   * is refused at registration. Combine needs no workspace. */
  /* .combine_supports = */ /** (optional) As supports(), for a combine request. */
  int32_t (*combine_supports)(const flashport_combine_problem* p, char* why, size_t why_len);
  /* .combine_run = */ /** (optional) As run(), for a combine request. */
  int32_t (*combine_run)(const flashport_combine_problem* p, char* err, size_t err_len);
} flashport_backend_iface;

/** What a module hands the core. */
typedef struct flashport_module {
  uint32_t abi_version;                    /**< FLASHPORT_MODULE_ABI_VERSION the module was built with */
  uint32_t backend_count;
  const flashport_backend_iface* backends; /**< static storage inside the module */
} flashport_module;

/** The module's entry point. Fills *out and returns 0, or returns non-zero with a reason in why. Must not crash
 *  or abort when its runtime or device is missing: that is reported through probe(). */
typedef int32_t (*flashport_module_init_fn)(uint32_t core_abi_version, flashport_module* out, char* why,
                                            size_t why_len);

/* Modules export their init through this macro (default visibility, C linkage). */
#if defined(_WIN32)
#  define FLASHPORT_MODULE_EXPORT __declspec(dllexport)
#else
#  define FLASHPORT_MODULE_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FLASHPORT_DISPATCH_BACKEND_ABI_H */
