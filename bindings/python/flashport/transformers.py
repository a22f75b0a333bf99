"""Hugging Face Transformers integration: flashport as an attention implementation.

    import flashport.transformers
    flashport.transformers.register()                      # once per process
    model = AutoModelForCausalLM.from_pretrained(..., attn_implementation=flashport.transformers.NAME)  # "fport"

The attention function has the signature of transformers' sdpa_attention_forward. flashport applies causal and
sliding-window masks itself (bottom-right aligned, which is where a KV cache puts the queries), so the mask function
registered beside it builds no mask; it refuses, with a clear error, what flashport cannot express: padding, packed
sequences, custom mask functions and caches whose keys do not end at the last query (static caches).
"""

from __future__ import annotations

from . import torch as fp_torch

# Not "flashport": transformers takes every implementation name containing "flash" for a FlashAttention package
# (is_flash_attention_requested) and tries to import one, which fails (seen with transformers 5.17 on the GPU
# machine).
NAME = "fport"


def attention_forward(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, is_causal=None,
                      softcap=None, sliding_window=None, **kwargs):
    """query [B, H_q, S_q, D], key/value [B, H_kv, S_kv, D]; returns ([B, S_q, H_q, D_v], None) like sdpa."""
    if attention_mask is not None:
        raise NotImplementedError("flashport attention takes no mask tensor: register it with "
                                  "flashport.transformers.register(), which builds none")
    if dropout and getattr(module, "training", False):
        raise NotImplementedError(f"flashport attention has no dropout (got dropout={dropout} in training mode)")
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    window = (-1, -1)
    if sliding_window:
        if not causal:
            raise NotImplementedError("flashport attention supports sliding windows on causal layers only")
        # transformers' sliding window keeps keys j > i - sliding_window: sliding_window - 1 keys to the left.
        window = (sliding_window - 1, -1)
    # [B, H, S, D] -> [B, S, H, D] as strided views: flashport reads any strides, so nothing is copied.
    out = fp_torch.attention(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), causal=bool(causal),
                             window=window, softcap=float(softcap or 0.0), scale=scaling)
    return out, None


def _mask_kind(mask_function) -> str | None:
    """'causal', 'bidirectional', 'sliding' for the mask functions flashport computes itself; None otherwise."""
    from transformers import masking_utils as mu

    if mask_function is mu.causal_mask_function:
        return "causal"
    if mask_function is getattr(mu, "bidirectional_mask_function", None):
        return "bidirectional"
    # sliding_window_causal_mask_function(w) is and_masks(sliding_window_overlay(w), causal_mask_function): recognise
    # exactly that closure; anything else and_masks builds (packed sequences, image overlays) is refused.
    if getattr(mask_function, "__qualname__", "") == "and_masks.<locals>.and_mask" and mask_function.__closure__:
        for cell in mask_function.__closure__:
            parts = cell.cell_contents
            if isinstance(parts, tuple) and len(parts) == 2 and parts[1] is mu.causal_mask_function and \
                    getattr(parts[0], "__qualname__", "") == "sliding_window_overlay.<locals>.inner_mask":
                return "sliding"
    return None


def mask_function(batch_size=None, q_length=None, kv_length=None, q_offset=0, kv_offset=0, mask_function=None,
                  attention_mask=None, cache_position=None, **kwargs):
    """transformers' AttentionMaskInterface entry: returns None (no mask tensor) or raises NotImplementedError."""
    kind = _mask_kind(mask_function)
    if kind is None:
        raise NotImplementedError(f"flashport attention cannot apply the mask function {mask_function!r}; it "
                                  "supports causal, bidirectional and sliding-window attention")
    if attention_mask is not None and not bool(attention_mask.all()):
        raise NotImplementedError("flashport attention does not support padding masks; pass unpadded batches")
    if q_length is None and cache_position is not None:  # the older (transformers 4.5x) signature
        q_length, q_offset = cache_position.shape[0], int(cache_position[0])
    if kind != "bidirectional" and q_length is not None and q_offset + q_length != kv_offset + kv_length:
        raise NotImplementedError(
            f"flashport aligns causal masks bottom-right: queries {q_offset}..{q_offset + q_length} must end where "
            f"keys {kv_offset}..{kv_offset + kv_length} end (static caches are not supported)")
    return None


def register(name: str = NAME) -> str:
    """Register flashport under `name` in transformers' AttentionInterface (and its mask function in
    AttentionMaskInterface). Returns the name to pass as attn_implementation. A name containing "flash" is refused:
    transformers would treat it as a FlashAttention package."""
    if "flash" in name:
        raise ValueError(f"attention implementation name {name!r} contains 'flash', which transformers reserves for "
                         "FlashAttention packages (it would try to import one); use a name without it, e.g. 'fport'")
    from transformers import AttentionInterface

    AttentionInterface.register(name, attention_forward)
    from transformers.masking_utils import AttentionMaskInterface

    AttentionMaskInterface.register(name, mask_function)
    return name
