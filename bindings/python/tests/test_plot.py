"""bench/plot.py turns flashport-bench --json lines into one chart per (backend, direction, dtype)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

PLOT = Path(__file__).resolve().parents[3] / "bench" / "plot.py"


def _record(direction, head_dim, causal, seqlen, **extra):
    rate = 1e-3 * head_dim * seqlen / 1024
    return dict(backend="cpu", direction=direction, dtype="f32", batch=1, heads_q=4, heads_kv=4, seqlen_q=seqlen,
                seqlen_kv=seqlen, head_dim=head_dim, head_dim_v=head_dim, causal=causal, ms=1.0, tflops=rate,
                peer_naive_tflops=rate / 4, ratio_naive=4.0, **extra)


def test_one_chart_per_direction_with_every_peer(tmp_path):
    lines = [json.dumps(_record(d, hd, c, s, peer_torch_tflops=None if s == 2048 else 0.01))
             for d in ("fwd", "bwd") for hd in (64, 128) for c in (False, True) for s in (512, 1024, 2048)]
    log = tmp_path / "bench.jsonl"
    log.write_text("\n".join(["flashport-bench: measuring ...", *lines, "{not json"]) + "\n")
    result = subprocess.run([sys.executable, str(PLOT), str(log), "-o", str(tmp_path / "out" / "bench"),
                             "--device", "test CPU", "--commit", "abc1234", "--date", "2026-01-01"],
                            capture_output=True, text=True, check=True)
    written = sorted(Path(p).name for p in result.stdout.split())
    assert written == ["bench-cpu-bwd-f32.png", "bench-cpu-fwd-f32.png"]
    for name in written:
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "malformed" in result.stderr


def test_no_records_is_an_error(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("no json here\n")
    result = subprocess.run([sys.executable, str(PLOT), str(empty)], capture_output=True, text=True)
    assert result.returncode != 0 and "no flashport-bench JSON records" in result.stderr


def test_max_charts_writes_the_first_and_names_the_rest(tmp_path):
    log = tmp_path / "bench.jsonl"
    log.write_text("\n".join(json.dumps(_record(d, 64, False, 1024)) for d in ("fwd", "bwd")) + "\n")
    result = subprocess.run([sys.executable, str(PLOT), str(log), "-o", str(tmp_path / "gpu"), "--max-charts", "1",
                             "--commit", "abc1234"], capture_output=True, text=True, check=True)
    assert [Path(p).name for p in result.stdout.split()] == ["gpu-cpu-bwd-f32.png"]
    assert not (tmp_path / "gpu-cpu-fwd-f32.png").exists()
    assert "not drawn: cpu-fwd-f32" in result.stderr
