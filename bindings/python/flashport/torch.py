"""PyTorch integration: flashport attention as torch.library custom ops with autograd and fake (meta) kernels.

    import flashport.torch
    out = flashport.torch.attention(q, k, v, causal=True)   # differentiable, works under torch.compile
    out.sum().backward()

CUDA tensors run on torch.cuda.current_stream(). The ops are torch.ops.flashport.attention_forward (with autograd)
and attention_backward, and attention_forward_out / attention_backward_out, which write a given out / dq, dk, dv.
flashport.attention and flashport.attention_backward send every PyTorch tensor through them, so torch.compile sees
one opaque op and never traces the DLPack/ctypes code. lse is returned for inspection and is not differentiable
(requires_grad=False): the C API has no gradient with respect to lse.
"""

# No `from __future__ import annotations`: torch.library.custom_op reads the real annotation objects to build the
# operator schema.
from typing import Optional, Tuple

import torch

from . import _api

__all__ = ["attention"]


@torch.library.custom_op("flashport::attention_forward", mutates_args=())
def _forward_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, window_left: int,
                window_right: int, softcap: float, scale: float, mask_alignment: str,
                backend: Optional[str]) -> Tuple[torch.Tensor, torch.Tensor]:
    opts = _api.Options(causal, window_left, window_right, softcap, scale, mask_alignment, backend)
    return _api.forward(q, k, v, opts, return_lse=True)


@_forward_op.register_fake
def _forward_fake(q, k, v, causal, window_left, window_right, softcap, scale, mask_alignment, backend):
    batch, seqlen_q, heads_q, _ = q.shape
    out = q.new_empty((batch, seqlen_q, heads_q, v.shape[3]))
    lse = q.new_empty((batch, heads_q, seqlen_q), dtype=torch.float32)
    return out, lse


@torch.library.custom_op("flashport::attention_forward_out", mutates_args=("out",))
def _forward_out_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, causal: bool,
                    window_left: int, window_right: int, softcap: float, scale: float, mask_alignment: str,
                    backend: Optional[str]) -> torch.Tensor:
    opts = _api.Options(causal, window_left, window_right, softcap, scale, mask_alignment, backend)
    return _api.forward(q, k, v, opts, return_lse=True, out=out)[1]


@_forward_out_op.register_fake
def _forward_out_fake(q, k, v, out, causal, window_left, window_right, softcap, scale, mask_alignment, backend):
    batch, seqlen_q, heads_q, _ = q.shape
    return q.new_empty((batch, heads_q, seqlen_q), dtype=torch.float32)


@torch.library.custom_op("flashport::attention_backward", mutates_args=())
def _backward_op(dout: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                 lse: torch.Tensor, causal: bool, window_left: int, window_right: int, softcap: float, scale: float,
                 mask_alignment: str, backend: Optional[str],
                 deterministic: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    opts = _api.Options(causal, window_left, window_right, softcap, scale, mask_alignment, backend)
    return _api.backward(dout, q, k, v, out, lse, opts, deterministic=deterministic)


@_backward_op.register_fake
def _backward_fake(dout, q, k, v, out, lse, causal, window_left, window_right, softcap, scale, mask_alignment,
                   backend, deterministic):
    # The real op allocates contiguous gradients (torch.empty), so the fake ones are contiguous too.
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


@torch.library.custom_op("flashport::attention_backward_out", mutates_args=("dq", "dk", "dv"))
def _backward_out_op(dout: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                     lse: torch.Tensor, dq: torch.Tensor, dk: torch.Tensor, dv: torch.Tensor, causal: bool,
                     window_left: int, window_right: int, softcap: float, scale: float, mask_alignment: str,
                     backend: Optional[str], deterministic: bool) -> None:
    opts = _api.Options(causal, window_left, window_right, softcap, scale, mask_alignment, backend)
    _api.backward(dout, q, k, v, out, lse, opts, deterministic=deterministic, dq=dq, dk=dk, dv=dv)


@_backward_out_op.register_fake
def _backward_out_fake(dout, q, k, v, out, lse, dq, dk, dv, causal, window_left, window_right, softcap, scale,
                       mask_alignment, backend, deterministic):
    return None


def _setup_context(ctx, inputs, output):
    q, k, v = inputs[:3]
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse)
    ctx.options = inputs[3:]
    # The C API has no gradient with respect to lse: autograd refuses lse.backward() instead of returning a zero.
    ctx.mark_non_differentiable(lse)


def _backward(ctx, dout, _dlse):
    q, k, v, out, lse = ctx.saved_tensors
    if dout.stride(-1) != 1:
        # Incoming gradients can have any layout (an expanded one for out.sum(), for instance); GPU backends need
        # a unit head_dim stride, so only then is a copy made.
        dout = dout.contiguous()
    dq, dk, dv = _backward_op(dout, q, k, v, out, lse, *ctx.options,
                              torch.are_deterministic_algorithms_enabled())
    return (dq, dk, dv) + (None,) * len(ctx.options)  # the options are not differentiable


_forward_op.register_autograd(_backward, setup_context=_setup_context)


def _attention(q, k, v, options: tuple, return_lse: bool, out=None):
    if out is None:
        out, lse = _forward_op(q, k, v, *options)
    else:
        if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
            raise ValueError("out= cannot be used with tensors that require grad (autograd needs its own output)")
        lse = _forward_out_op(q, k, v, out, *options)
    return (out, lse) if return_lse else out


def _attention_backward(dout, q, k, v, out, lse, options: tuple, deterministic: bool, dq=None, dk=None, dv=None):
    if dq is None and dk is None and dv is None:
        return _backward_op(dout, q, k, v, out, lse, *options, bool(deterministic))
    # Gradients not given are allocated as the functional op does (contiguous, like q/k/v).
    dq, dk, dv = (g if g is not None else torch.empty(x.shape, dtype=x.dtype, device=x.device)
                  for g, x in ((dq, q), (dk, k), (dv, v)))
    _backward_out_op(dout, q, k, v, out, lse, dq, dk, dv, *options, bool(deterministic))
    return dq, dk, dv


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal=False, window=(-1, -1), softcap=0.0,
              scale=None, return_lse=False, backend=None, mask_alignment="bottom_right"):
    """Differentiable flashport attention on [batch, seqlen, heads, head_dim] tensors (see flashport.attention).

    lse (return_lse=True) does not require grad: the C API has no gradient with respect to it.
    Backward is deterministic when torch.use_deterministic_algorithms(True) is on."""
    options = _api.normalize(causal, window, softcap, scale, mask_alignment, backend)
    _api.check_frameworks(q=q, k=k, v=v, torch_only=True)
    return _attention(q, k, v, options, return_lse)
