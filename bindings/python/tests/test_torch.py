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
    args = (q, k, v, True, -1, -1, 0.0, 0.0, "bottom_right", None)
    torch.library.opcheck(torch.ops.flashport.attention_forward.default, args)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile(device):
    dtype = _dtypes(device)[0]
    q, k, v = _qkv(device, dtype, requires_grad=True)

    def loss_fn(q, k, v):
        return (flashport.torch.attention(q, k, v, causal=True) ** 2).sum()

    eager = torch.autograd.grad(loss_fn(q, k, v), (q, k, v))
    # aot_eager traces through the fake kernels and the autograd formula without needing a C++ toolchain;
    # on CUDA, inductor compiles the rest of the graph around the op.
    backends = ["aot_eager"] + (["inductor"] if device == "cuda" else [])
    for backend in backends:
        torch._dynamo.reset()
        compiled = torch.compile(loss_fn, backend=backend, fullgraph=True)
        grads = torch.autograd.grad(compiled(q, k, v), (q, k, v))
        for a, b in zip(grads, eager):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


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
