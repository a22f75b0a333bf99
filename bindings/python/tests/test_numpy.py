"""flashport.attention / attention_backward on NumPy arrays against the float64 reference."""

import ctypes
import pickle
import sys

import numpy as np
import pytest

import flashport
import reference
from flashport import _dlpack

try:
    import ml_dtypes
except ImportError:  # bfloat16 cases skip without it
    ml_dtypes = None

# dtype name -> (NumPy dtype, absolute tolerance of outputs, of gradients)
DTYPES = {
    "float32": (np.float32, 2e-5, 1e-4),
    "float16": (np.float16, 4e-3, 2e-2),
    "bfloat16": (ml_dtypes.bfloat16 if ml_dtypes else None, 3e-2, 1.5e-1),
}

# (batch, seqlen_q, seqlen_kv, heads_q, heads_kv, head_dim, head_dim_v)
SHAPES = [
    (1, 1, 1, 1, 1, 8, 8),
    (2, 17, 17, 4, 4, 32, 32),
    (2, 9, 33, 6, 2, 16, 24),   # GQA, Sq < Skv, Dv != Dqk
    (1, 40, 13, 3, 1, 64, 64),  # MQA, Sq > Skv (rows fully masked under causal)
]

# (causal, window, softcap, scale, alignment)
OPTIONS = [
    (False, (-1, -1), 0.0, None, "bottom_right"),
    (True, (-1, -1), 0.0, None, "bottom_right"),
    (True, (-1, -1), 0.0, None, "top_left"),
    (False, (5, 2), 0.0, 0.3, "bottom_right"),
    (True, (3, -1), 20.0, None, "bottom_right"),
]


def _random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _inputs(rng, shape, dtype):
    b, sq, skv, hq, hkv, d, dv = shape
    return _random(rng, (b, sq, hq, d), dtype), _random(rng, (b, skv, hkv, d), dtype), \
        _random(rng, (b, skv, hkv, dv), dtype)


def _kwargs(options):
    causal, window, softcap, scale, alignment = options
    return dict(causal=causal, window=window, softcap=softcap, scale=scale, mask_alignment=alignment)


def _ref_kwargs(options):
    causal, window, softcap, scale, alignment = options
    return dict(causal=causal, window=window, softcap=softcap, scale=scale, alignment=alignment)


def _close(actual, expected, atol, what):
    actual = np.asarray(actual, dtype=np.float64)
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(actual), finite), f"{what}: non-finite entries differ"
    err = np.max(np.abs(actual[finite] - expected[finite]), initial=0.0)
    scale = max(1.0, np.max(np.abs(expected[finite]), initial=0.0))
    assert err <= atol * scale, f"{what}: max abs error {err:.3g} > {atol * scale:.3g}"


def _dtype(name):
    dtype, atol, gtol = DTYPES[name]
    if dtype is None:
        pytest.skip("bfloat16 needs ml_dtypes")
    return dtype, atol, gtol


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_forward_and_backward_match_reference(dtype_name, shape, options):
    dtype, atol, gtol = _dtype(dtype_name)
    rng = np.random.default_rng(hash((dtype_name, shape, options)) % 2**32)
    q, k, v = _inputs(rng, shape, dtype)
    out, lse = flashport.attention(q, k, v, return_lse=True, **_kwargs(options))
    assert type(out) is np.ndarray and out.dtype == dtype and lse.dtype == np.float32
    ref_out, ref_lse = reference.forward(q, k, v, **_ref_kwargs(options))
    _close(out, ref_out, atol, "out")
    _close(lse, ref_lse, atol, "lse")

    dout = _random(rng, out.shape, dtype)
    dq, dk, dv = flashport.attention_backward(dout, q, k, v, out, lse, **_kwargs(options))
    assert (dq.shape, dk.shape, dv.shape) == (q.shape, k.shape, v.shape)
    for got, want, name in zip((dq, dk, dv), reference.backward(dout, q, k, v, **_ref_kwargs(options)),
                               ("dq", "dk", "dv")):
        assert got.dtype == dtype
        _close(got, want, gtol, name)


def test_fully_masked_rows_give_zero_output_and_minus_inf_lse():
    rng = np.random.default_rng(1)
    q, k, v = _inputs(rng, (1, 6, 3, 2, 2, 8, 8), np.float32)
    out, lse = flashport.attention(q, k, v, causal=True, return_lse=True)  # Sq > Skv: the first 3 rows see nothing
    assert np.all(out[:, :3] == 0) and np.all(np.isneginf(lse[:, :, :3]))
    assert np.all(np.isfinite(lse[:, :, 3:]))


def test_non_contiguous_views_are_read_and_written_in_place():
    rng = np.random.default_rng(2)
    # q as a transposed view of [B, H, S, D], k and v with a head_dim stride of 2, out a strided window of a buffer.
    q = _random(rng, (2, 4, 11, 16), np.float32).transpose(0, 2, 1, 3)
    k = _random(rng, (2, 13, 2, 32), np.float32)[..., ::2]
    v = _random(rng, (2, 13, 2, 16, 3), np.float32)[..., 1]
    buffer = np.full((2, 11, 8, 20), 7.0, dtype=np.float32)
    out = buffer[:, :, 1::2, 2:18]
    assert not (q.flags.c_contiguous or k.flags.c_contiguous or v.flags.c_contiguous or out.flags.c_contiguous)
    result = flashport.attention(q, k, v, causal=True, out=out)
    assert result is out
    _close(out, reference.forward(q, k, v, causal=True)[0], 2e-5, "out")
    untouched = np.ones(buffer.shape, dtype=bool)
    untouched[:, :, 1::2, 2:18] = False
    assert np.all(buffer[untouched] == 7.0), "wrote outside the out view"

    dout = _random(rng, (2, 11, 4, 16), np.float32)
    dq, dk, dv = flashport.attention_backward(dout, q, k, v, out, flashport.attention(q, k, v, causal=True,
                                                                                     return_lse=True)[1],
                                              causal=True)
    for got, want in zip((dq, dk, dv), reference.backward(dout, q, k, v, causal=True)):
        _close(got, want, 1e-4, "grad")


def test_negative_strides_are_read_and_written_in_place():
    rng = np.random.default_rng(3)
    # Reversed views (negative strides, as NumPy, PyTorch's DLPack peers and DLPack itself allow): q backwards along
    # seqlen, k along heads and head_dim, v along every dim; out and the gradients written through reversed views.
    q = _random(rng, (2, 11, 4, 16), np.float32)[:, ::-1]
    k = _random(rng, (2, 13, 2, 16), np.float32)[:, :, ::-1, ::-1]
    v = _random(rng, (2, 13, 2, 8), np.float32)[::-1, ::-1, ::-1, ::-1]
    assert min(q.strides) < 0 and min(k.strides) < 0 and max(v.strides) < 0
    buffer = np.full((2, 11, 4, 8), 7.0, dtype=np.float32)
    out = buffer[:, ::-1, ::-1]
    result, lse = flashport.attention(q, k, v, causal=True, out=out, return_lse=True)
    assert result is out
    ref_out, ref_lse = reference.forward(q, k, v, causal=True)
    _close(out, ref_out, 2e-5, "out")
    _close(lse, ref_lse, 2e-5, "lse")
    borrowed = _dlpack.Borrowed(q, "q")
    try:  # passed through as they are: element [0, 0, 0, 0] and signed element strides
        assert borrowed.view.data == q.ctypes.data
        assert borrowed.view.strides == tuple(s // 4 for s in q.strides) and borrowed.view.strides[1] < 0
    finally:
        borrowed.release()

    dout = _random(rng, (2, 11, 4, 8), np.float32)[:, :, ::-1]
    grads = [np.full(shape, 7.0, dtype=np.float32) for shape in ((2, 11, 4, 16), (2, 13, 2, 16), (2, 13, 2, 8))]
    dq, dk, dv = grads[0][:, ::-1], grads[1][::-1, :, ::-1], grads[2][..., ::-1]
    lse_reversed = np.ascontiguousarray(lse[:, ::-1])[:, ::-1]  # lse itself through a reversed view
    result = flashport.attention_backward(dout, q, k, v, out, lse_reversed, causal=True, dq=dq, dk=dk, dv=dv)
    assert all(a is b for a, b in zip(result, (dq, dk, dv)))
    for got, want, name in zip((dq, dk, dv), reference.backward(dout, q, k, v, causal=True), ("dq", "dk", "dv")):
        _close(got, want, 1e-4, name)


def test_inputs_are_borrowed_without_copying():
    base = np.arange(2 * 5 * 3 * 8, dtype=np.float32).reshape(2, 5, 3, 8)
    view = base[1:, 2:, ::2]
    borrowed = _dlpack.Borrowed(view, "q")
    try:
        assert borrowed.view.data == view.ctypes.data
        assert borrowed.view.shape == view.shape
        assert borrowed.view.strides == tuple(s // 4 for s in view.strides)
    finally:
        borrowed.release()


class _LegacyProducer:
    """An array exposing only the pre-1.0 protocol (no max_version), as NumPy < 2.1 and older frameworks do."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, stream=None):
        return self.array.__dlpack__()

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


def test_legacy_capsules_are_consumed_and_released():
    rng = np.random.default_rng(3)
    q, k, v = _inputs(rng, (1, 5, 5, 2, 2, 8, 8), np.float32)
    refs = sys.getrefcount(q)
    out = flashport.attention(_LegacyProducer(q), k, v)
    _close(out, reference.forward(q, k, v)[0], 2e-5, "out")
    assert sys.getrefcount(q) == refs, "the DLPack deleter was not called"


def test_results_are_deterministic_when_asked():
    rng = np.random.default_rng(4)
    q, k, v = _inputs(rng, (2, 33, 33, 4, 2, 32, 32), np.float32)
    out, lse = flashport.attention(q, k, v, causal=True, return_lse=True)
    dout = _random(rng, out.shape, np.float32)
    first = flashport.attention_backward(dout, q, k, v, out, lse, causal=True, deterministic=True)
    second = flashport.attention_backward(dout, q, k, v, out, lse, causal=True, deterministic=True)
    for a, b in zip(first, second):
        assert np.array_equal(a, b)


def test_backend_can_be_forced_and_listed():
    names = [b.name for b in flashport.backends()]
    assert "cpu" in names
    assert next(b for b in flashport.backends() if b.name == "cpu").available
    rng = np.random.default_rng(5)
    q, k, v = _inputs(rng, (1, 4, 4, 1, 1, 8, 8), np.float32)
    _close(flashport.attention(q, k, v, backend="cpu"), reference.forward(q, k, v)[0], 2e-5, "out")
    assert flashport.library_version() == flashport.__version__


# ---- bad inputs: the library's message comes through and nothing is written ----------------------------------------

def _sentinel_out(shape, dtype=np.float32):
    return np.full(shape, 42.0, dtype=dtype)


@pytest.mark.parametrize("case", ["heads", "head_dim", "out_shape", "dtypes", "negative_scale", "backend"])
def test_library_errors_raise_with_message_and_write_nothing(case):
    rng = np.random.default_rng(6)
    q, k, v = _inputs(rng, (1, 4, 4, 4, 2, 8, 8), np.float32)
    out = _sentinel_out((1, 4, 4, 8))
    kwargs = {}
    expected_status = {"heads": 12, "head_dim": 12, "out_shape": 12, "dtypes": 13, "negative_scale": 10,
                       "backend": 31}[case]
    if case == "heads":
        k, v = _inputs(rng, (1, 4, 4, 4, 3, 8, 8), np.float32)[1:]
    elif case == "head_dim":
        k = _random(rng, (1, 4, 2, 4), np.float32)
    elif case == "out_shape":
        out = _sentinel_out((1, 4, 4, 9))
    elif case == "dtypes":
        k = k.astype(np.float16)
    elif case == "negative_scale":
        kwargs["scale"] = -1.0
    elif case == "backend":
        kwargs["backend"] = "no-such-backend"
    before = out.copy()
    with pytest.raises(flashport.FlashportError) as info:
        flashport.attention(q, k, v, out=out, **kwargs)
    err = info.value
    assert err.status == expected_status, str(err)
    assert err.message and err.message in str(err) and err.status_name.startswith("FLASHPORT_STATUS_")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.status, copy.status_name, copy.message, str(copy)) == (err.status, err.status_name, err.message,
                                                                        str(err))
    assert np.array_equal(out, before), "out was written although the call failed"


def test_backward_errors_write_nothing():
    rng = np.random.default_rng(7)
    q, k, v = _inputs(rng, (1, 4, 4, 2, 2, 8, 8), np.float32)
    out, lse = flashport.attention(q, k, v, return_lse=True)
    dq, dk, dv = (_sentinel_out(x.shape) for x in (q, k, v))
    with pytest.raises(flashport.FlashportError, match="lse"):
        flashport.attention_backward(out, q, k, v, out, lse.astype(np.float16), dq=dq, dk=dk, dv=dv)
    for g in (dq, dk, dv):
        assert np.all(g == 42.0)


def test_python_side_errors():
    rng = np.random.default_rng(8)
    q, k, v = _inputs(rng, (1, 4, 4, 2, 2, 8, 8), np.float32)
    with pytest.raises(flashport.FlashportError, match="float32, float16 or bfloat16") as info:
        flashport.attention(q.astype(np.float64), k, v)
    assert info.value.status == 13
    with pytest.raises(flashport.FlashportError, match="4-D") as info:
        flashport.attention(q[0], k, v)
    assert info.value.status == 12
    with pytest.raises(TypeError, match="__dlpack__"):
        flashport.attention(q.tolist(), k, v)
    with pytest.raises(ValueError, match="mask_alignment"):
        flashport.attention(q, k, v, mask_alignment="middle")
    with pytest.raises(TypeError, match="window"):
        flashport.attention(q, k, v, window=3)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64, np.uint8, np.bool_, np.complex64])
def test_unsupported_dtypes_are_named(dtype):
    rng = np.random.default_rng(11)
    q, k, v = _inputs(rng, (1, 4, 4, 2, 2, 8, 8), np.float32)
    name = np.dtype(dtype).name
    for args, which in (((q.astype(dtype), k, v), "q"), ((q, k, v.astype(dtype)), "v")):
        with pytest.raises(flashport.FlashportError) as info:
            flashport.attention(*args)
        assert info.value.status == 13
        assert info.value.message == f"{which} has dtype {name}; flashport takes float32, float16 or bfloat16"
    out = _sentinel_out(q.shape).astype(dtype)
    with pytest.raises(flashport.FlashportError, match=f"out has dtype {name};"):
        flashport.attention(q, k, v, out=out)


def test_dlpack_dtype_names():
    assert _dlpack.dtype_name(2, 64) == "float64"
    assert _dlpack.dtype_name(0, 32) == "int32"
    assert _dlpack.dtype_name(1, 8) == "uint8"
    assert _dlpack.dtype_name(4, 16) == "bfloat16"
    assert _dlpack.dtype_name(10, 8) == "float8_e4m3fn"
    assert _dlpack.dtype_name(2, 32, 4) == "float32x4"
    assert _dlpack.dtype_name(99, 24) == "DLPack type code 99 (24 bits)"


def test_read_only_out_is_refused():
    rng = np.random.default_rng(9)
    q, k, v = _inputs(rng, (1, 4, 4, 2, 2, 8, 8), np.float32)
    out = _sentinel_out(q.shape)
    out.flags.writeable = False
    # NumPy >= 2.1 exports it flagged read-only; older NumPy refuses to export it at all.
    with pytest.raises((flashport.FlashportError, BufferError)):
        flashport.attention(q, k, v, out=out)
    assert np.all(out == 42.0)


class _OffsetProducer:
    """A DLPack producer made by hand whose capsule carries a non-zero byte_offset (as some producers emit for
    views), so the offset is proven to be applied. Legacy layout, no deleter: the array keeps the memory alive."""

    def __init__(self, array, offset_elements):
        self.array = array  # the view starts offset_elements past base's first element
        base = array
        while base.base is not None:
            base = base.base
        self._shape = (ctypes.c_int64 * 4)(*array.shape)
        self._strides = (ctypes.c_int64 * 4)(*(s // array.itemsize for s in array.strides))
        t = _dlpack._DLTensor(data=base.ctypes.data, ndim=4, shape=self._shape, strides=self._strides,
                              byte_offset=array.ctypes.data - base.ctypes.data)
        t.device.device_type, t.device.device_id = 1, 0
        t.dtype.code, t.dtype.bits, t.dtype.lanes = 2, 32, 1
        assert t.byte_offset == offset_elements * array.itemsize
        self._managed = _dlpack._DLManagedTensor(dl_tensor=t)

    def __dlpack__(self, stream=None):
        new = ctypes.pythonapi.PyCapsule_New
        new.restype, new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        return new(ctypes.addressof(self._managed), b"dltensor", None)

    def __dlpack_device__(self):
        return (1, 0)


def test_byte_offset_is_applied():
    rng = np.random.default_rng(10)
    base = _random(rng, (1, 3 * 4 * 8 + 5 * 2 * 8), np.float32)
    q = base[0, :96].reshape(1, 3, 4, 8)
    k = base[0, 96:].reshape(1, 5, 2, 8)
    out = flashport.attention(_OffsetProducer(q, 0), _OffsetProducer(k, 96), k)
    _close(out, reference.forward(q, k, k)[0], 2e-5, "out")


def test_concurrent_calls_from_threads():
    # ctypes releases the GIL during the call and last_error is per thread: results and messages must not mix.
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(11)
    q, k, v = _inputs(rng, (2, 64, 64, 4, 2, 32, 32), np.float32)
    expected = flashport.attention(q, k, v, causal=True)
    bad_k = k[..., :16]

    def call(i):
        if i % 2:
            with pytest.raises(flashport.FlashportError, match="head_dim") as info:
                flashport.attention(q, bad_k, v)
            return info.value.message
        return flashport.attention(q, k, v, causal=True)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(call, range(16)))
    for i, r in enumerate(results):
        if i % 2:
            assert "k.shape[3]" in r
        else:
            assert np.array_equal(r, expected)


def test_lse_with_a_trailing_axis_and_strided_lse():
    rng = np.random.default_rng(12)
    q, k, v = _inputs(rng, (2, 7, 7, 2, 2, 8, 8), np.float32)
    out, lse = flashport.attention(q, k, v, return_lse=True)
    dout = _random(rng, out.shape, np.float32)
    want = flashport.attention_backward(dout, q, k, v, out, lse)
    strided = np.zeros((2, 2, 14), np.float32)[:, :, ::2]
    strided[...] = lse
    for variant in (lse[..., None], strided):
        for a, b in zip(flashport.attention_backward(dout, q, k, v, out, variant), want):
            assert np.array_equal(a, b)
    with pytest.raises(flashport.FlashportError, match="lse must be"):
        flashport.attention_backward(dout, q, k, v, out, lse[0])
