"""Loading libflashport and mirroring its C ABI with ctypes.

Only this module knows the C structs; everything above it talks in Python values. The struct layouts below follow
include/flashport/flashport.h (ABI version 1) field for field.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from pathlib import Path

# The ABI this binding was written against; the library's SONAME carries the same number (libflashport.so.1).
ABI_VERSION = 1

# flashport_status values (pinned in the header).
STATUS_OK = 0
STATUS_INVALID_ARGUMENT = 10
STATUS_SHAPE_MISMATCH = 12
STATUS_DTYPE_MISMATCH = 13
STATUS_DEVICE_MISMATCH = 14
STATUS_UNSUPPORTED = 17

DTYPE_F32 = 1
DTYPE_F16 = 2
DTYPE_BF16 = 3

DEVICE_CPU = 1
DEVICE_CUDA = 2
DEVICE_ROCM = 10

ALIGN_BOTTOM_RIGHT = 0
ALIGN_TOP_LEFT = 1


class FlashportError(RuntimeError):
    """An error reported by libflashport (or found by this binding before calling it).

    ``status`` is the library's numeric flashport_status, ``status_name`` its name
    ("FLASHPORT_STATUS_SHAPE_MISMATCH") and ``message`` the library's explanation.
    """

    def __init__(self, status: int, status_name: str, message: str):
        super().__init__(f"{status_name}: {message}")
        self.status = status
        self.status_name = status_name
        self.message = message

    def __reduce__(self):  # so the error survives pickling (multiprocessing, pytest-xdist)
        return type(self), (self.status, self.status_name, self.message)


class Tensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int32),
        ("device_type", ctypes.c_int32),
        ("device_id", ctypes.c_int32),
        ("reserved_", ctypes.c_int32),
        ("shape", ctypes.c_int64 * 4),
        ("strides", ctypes.c_int64 * 4),
    ]


_MASK_AND_RUN_FIELDS = [
    ("softmax_scale", ctypes.c_float),
    ("softcap", ctypes.c_float),
    ("causal", ctypes.c_int32),
    ("mask_alignment", ctypes.c_int32),
    ("window_left", ctypes.c_int64),
    ("window_right", ctypes.c_int64),
    ("stream", ctypes.c_void_p),
    ("workspace", ctypes.c_void_p),
    ("workspace_size", ctypes.c_size_t),
    ("backend", ctypes.c_char_p),
]


class ForwardArgs(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t)] + [(n, Tensor) for n in ("q", "k", "v", "out", "lse")] + \
        _MASK_AND_RUN_FIELDS


class BackwardArgs(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t)] + \
        [(n, Tensor) for n in ("dout", "q", "k", "v", "out", "lse", "dq", "dk", "dv")] + \
        _MASK_AND_RUN_FIELDS + [("deterministic", ctypes.c_int32), ("dlse", Tensor)]


class CombineArgs(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("num_parts", ctypes.c_int64),
        ("parts_out", ctypes.POINTER(Tensor)),
        ("parts_lse", ctypes.POINTER(Tensor)),
        ("out", Tensor),
        ("lse", Tensor),
        ("stream", ctypes.c_void_p),
        ("backend", ctypes.c_char_p),
    ]


class BackendInfo(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("name", ctypes.c_char_p),
        ("device_type", ctypes.c_int32),
        ("available", ctypes.c_int32),
        ("device_count", ctypes.c_int32),
        ("reserved_", ctypes.c_int32),
        ("status_message", ctypes.c_char_p),
        ("module_path", ctypes.c_char_p),
    ]


def new_combine_args() -> CombineArgs:
    """A CombineArgs with its defaults (all zero / NULL) and our struct_size, as new_args() for the attention args."""
    args = CombineArgs()
    args.struct_size = ctypes.sizeof(CombineArgs)
    return args


def new_args(cls):
    """A zeroed argument struct with the documented defaults.

    Our own struct_size is the versioning contract (what flashport_*_args_init_sized(args, size) does for C):
    the library gives defaults to every field it knows and we do not.
    """
    args = cls()
    args.struct_size = ctypes.sizeof(cls)
    args.mask_alignment = ALIGN_BOTTOM_RIGHT
    args.window_left = -1
    args.window_right = -1
    return args


def _library_names() -> list[str]:
    if sys.platform == "darwin":
        return [f"libflashport.{ABI_VERSION}.dylib"]
    if sys.platform == "win32":
        return ["flashport.dll"]
    return [f"libflashport.so.{ABI_VERSION}"]


def _candidates() -> list[str]:
    """Where the library is looked for, in order: FLASHPORT_LIBRARY, the copy shipped inside this package (the wheel
    installs it under flashport/lib or lib64), then the system's search path."""
    override = os.environ.get("FLASHPORT_LIBRARY")
    if override:
        return [override]  # an explicit choice is never silently replaced by another copy
    here = Path(__file__).resolve().parent
    found = [str(here / sub / name) for sub in ("lib", "lib64") for name in _library_names()
             if (here / sub / name).exists()]
    system = ctypes.util.find_library("flashport")
    return found + ([system] if system else []) + _library_names()


_lock = threading.Lock()
_lib = None


def _declare(lib) -> None:
    c = ctypes
    decl = {
        "flashport_version": (c.c_uint32, []),
        "flashport_version_string": (c.c_char_p, []),
        "flashport_abi_version": (c.c_uint32, []),
        "flashport_status_string": (c.c_char_p, [c.c_int]),
        "flashport_last_error": (c.c_char_p, []),
        "flashport_forward": (c.c_int, [c.POINTER(ForwardArgs)]),
        "flashport_forward_workspace_size": (c.c_int, [c.POINTER(ForwardArgs), c.POINTER(c.c_size_t)]),
        "flashport_backward": (c.c_int, [c.POINTER(BackwardArgs)]),
        "flashport_backward_workspace_size": (c.c_int, [c.POINTER(BackwardArgs), c.POINTER(c.c_size_t)]),
        "flashport_combine": (c.c_int, [c.POINTER(CombineArgs)]),
        "flashport_backend_count": (c.c_int32, []),
        "flashport_backend_info_get": (c.c_int, [c.c_int32, c.POINTER(BackendInfo)]),
    }
    for name, (restype, argtypes) in decl.items():
        fn = getattr(lib, name, None)
        if fn is None and name in _SINCE_V02:
            continue  # an older libflashport.so.1: the functions that use it say so when called
        if fn is None:
            fn = getattr(lib, name)  # raises AttributeError naming the missing symbol
        fn.restype = restype
        fn.argtypes = argtypes


# Entry points added after v0.1: a library of the same ABI but older may lack them.
_SINCE_V02 = frozenset({"flashport_combine"})


def require(name: str):
    """The library's function `name`, or a FlashportError saying that the loaded library is too old for it."""
    fn = getattr(lib(), name, None)
    if fn is None:
        raise FlashportError(STATUS_UNSUPPORTED, "FLASHPORT_STATUS_UNSUPPORTED",
                             f"{name} is missing from the loaded libflashport "
                             f"{lib().flashport_version_string().decode()}: it needs version 0.2 or newer")
    return fn


def lib():
    """The loaded library (loaded once, on first use, so that `import flashport` never fails for lack of it)."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            errors = []
            for path in _candidates():
                try:
                    handle = ctypes.CDLL(path)
                except OSError as e:
                    errors.append(f"{path}: {e}")
                    continue
                _declare(handle)
                abi = handle.flashport_abi_version()
                if abi != ABI_VERSION:
                    raise ImportError(f"{path} has ABI version {abi}; this flashport package needs {ABI_VERSION}")
                _lib = handle
                break
            else:
                raise ImportError("libflashport could not be loaded (set FLASHPORT_LIBRARY to its path); tried:\n  "
                                  + "\n  ".join(errors))
    return _lib


def check(status: int) -> None:
    """Raise FlashportError for a failed call, with the calling thread's last_error message."""
    if status != STATUS_OK:
        handle = lib()
        raise FlashportError(status, handle.flashport_status_string(status).decode(),
                             handle.flashport_last_error().decode(errors="replace"))


def error(status: int, message: str) -> FlashportError:
    """A FlashportError for a problem this binding finds before calling the library, named like the library's."""
    return FlashportError(status, lib().flashport_status_string(status).decode(), message)
