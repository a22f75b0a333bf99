#!/usr/bin/env python3
"""Charts of `flashport-bench --json` output: TFLOP/s against sequence length, flashport beside every peer measured
in the same run, one panel per head dim x causal/non-causal (the layout of FlashAttention's README charts).

    flashport-bench --json --grid full > cpu.jsonl
    python3 bench/plot.py cpu.jsonl --device "AMD EPYC 9654 (16 threads)" -o docs/charts/bench

writes one chart per (backend, direction, dtype): docs/charts/bench-cpu-fwd-f32.png, ... Each title names the
device, the date and the commit that produced the numbers (defaults: the JSON's "device" field or the backend
name, today's UTC date, `git rev-parse --short HEAD`). Lines that are not JSON objects are ignored, so a log with
progress messages mixed in can be passed as it is.
"""

import argparse
import datetime
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

_PEER_RATE = re.compile(r"^peer_(?P<name>.+)_tflops$")


def read_records(paths):
    """Every JSON object of the inputs (files, or stdin for '-')."""
    records = []
    for path in paths:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    print(f"plot.py: skipping a malformed line of {path}: {line[:80]}", file=sys.stderr)
    return records


def series_of(record):
    """{'flashport': tflops, '<peer>': tflops, ...} for one case; peers without a number are left out."""
    values = {"flashport": record.get("tflops")}
    for key, value in record.items():
        match = _PEER_RATE.match(key)
        if match:
            values[match["name"]] = value
    return {name: value for name, value in values.items() if isinstance(value, (int, float)) and value > 0}


def group(records):
    """{(backend, direction, dtype): {panel: {seqlen: {series: tflops}}}} with panel = (head dims, heads, causal)."""
    charts = defaultdict(lambda: defaultdict(dict))
    for r in records:
        try:
            chart = (r["backend"], r["direction"], r["dtype"])
            panel = (r["head_dim"], r.get("head_dim_v", r["head_dim"]), r.get("heads_q"), r.get("heads_kv"),
                     bool(r["causal"]))
            seqlen = r["seqlen_kv"] if r.get("seqlen_q") == r.get("seqlen_kv") else (r["seqlen_q"], r["seqlen_kv"])
        except KeyError as missing:
            print(f"plot.py: skipping a record without {missing}", file=sys.stderr)
            continue
        charts[chart][panel][seqlen] = series_of(r)  # a repeated case: the later measurement wins
    return charts


def panel_title(panel):
    head_dim, head_dim_v, heads_q, heads_kv, causal = panel
    title = f"head dim {head_dim}" if head_dim == head_dim_v else f"head dims {head_dim}/{head_dim_v}"
    if heads_q and heads_kv and heads_q != heads_kv:
        title += f", GQA {heads_q}/{heads_kv}"
    return title + (", causal" if causal else ", non-causal")


def git_commit():
    try:
        root = Path(__file__).resolve().parent
        return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"


def plot_chart(chart, panels, device, date, commit, output):
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    backend, direction, dtype = chart
    keys = sorted(panels, key=lambda p: (p[0], p[1], p[2] or 0, p[3] or 0, p[4]))
    columns = 2 if len(keys) > 1 else 1
    rows = (len(keys) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 3.8 * rows), squeeze=False)
    all_rates = [v for p in panels.values() for case in p.values() for v in case.values()]
    # CPU runs are far below 1 TFLOP/s: show GFLOP/s there so the bars carry readable numbers.
    scale, unit = (1e3, "GFLOP/s") if all_rates and max(all_rates) < 1 else (1.0, "TFLOP/s")
    series = ["flashport"] + sorted({s for p in panels.values() for case in p.values() for s in case} - {"flashport"})
    colors = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(series)}
    width = 0.8 / len(series)
    for ax, key in zip(axes.flat, keys):
        cases = panels[key]
        seqlens = sorted(cases, key=lambda s: s if isinstance(s, int) else s[1])
        for i, name in enumerate(series):
            xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(seqlens))]
            heights = [cases[s].get(name, 0.0) * scale for s in seqlens]
            bars = ax.bar(xs, heights, width, label=name, color=colors[name])
            ax.bar_label(bars, labels=[f"{h:.0f}" if h >= 10 else (f"{h:.1f}" if h > 0 else "") for h in heights],
                         fontsize=7, padding=1)
        ax.set_xticks(range(len(seqlens)))
        ax.set_xticklabels([str(s) if isinstance(s, int) else f"{s[0]}/{s[1]}" for s in seqlens])
        ax.set_xlabel("sequence length")
        ax.set_ylabel(unit)
        ax.set_title(panel_title(key), fontsize=10)
        ax.margins(y=0.15)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", ncol=len(series), fontsize=9)
    what = "forward" if direction == "fwd" else "backward" if direction == "bwd" else direction
    fig.suptitle(f"flashport {what}, {dtype}, {backend} backend on {device}\n{date}, commit {commit}", fontsize=11,
                 x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95 if rows > 1 else 0.86))
    fig.savefig(output, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="*", default=["-"], help="flashport-bench --json output files ('-': stdin)")
    parser.add_argument("-o", "--output", default="flashport-bench",
                        help="output prefix; '-<backend>-<direction>-<dtype>.png' is appended (default: %(default)s)")
    parser.add_argument("--format", default="png", help="image format: png, svg, pdf (default: %(default)s)")
    parser.add_argument("--device", help="device named in the titles (default: the records' 'device' or backend)")
    parser.add_argument("--date", help="date in the titles (default: today, UTC)")
    parser.add_argument("--commit", help="commit in the titles (default: git rev-parse --short HEAD)")
    parser.add_argument("--max-charts", type=int, metavar="N",
                        help="write at most N charts (the first in backend, direction, dtype order) and name the "
                             "others on stderr (bench/device.sh: its output folder holds few files)")
    args = parser.parse_args(argv)

    records = read_records(args.inputs)
    if not records:
        parser.error("no flashport-bench JSON records in the input")
    date = args.date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    commit = args.commit or git_commit()
    written = []
    charts = sorted(group(records).items())
    if args.max_charts is not None and len(charts) > args.max_charts:
        left_out = ", ".join("-".join(chart) for chart, _ in charts[args.max_charts:])
        print(f"plot.py: --max-charts {args.max_charts}: not drawn: {left_out}", file=sys.stderr)
        charts = charts[:args.max_charts]
    for chart, panels in charts:
        device = args.device or next((r["device"] for r in records if r.get("device")), chart[0])
        output = Path(f"{args.output}-{'-'.join(chart)}.{args.format}")
        output.parent.mkdir(parents=True, exist_ok=True)
        plot_chart(chart, panels, device, date, commit, output)
        written.append(output)
        print(output)
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
