"""flashport.attention / attention_backward / combine over any DLPack array (NumPy, PyTorch, CuPy, JAX)."""

from __future__ import annotations

import ctypes
from contextlib import ExitStack
from dataclasses import dataclass
from typing import NamedTuple

from . import _lib
from ._dlpack import Borrowed, View, device_of

_ALIGNMENTS = {"bottom_right": _lib.ALIGN_BOTTOM_RIGHT, "top_left": _lib.ALIGN_TOP_LEFT}


def normalize(causal=False, window=(-1, -1), softcap=0.0, scale=None, mask_alignment="bottom_right",
              backend=None) -> tuple:
    """The mask/scale/backend options, checked once, as the plain tuple Options takes (and the torch op's
    arguments). A tuple rather than an object so that torch.compile traces it without a graph break."""
    if window is None:
        window = (-1, -1)
    # Checked without try/except, which older torch.compile versions do not trace.
    if not (isinstance(window, (tuple, list)) and len(window) == 2):
        raise TypeError(f"window must be a (left, right) pair of ints, got {window!r}")
    left, right = window
    if mask_alignment not in _ALIGNMENTS:
        raise ValueError(f"mask_alignment must be one of {sorted(_ALIGNMENTS)}, got {mask_alignment!r}")
    if backend is not None and not isinstance(backend, str):
        raise TypeError(f"backend must be a str or None, got {type(backend).__name__}")
    # Range checks (negative or non-finite scale, ...) are the library's, so its messages stay the only ones.
    return (bool(causal), int(left), int(right), float(softcap), 0.0 if scale is None else float(scale),
            mask_alignment, backend)


@dataclass(frozen=True)
class Options:
    """Normalised options shared by forward and backward (build it from normalize())."""

    causal: bool
    window_left: int
    window_right: int
    softcap: float
    scale: float  # 0 = the library's default, 1/sqrt(head_dim)
    mask_alignment: str
    backend: str | None

    def apply(self, args, stream: int) -> None:
        args.causal = int(self.causal)
        args.window_left, args.window_right = self.window_left, self.window_right
        args.softcap, args.softmax_scale = self.softcap, self.scale
        args.mask_alignment = _ALIGNMENTS[self.mask_alignment]
        args.stream = stream or None
        args.backend = self.backend.encode() if self.backend is not None else None


def _kind(obj) -> str:
    """The framework an array belongs to: 'numpy', 'torch', 'cupy', or another top-level module name."""
    return type(obj).__module__.split(".", 1)[0]


def _current_stream(obj, device: tuple) -> int:
    """The stream the caller's framework is working on for GPU arrays (0 = the default stream, or CPU)."""
    if device[0] not in (_lib.DEVICE_CUDA, _lib.DEVICE_ROCM):
        return 0
    kind = _kind(obj)
    if kind == "torch":
        import torch
        return torch.cuda.current_stream(device[1]).cuda_stream
    if kind == "cupy":
        import cupy
        return cupy.cuda.get_current_stream().ptr
    return 0


def _dlpack_stream(device: tuple, stream: int):
    """The `stream` argument of __dlpack__: None on the CPU; on CUDA, 1 names the legacy default stream (0 is not
    allowed there by the protocol); on ROCm, 0 is the default stream."""
    if device[0] == _lib.DEVICE_CUDA:
        return stream or 1
    if device[0] == _lib.DEVICE_ROCM:
        return stream
    return None


class _Call:
    """Borrows every array of one library call and releases them all when the call is over."""

    def __init__(self, stack: ExitStack, stream: int):
        self._stack, self._stream = stack, stream

    def borrow(self, obj, name: str, *, writable: bool = False, lse: bool = False) -> View:
        kind = _kind(obj)
        override = None
        if kind == "torch":
            obj = obj.detach()  # torch refuses to export tensors that require grad; detach() is a view, not a copy
        elif kind == "numpy" and obj.dtype.name == "bfloat16":
            # NumPy cannot export ml_dtypes' bfloat16 through DLPack; the same bits viewed as uint16 can.
            import numpy
            obj, override = obj.view(numpy.uint16), _lib.DTYPE_BF16
        if lse:
            obj = _as_4d_lse(obj)
        stream = _dlpack_stream(device_of(obj), self._stream)
        borrowed = Borrowed(obj, name, stream=stream, dtype_override=override)
        self._stack.callback(borrowed.release)
        view = borrowed.view
        if writable and (view.read_only or borrowed.copied):
            raise _lib.error(_lib.STATUS_INVALID_ARGUMENT,
                             f"{name} is {'read-only' if view.read_only else 'a copy'}; pass a writable array")
        return view

    def tensor(self, obj, name: str, **kw) -> _lib.Tensor:
        return self.borrow(obj, name, **kw).tensor()


def _as_4d_lse(obj):
    """lse travels as [batch, heads, seqlen] (as FlashAttention returns it); the C API wants [B, H, S, 1]."""
    ndim = len(obj.shape)
    if ndim == 3:
        return obj[..., None]  # a view in NumPy, PyTorch, CuPy and JAX alike
    if ndim != 4:
        raise _lib.error(_lib.STATUS_SHAPE_MISMATCH,
                         f"lse must be [batch, heads_q, seqlen_q] (or with a trailing 1), got shape {tuple(obj.shape)}")
    return obj


def _numpy_dtype(code: int):
    import numpy
    if code == _lib.DTYPE_F32:
        return numpy.float32
    if code == _lib.DTYPE_F16:
        return numpy.float16
    try:
        import ml_dtypes
    except ImportError:
        raise _lib.error(_lib.STATUS_DTYPE_MISMATCH, "bfloat16 NumPy outputs need the ml_dtypes package") from None
    return ml_dtypes.bfloat16


def _empty(ref, view: View, shape: tuple, *, float32: bool = False):
    """A new uninitialised array of the same kind, device and dtype as `ref` (float32 for lse)."""
    kind = _kind(ref)
    if kind == "torch":
        import torch
        return torch.empty(shape, dtype=torch.float32 if float32 else ref.dtype, device=ref.device)
    if kind == "cupy":
        import cupy
        with ref.device:
            return cupy.empty(shape, dtype=cupy.float32 if float32 else ref.dtype)
    if view.device_type == _lib.DEVICE_CPU:
        # NumPy, and every other framework on the CPU (NumPy arrays convert to them without a copy).
        import numpy
        dtype = numpy.float32 if float32 else (ref.dtype if kind == "numpy" else _numpy_dtype(view.dtype))
        return numpy.empty(shape, dtype=dtype)
    raise TypeError(f"flashport cannot allocate {kind} arrays on device type {view.device_type}; pass out=")


def _type_name(obj) -> str:
    cls = type(obj)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def check_frameworks(torch_only: bool = False, **arrays) -> None:
    """PyTorch tensors do not mix with other arrays in one call: autograd and torch.compile see only tensors, and the
    results' kind would be ambiguous. Other DLPack arrays mix freely (JAX's CPU results come back as NumPy arrays and
    go into attention_backward beside JAX arrays); devices are the library's to check. None = not given;
    torch_only=True refuses anything but tensors (flashport.torch)."""
    given = {name: obj for name, obj in arrays.items() if obj is not None}
    torch_names = [name for name, obj in given.items() if _kind(obj) == "torch"]
    if (torch_names or torch_only) and len(torch_names) != len(given):
        listed = ", ".join(f"{name} is {_type_name(obj)}" for name, obj in given.items())
        raise _lib.error(_lib.STATUS_INVALID_ARGUMENT,
                         f"PyTorch tensors cannot be mixed with other arrays in one call ({listed}); convert with "
                         "torch.from_numpy() / torch.from_dlpack() or Tensor.numpy() (no copy on the CPU)")


def _needs_autograd(*arrays) -> bool:
    """True for PyTorch tensors of which one requires grad while grad mode is on: a call without autograd support
    must refuse them rather than return a result whose gradient would silently be zero."""
    if _kind(arrays[0]) != "torch":
        return False
    import torch
    return torch.is_grad_enabled() and any(getattr(a, "requires_grad", False) for a in arrays)


def attention(q, k, v, *, causal=False, window=(-1, -1), softcap=0.0, scale=None, return_lse=False, out=None,
              backend=None, mask_alignment="bottom_right"):
    """Exact attention: softmax(scale * q k^T [masked, softcapped]) v.

    q [batch, seqlen_q, heads_q, head_dim], k [batch, seqlen_kv, heads_kv, head_dim], v [batch, seqlen_kv, heads_kv,
    head_dim_v], any strides, float32/float16/bfloat16, any object with __dlpack__; read without copying.
    Returns out [batch, seqlen_q, heads_q, head_dim_v] as the same kind of array (written into `out` when given),
    and with return_lse=True also lse [batch, heads_q, seqlen_q] (float32, natural log).

    PyTorch tensors go through the custom ops of flashport.torch, so loss.backward() and torch.compile work; they do
    not mix with other kinds of arrays in one call.
    Raises FlashportError with the library's message on bad input; nothing is written then.
    """
    options = normalize(causal, window, softcap, scale, mask_alignment, backend)
    check_frameworks(q=q, k=k, v=v, out=out)
    if _kind(q) == "torch":
        from . import torch as fp_torch
        return fp_torch._attention(q, k, v, options, return_lse, out)
    return forward(q, k, v, Options(*options), return_lse=return_lse, out=out)


def forward(q, k, v, opts: Options, *, return_lse: bool, out=None):
    """attention() without the autograd routing, for callers that already hold normalised Options."""
    device = device_of(q)
    stream = _current_stream(q, device)
    args = _lib.new_args(_lib.ForwardArgs)
    with ExitStack() as stack:
        call = _Call(stack, stream)
        vq = call.borrow(q, "q")
        args.q, args.k, args.v = vq.tensor(), call.tensor(k, "k"), call.tensor(v, "v")
        batch, seqlen_q, heads_q, _ = vq.shape
        if out is None:
            out = _empty(q, vq, (batch, seqlen_q, heads_q, args.v.shape[3]))
        args.out = call.tensor(out, "out", writable=True)
        lse = _empty(q, vq, (batch, heads_q, seqlen_q), float32=True) if return_lse else None
        if lse is not None:
            args.lse = call.tensor(lse, "lse", writable=True, lse=True)
        opts.apply(args, stream)
        _lib.check(_lib.lib().flashport_forward(ctypes.byref(args)))
    return (out, lse) if return_lse else out


def attention_backward(dout, q, k, v, out, lse, *, causal=False, window=(-1, -1), softcap=0.0, scale=None,
                       backend=None, mask_alignment="bottom_right", deterministic=False, dq=None, dk=None, dv=None,
                       dlse=None):
    """Gradients (dq, dk, dv) of attention() given dout = dLoss/dout and the forward's out and lse.

    Options must match the forward call. dq/dk/dv are allocated like q/k/v unless passed in (then overwritten).
    deterministic=True gives bitwise-identical results run to run. dlse = dLoss/dlse ([batch, heads_q, seqlen_q],
    float32, like lse) adds the gradient that flows through lse; None means zero.
    """
    options = normalize(causal, window, softcap, scale, mask_alignment, backend)
    check_frameworks(dout=dout, q=q, k=k, v=v, out=out, lse=lse, dq=dq, dk=dk, dv=dv, dlse=dlse)
    if _kind(q) == "torch":
        if dlse is not None:
            # The torch custom op has no dlse input yet; dropping it would be a silent zero gradient.
            raise _lib.error(_lib.STATUS_INVALID_ARGUMENT,
                             "dlse is not supported with PyTorch tensors yet (flashport.torch's backward op has no "
                             "dlse input); pass NumPy/DLPack arrays, or leave dlse=None")
        from . import torch as fp_torch
        return fp_torch._attention_backward(dout, q, k, v, out, lse, options, deterministic, dq, dk, dv)
    opts = Options(*options)
    return backward(dout, q, k, v, out, lse, opts, deterministic=deterministic, dq=dq, dk=dk, dv=dv, dlse=dlse)


def backward(dout, q, k, v, out, lse, opts: Options, *, deterministic=False, dq=None, dk=None, dv=None, dlse=None):
    device = device_of(q)
    stream = _current_stream(q, device)
    args = _lib.new_args(_lib.BackwardArgs)
    with ExitStack() as stack:
        call = _Call(stack, stream)
        views = {}
        for name, obj in (("dout", dout), ("q", q), ("k", k), ("v", v), ("out", out)):
            views[name] = call.borrow(obj, name)
            setattr(args, name, views[name].tensor())
        args.lse = call.tensor(lse, "lse", lse=True)
        grads = []
        for name, given, like in (("dq", dq, "q"), ("dk", dk, "k"), ("dv", dv, "v")):
            src = {"q": q, "k": k, "v": v}[like]
            arr = given if given is not None else _empty(src, views[like], views[like].shape)
            setattr(args, name, call.tensor(arr, name, writable=True))
            grads.append(arr)
        if dlse is not None:
            args.dlse = call.tensor(dlse, "dlse", lse=True)
        else:
            # The size without dlse, so that a libflashport older than the field still takes the call.
            args.struct_size = _lib.BackwardArgs.dlse.offset
        opts.apply(args, stream)
        args.deterministic = int(bool(deterministic))
        _lib.check(_lib.lib().flashport_backward(ctypes.byref(args)))
    return tuple(grads)


def _parts(parts, name: str, stacked_ndims: tuple) -> list:
    """A sequence of arrays as a list; one array stacked along its first axis as the list of its slices (views)."""
    if isinstance(parts, (list, tuple)):
        return list(parts)
    if not hasattr(parts, "__dlpack__"):
        raise TypeError(f"{name} must be a list or tuple of arrays, or one array stacked along axis 0, "
                        f"got {type(parts).__name__}")
    if len(parts.shape) not in stacked_ndims:
        raise _lib.error(_lib.STATUS_SHAPE_MISMATCH,
                         f"{name} as one stacked array must have {' or '.join(map(str, stacked_ndims))} dims, "
                         f"got shape {tuple(parts.shape)}")
    return [parts[i] for i in range(parts.shape[0])]


def combine(parts_out, parts_lse, *, return_lse=False, out=None, backend=None):
    """Merge partial attention results over the same queries: out = sum_i exp(lse_i - lse) * out_i with
    lse = log(sum_i exp(lse_i)), in fp32.

    parts_out: outs [batch, seqlen_q, heads_q, head_dim_v] of attention over disjoint subsets of the keys (split-KV
    chunks, a shared prefix and a suffix, other ranks' keys), as a list/tuple or one array stacked along axis 0;
    one dtype for all. parts_lse: their lse [batch, heads_q, seqlen_q] (float32, or with a trailing 1), likewise.
    Parts with lse = -inf contribute nothing; rows where every part is -inf give out 0 and lse -inf; NaN propagates.
    Returns out as the same kind of array and dtype as the parts (written into `out` when given, which may have
    another dtype), and with return_lse=True also lse [batch, heads_q, seqlen_q] (float32).

    Not differentiable: PyTorch tensors that require grad are refused while grad mode is on.
    Raises FlashportError with the library's message on bad input; nothing is written then.
    """
    if backend is not None and not isinstance(backend, str):
        raise TypeError(f"backend must be a str or None, got {type(backend).__name__}")
    parts_out = _parts(parts_out, "parts_out", (5,))
    parts_lse = _parts(parts_lse, "parts_lse", (4, 5))
    if len(parts_out) != len(parts_lse):
        raise _lib.error(_lib.STATUS_SHAPE_MISMATCH,
                         f"parts_out has {len(parts_out)} parts but parts_lse has {len(parts_lse)}")
    if not parts_out:
        raise _lib.error(_lib.STATUS_INVALID_ARGUMENT, "combine needs at least one part (parts_out is empty)")
    if _needs_autograd(*parts_out, *parts_lse):
        raise RuntimeError("flashport.combine has no autograd: call it under torch.no_grad() or on detached tensors")
    function = _lib.require("flashport_combine")
    ref = parts_out[0]
    device = device_of(ref)
    stream = _current_stream(ref, device)
    n = len(parts_out)
    args = _lib.new_combine_args()
    outs, lses = (_lib.Tensor * n)(), (_lib.Tensor * n)()
    with ExitStack() as stack:
        call = _Call(stack, stream)
        views = [call.borrow(p, f"parts_out[{i}]") for i, p in enumerate(parts_out)]
        for i, view in enumerate(views):
            outs[i] = view.tensor()
        for i, p in enumerate(parts_lse):
            lses[i] = call.tensor(p, f"parts_lse[{i}]", lse=True)
        batch, seqlen_q, heads_q, head_dim_v = views[0].shape
        if out is None:
            out = _empty(ref, views[0], (batch, seqlen_q, heads_q, head_dim_v))
        args.out = call.tensor(out, "out", writable=True)
        lse = _empty(ref, views[0], (batch, heads_q, seqlen_q), float32=True) if return_lse else None
        if lse is not None:
            args.lse = call.tensor(lse, "lse", writable=True, lse=True)
        args.num_parts = n
        args.parts_out = ctypes.cast(outs, ctypes.POINTER(_lib.Tensor))
        args.parts_lse = ctypes.cast(lses, ctypes.POINTER(_lib.Tensor))
        args.stream = stream or None
        args.backend = backend.encode() if backend is not None else None
        _lib.check(function(ctypes.byref(args)))
    return (out, lse) if return_lse else out


class BackendInfo(NamedTuple):
    name: str
    device_type: int
    available: bool
    device_count: int
    status_message: str
    module_path: str


def backends() -> list:
    """Every backend the library knows (built in or module, loaded or not) and why it is or is not usable."""
    lib = _lib.lib()
    result = []
    for i in range(lib.flashport_backend_count()):
        info = _lib.BackendInfo()
        info.struct_size = ctypes.sizeof(info)
        _lib.check(lib.flashport_backend_info_get(i, ctypes.byref(info)))
        text = (lambda b: b.decode(errors="replace") if b else "")
        result.append(BackendInfo(text(info.name), info.device_type, bool(info.available), info.device_count,
                                  text(info.status_message), text(info.module_path)))
    return result


def library_version() -> str:
    """Version string of the libflashport actually loaded, e.g. "0.1.0"."""
    return _lib.lib().flashport_version_string().decode()
