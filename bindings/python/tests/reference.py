"""A float64 NumPy reference for attention forward and backward, written from the contract in
include/flashport/flashport.h (not from the library), so the tests compare two independent implementations."""

import numpy as np


def _expand_kv(x, heads_q):
    """[B, S, H_kv, D] -> [B, S, H_q, D]: query head h reads KV head h // (H_q // H_kv)."""
    return np.repeat(x, heads_q // x.shape[2], axis=2)


def _visible(seqlen_q, seqlen_kv, causal, window, alignment):
    off = seqlen_kv - seqlen_q if alignment == "bottom_right" else 0
    i = np.arange(seqlen_q)[:, None] + off
    j = np.arange(seqlen_kv)[None, :]
    ok = np.ones((seqlen_q, seqlen_kv), dtype=bool)
    if causal:
        ok &= j <= i
    if window[0] >= 0:
        ok &= j >= i - window[0]
    if window[1] >= 0:
        ok &= j <= i + window[1]
    return ok


def _probabilities(q, k, causal, window, softcap, scale, alignment):
    q, k = np.asarray(q, np.float64), np.asarray(k, np.float64)
    scale = scale if scale else 1.0 / np.sqrt(q.shape[3])
    s = np.einsum("bihd,bjhd->bhij", q, _expand_kv(k, q.shape[2])) * scale
    capped = softcap * np.tanh(s / softcap) if softcap > 0 else s
    ok = _visible(q.shape[1], k.shape[1], causal, window, alignment)
    masked = np.where(ok, capped, -np.inf)
    m = masked.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # fully masked rows: no finite max
    e = np.exp(masked - m)
    l = e.sum(axis=-1, keepdims=True)
    p = e / np.where(l > 0, l, 1.0)
    lse = np.where(l[..., 0] > 0, m[..., 0] + np.log(np.where(l[..., 0] > 0, l[..., 0], 1.0)), -np.inf)
    return p, lse, capped, scale


def forward(q, k, v, *, causal=False, window=(-1, -1), softcap=0.0, scale=None, alignment="bottom_right"):
    """Returns (out [B, Sq, Hq, Dv], lse [B, Hq, Sq]) in float64."""
    p, lse, _, _ = _probabilities(q, k, causal, window, softcap, scale, alignment)
    out = np.einsum("bhij,bjhd->bihd", p, _expand_kv(np.asarray(v, np.float64), q.shape[2]))
    return out, lse


def backward(dout, q, k, v, *, causal=False, window=(-1, -1), softcap=0.0, scale=None, alignment="bottom_right"):
    """Returns (dq, dk, dv) in float64; dk/dv summed over the query heads sharing a KV head."""
    p, _, capped, scale = _probabilities(q, k, causal, window, softcap, scale, alignment)
    heads_q, heads_kv = q.shape[2], k.shape[2]
    q, k, v, dout = (np.asarray(x, np.float64) for x in (q, k, v, dout))
    k_rep, v_rep = _expand_kv(k, heads_q), _expand_kv(v, heads_q)
    out = np.einsum("bhij,bjhd->bihd", p, v_rep)
    dp = np.einsum("bihd,bjhd->bhij", dout, v_rep)
    d = np.einsum("bihd,bihd->bhi", dout, out)
    ds = p * (dp - d[..., None])
    if softcap > 0:
        ds = ds * (1.0 - (capped / softcap) ** 2)  # d/dx c*tanh(x/c) = 1 - tanh^2
    dq = np.einsum("bhij,bjhd->bihd", ds, k_rep) * scale
    dk_rep = np.einsum("bhij,bihd->bjhd", ds, q) * scale
    dv_rep = np.einsum("bhij,bihd->bjhd", p, dout)

    def group(x):
        b, s, _, dim = x.shape
        return x.reshape(b, s, heads_kv, heads_q // heads_kv, dim).sum(axis=3)

    return dq, group(dk_rep), group(dv_rep)
