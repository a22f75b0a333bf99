#!/usr/bin/env bash
# A/B of one kernel change on the GPU machine, in one call on one warm build: build the tree (bench/device.sh
# STEPS=build), time the base, apply the patch, rebuild only the CUDA module, run the CUDA tests, time the variant,
# revert, rebuild and time the base again (no peers) to bound the drift. Timings of A and B come from the same
# process environment and card, so their ratio is what the change is worth; PyTorch's peers are measured next to
# each so the ratio to torch flash can be read too.
#
#   VARIANT_PATCH=variant.patch bench/device_ab.sh      (the patch: `git diff > variant.patch`, applied with -p1)
#   AB_D=256 AB_S=4096,16384 AB_DIRECTION=bwd           the shapes timed (these are the defaults)
#   AB_DETERMINISTIC=1                                  also time the deterministic backward of A and B
#   AB_PEERS=none                                       skip the PyTorch peers
# Writes a.txt, b.txt, test logs and the rebuild log under $OUT; the build's own logs as bench/device.sh does.
set -o pipefail
PATCH=$(realpath "${VARIANT_PATCH:?VARIANT_PATCH must name a patch file (git diff output)}") || exit 1
cd "$(dirname "$0")/.."
export OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
# A tree carried as a subfolder (.gpu-src) finds the carried Eigen / doctest headers one level up.
[ -e .deps ] || [ ! -d ../.deps ] || ln -s ../.deps .deps
BUILD=build-device
STEPS=build CUDA_ARCHS=${CUDA_ARCHS:-90a} bash bench/device.sh > "$OUT/build_out.txt" 2>&1 ||
  { tail -n 40 "$OUT/build_out.txt"; exit 1; }
grep "build:" "$OUT/summary.txt"
time_it() {
  $BUILD/bench/flashport-bench --backend cuda --dtype bf16 --d "${AB_D:-256}" --s "${AB_S:-4096,16384}" \
    --causal both --direction "${AB_DIRECTION:-bwd}" --peers "${AB_PEERS:-torch}" \
    --peers-script bench/peers_torch.py --quiet "$@" 2>&1 | grep -E "^(dir|fwd|bwd)"
}
rebuild() { ninja -C $BUILD flashport_cuda > "$OUT/rebuild_$1.txt" 2>&1; }
echo "== A (base)"; time_it | tee "$OUT/a.txt"
[ -n "${AB_DETERMINISTIC:-}" ] && { echo "== A, deterministic"; time_it --peers none --deterministic; }
patch -p1 < "$PATCH" > /dev/null || { echo "variant patch does not apply"; exit 1; }
rebuild b || { tail -n 40 "$OUT/rebuild_b.txt"; exit 1; }
grep -E "spill|C75[0-9][0-9]" "$OUT/rebuild_b.txt" | sed 's/.*function //' | sort -u | head
status=0
for t in flashport_cuda_backward_tests flashport_cuda_tests; do
  timeout 150 $BUILD/tests/cuda/$t > "$OUT/test_$t.txt" 2>&1
  rc=$?
  echo "B: $t rc=$rc ($(grep -E "test cases:|^PASS|^FAIL" "$OUT/test_$t.txt" | tail -1))"
  [ $rc -eq 0 ] || status=1
done
echo "== B (variant)"; time_it | tee "$OUT/b.txt"
[ -n "${AB_DETERMINISTIC:-}" ] && { echo "== B, deterministic"; time_it --peers none --deterministic; }
patch -R -p1 < "$PATCH" > /dev/null && rebuild a2 && { echo "== A again (drift)"; time_it --peers none; }
exit $status
