"""flashport: exact attention, computed the FlashAttention way, from Python.

    import flashport
    out = flashport.attention(q, k, v, causal=True)          # NumPy, PyTorch, CuPy, JAX ... via DLPack, no copies
    dq, dk, dv = flashport.attention_backward(dout, q, k, v, out, lse, causal=True)
    out, lse = flashport.combine([out_a, out_b], [lse_a, lse_b], return_lse=True)  # merge split-KV partials

PyTorch autograd / torch.compile: flashport.torch. Hugging Face Transformers: flashport.transformers.register().
"""

from ._api import attention, attention_backward, backends, combine, library_version
from ._lib import FlashportError

__version__ = "0.1.0"

__all__ = ["attention", "attention_backward", "backends", "combine", "library_version", "FlashportError",
           "__version__"]
