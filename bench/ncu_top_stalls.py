#!/usr/bin/env python3
"""The SASS lines with the most warp-stall samples in an `ncu --page source --csv --print-source sass` export.

usage: ncu_top_stalls.py SOURCE.csv [N]
Prints the N lines (default 25) with the most samples, each with its address, instruction and the sample count, and
the stall-reason columns summed over the kernel. If the export's columns are not the expected ones, prints its
header and first rows instead, so that a run still shows what ncu wrote.
"""
import csv
import sys


def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return 0.0


def main():
    path, top = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25
    with open(path, newline="", errors="replace") as f:
        lines = f.read().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith('"#"') or "Source" in l and "Address" in l), None)
    if start is None:
        print("\n".join(lines[:15]))
        return
    rows = list(csv.DictReader(lines[start:]))
    cols = rows[0].keys() if rows else []
    sample_col = next((c for c in cols if c.startswith("Warp Stall Sampling (All")), None)
    if sample_col is None:
        print("columns:", ", ".join(cols))
        return
    total = sum(number(r[sample_col]) for r in rows) or 1.0
    print(f"top {top} SASS lines by stall samples ({sample_col}; {total:.0f} samples)")
    for r in sorted(rows, key=lambda r: -number(r[sample_col]))[:top]:
        print(f"{100 * number(r[sample_col]) / total:5.1f}%  {r.get('Address', '')}  {r.get('Source', '')[:90]}")
    # Stall reasons over every sampled cycle (the "(Not Issued)" columns repeat them for unissued cycles only).
    reasons = {c: sum(number(r[c]) for r in rows) for c in cols if c.startswith("stall_") and "Not Issued" not in c}
    for c, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:12]:
        if v > 0:
            print(f"  {c}: {v:.0f}")


if __name__ == "__main__":
    main()
