/*
 * flashport — exact attention, computed the FlashAttention way, on every vendor's hardware.
 *
 * This is the whole public C API. It is plain C (C89-friendly types only, no C++ across the boundary) so that
 * it can be called from C, C++, Python (ctypes/cffi), Rust, Julia and any other FFI.
 *
 * What one call computes (the full contract: docs/design.md):
 *
 *     s_ij  = scale * <q_i, k_j>                    scale = 1/sqrt(head_dim_qk) when 0 is passed
 *     s_ij  = softcap * tanh(s_ij / softcap)         only when softcap > 0
 *     s_ij  = -inf where masked (causal / window)
 *     o_i   = sum_j softmax_j(s_ij) * v_j
 *     lse_i = log(sum_j exp(s_ij))                   natural log, fp32
 *
 *   Masks and non-finite values (the details: docs/numerics.md), on every backend and in both directions:
 *   - Only the mask makes a key invisible. A row that sees no key by the mask's geometry (no j in [0, seqlen_kv)
 *     passes the causal / window rules of flashport_forward_args with its alignment) is fully masked: o_i = 0,
 *     lse_i = -inf and dq_i = 0, exactly, whatever its inputs. No other row gives o_i = 0 with lse_i = -inf.
 *   - Every other row is what the formulas give in IEEE arithmetic, as PyTorch's math path computes them: a NaN
 *     or +inf score among its visible keys (from a NaN or inf in q or k, or a score that overflows fp32) makes o_i
 *     and lse_i NaN; a -inf score gives its key weight 0; a row whose visible scores are all -inf has o_i = NaN
 *     (0/0) and lse_i = -inf. A NaN in v_j of a key it sees makes NaN the columns of o_i that v_j enters. The
 *     backward, given that out and lse, has NaN gradients where the formulas have them (a NaN row's dq_i, and
 *     dk_j, dv_j of the keys it sees). With softcap, an infinite q.k is capped (tanh(+-inf) = +-1); NaN stays NaN.
 *   - Scores are fp32: scale * q.k (GPU kernels multiply q.k by scale * log2(e); the CPU multiplies q by scale, or
 *     by scale / softcap, before the product), so overflow gives +-inf there, with the effects above.
 *   - A masked pair (i, j) has probability and score gradient exactly 0, never computed from k_j: a non-finite
 *     k_j of a key that row i does not see never changes o_i or lse_i. The kernels still multiply those zeros into
 *     their block products, so 0 * NaN may carry a non-finite value across a masked pair between rows and keys
 *     that share a block: v_j into o_i (as in PyTorch's math path), and in the backward k_j into dq_i, q_i into
 *     dk_j, dout_i into dv_j. Whether it does depends on the backend's block shapes; it is not guaranteed either
 *     way, except that a fully masked row's o_i, lse_i and dq_i stay exactly as above.
 *   GQA/MQA: heads_q % heads_kv == 0; query head h reads KV head h / (heads_q / heads_kv).
 *
 * Tensors use the logical layout [batch, seqlen, heads, head_dim] with an element stride for every dim, so any
 * view (including transposed or non-contiguous ones) can be passed without a copy. The library never allocates
 * user-visible tensors and never keeps a pointer after a call returns.
 *
 * Errors: every entry point returns a flashport_status. On any error nothing is written to any output tensor,
 * and flashport_last_error() returns a message for the calling thread that names the argument and the values
 * that were wrong (and, when no backend could run a request, which backends were asked and why each declined).
 *
 * Threads: every function may be called from any thread, concurrently, unless its comment says otherwise.
 * Backends are discovered and GPU modules loaded once, on first use, under a lock.
 *
 * Versioning: argument structs start with `size_t struct_size`; new fields are only ever appended. Always call the
 * matching *_init() macro before filling a struct: it passes the caller's sizeof to the *_init_sized() function,
 * which sets struct_size and every default without writing past the caller's struct. A caller compiled against an
 * older header thus passes a smaller struct_size, and the library uses defaults for the fields it does not know.
 */
#ifndef FLASHPORT_FLASHPORT_H
#define FLASHPORT_FLASHPORT_H

#include <stddef.h>
#include <stdint.h>

/* The one export macro: every public symbol carries it; everything else in libflashport.so is hidden. */
#if defined(_WIN32)
#  if defined(FLASHPORT_BUILDING_LIBRARY)
#    define FLASHPORT_API __declspec(dllexport)
#  else
#    define FLASHPORT_API __declspec(dllimport)
#  endif
#else
#  define FLASHPORT_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------------------------------------------- */

/** Library version of this header. The runtime value is flashport_version(). (since v0.1) */
#define FLASHPORT_VERSION_MAJOR 0
#define FLASHPORT_VERSION_MINOR 1
#define FLASHPORT_VERSION_PATCH 0
#define FLASHPORT_VERSION_NUMBER \
  (FLASHPORT_VERSION_MAJOR * 10000 + FLASHPORT_VERSION_MINOR * 100 + FLASHPORT_VERSION_PATCH)

/** ABI version: bumped (together with the SONAME, libflashport.so.N) on any incompatible change to an exported
 *  function or struct prefix. Appending a field to a versioned struct is compatible and does not bump it. */
#define FLASHPORT_ABI_VERSION 1

/** @return FLASHPORT_VERSION_NUMBER of the library actually loaded (e.g. 100 for 0.1.0). (since v0.1) */
FLASHPORT_API uint32_t flashport_version(void);

/** @return the version as a static string, e.g. "0.1.0". Owned by the library; never free it. (since v0.1) */
FLASHPORT_API const char* flashport_version_string(void);

/** @return FLASHPORT_ABI_VERSION of the library actually loaded. (since v0.1) */
FLASHPORT_API uint32_t flashport_abi_version(void);

/* ---------------------------------------------------------------------------------------------------------------
 * Status codes and errors
 * ------------------------------------------------------------------------------------------------------------- */

/** Status of every call. Values are pinned and never reused; gaps leave room for new codes. (since v0.1) */
typedef enum flashport_status {
  FLASHPORT_STATUS_OK = 0,
  /* The request is malformed (10-29): fix the call. */
  FLASHPORT_STATUS_INVALID_ARGUMENT = 10, /**< null pointer, bad enum value, non-finite scale, bad window ... */
  FLASHPORT_STATUS_STRUCT_SIZE = 11,      /**< struct_size is 0, too small, or larger than this library knows */
  FLASHPORT_STATUS_SHAPE_MISMATCH = 12,   /**< shapes disagree, non-positive sizes, heads_q % heads_kv != 0 */
  FLASHPORT_STATUS_DTYPE_MISMATCH = 13,   /**< dtypes disagree, unknown dtype, lse not F32 */
  FLASHPORT_STATUS_DEVICE_MISMATCH = 14,  /**< tensors on different devices, unknown device type */
  FLASHPORT_STATUS_OVERFLOW = 15,         /**< a size or size*stride product does not fit in 64 bits */
  FLASHPORT_STATUS_ALIASING = 16,         /**< an output overlaps an input or another output */
  FLASHPORT_STATUS_UNSUPPORTED = 17,      /**< valid, but outside the library's limits (e.g. head_dim > 256) */
  /* No backend could run a valid request (30-39). */
  FLASHPORT_STATUS_NO_BACKEND = 30,       /**< no backend for this device / options; the message lists why */
  FLASHPORT_STATUS_BACKEND_UNAVAILABLE = 31, /**< the forced backend is unknown or failed to load */
  /* Failures while running (40-59). */
  FLASHPORT_STATUS_WORKSPACE_TOO_SMALL = 40, /**< caller workspace smaller than the *_workspace_size() query */
  FLASHPORT_STATUS_OUT_OF_MEMORY = 41,    /**< host or device allocation failed */
  FLASHPORT_STATUS_DEVICE_ERROR = 42,     /**< the GPU runtime reported an error; the message has its text */
  FLASHPORT_STATUS_INTERNAL = 59          /**< a bug in flashport; please report the message */
} flashport_status;

/** @return a static, human-readable name for a status ("FLASHPORT_STATUS_SHAPE_MISMATCH"); "unknown status" for
 *  values this library does not know. Never NULL. (since v0.1) */
FLASHPORT_API const char* flashport_status_string(flashport_status status);

/** @return the message of the last failed call made *by the calling thread* (thread-local), or "" when the last
 *  call succeeded. The pointer is owned by the library and stays valid until the same thread makes its next
 *  flashport call. Never NULL. (since v0.1) */
FLASHPORT_API const char* flashport_last_error(void);

/* ---------------------------------------------------------------------------------------------------------------
 * Tensors
 * ------------------------------------------------------------------------------------------------------------- */

/** Element types. 0 is deliberately invalid so a zero-initialised tensor is rejected. (since v0.1) */
typedef enum flashport_dtype {
  FLASHPORT_DTYPE_F32 = 1,  /**< IEEE binary32 */
  FLASHPORT_DTYPE_F16 = 2,  /**< IEEE binary16 */
  FLASHPORT_DTYPE_BF16 = 3  /**< bfloat16 (upper 16 bits of binary32) */
} flashport_dtype;

/** Device types, numbered as DLPack's DLDeviceType so DLPack tensors map over directly. (since v0.1) */
typedef enum flashport_device_type {
  FLASHPORT_DEVICE_CPU = 1,   /**< kDLCPU: host memory */
  FLASHPORT_DEVICE_CUDA = 2,  /**< kDLCUDA: NVIDIA device memory */
  FLASHPORT_DEVICE_ROCM = 10  /**< kDLROCM: AMD device memory */
} flashport_device_type;

/** Rank of every attention tensor: [batch, seqlen, heads, head_dim]. */
#define FLASHPORT_RANK 4

/**
 * A borrowed view of a 4-D tensor. Not versioned: its layout is fixed for the life of ABI version 1.
 *
 * - data:      address of element [0, 0, 0, 0], aligned to the element size (4 bytes for F32, 2 for F16 and BF16;
 *              the lse tensor is F32); a misaligned pointer is refused with FLASHPORT_STATUS_INVALID_ARGUMENT. The
 *              caller owns the memory; it must stay valid for the duration of the call (for GPU backends: until the
 *              work queued on `stream` has finished). NULL marks an optional tensor as absent.
 * - dtype:     a flashport_dtype.
 * - device_type, device_id: where `data` lives (DLPack numbering; device_id is the GPU ordinal, 0 for CPU).
 * - shape:     logical sizes [batch, seqlen, heads, head_dim]; every entry >= 1.
 * - strides:   signed element (not byte) strides for each of the four dims: element [b, s, h, d] is at
 *              data + b*strides[0] + s*strides[1] + h*strides[2] + d*strides[3] elements, so a negative stride
 *              (a reversed view such as NumPy's x[:, ::-1], as DLPack allows) addresses elements below `data`.
 *              Zero strides (broadcasting) are accepted on inputs; an output's strides must give every element its
 *              own address (else FLASHPORT_STATUS_ALIASING). Any such layout is accepted on the CPU; GPU backends
 *              may require strides[3] == 1 or non-negative strides and say which tensor and stride in their
 *              error message.
 *
 * Extents: the bytes from the lowest to the highest addressed element must fit in int64 and in a 48-bit address
 * space (2^48 bytes), and must neither start below address 0 nor wrap past its top; otherwise the call fails with
 * FLASHPORT_STATUS_OVERFLOW. The library does not know the sizes of the caller's buffers: as with the leading
 * dimensions of BLAS, the caller guarantees that every element its shape and strides address lies inside memory it
 * owns. Strides that fit but reach past the buffer cannot be detected and make the call read or write outside it.
 */
typedef struct flashport_tensor {
  void* data;
  int32_t dtype;
  int32_t device_type;
  int32_t device_id;
  int32_t reserved_; /**< must be 0 */
  int64_t shape[FLASHPORT_RANK];
  int64_t strides[FLASHPORT_RANK];
} flashport_tensor;

/**
 * Fill `*t` as a contiguous row-major [batch, seqlen, heads, head_dim] tensor (strides
 * {seqlen*heads*head_dim, heads*head_dim, head_dim, 1}). A convenience; any other strides may be set by hand.
 * Does nothing when t is NULL. Never overflows: a stride whose product does not fit in int64 is set to INT64_MAX
 * (and so are the strides of the dims outside it); such a tensor has more elements than int64 can count, and every
 * call given it fails with FLASHPORT_STATUS_OVERFLOW and a message naming its shape. (since v0.1)
 */
FLASHPORT_API void flashport_tensor_init_contiguous(flashport_tensor* t, void* data, flashport_dtype dtype,
                                                    flashport_device_type device_type, int32_t device_id,
                                                    int64_t batch, int64_t seqlen, int64_t heads, int64_t head_dim);

/**
 * The log-sum-exp tensor is also described by a flashport_tensor: dtype F32, on the same device as q, shape
 * {batch, heads_q, seqlen_q, 1} (note the order: heads before seqlen, as FlashAttention stores it) with strides
 * of the caller's choice. This fills a contiguous one (strides {heads_q*seqlen_q, seqlen_q, 1, 1}); sizes whose
 * strides overflow are handled as by flashport_tensor_init_contiguous(). (since v0.1)
 */
FLASHPORT_API void flashport_lse_init_contiguous(flashport_tensor* t, float* data, flashport_device_type device_type,
                                                 int32_t device_id, int64_t batch, int64_t heads_q,
                                                 int64_t seqlen_q);

/* ---------------------------------------------------------------------------------------------------------------
 * Masks
 * ------------------------------------------------------------------------------------------------------------- */

/** How causal masks and windows line up when seqlen_q != seqlen_kv. (since v0.1) */
typedef enum flashport_mask_alignment {
  /** Query row i sees key j when j <= i + (seqlen_kv - seqlen_q): the last query sees the last key.
   *  FlashAttention 2+, FlashInfer. The default. */
  FLASHPORT_ALIGN_BOTTOM_RIGHT = 0,
  /** Query row i sees key j when j <= i: PyTorch's is_causal, xformers. */
  FLASHPORT_ALIGN_TOP_LEFT = 1
} flashport_mask_alignment;

/* ---------------------------------------------------------------------------------------------------------------
 * Forward
 * ------------------------------------------------------------------------------------------------------------- */

/**
 * Arguments of flashport_forward(). Call flashport_forward_args_init() first, then set the tensors and options.
 *
 * Shapes (B batch, Sq/Skv sequence lengths, Hq/Hkv heads, Dqk/Dv head dims):
 *   q [B, Sq, Hq, Dqk]   k [B, Skv, Hkv, Dqk]   v [B, Skv, Hkv, Dv]   out [B, Sq, Hq, Dv]
 *   lse (optional) F32 {B, Hq, Sq, 1}
 * q, k, v and out share one dtype and one device. Hq % Hkv == 0. Dqk, Dv in [1, 256].
 * out must not overlap q, k, v or lse.
 *
 * Masking: key j is visible from query row i when every enabled rule allows it, with
 * off = (alignment == BOTTOM_RIGHT ? Skv - Sq : 0):
 *   causal:            j <= i + off
 *   window_left >= 0:  j >= i + off - window_left
 *   window_right >= 0: j <= i + off + window_right
 */
typedef struct flashport_forward_args {
  size_t struct_size;      /**< sizeof(flashport_forward_args); set by flashport_forward_args_init() */
  flashport_tensor q;      /**< input queries */
  flashport_tensor k;      /**< input keys */
  flashport_tensor v;      /**< input values */
  flashport_tensor out;    /**< output, written in its dtype */
  flashport_tensor lse;    /**< optional output: data == NULL (the default) means "not requested" */
  float softmax_scale;     /**< multiplies q·k; 0 (default) means 1/sqrt(Dqk). Must be finite, >= 0 and
                                <= 2.3586574e38 = FLT_MAX / log2(e): the GPU kernels multiply scores by
                                scale * log2(e) in fp32. Scores may still overflow; see "non-finite values" above. */
  float softcap;           /**< > 0 applies softcap*tanh(s/softcap) to scaled scores; 0 (default) = off. When on,
                                1.1754944e-38 (FLT_MIN) <= softcap <= 2.3586574e38 (the kernels use 1 / softcap and
                                softcap * log2(e)), and scale / softcap, with the resolved scale, must be a finite
                                normal float (FLT_MIN..FLT_MAX): the kernels multiply q·k by it before the tanh. The
                                error message gives the exact softcap interval for the scale in use. */
  int32_t causal;          /**< 0 (default) or 1 */
  int32_t mask_alignment;  /**< a flashport_mask_alignment; default BOTTOM_RIGHT */
  int64_t window_left;     /**< keys allowed to the left of the diagonal; < 0 (default -1) = unlimited */
  int64_t window_right;    /**< keys allowed to the right of the diagonal; < 0 (default -1) = unlimited */
  void* stream;            /**< GPU backends: cudaStream_t / hipStream_t to run on; NULL = the default stream.
                                The call is asynchronous on it. Ignored by the CPU backend. */
  void* workspace;         /**< optional scratch memory on the tensors' device, at least workspace_size bytes,
                                256-byte aligned; NULL (default) = the backend allocates and frees what it needs
                                within the call. See flashport_forward_workspace_size(). */
  size_t workspace_size;   /**< bytes at `workspace` */
  const char* backend;     /**< NULL (default) = choose by device type; otherwise force the backend of that
                                name ("cpu", "cuda", ...). The env variable FLASHPORT_BACKEND does the same when
                                this is NULL. The string is read during the call only. */
} flashport_forward_args;

/** Set args->struct_size = struct_size and every default (all tensors absent, scale 0, no mask, windows -1, no
 *  workspace) in the first struct_size bytes. struct_size is the size of the struct *as the caller was compiled*,
 *  so a caller built against an older, smaller header is never written past its end. C and C++ callers use the
 *  flashport_forward_args_init() macro, which passes sizeof; other languages pass the size of their own
 *  definition. Does nothing when args is NULL. (since v0.1) */
FLASHPORT_API void flashport_forward_args_init_sized(flashport_forward_args* args, size_t struct_size);

/** flashport_forward_args_init(&args): the usual way to initialise, with the caller's sizeof. (since v0.1) */
#define flashport_forward_args_init(args) flashport_forward_args_init_sized((args), sizeof(*(args)))

/**
 * Compute attention forward: out (and lse if requested).
 * @return FLASHPORT_STATUS_OK, or an error status with flashport_last_error() set and no output written.
 *  GPU backends return once the work is queued on args->stream; errors raised later by the device are reported
 *  by the next call on that stream, as with cuBLAS. (since v0.1)
 */
FLASHPORT_API flashport_status flashport_forward(const flashport_forward_args* args);

/** Bytes of workspace flashport_forward() would need for these arguments (tensor data pointers may be NULL for
 *  this query; shapes, dtypes and devices must be valid). Writes 0 for backends that need none.
 *  @return a status as flashport_forward() would for a bad request; *bytes is written only on success. (since v0.1)
 */
FLASHPORT_API flashport_status flashport_forward_workspace_size(const flashport_forward_args* args, size_t* bytes);

/* ---------------------------------------------------------------------------------------------------------------
 * Backward
 * ------------------------------------------------------------------------------------------------------------- */

/**
 * Arguments of flashport_backward(). Call flashport_backward_args_init() first.
 *
 * Inputs: dout [B, Sq, Hq, Dv], and q, k, v, out, lse exactly as the forward call that produced out and lse
 * (lse is required here). Options must match the forward call. Outputs:
 *   dq [B, Sq, Hq, Dqk]   dk [B, Skv, Hkv, Dqk]   dv [B, Skv, Hkv, Dv]
 * dk/dv are summed over the query heads that share a KV head (GQA). All tensors share one dtype and device
 * (lse is F32). Outputs must not overlap each other or any input. Outputs are overwritten, not accumulated into.
 */
typedef struct flashport_backward_args {
  size_t struct_size;      /**< sizeof(flashport_backward_args); set by flashport_backward_args_init() */
  flashport_tensor dout;   /**< gradient of the loss with respect to out */
  flashport_tensor q;      /**< forward input */
  flashport_tensor k;      /**< forward input */
  flashport_tensor v;      /**< forward input */
  flashport_tensor out;    /**< forward output */
  flashport_tensor lse;    /**< forward log-sum-exp, F32 {B, Hq, Sq, 1}; required */
  flashport_tensor dq;     /**< output gradient */
  flashport_tensor dk;     /**< output gradient */
  flashport_tensor dv;     /**< output gradient */
  float softmax_scale;     /**< as in forward */
  float softcap;           /**< as in forward */
  int32_t causal;          /**< as in forward */
  int32_t mask_alignment;  /**< as in forward */
  int64_t window_left;     /**< as in forward */
  int64_t window_right;    /**< as in forward */
  void* stream;            /**< as in forward */
  void* workspace;         /**< as in forward; see flashport_backward_workspace_size() */
  size_t workspace_size;   /**< as in forward */
  const char* backend;     /**< as in forward */
  int32_t deterministic;   /**< 1 = bitwise-identical results run to run and across thread counts (may be slower);
                                0 (default) = the fastest order of accumulation */
  flashport_tensor dlse;   /**< optional input: the gradient of the loss with respect to lse, so that an lse handed
                                to autograd is differentiable. F32 {B, Hq, Sq, 1} like lse, any strides, on the
                                same device. data == NULL (the default, and what a caller built against an older
                                header gets) means absent, i.e. zero. With dlse the gradients are those of
                                loss(out, lse): dS = P ∘ (dP - (D - dlse)) with D_i = rowsum(dout_i ∘ out_i).
                                Rows with lse = -inf (fully masked) get zero gradients for any finite dlse.
                                Backends whose kernels do not take it decline the request with that reason
                                (FLASHPORT_STATUS_NO_BACKEND); docs/inference.md lists them. (since v0.2) */
} flashport_backward_args;

/** As flashport_forward_args_init_sized(), for the backward arguments. (since v0.1) */
FLASHPORT_API void flashport_backward_args_init_sized(flashport_backward_args* args, size_t struct_size);

/** flashport_backward_args_init(&args): initialise with the caller's sizeof. (since v0.1) */
#define flashport_backward_args_init(args) flashport_backward_args_init_sized((args), sizeof(*(args)))

/** Compute dq, dk, dv. Same error and asynchrony rules as flashport_forward(). (since v0.1) */
FLASHPORT_API flashport_status flashport_backward(const flashport_backward_args* args);

/** Bytes of workspace flashport_backward() would need. Same rules as flashport_forward_workspace_size().
 *  (since v0.1) */
FLASHPORT_API flashport_status flashport_backward_workspace_size(const flashport_backward_args* args,
                                                                 size_t* bytes);

/* ---------------------------------------------------------------------------------------------------------------
 * Combine
 * ------------------------------------------------------------------------------------------------------------- */

/**
 * Arguments of flashport_combine(). Call flashport_combine_args_init() first. (since v0.2)
 *
 * Part i is (parts_out[i], parts_lse[i]): the out and lse of attention of the same queries over a subset K_i of the
 * keys: a chunk of a split KV range (split-KV / flash-decoding), the shared prefix or a sequence's own suffix
 * (cascade attention), the keys held by another rank (context parallelism). When the K_i are disjoint and cover
 * every key, combining gives attention over all of them. For every (batch, head, query row), with natural logs:
 *
 *     lse = log(sum_i exp(lse_i))
 *     out = sum_i exp(lse_i - lse) * out_i
 *
 * computed in fp32, the largest lse_i subtracted before exp (no overflow for any finite lse_i), then out rounded
 * to its dtype:
 *   - a part with lse_i = -inf (it saw no key of the row) contributes nothing, whatever its out_i holds;
 *   - when every lse_i is -inf (a fully masked row), out = 0 and lse = -inf, as the forward gives;
 *   - NaN propagates: a NaN lse_i makes that row's out and lse NaN; a NaN (or Inf) in out_i of a part whose
 *     lse_i > -inf reaches out (a contributing part is always multiplied in, even with a weight that underflows to
 *     0). An lse_i of +inf (no forward produces one) makes the row NaN.
 *
 * Shapes (B batch, Sq query rows, Hq query heads, Dv value head dim, any Dv >= 1):
 *   parts_out[i] [B, Sq, Hq, Dv]   parts_lse[i] F32 {B, Hq, Sq, 1}   (i = 0 .. num_parts - 1)
 *   out [B, Sq, Hq, Dv]             lse (optional) F32 {B, Hq, Sq, 1}
 * Every parts_out[i] has one dtype; out may have another (F32 partial results combined into a BF16 out is the
 * usual split-KV setup). All tensors are on one device. Any strides; parts may share memory with each other (e.g.
 * views of one stacked [num_parts, B, Sq, Hq, Dv] buffer), but out and lse must not overlap any part or each other.
 *
 * Why arrays of tensors rather than one stacked tensor: parts usually come from separate calls and buffers (the
 * prefix and the suffix of cascade attention, another rank's result), an array of the existing flashport_tensor
 * describes separate buffers and views into one stacked buffer alike without a rank-5 tensor type, and every FFI
 * passes an array of structs directly (a C array, a ctypes array, a Rust slice's pointer).
 *
 * No workspace argument: each output row is one pass over the parts that needs no scratch memory on the device (the
 * CPU backend keeps a row's fp32 accumulator in a small host buffer per thread). Backends that do not implement
 * combine decline with that reason (FLASHPORT_STATUS_NO_BACKEND); docs/inference.md lists which do.
 */
typedef struct flashport_combine_args {
  size_t struct_size;                 /**< sizeof(flashport_combine_args); set by flashport_combine_args_init() */
  int64_t num_parts;                  /**< number of parts, >= 1; 0 (the default) is refused */
  const flashport_tensor* parts_out;  /**< array of num_parts input tensors [B, Sq, Hq, Dv]. The array and the
                                           tensors' memory are borrowed for the duration of the call (on GPU
                                           backends the tensors' memory until the work queued on `stream` has
                                           finished); the array itself may be freed as soon as the call returns */
  const flashport_tensor* parts_lse;  /**< array of num_parts input tensors, F32 {B, Hq, Sq, 1}; borrowed likewise */
  flashport_tensor out;               /**< output [B, Sq, Hq, Dv], written in its dtype; overwritten, not accumulated */
  flashport_tensor lse;               /**< optional output, F32 {B, Hq, Sq, 1}: data == NULL (the default) means
                                           "not requested" */
  void* stream;                       /**< as in forward */
  const char* backend;                /**< as in forward */
} flashport_combine_args;

/** As flashport_forward_args_init_sized(), for the combine arguments: num_parts 0, both arrays NULL, every tensor
 *  absent, no stream, no forced backend. (since v0.2) */
FLASHPORT_API void flashport_combine_args_init_sized(flashport_combine_args* args, size_t struct_size);

/** flashport_combine_args_init(&args): initialise with the caller's sizeof. (since v0.2) */
#define flashport_combine_args_init(args) flashport_combine_args_init_sized((args), sizeof(*(args)))

/** Merge the parts into out (and lse when requested). Same error, threading and asynchrony rules as
 *  flashport_forward(): on error nothing is written and flashport_last_error() names the argument, e.g.
 *  "parts_lse[2].shape[2] (seqlen_q = 7) differs from parts_out[0].shape[1] (seqlen_q = 8)". (since v0.2) */
FLASHPORT_API flashport_status flashport_combine(const flashport_combine_args* args);

/* ---------------------------------------------------------------------------------------------------------------
 * Backends
 * ------------------------------------------------------------------------------------------------------------- */

/** What one backend is and whether it can run. Call flashport_backend_info_init() before flashport_backend_info().
 *  Every string is owned by the library and valid until the process exits. */
typedef struct flashport_backend_info {
  size_t struct_size;         /**< sizeof(flashport_backend_info) */
  const char* name;           /**< e.g. "cpu", "cuda"; the name accepted by args->backend / FLASHPORT_BACKEND */
  int32_t device_type;        /**< the flashport_device_type whose tensors it runs */
  int32_t available;          /**< 1 when loaded and at least one device is usable, else 0 */
  int32_t device_count;       /**< usable devices (1 for the CPU backend) */
  int32_t reserved_;
  const char* status_message; /**< why it is unavailable ("no CUDA device: ..."), or a short description */
  const char* module_path;    /**< shared module it came from, or "" for built-in backends */
} flashport_backend_info;

/** Set info->struct_size = struct_size (the caller's sizeof) and clear the first struct_size bytes. Does nothing
 *  when info is NULL. (since v0.1) */
FLASHPORT_API void flashport_backend_info_init_sized(flashport_backend_info* info, size_t struct_size);

/** flashport_backend_info_init(&info): initialise with the caller's sizeof. (since v0.1) */
#define flashport_backend_info_init(info) flashport_backend_info_init_sized((info), sizeof(*(info)))

/** @return the number of known backends, built-in and module (loaded or not). Loads modules on first call.
 *  (since v0.1) */
FLASHPORT_API int32_t flashport_backend_count(void);

/** Describe backend `index` (0 <= index < flashport_backend_count()).
 *  @return OK, INVALID_ARGUMENT for a NULL info or an index out of range, STRUCT_SIZE for a bad struct_size.
 *  (since v0.1) */
FLASHPORT_API flashport_status flashport_backend_info_get(int32_t index, flashport_backend_info* info);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FLASHPORT_FLASHPORT_H */
