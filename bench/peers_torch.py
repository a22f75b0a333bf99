#!/usr/bin/env python3
"""PyTorch peers for flashport-bench (run by it through popen; usable by hand too).

Measures torch.nn.functional.scaled_dot_product_attention on the cases given as arguments
(dir:dtype:B:Hq:Hkv:Sq:Skv:D:Dv:causal, dir fwd|bwd, dtype f32|bf16|f16) and prints one JSON line per
(case, peer) on stdout: {"case": i, "peer": name, "ms": median} or {"case": i, "peer": name, "error": why}.

  --device cpu:  peer "torch": SDPA with torch's own backend choice, torch.set_num_threads(--threads),
                 wall-clock time per call.
  --device cuda: peers "flash" and "cudnn": SDPA with one backend forced through torch.nn.attention.sdpa_kernel;
                 "fa4": flash_attn.cute.flash_attn_func when importable; "fa3": FlashAttention-3's Hopper kernels from
                 the flash-attn3-jax wheel (head dim 128 only) when importable, timed through JAX. CUDA-event timing
                 around batches of calls (fa3: host clock around a batch of asynchronously dispatched calls, ended by
                 block_until_ready, since its work runs on JAX's stream).

The fa3 peer's output is checked against SDPA's (flash backend) on the same inputs before it is timed: its JSON
line carries "rel_diff" (max |fa3 - sdpa| / max |sdpa| over out, or over each of dq, dk, dv), and a case whose
difference exceeds bf16/f16 rounding (1e-2) reports an error instead of a time. Its backward times FA3's backward primitive alone, given
the out and lse of its own forward.

Inputs are uniform random in [-1, 1), created in flashport's [B, S, H, D] layout and handed to torch as
transposed [B, H, S, D] views. Backward times one autograd.grad of (q, k, v) given dout, on a graph kept across
repetitions. torch's is_causal is top-left aligned; flashport's default is bottom-right: the same mask when
Sq == Skv, so causal cases with Sq != Skv are refused here rather than compared on a different mask.
"""
import argparse
import json
import os
import statistics
import sys
import time


def emit(obj):
    print(json.dumps(obj), flush=True)


def parse_case(text):
    d, dtype, b, hq, hkv, sq, skv, hd, hdv, causal = text.split(":")
    return dict(direction=d, dtype=dtype, batch=int(b), heads_q=int(hq), heads_kv=int(hkv), seqlen_q=int(sq),
                seqlen_kv=int(skv), head_dim=int(hd), head_dim_v=int(hdv), causal=causal == "1")


def make_inputs(torch, c, device, dtype):
    gen = torch.Generator(device="cpu").manual_seed(1234)

    def rand(*shape):
        return (torch.rand(*shape, generator=gen) * 2 - 1).to(device=device, dtype=dtype)

    q = rand(c["batch"], c["seqlen_q"], c["heads_q"], c["head_dim"])
    k = rand(c["batch"], c["seqlen_kv"], c["heads_kv"], c["head_dim"])
    v = rand(c["batch"], c["seqlen_kv"], c["heads_kv"], c["head_dim_v"])
    dout = rand(c["batch"], c["seqlen_q"], c["heads_q"], c["head_dim_v"])
    return q, k, v, dout


def sdpa_call(torch, c):
    import torch.nn.functional as F
    gqa = c["heads_q"] != c["heads_kv"]

    def call(q, k, v):
        kwargs = {"is_causal": c["causal"]}
        if gqa:
            kwargs["enable_gqa"] = True
        return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), **kwargs)
    return call


def fa4_call(c):
    from flash_attn.cute import flash_attn_func  # FlashAttention 4 (CuTe DSL); [B, S, H, D] natively

    def call(q, k, v):
        out = flash_attn_func(q, k, v, causal=c["causal"])
        return out[0] if isinstance(out, tuple) else out
    return call


FA3_MAX_REL_DIFF = 1e-2  # bf16 / f16 outputs of two correct kernels differ by a few units of the last place


def fa3_measure(torch, c, reps):
    """Times FlashAttention-3 (flash-attn3-jax) on the case and checks it against torch SDPA on the same data."""
    import jax
    import jax.dlpack
    from flash_attn3_jax import flash as fa3
    if c["head_dim"] != 128 or c["head_dim_v"] != 128:
        raise ValueError("the flash-attn3-jax wheel has head dim 128 only")
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16}.get(c["dtype"])
    if dtype is None:
        raise ValueError("FA3 takes bf16 or f16")
    q, k, v, dout = make_inputs(torch, c, "cuda", dtype)
    jq, jk, jv, jdout = (jax.dlpack.from_dlpack(t.contiguous()) for t in (q, k, v, dout))
    scale = 1.0 / c["head_dim"] ** 0.5
    config = dict(softmax_scale=scale, is_causal=c["causal"], window_size=(-1, -1))
    fwd = jax.jit(lambda a, b, d: fa3._flash_mha_fwd(a, b, d, **config))
    bwd = jax.jit(lambda g, a, b, d, o, l: fa3._flash_mha_bwd(g, a, b, d, o, l, **config))
    out, lse = fwd(jq, jk, jv)

    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        tq, tk, tv = (t.detach().clone().requires_grad_(c["direction"] == "bwd") for t in (q, k, v))
        ref = sdpa_call(torch, c)(tq, tk, tv).transpose(1, 2)
        pairs = [(out, ref)]
        if c["direction"] == "bwd":
            ref_grads = torch.autograd.grad(ref, (tq, tk, tv), dout)
            pairs = list(zip(bwd(jdout, jq, jk, jv, out, lse), ref_grads))
    diff = max(float((torch.from_dlpack(a).float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-30))
               for a, b in pairs)
    if not diff <= FA3_MAX_REL_DIFF:
        raise ValueError(f"FA3 differs from SDPA flash by {diff:.3g} of its largest value (> {FA3_MAX_REL_DIFF}) "
                         "on the same inputs")

    call = (lambda: fwd(jq, jk, jv)) if c["direction"] == "fwd" else (lambda: bwd(jdout, jq, jk, jv, out, lse))
    jax.block_until_ready(call())
    t0 = time.perf_counter()
    jax.block_until_ready(call())
    single_ms = max((time.perf_counter() - t0) * 1e3, 1e-3)
    inner = max(1, min(100, int(20.0 / single_ms)))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner - 1):
            call()
        jax.block_until_ready(call())
        times.append((time.perf_counter() - t0) * 1e3 / inner)
    return statistics.median(times), diff


def timed_cpu(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def timed_cuda(torch, fn, reps):
    fn()
    torch.cuda.synchronize()
    # Batches of at least ~20 ms so that launch overhead and event resolution do not dominate short kernels.
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    single_ms = max((time.perf_counter() - t0) * 1e3, 1e-3)
    inner = max(1, min(100, int(20.0 / single_ms)))
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / inner)
    return statistics.median(times)


def measure(torch, c, device, attention, reps):
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[c["dtype"]]
    q, k, v, dout = make_inputs(torch, c, device, dtype)
    timer = (lambda fn: timed_cuda(torch, fn, reps)) if device == "cuda" else (lambda fn: timed_cpu(fn, reps))
    if c["direction"] == "fwd":
        def fwd():
            with torch.no_grad():
                attention(q, k, v)
        return timer(fwd)
    q, k, v = (t.requires_grad_(True) for t in (q, k, v))
    out = attention(q, k, v)
    # attention() returns [B, H, S, Dv] (SDPA) or [B, S, H, Dv] (FA4): match dout to it.
    grad = dout if out.shape == dout.shape else dout.transpose(1, 2)
    return timer(lambda: torch.autograd.grad(out, (q, k, v), grad, retain_graph=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("cases", nargs="*")
    args = parser.parse_args()

    import torch
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cases = [parse_case(text) for text in args.cases]

    peers = []
    if args.device == "cpu":
        emit({"info": f"torch {torch.__version__} CPU, {torch.get_num_threads()} threads"})
        peers.append(("torch", None))
    else:
        if not torch.cuda.is_available():
            print("peers_torch.py: torch sees no CUDA device", file=sys.stderr)
            return 1
        from torch.nn.attention import SDPBackend, sdpa_kernel
        emit({"info": f"torch {torch.__version__} on {torch.cuda.get_device_name()}"})
        peers.append(("flash", lambda: sdpa_kernel(SDPBackend.FLASH_ATTENTION)))
        peers.append(("cudnn", lambda: sdpa_kernel(SDPBackend.CUDNN_ATTENTION)))
        try:
            import flash_attn.cute  # noqa: F401
            peers.append(("fa4", "fa4"))
        except Exception as e:  # optional peer: absent is normal
            print(f"peers_torch.py: FA4 not measured ({type(e).__name__}: {e})", file=sys.stderr)
        # JAX must not take most of the GPU's memory at start-up: torch allocates beside it.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        try:
            import flash_attn3_jax  # noqa: F401
            peers.append(("fa3", "fa3"))
        except Exception as e:  # optional peer: absent is normal
            print(f"peers_torch.py: FA3 not measured ({type(e).__name__}: {e})", file=sys.stderr)

    for index, c in enumerate(cases):
        for name, context in peers:
            if c["causal"] and c["seqlen_q"] != c["seqlen_kv"] and name not in ("fa4", "fa3"):
                emit({"case": index, "peer": name, "error": "torch is_causal is top-left aligned; Sq != Skv"})
                continue
            print(f"peers_torch.py: case {index + 1}/{len(cases)} {name} {args.cases[index]}", file=sys.stderr)
            try:
                if context == "fa3":
                    ms, diff = fa3_measure(torch, c, args.reps)
                    emit({"case": index, "peer": name, "ms": ms, "rel_diff": diff})
                    continue
                if context == "fa4":
                    ms = measure(torch, c, args.device, fa4_call(c), args.reps)
                elif context is None:
                    ms = measure(torch, c, args.device, sdpa_call(torch, c), args.reps)
                else:
                    with context():
                        ms = measure(torch, c, args.device, sdpa_call(torch, c), args.reps)
                emit({"case": index, "peer": name, "ms": ms})
            except Exception as e:  # a peer refusing a case is a result, not a failure of the run
                emit({"case": index, "peer": name, "error": f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"})
            finally:
                if args.device == "cuda":
                    torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
