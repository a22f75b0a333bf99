"""flashport.combine (NumPy, and PyTorch when present) against a float64 reference, the split-KV identity, its
errors; attention_backward's dlse against finite differences of the float64 reference."""

import numpy as np
import pytest

import flashport
import reference

try:
    import ml_dtypes
except ImportError:  # bfloat16 cases skip without it
    ml_dtypes = None


def _reference_combine(outs, lses):
    """The contract in float64: outs [N, B, S, H, D], lses [N, B, H, S]."""
    outs = np.asarray(outs, np.float64)
    lses = np.asarray(lses, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.max(np.where(np.isnan(lses), -np.inf, lses), axis=0)          # [B, H, S]
        shift = np.where(np.isfinite(m), m, 0.0)
        w = np.exp(lses - shift)                                              # 0 for -inf parts
        total = w.sum(axis=0)
        lse = np.where(np.isfinite(m), shift + np.log(np.where(total > 0, total, 1.0)), m)
        lse = np.where(np.isnan(lses).any(axis=0) | (m == np.inf), np.nan, lse)
        weights = np.where(np.isfinite(lse), np.exp(lses - np.where(np.isfinite(lse), lse, 0.0)), 0.0)
        terms = np.where(np.transpose(lses, (0, 1, 3, 2))[..., None] == -np.inf, 0.0,
                         np.transpose(weights, (0, 1, 3, 2))[..., None] * outs)
        out = terms.sum(axis=0)
        out = np.where(np.isnan(np.transpose(lse, (0, 2, 1)))[..., None], np.nan, out)
    return out, lse


def _dtype(name):
    if name == "bfloat16":
        if ml_dtypes is None:
            pytest.skip("bfloat16 needs ml_dtypes")
        return ml_dtypes.bfloat16
    return np.dtype(name).type


# dtype -> tolerance relative to max(1, |expected|): fp32 arithmetic, plus the rounding of a low-precision out
TOLERANCE = {"float32": 2e-6, "float16": 2e-3, "bfloat16": 8e-3}


@pytest.mark.parametrize("parts", [1, 2, 3, 8])
@pytest.mark.parametrize("dtype_name", list(TOLERANCE))
def test_combine_matches_reference(parts, dtype_name):
    dtype = _dtype(dtype_name)
    rng = np.random.default_rng(parts)
    b, s, h, d = 2, 7, 3, 16
    outs = rng.standard_normal((parts, b, s, h, d)).astype(dtype)
    lses = (4.0 * rng.standard_normal((parts, b, h, s))).astype(np.float32)
    lses[rng.random(lses.shape) < 0.25] = -np.inf  # empty parts
    lses[:, 0, 1, 2] = -np.inf                      # one fully masked row
    expected_out, expected_lse = _reference_combine(outs.astype(np.float64), lses)

    for given in (list(outs), outs):  # a list of parts, or one stacked array
        out, lse = flashport.combine(given, lses if given is outs else list(lses), return_lse=True)
        assert out.dtype == outs.dtype and out.shape == (b, s, h, d)
        assert lse.dtype == np.float32 and lse.shape == (b, h, s)
        np.testing.assert_allclose(out.astype(np.float64), expected_out, rtol=0, atol=TOLERANCE[dtype_name] * 4)
        np.testing.assert_allclose(lse, expected_lse, rtol=1e-6, atol=2e-6)
        assert np.all(out[0, 2, 1] == 0) and lse[0, 1, 2] == -np.inf


def test_combine_into_another_dtype_and_strided_views():
    rng = np.random.default_rng(7)
    outs = [rng.standard_normal((1, 5, 2, 8)).astype(np.float32) for _ in range(3)]
    lses = [rng.standard_normal((1, 2, 5)).astype(np.float32) for _ in range(3)]
    # A part read through a transposed view, lse with a trailing axis, out written into a strided float16 view.
    outs[1] = np.ascontiguousarray(outs[1].transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    lses[2] = lses[2][..., None]
    big = np.full((1, 5, 2, 16), 9.0, np.float16)
    view = big[..., ::2]
    result = flashport.combine(outs, lses, out=view)
    assert result is view
    expected, _ = _reference_combine(np.stack(outs), np.stack([np.reshape(x, (1, 2, 5)) for x in lses]))
    np.testing.assert_allclose(view.astype(np.float64), expected, atol=2e-3 * max(1.0, np.abs(expected).max()))
    assert np.all(big[..., 1::2] == 9.0)  # untouched between the view's elements


def test_combine_nan_propagates_and_empty_parts_do_not():
    outs = np.ones((2, 1, 3, 1, 4), np.float32)
    lses = np.zeros((2, 1, 1, 3), np.float32)
    lses[1, 0, 0, 0] = np.nan             # row 0: NaN lse -> NaN row
    outs[0, 0, 1, 0, 2] = np.nan          # row 1: NaN out of a contributing part -> that element NaN
    lses[1, 0, 0, 2] = -np.inf            # row 2: part 1 is empty, so its NaN out must not reach out
    outs[1, 0, 2, 0, :] = np.nan
    out, lse = flashport.combine(outs, lses, return_lse=True)
    assert np.all(np.isnan(out[0, 0])) and np.isnan(lse[0, 0, 0])
    assert np.isnan(out[0, 1, 0, 2]) and np.all(out[0, 1, 0, [0, 1, 3]] == 1.0)
    assert np.all(out[0, 2] == 1.0) and lse[0, 0, 2] == 0.0


@pytest.mark.parametrize("causal", [False, True])
def test_split_kv_identity(causal):
    """Attention over key chunks, combined, equals attention over all keys (causal restated per chunk as a window)."""
    rng = np.random.default_rng(3)
    b, sq, skv, hq, hkv, d = 2, 9, 50, 4, 2, 16
    q = rng.standard_normal((b, sq, hq, d)).astype(np.float32)
    k = rng.standard_normal((b, skv, hkv, d)).astype(np.float32)
    v = rng.standard_normal((b, skv, hkv, d)).astype(np.float32)
    bounds = [0, 7, 20, 21, 50]
    parts_out, parts_lse = [], []
    for j0, j1 in zip(bounds[:-1], bounds[1:]):
        window = (-1, skv - j1) if causal else (-1, -1)
        o, l = flashport.attention(q, k[:, j0:j1], v[:, j0:j1], window=window, return_lse=True)
        parts_out.append(o)
        parts_lse.append(l)
    out, lse = flashport.combine(parts_out, parts_lse, return_lse=True)
    full_out, full_lse = flashport.attention(q, k, v, causal=causal, return_lse=True)
    ref_out, ref_lse = reference.forward(q, k, v, causal=causal)
    np.testing.assert_allclose(out, ref_out, atol=2e-5)
    np.testing.assert_allclose(out, full_out, atol=2e-5)
    np.testing.assert_allclose(lse, full_lse, atol=2e-5)
    np.testing.assert_allclose(lse, ref_lse, atol=2e-5)


def test_combine_errors_name_the_argument_and_write_nothing():
    outs = [np.zeros((1, 4, 2, 8), np.float32) for _ in range(2)]
    lses = [np.zeros((1, 2, 4), np.float32) for _ in range(2)]
    out = np.full((1, 4, 2, 8), 5.0, np.float32)
    bad = [lses[0], np.zeros((1, 2, 3), np.float32)]
    with pytest.raises(flashport.FlashportError) as e:
        flashport.combine(outs, bad, out=out)
    assert e.value.status_name == "FLASHPORT_STATUS_SHAPE_MISMATCH"
    assert "parts_lse[1].shape[2] (seqlen_q = 3) differs from parts_out[0].shape[1] (seqlen_q = 4)" in e.value.message
    assert np.all(out == 5.0)
    with pytest.raises(flashport.FlashportError) as e:
        flashport.combine(outs, [lses[0], lses[1].astype(np.float16)], out=out)
    assert "parts_lse[1].dtype = F16; lse tensors must be F32" in e.value.message
    with pytest.raises(flashport.FlashportError) as e:
        flashport.combine(outs, lses[:1])
    assert "parts_out has 2 parts but parts_lse has 1" in e.value.message
    with pytest.raises(flashport.FlashportError) as e:
        flashport.combine([], [])
    assert "at least one part" in e.value.message
    with pytest.raises(flashport.FlashportError) as e:
        flashport.combine(np.zeros((2, 1, 4, 2)), lses)
    assert "must have 5 dims" in e.value.message
    with pytest.raises(flashport.FlashportError) as e:
        flashport.combine(outs, lses, out=outs[0])
    assert e.value.status_name == "FLASHPORT_STATUS_ALIASING" and "overlaps parts_out[0]" in e.value.message
    with pytest.raises(TypeError):
        flashport.combine(3, lses)
    assert np.all(out == 5.0)


def _loss_and_grads(q, k, v, g, w, causal):
    out, lse = reference.forward(q, k, v, causal=causal)
    finite = np.isfinite(lse)
    return float(np.sum(out * g) + np.sum(np.where(finite, lse, 0.0) * w))


def test_attention_backward_dlse_matches_finite_differences():
    rng = np.random.default_rng(11)
    b, sq, skv, hq, hkv, d = 1, 6, 4, 2, 1, 3  # causal with Sq > Skv: the first rows see no key
    q, k, v = (rng.standard_normal(s) for s in ((b, sq, hq, d), (b, skv, hkv, d), (b, skv, hkv, d)))
    g = rng.standard_normal((b, sq, hq, d))
    w = rng.standard_normal((b, hq, sq))
    args = [x.astype(np.float32) for x in (q, k, v)]
    out, lse = flashport.attention(*args, causal=True, return_lse=True)
    dq, dk, dv = flashport.attention_backward(g.astype(np.float32), *args, out, lse, causal=True,
                                              dlse=w.astype(np.float32))
    dq0, dk0, _ = flashport.attention_backward(g.astype(np.float32), *args, out, lse, causal=True)
    assert np.max(np.abs(dq - dq0)) > 1e-3  # the lse term is there
    qd, kd, vd = (x.astype(np.float64) for x in args)
    h = 1e-5
    for x, grad in ((qd, dq), (kd, dk), (vd, dv)):
        fd = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            saved = x[idx]
            x[idx] = saved + h
            up = _loss_and_grads(qd, kd, vd, g, w, True)
            x[idx] = saved - h
            down = _loss_and_grads(qd, kd, vd, g, w, True)
            x[idx] = saved
            fd[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, fd, atol=1e-4)


def test_attention_backward_dlse_errors():
    rng = np.random.default_rng(2)
    q = rng.standard_normal((1, 3, 2, 4)).astype(np.float32)
    out, lse = flashport.attention(q, q, q, return_lse=True)
    with pytest.raises(flashport.FlashportError) as e:
        flashport.attention_backward(out, q, q, q, out, lse, dlse=np.zeros((1, 2, 4), np.float32))
    assert "dlse.shape[2] (seqlen_q = 4) differs from q.shape[1] (seqlen_q = 3)" in e.value.message


def test_combine_torch_tensors():
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    outs = torch.randn(3, 2, 5, 4, 8, generator=gen, dtype=torch.bfloat16)
    lses = torch.randn(3, 2, 4, 5, generator=gen)
    out, lse = flashport.combine(outs, lses, return_lse=True)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.bfloat16 and lse.dtype == torch.float32
    expected_out, expected_lse = _reference_combine(outs.to(torch.float64).numpy(), lses.numpy())
    np.testing.assert_allclose(out.to(torch.float64).numpy(), expected_out, atol=3e-2)
    np.testing.assert_allclose(lse.numpy(), expected_lse, atol=2e-6)
    leaf = outs.float().requires_grad_(True)
    with pytest.raises(RuntimeError, match="no autograd"):
        flashport.combine(leaf, lses)
    with torch.no_grad():
        flashport.combine(leaf, lses)


def test_an_older_library_without_combine_still_loads_and_combine_says_why(monkeypatch):
    """A libflashport.so.1 of v0.1 has every function but flashport_combine: loading it must work (attention does),
    and combine must raise a FlashportError naming the missing function and the loaded version."""
    from types import SimpleNamespace

    from flashport import _lib

    class OldLibrary:
        def __init__(self):
            for name in ("flashport_version", "flashport_abi_version", "flashport_status_string",
                         "flashport_last_error", "flashport_forward", "flashport_forward_workspace_size",
                         "flashport_backward", "flashport_backward_workspace_size", "flashport_backend_count",
                         "flashport_backend_info_get"):
                setattr(self, name, SimpleNamespace())
            self.flashport_version_string = lambda: b"0.1.0"

    old = OldLibrary()
    _lib._declare(old)  # no AttributeError for the missing flashport_combine
    assert old.flashport_forward.argtypes == [_lib.ctypes.POINTER(_lib.ForwardArgs)]
    monkeypatch.setattr(_lib, "_lib", old)
    with pytest.raises(flashport.FlashportError) as e:
        flashport.combine([np.zeros((1, 1, 1, 4), np.float32)], [np.zeros((1, 1, 1), np.float32)])
    assert e.value.status_name == "FLASHPORT_STATUS_UNSUPPORTED"
    assert "flashport_combine is missing from the loaded libflashport 0.1.0" in e.value.message
