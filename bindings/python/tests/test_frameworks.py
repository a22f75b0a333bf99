"""Other DLPack producers: JAX on the CPU (outputs come back as NumPy) and CuPy on CUDA. Skip where absent."""

import numpy as np
import pytest

import flashport
import reference


def test_jax_cpu_arrays():
    jnp = pytest.importorskip("jax.numpy")
    import jax

    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((2, 9, 4, 16), (2, 11, 2, 16), (2, 11, 2, 16)))
    with jax.default_device(jax.devices("cpu")[0]):
        jq, jk, jv = jnp.asarray(q), jnp.asarray(k), jnp.asarray(v)
        out, lse = flashport.attention(jq, jk, jv, causal=True, return_lse=True)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    want_out, want_lse = reference.forward(q, k, v, causal=True)
    np.testing.assert_allclose(out, want_out, atol=2e-5)
    np.testing.assert_allclose(lse, want_lse, atol=2e-5)


def test_cupy_arrays_on_cuda():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("no CUDA device")
    except cupy.cuda.runtime.CUDARuntimeError:
        pytest.skip("no CUDA runtime")
    if not any(b.name == "cuda" and b.available for b in flashport.backends()):
        pytest.skip("flashport CUDA backend unavailable")
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal(s).astype(np.float16) for s in ((2, 64, 4, 64), (2, 64, 2, 64), (2, 64, 2, 64)))
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        out = flashport.attention(cupy.asarray(q), cupy.asarray(k), cupy.asarray(v), causal=True)
        assert isinstance(out, cupy.ndarray) and out.dtype == cupy.float16
        result = cupy.asnumpy(out, stream=stream)
    stream.synchronize()
    np.testing.assert_allclose(result.astype(np.float64), reference.forward(q, k, v, causal=True)[0], atol=4e-3)
