"""Zero-copy access to any array that implements the DLPack protocol (``__dlpack__`` / ``__dlpack_device__``).

The struct definitions follow the DLPack specification (dlpack.h, v0.8 legacy and v1.x versioned layouts). A capsule
is *consumed* as the protocol asks: it is renamed to "used_dltensor[_versioned]" so the producer's capsule destructor
leaves it alone, and we call the managed tensor's deleter ourselves once the library call has returned.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from . import _lib

# DLDeviceType values that matter here.
_kDLCPU, _kDLCUDA, _kDLCUDAHost, _kDLROCM, _kDLROCMHost = 1, 2, 3, 10, 11
# DLDataTypeCode values.
_kDLFloat, _kDLBfloat = 2, 4
# DLManagedTensorVersioned.flags bits.
_FLAG_READ_ONLY, _FLAG_IS_COPIED = 1, 2


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),  # NULL means compact row-major
        ("byte_offset", ctypes.c_uint64),
    ]


# The deleter is kept as a plain pointer and called through _DELETER; both layouts pass the struct's own address.
_DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]


class _DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class _DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [
        ("version", _DLPackVersion),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", ctypes.c_void_p),
        ("flags", ctypes.c_uint64),
        ("dl_tensor", _DLTensor),
    ]


_capsule_is_valid = ctypes.pythonapi.PyCapsule_IsValid
_capsule_is_valid.restype = ctypes.c_int
_capsule_is_valid.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_get_pointer.restype = ctypes.c_void_p
_capsule_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_set_name = ctypes.pythonapi.PyCapsule_SetName
_capsule_set_name.restype = ctypes.c_int
_capsule_set_name.argtypes = [ctypes.py_object, ctypes.c_char_p]

# PyCapsule_SetName keeps the pointer it is given, not a copy: these bytes objects live as long as the module, so the
# new names stay valid for as long as any capsule can outlive the call.
_NAME_LEGACY, _USED_LEGACY = b"dltensor", b"used_dltensor"
_NAME_VERSIONED, _USED_VERSIONED = b"dltensor_versioned", b"used_dltensor_versioned"


@dataclass
class View:
    """What the library needs to know about one borrowed array."""

    name: str          # argument name, for messages
    data: int          # address of element [0, 0, 0, 0] (byte_offset applied)
    shape: tuple
    strides: tuple     # in elements
    dtype: int         # a flashport dtype code
    device_type: int   # flashport / DLPack numbering
    device_id: int
    read_only: bool

    def tensor(self) -> _lib.Tensor:
        t = _lib.Tensor()
        t.data, t.dtype, t.device_type, t.device_id = self.data, self.dtype, self.device_type, self.device_id
        t.shape[:], t.strides[:] = self.shape, self.strides
        return t


# DLDataTypeCode -> the dtype name NumPy/PyTorch users know; "{}" takes the bit width. Codes 7 and above are the
# narrow float formats of DLPack 1.x, whose names fix their width.
_CODE_NAMES = {0: "int{}", 1: "uint{}", 2: "float{}", 3: "opaque handle ({} bits)", 4: "bfloat{}", 5: "complex{}",
               6: "bool", 7: "float8_e3m4", 8: "float8_e4m3", 9: "float8_e4m3b11fnuz", 10: "float8_e4m3fn",
               11: "float8_e4m3fnuz", 12: "float8_e5m2", 13: "float8_e5m2fnuz", 14: "float8_e8m0fnu",
               15: "float6_e2m3fn", 16: "float6_e3m2fn", 17: "float4_e2m1fn"}


def dtype_name(code: int, bits: int, lanes: int = 1) -> str:
    """A DLPack dtype as a name: "float64", "int32", "bool", "float32x4" for vector lanes."""
    pattern = _CODE_NAMES.get(code)
    name = pattern.format(bits) if pattern else f"DLPack type code {code} ({bits} bits)"
    return name if lanes == 1 else f"{name}x{lanes}"


def _dtype_code(dt: _DLDataType, name: str) -> int:
    if dt.lanes == 1:
        if dt.code == _kDLFloat and dt.bits == 32:
            return _lib.DTYPE_F32
        if dt.code == _kDLFloat and dt.bits == 16:
            return _lib.DTYPE_F16
        if dt.code == _kDLBfloat and dt.bits == 16:
            return _lib.DTYPE_BF16
    raise _lib.error(_lib.STATUS_DTYPE_MISMATCH,
                     f"{name} has dtype {dtype_name(dt.code, dt.bits, dt.lanes)}; flashport takes float32, float16 "
                     "or bfloat16")


def device_of(obj) -> tuple:
    """(DLPack device type, device id) of an array, without exporting it."""
    try:
        device_type, device_id = obj.__dlpack_device__()
    except AttributeError:
        raise TypeError(f"expected an array with __dlpack__ (NumPy >= 1.22, PyTorch, CuPy, JAX), "
                        f"got {type(obj).__name__}") from None
    return int(device_type), int(device_id)


def _export(obj, stream):
    """Ask for a DLPack 1.x capsule without copying; fall back to the legacy call for older producers."""
    kwargs = {} if stream is None else {"stream": stream}
    try:
        return obj.__dlpack__(max_version=(1, 0), copy=False, **kwargs)
    except TypeError:
        pass
    try:
        return obj.__dlpack__(max_version=(1, 0), **kwargs)
    except TypeError:
        return obj.__dlpack__(**kwargs)


class Borrowed:
    """One consumed DLPack capsule. ``release()`` calls the producer's deleter; call it once the library is done."""

    def __init__(self, obj, name: str, *, stream=None, dtype_override: int | None = None):
        capsule = _export(obj, stream)
        if _capsule_is_valid(capsule, _NAME_VERSIONED):
            ptr = _capsule_get_pointer(capsule, _NAME_VERSIONED)
            managed = _DLManagedTensorVersioned.from_address(ptr)
            used = _USED_VERSIONED
            read_only = bool(managed.flags & _FLAG_READ_ONLY)
            copied = bool(managed.flags & _FLAG_IS_COPIED)
        elif _capsule_is_valid(capsule, _NAME_LEGACY):
            ptr = _capsule_get_pointer(capsule, _NAME_LEGACY)
            managed = _DLManagedTensor.from_address(ptr)
            used = _USED_LEGACY
            read_only = copied = False
        else:
            raise TypeError(f"{name}.__dlpack__() did not return an unused DLPack capsule")
        if _capsule_set_name(capsule, used) != 0:
            raise RuntimeError("PyCapsule_SetName failed")
        # From here on the managed tensor is ours: make sure every later failure still releases it.
        self._ptr, self._deleter = ptr, managed.deleter
        try:
            self.view = self._describe(managed.dl_tensor, name, read_only, dtype_override)
        except BaseException:
            self.release()
            raise
        self.copied = copied

    @staticmethod
    def _describe(t: _DLTensor, name: str, read_only: bool, dtype_override) -> View:
        if t.ndim != 4:
            shape = tuple(t.shape[i] for i in range(t.ndim))
            raise _lib.error(_lib.STATUS_SHAPE_MISMATCH,
                             f"{name} must be 4-D [batch, seqlen, heads, head_dim], got shape {shape}")
        dtype = dtype_override if dtype_override is not None else _dtype_code(t.dtype, name)
        shape = tuple(int(t.shape[i]) for i in range(4))
        if t.strides:
            strides = tuple(int(t.strides[i]) for i in range(4))
        else:  # compact row-major
            strides = (shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1)
        device_type = t.device.device_type
        if device_type in (_kDLCUDAHost, _kDLROCMHost):
            device_type = _kDLCPU  # pinned host memory is ordinary host memory to the CPU backend
        return View(name=name, data=(t.data or 0) + t.byte_offset, shape=shape, strides=strides, dtype=dtype,
                    device_type=device_type, device_id=t.device.device_id if device_type != _kDLCPU else 0,
                    read_only=read_only)

    def release(self) -> None:
        ptr, deleter = self._ptr, self._deleter
        self._ptr = self._deleter = None
        if ptr and deleter:
            _DELETER(deleter)(ptr)

    def __del__(self):
        # A safety net only: the API releases explicitly right after the library call.
        if getattr(self, "_ptr", None):
            self.release()
