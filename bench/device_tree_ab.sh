#!/usr/bin/env bash
# A/B of two whole source trees on the GPU machine, in one call: a change too large for a patch (a layout change,
# a refactor across many files) measured against its base. The base tree is carried as a git-ignored folder made
# here with `git archive`; both trees are built with the same flags and timed in turns A B A on the same card, so
# the B/A ratio is what the change is worth and A against A again is the run's own drift.
#
#   rm -rf .base-src && mkdir .base-src && git archive BASE | tar -x -C .base-src   (here; carry .base-src and .deps)
#   bench/device_tree_ab.sh                           the default shapes below, forward and backward
#   TREE_AB_D=128 TREE_AB_S=4096 TREE_AB_DIRECTION=fwd bench/device_tree_ab.sh
#   TREE_AB_STEPS="build time"                        build only both trees, or only time two built ones
#
# The new tree is built by bench/device.sh (STEPS=build, build-device/) so that later device.sh steps in the same
# warm machine reuse it; the base into build-base/. $OUT gets tree_ab.txt (what this prints) and tree_ab.jsonl.
set -o pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
BASE_SRC=${BASE_SRC:-.base-src}
D=${TREE_AB_D:-64,128,256}
S=${TREE_AB_S:-4096,16384}
DIRECTION=${TREE_AB_DIRECTION:-both}
STEPS=${TREE_AB_STEPS:-"build time"}
CUDA_ARCHS=${CUDA_ARCHS:-90a}
exec > >(tee "$OUT/tree_ab.txt") 2>&1
has() { [[ " $STEPS " == *" $1 "* ]]; }
[ -d "$BASE_SRC" ] || { echo "no base tree at $BASE_SRC (see the header)"; exit 1; }
[ -e "$BASE_SRC/.deps" ] || ln -s "$PWD/.deps" "$BASE_SRC/.deps"

if has build; then
  start=$(date +%s)
  STEPS=build CUDA_ARCHS=$CUDA_ARCHS bash bench/device.sh > "$OUT/tree_ab_build_b.txt" 2>&1 ||
    { tail -n 40 "$OUT/tree_ab_build_b.txt"; exit 1; }
  echo "B (this tree) built: $(( $(date +%s) - start )) s"
  start=$(date +%s)
  (cmake -S "$BASE_SRC" -B build-base -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHPORT_CUDA=ON \
     -DFLASHPORT_CUDA_ARCHS="$CUDA_ARCHS" -DFLASHPORT_HIP=OFF -DFLASHPORT_BUILD_TESTS=OFF \
     -DCMAKE_PREFIX_PATH="$PWD/.deps" && ninja -C build-base flashport flashport_cuda flashport-bench) \
    > "$OUT/tree_ab_build_a.txt" 2>&1 || { tail -n 40 "$OUT/tree_ab_build_a.txt"; exit 1; }
  echo "A (base tree) built: $(( $(date +%s) - start )) s"
  # Register use and spills of every kernel instance, both trees: a layout change must leave them as they were.
  for t in a b; do
    grep -E "spill|C75[0-9][0-9]" "$OUT/tree_ab_build_$t.txt" | sed 's/.*function //' | sort -u | head -5 |
      sed "s/^/$t: /"
  done
fi

if has time; then
  : > "$OUT/tree_ab.jsonl"
  run_bench() {  # $1 = label, $2 = build dir
    $2/bench/flashport-bench --backend cuda --dtype bf16 --d "$D" --s "$S" --causal both --direction "$DIRECTION" \
      --peers none --json --quiet | sed "s/^{/{\"tree\": \"$1\", /" >> "$OUT/tree_ab.jsonl"
  }
  run_bench A build-base && run_bench B build-device && run_bench A2 build-base || exit 1
  python3 - "$OUT/tree_ab.jsonl" <<'PY'
import json, sys
rows = [r for r in (json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")) if r.get("tflops") is not None]
key = lambda r: (r["direction"], r["head_dim"], r["seqlen_q"], int(r["causal"]))
by = {}
for r in rows:
    by.setdefault(key(r), {})[r["tree"]] = r["tflops"]
# B against the mean of the two base runs around it; A2/A is the drift between them.
print("dir  D     S  causal   A TF/s   B TF/s  A2 TF/s  B/mean(A)  A2/A")
for k in sorted(by):
    t = by[k]
    a, b, a2 = t.get("A"), t.get("B"), t.get("A2")
    print(f"{k[0]:4} {k[1]:3} {k[2]:6} {k[3]:4}  {a:8.1f} {b:8.1f} {a2:8.1f}  {2 * b / (a + a2):9.3f} {a2 / a:5.3f}")
PY
fi
