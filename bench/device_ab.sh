#!/usr/bin/env bash
# A/B of kernel changes on the GPU machine, in one call on one warm build. The tree is built once (bench/device.sh
# STEPS=build); then for each variant: time the base on the variant's shapes, apply its patch, rebuild only the
# CUDA module, run the CUDA tests, time the variant, revert and rebuild. A and B of a variant are timed minutes
# apart on the same card and build, so their ratio is what the change is worth; PyTorch's peers are measured next
# to each so the ratio to torch flash can be read too.
#
#   VARIANT_PATCH=variant.patch bench/device_ab.sh   one patch (`git diff main wip/x > variant.patch`, applied -p1)
#   AB_D=256 AB_S=4096,16384 AB_DIRECTION=bwd        its shapes (these are the defaults)
#   VARIANTS="a.patch:64:4096,16384:fwd b.patch:256:4096:bwd" bench/device_ab.sh
#                                                    several patches, each PATCH[:D[:S[:DIRECTION]]] (AB_* fill
#                                                    what is left out), each applied alone on the base
#   AB_DETERMINISTIC=1                               also time the deterministic backward of A and B
#   AB_PEERS=none                                    skip the PyTorch peers
#   AB_TESTS=0                                       skip the CUDA tests of each variant
#   AB_AGAIN=1                                       time the base again after the variant (A B A), to see the
#                                                    drift between timings minutes apart
# Time on the H100 (after the ~110 s build): a forward variant at one head dim, S 4096 and 16384, with the tests and
# AB_AGAIN: about 170 s; three head dims of the backward at S 4096: about 420 s; three forward head dims at two
# lengths ran past 600 s with AB_AGAIN. Size VARIANTS to the 600 s a call may run.
# $OUT gets ab.txt (what this prints) and ab-logs.tar.gz (per variant i: a<i>.txt, b<i>.txt, the tests' and the
# rebuilds' logs), besides summary.txt and logs.tar.gz of the build step: 4 files (the device tool brings back 8).
set -o pipefail
specs=()
if [ -n "${VARIANTS:-}" ]; then
  read -r -a specs <<< "$VARIANTS"
else
  specs=("${VARIANT_PATCH:?set VARIANT_PATCH (one patch file) or VARIANTS (see the header)}")
fi
# Patch paths are resolved before changing directory.
for i in "${!specs[@]}"; do
  IFS=: read -r path rest <<< "${specs[$i]}"
  specs[$i]="$(realpath "$path")${rest:+:$rest}" || exit 1
done
cd "$(dirname "$0")/.."
export OUT=${OUT:-$PWD/device-out}
LOGS=$OUT/ab
mkdir -p "$LOGS"
exec > >(tee "$OUT/ab.txt") 2>&1
trap 'tar -C "$OUT" -czf "$OUT/ab-logs.tar.gz" ab && rm -rf "$LOGS"' EXIT
# A tree carried as a subfolder (.gpu-src) finds the carried Eigen / doctest headers one level up.
[ -e .deps ] || [ ! -d ../.deps ] || ln -s ../.deps .deps
BUILD=build-device
STEPS=build CUDA_ARCHS=${CUDA_ARCHS:-90a} bash bench/device.sh > "$LOGS/build_out.txt" 2>&1 ||
  { tail -n 40 "$LOGS/build_out.txt"; exit 1; }
grep "build:" "$OUT/summary.txt"

status=0
for i in "${!specs[@]}"; do
  IFS=: read -r patch d s direction <<< "${specs[$i]}"
  d=${d:-${AB_D:-256}} s=${s:-${AB_S:-4096,16384}} direction=${direction:-${AB_DIRECTION:-bwd}}
  time_it() {
    $BUILD/bench/flashport-bench --backend cuda --dtype bf16 --d "$d" --s "$s" --causal both \
      --direction "$direction" --peers "${AB_PEERS:-torch}" --peers-script bench/peers_torch.py --quiet "$@" 2>&1 |
      grep -E "^(dir|fwd|bwd)"
  }
  echo "==== variant $i: $(basename "$patch"), D $d, S $s, $direction"
  echo "== A (base)"; time_it | tee "$LOGS/a$i.txt"
  [ -n "${AB_DETERMINISTIC:-}" ] && { echo "== A, deterministic"; time_it --peers none --deterministic; }
  if ! patch -p1 < "$patch" > "$LOGS/patch$i.txt"; then
    echo "variant $i: the patch does not apply"; status=1; continue
  fi
  if ninja -C $BUILD flashport_cuda > "$LOGS/rebuild_b$i.txt" 2>&1; then
    grep -E "spill|C75[0-9][0-9]" "$LOGS/rebuild_b$i.txt" | sed 's/.*function //' | sort -u | head
    if [ "${AB_TESTS:-1}" != 0 ]; then
      for t in flashport_cuda_backward_tests flashport_cuda_tests; do
        timeout 150 $BUILD/tests/cuda/$t > "$LOGS/test${i}_$t.txt" 2>&1
        rc=$?
        echo "B: $t rc=$rc ($(grep -E "test cases:|^PASS|^FAIL" "$LOGS/test${i}_$t.txt" | tail -1))"
        [ $rc -eq 0 ] || status=1
      done
    fi
    echo "== B (variant)"; time_it | tee "$LOGS/b$i.txt"
    [ -n "${AB_DETERMINISTIC:-}" ] && { echo "== B, deterministic"; time_it --peers none --deterministic; }
  else
    tail -n 40 "$LOGS/rebuild_b$i.txt"; status=1
  fi
  # Back to the base for the next variant.
  patch -R -p1 < "$patch" > /dev/null && ninja -C $BUILD flashport_cuda > "$LOGS/rebuild_a$i.txt" 2>&1 ||
    { echo "could not restore the base after variant $i"; exit 1; }
  [ -n "${AB_AGAIN:-}" ] && { echo "== A again (base)"; time_it | tee "$LOGS/a${i}_again.txt"; }
done
exit $status
