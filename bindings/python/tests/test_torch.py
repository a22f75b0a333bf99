"""PyTorch: zero-copy tensors, autograd, the custom op under torch.compile, CUDA streams. Skips without torch."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import flashport  # noqa: E402
import flashport.torch  # noqa: E402
import reference  # noqa: E402
from devices import torch_devices  # noqa: E402

DEVICES = torch_devices()
# dtype -> (tolerance of outputs, of gradients), relative to max(1, |expected|)
TOLERANCE = {torch.float32: (2e-5, 1e-4), torch.float16: (4e-3, 2e-2), torch.bfloat16: (3e-2, 1.5e-1)}


def _dtypes(device):
    # The CPU backend runs every dtype; GPU kernels are written for the half types.
    return [torch.float32, torch.float16, torch.bfloat16] if device == "cpu" else [torch.float16, torch.bfloat16]


def _numpy(t):
    return t.detach().to("cpu", torch.float64).numpy()


def _close(actual, expected, atol, what):
    actual = _numpy(actual)
    err = np.max(np.abs(actual - expected), initial=0.0)
    bound = atol * max(1.0, np.max(np.abs(expected), initial=0.0))
    assert err <= bound, f"{what}: max abs error {err:.3g} > {bound:.3g}"


def _qkv(device, dtype, b=2, sq=19, skv=23, hq=4, hkv=2, d=32, dv=32, requires_grad=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    make = (lambda *s: torch.randn(*s, generator=gen).to(device, dtype).requires_grad_(requires_grad))
    return make(b, sq, hq, d), make(b, skv, hkv, d), make(b, skv, hkv, dv)


@pytest.mark.parametrize("device", DEVICES)
def test_forward_returns_torch_tensors_on_the_same_device(device):
    for dtype in _dtypes(device):
        q, k, v = _qkv(device, dtype)
        out, lse = flashport.attention(q, k, v, causal=True, return_lse=True)
        assert isinstance(out, torch.Tensor) and out.device == q.device and out.dtype == dtype
        assert lse.dtype == torch.float32 and lse.shape == (2, 4, 19)
        ref_out, ref_lse = reference.forward(_numpy(q), _numpy(k), _numpy(v), causal=True)
        _close(out, ref_out, TOLERANCE[dtype][0], f"out {dtype}")
        _close(lse, ref_lse, TOLERANCE[dtype][0], f"lse {dtype}")


@pytest.mark.parametrize("device", DEVICES)
def test_autograd_gradients_match_reference(device):
    for dtype in _dtypes(device):
        q, k, v = _qkv(device, dtype, requires_grad=True)
        out = flashport.attention(q, k, v, causal=True, window=(7, -1))  # routed through flashport.torch
        dout = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(device, dtype)
        (out * dout).sum().backward()
        expected = reference.backward(_numpy(dout), _numpy(q), _numpy(k), _numpy(v), causal=True, window=(7, -1))
        for t, want, name in zip((q, k, v), expected, "qkv"):
            assert t.grad is not None and t.grad.dtype == dtype
            _close(t.grad, want, TOLERANCE[dtype][1], f"d{name} {dtype}")


@pytest.mark.parametrize("device", DEVICES)
def test_expanded_incoming_gradient(device):
    # out.sum() hands backward an expanded gradient with all strides 0.
    q, k, v = _qkv(device, _dtypes(device)[0], requires_grad=True)
    flashport.torch.attention(q, k, v).sum().backward()
    expected = reference.backward(np.ones((2, 19, 4, 32)), _numpy(q), _numpy(k), _numpy(v))
    _close(q.grad, expected[0], TOLERANCE[q.dtype][1], "dq")


@pytest.mark.parametrize("device", DEVICES)
def test_non_contiguous_views_and_out(device):
    dtype = _dtypes(device)[0]
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(2, 4, 11, 32, generator=gen).to(device, dtype).transpose(1, 2)  # [B, S, H, D] view of BHSD
    k = torch.randn(2, 2, 13, 32, generator=gen).to(device, dtype).transpose(1, 2)
    v = torch.randn(2, 2, 13, 32, generator=gen).to(device, dtype).transpose(1, 2)
    buffer = torch.full((2, 8, 11, 32), 7.0, dtype=dtype, device=device)
    out = buffer[:, ::2].transpose(1, 2)
    assert flashport.attention(q, k, v, out=out) is out
    _close(out, reference.forward(_numpy(q), _numpy(k), _numpy(v))[0], TOLERANCE[dtype][0], "out")
    assert torch.all(buffer[:, 1::2] == 7.0)


@pytest.mark.parametrize("device", DEVICES)
def test_errors_raise_and_write_nothing(device):
    dtype = _dtypes(device)[0]
    q, k, v = _qkv(device, dtype, hkv=3, hq=4)
    out = torch.full((2, 19, 4, 32), 42.0, dtype=dtype, device=device)
    with pytest.raises(flashport.FlashportError, match="heads") as info:
        flashport.attention(q, k, v, out=out)
    assert info.value.status == 12
    assert torch.all(out == 42.0)


@pytest.mark.parametrize("device", DEVICES)
def test_custom_op_registration_passes_opcheck(device):
    q, k, v = _qkv(device, _dtypes(device)[0], sq=8, skv=8, requires_grad=True)
    options = (True, -1, -1, 0.0, 0.0, "bottom_right", None)
    torch.library.opcheck(torch.ops.flashport.attention_forward.default, (q, k, v) + options)
    with torch.no_grad():
        out, lse = flashport.torch.attention(q, k, v, causal=True, return_lse=True)
        dout = torch.randn_like(out)
    q, k, v = (t.detach() for t in (q, k, v))
    torch.library.opcheck(torch.ops.flashport.attention_forward_out.default,
                          (q, k, v, torch.empty_like(out)) + options)
    torch.library.opcheck(torch.ops.flashport.attention_backward.default,
                          (dout, q, k, v, out, lse) + options + (True,))
    grads = tuple(torch.empty_like(t) for t in (q, k, v))
    torch.library.opcheck(torch.ops.flashport.attention_backward_out.default,
                          (dout, q, k, v, out, lse) + grads + options + (True,))


def _compile_backends(device):
    # aot_eager traces through the fake kernels and the autograd formula without needing a C++ toolchain;
    # on CUDA, inductor compiles the rest of the graph around the op.
    return ["aot_eager"] + (["inductor"] if device == "cuda" else [])


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile(device):
    dtype = _dtypes(device)[0]
    q, k, v = _qkv(device, dtype, requires_grad=True)

    def loss_fn(q, k, v):
        return (flashport.torch.attention(q, k, v, causal=True) ** 2).sum()

    eager = torch.autograd.grad(loss_fn(q, k, v), (q, k, v))
    for backend in _compile_backends(device):
        torch._dynamo.reset()
        compiled = torch.compile(loss_fn, backend=backend, fullgraph=True)
        grads = torch.autograd.grad(compiled(q, k, v), (q, k, v))
        for a, b in zip(grads, eager):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("entry", ["flashport.attention", "flashport.torch.attention"])
@pytest.mark.parametrize("mode", ["no grad required", "torch.no_grad", "inference_mode", "grad"])
def test_torch_compile_inference(device, entry, mode):
    # Compiled inference: tensors that do not require grad, or under no_grad / inference_mode. The op's results are
    # the eager ones bit for bit (the same kernel on the same inputs).
    fn = flashport.attention if entry == "flashport.attention" else flashport.torch.attention
    q, k, v = _qkv(device, _dtypes(device)[0], requires_grad=(mode != "no grad required"))
    context = {"torch.no_grad": torch.no_grad, "inference_mode": torch.inference_mode}.get(mode, torch.enable_grad)

    def run(q, k, v):
        return fn(q, k, v, causal=True, window=(5, -1), return_lse=True)

    with context():
        eager_out, eager_lse = run(q, k, v)
    for backend in _compile_backends(device):
        torch._dynamo.reset()
        compiled = torch.compile(run, backend=backend, fullgraph=True)
        with context():
            out, lse = compiled(q, k, v)
        assert torch.equal(out, eager_out) and torch.equal(lse, eager_lse), backend
        assert out.requires_grad == (mode == "grad") and not lse.requires_grad


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_out_and_attention_backward(device):
    # The out= / dq= forms and attention_backward go through the mutating and functional custom ops, so they compile
    # as well.
    dtype = _dtypes(device)[0]
    q, k, v = _qkv(device, dtype)
    dout = torch.randn(2, 19, 4, 32, generator=torch.Generator().manual_seed(3)).to(device, dtype)

    def run(q, k, v, dout, out, dk):
        _, lse = flashport.attention(q, k, v, causal=True, out=out, return_lse=True)
        dq, _, dv = flashport.attention_backward(dout, q, k, v, out, lse, causal=True, dk=dk, deterministic=True)
        grads = flashport.attention_backward(dout, q, k, v, out, lse, causal=True, deterministic=True)
        return lse, dq, dv, grads

    eager_out, eager_dk = torch.empty_like(q), torch.empty_like(k)
    eager = run(q, k, v, dout, eager_out, eager_dk)
    for backend in _compile_backends(device):
        torch._dynamo.reset()
        out, dk = torch.full_like(q, 7.0), torch.full_like(k, 7.0)
        lse, dq, dv, grads = torch.compile(run, backend=backend, fullgraph=True)(q, k, v, dout, out, dk)
        assert torch.equal(out, eager_out) and torch.equal(lse, eager[0]), backend
        for a, b in zip((dq, dk, dv) + grads, (eager[1], eager_dk, eager[2]) + eager[3]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_lse_is_not_differentiable(device):
    # The C API has no gradient with respect to lse: autograd must refuse lse.backward() rather than return zeros,
    # and returning lse must not change out's gradients.
    dtype = _dtypes(device)[0]
    q, k, v = _qkv(device, dtype, requires_grad=True)
    out, lse = flashport.attention(q, k, v, causal=True, return_lse=True)
    assert out.requires_grad and not lse.requires_grad and lse.grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        lse.sum().backward()
    dout = torch.randn(out.shape, generator=torch.Generator().manual_seed(4)).to(device, dtype)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with_lse = torch.autograd.grad((out * dout).sum(), (q, k, v))
        without = torch.autograd.grad((flashport.attention(q, k, v, causal=True) * dout).sum(), (q, k, v))
    finally:
        torch.use_deterministic_algorithms(deterministic)
    expected = reference.backward(_numpy(dout), _numpy(q), _numpy(k), _numpy(v), causal=True)
    for a, b, want, name in zip(with_lse, without, expected, "qkv"):
        assert torch.equal(a, b), f"d{name} changed when lse is returned"
        _close(a, want, TOLERANCE[dtype][1], f"d{name}")


@pytest.mark.parametrize("device", DEVICES)
def test_mixed_frameworks_are_refused(device):
    dtype = _dtypes(device)[0]
    q, k, v = _qkv(device, dtype)
    kn, vn = (t.cpu().float().numpy() for t in (k, v))
    with pytest.raises(flashport.FlashportError) as info:
        flashport.attention(q, kn, vn)
    assert info.value.status == 10
    assert "q is torch.Tensor, k is numpy.ndarray, v is numpy.ndarray" in info.value.message
    with pytest.raises(flashport.FlashportError, match="q is numpy.ndarray, k is torch.Tensor"):
        flashport.attention(q.cpu().float().numpy(), k, v)
    with pytest.raises(flashport.FlashportError, match="out is numpy.ndarray"):
        flashport.attention(q, k, v, out=np.zeros((2, 19, 4, 32), np.float32))
    with pytest.raises(flashport.FlashportError, match="k is numpy.ndarray"):
        flashport.torch.attention(q, kn, v)
    with pytest.raises(flashport.FlashportError, match="q is numpy.ndarray"):
        flashport.torch.attention(*(t.cpu().float().numpy() for t in (q, k, v)))
    out, lse = flashport.attention(q, k, v, return_lse=True)
    with pytest.raises(flashport.FlashportError, match="lse is numpy.ndarray"):
        flashport.attention_backward(out, q, k, v, out, lse.cpu().numpy())
    q.requires_grad_()  # the autograd route checks too, before any tensor reaches the op
    with pytest.raises(flashport.FlashportError, match="v is numpy.ndarray"):
        flashport.attention(q, k, vn)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.int32, torch.bool])
def test_unsupported_dtypes_are_named(device, dtype):
    q, k, v = _qkv(device, _dtypes(device)[0])
    name = str(dtype).replace("torch.", "")
    with pytest.raises(flashport.FlashportError) as info:
        flashport.attention(q, k.to(dtype), v)
    assert info.value.status == 13
    assert info.value.message == f"k has dtype {name}; flashport takes float32, float16 or bfloat16"


@pytest.mark.skipif("cuda" not in DEVICES or not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_the_current_cuda_stream():
    if not any(b.name == "cuda" and b.available for b in flashport.backends()):
        pytest.skip("flashport CUDA backend unavailable")
    q, k, v = _qkv("cuda", torch.float16, b=4, sq=512, skv=512, hq=8, hkv=8, d=64, dv=64)
    expected = flashport.attention(q, k, v, causal=True)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            out = flashport.attention(q, k, v, causal=True)
        # Read on the same stream, before any synchronisation: only correct if flashport ran on it.
        diff = (out.float() - expected.float()).abs().max()
    torch.cuda.synchronize()
    assert diff.item() == 0.0
