#!/usr/bin/env bash
# One run on the GPU machine: configure (Release, CUDA archs 80;90), build, run the CUDA conformance tests and
# compute-sanitizer, profile one forward kernel with ncu, then flashport-bench on the CUDA backend with the PyTorch
# peers (SDPA flash and cuDNN) measured in the same run. Prints a short table last; full logs go to $OUT.
#
#   bench/device.sh                      everything
#   STEPS="build test bench" bench/device.sh   a subset of: build test check sanitize ncu bench
#   DIRECTION=both bench/device.sh       also time the backward (default fwd)
#   CUDA_ARCHS=90 bench/device.sh        build one architecture only (halves the build; default "80;90")
# Needs Eigen and doctest headers + CMake configs under .deps (carried with the working tree: see the device notes).
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
STEPS=${STEPS:-"build test check sanitize ncu bench"}
DIRECTION=${DIRECTION:-fwd}
CUDA_ARCHS=${CUDA_ARCHS:-"80;90"}
BUILD=build-device
JOBS=$(nproc)
has() { [[ " $STEPS " == *" $1 "* ]]; }
status=0

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv 2>&1 | tee "$OUT/gpu.txt"

if has build; then
  start=$(date +%s)
  cmake -S . -B $BUILD -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHPORT_CUDA=ON -DFLASHPORT_CUDA_ARCHS="$CUDA_ARCHS" \
    -DFLASHPORT_HIP=OFF -DFLASHPORT_CUDA_FMA=ON -DCMAKE_PREFIX_PATH="$PWD/.deps" > "$OUT/configure.txt" 2>&1 &&
  ninja -C $BUILD -j"$JOBS" flashport flashport_cuda flashport_cuda_tests flashport_cuda_backward_tests \
    flashport-bench flashport-check > "$OUT/build.txt" 2>&1
  rc=$?
  echo "build: rc=$rc, $(( $(date +%s) - start )) s on $JOBS cores for archs $CUDA_ARCHS" | tee -a "$OUT/summary.txt"
  if [ $rc -ne 0 ]; then tail -40 "$OUT/configure.txt" "$OUT/build.txt"; exit 1; fi
  grep -E "spill|warning" "$OUT/build.txt" | sort | uniq -c | head -20
fi
T=$BUILD/tests/cuda/flashport_cuda_tests
B=$BUILD/bench/flashport-bench

if has test; then
  timeout ${TEST_TIMEOUT:-150} $T > "$OUT/test.txt" 2>&1
  rc=$?
  grep -E "^(FAIL|==|   |PASS|SKIP)" "$OUT/test.txt" | head -40
  echo "cuda tests (forward conformance): rc=$rc" | tee -a "$OUT/summary.txt"
  [ $rc -eq 0 ] || status=1
  timeout ${TEST_TIMEOUT:-150} $BUILD/tests/cuda/flashport_cuda_backward_tests > "$OUT/test_backward.txt" 2>&1
  rc=$?
  echo "cuda tests (backward): rc=$rc ($(grep -E "test cases:" "$OUT/test_backward.txt" | tail -1))" |
    tee -a "$OUT/summary.txt"
  [ $rc -eq 0 ] || status=1
fi

if has check; then
  # flashport-check: the conformance suite against the float64 CPU reference on the tensor-core backend and on
  # cuda-fma, the generic FMA tile path that the HIP module runs on AMD gfx1030 (forward only).
  timeout ${CHECK_TIMEOUT:-90} $BUILD/bin/flashport-check --quick --backend cuda > "$OUT/check_cuda.txt" 2>&1
  echo "flashport-check cuda: rc=$?" | tee -a "$OUT/summary.txt"
  timeout ${CHECK_TIMEOUT:-90} $BUILD/bin/flashport-check --backend cuda-fma --forward-only \
    > "$OUT/check_cuda_fma.txt" 2>&1
  echo "flashport-check cuda-fma (all cases, forward): rc=$?" | tee -a "$OUT/summary.txt"
  tail -n 4 "$OUT/check_cuda.txt" "$OUT/check_cuda_fma.txt" | tee -a "$OUT/summary.txt"
fi

if has ncu; then
  # One bf16 D=128 S=4096 non-causal forward: occupancy, tensor-pipe use, shared-memory bank conflicts.
  timeout 120 ncu --kernel-name regex:fwd_kernel --launch-count 1 --metrics \
sm__warps_active.avg.pct_of_peak_sustained_active,\
sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,\
sm__inst_executed_pipe_tensor_op_hmma.avg.pct_of_peak_sustained_active,\
l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum,\
l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum,smsp__inst_executed_op_ldsm.sum,\
l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ldsm.sum,\
smsp__warp_issue_stalled_barrier_per_warp_active.pct,smsp__warp_issue_stalled_long_scoreboard_per_warp_active.pct,\
smsp__warp_issue_stalled_short_scoreboard_per_warp_active.pct,smsp__warp_issue_stalled_mio_throttle_per_warp_active.pct,\
smsp__warp_issue_stalled_math_pipe_throttle_per_warp_active.pct,smsp__issue_active.avg.pct_of_peak_sustained_active,\
launch__registers_per_thread,launch__occupancy_limit_registers,gpu__time_duration.sum \
    $B --backend cuda --dtype bf16 --d 128 --s 4096 --causal 0 --direction fwd --reps 1 --warmup 0 --peers none \
    --quiet > "$OUT/ncu.txt" 2>&1
  echo "ncu: rc=$?" | tee -a "$OUT/summary.txt"
  grep -E "^\s+(sm__|l1tex__|smsp__|launch__|gpu__)" "$OUT/ncu.txt" | awk '{print $1, $(NF)}' | tee -a "$OUT/summary.txt"
fi

if has bench; then
  timeout ${BENCH_TIMEOUT:-240} $B --backend cuda --dtype bf16 --d 64,128,256 --s 1024,4096,16384 --causal both \
    --direction "$DIRECTION" --peers torch --peers-script bench/peers_torch.py --json > "$OUT/bench.jsonl" \
    2> "$OUT/bench_stderr.txt"
  echo "bench: rc=$?" | tee -a "$OUT/summary.txt"
  python3 - "$OUT/bench.jsonl" <<'PY' | tee "$OUT/table.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{") and '"backend"' in l]
print("dir  D     S     causal  flashport  torch-flash  cuDNN   x_flash  x_cudnn   (TFLOP/s, bf16)")
for r in rows:
    g = lambda k: r.get(k) if r.get(k) is not None else float("nan")
    print(f"{r['direction']:4} {r['head_dim']:3} {r['seqlen_q']:6} {int(r['causal']):5}  {g('tflops'):9.1f}"
          f"  {g('peer_flash_tflops'):11.1f}  {g('peer_cudnn_tflops'):6.1f}  {g('ratio_flash'):7.2f}  {g('ratio_cudnn'):7.2f}")
PY
fi
if has sanitize; then
  for tool in memcheck racecheck; do
    timeout ${SANITIZE_TIMEOUT:-100} compute-sanitizer --tool $tool --error-exitcode 9 $T --quick > "$OUT/sanitize_$tool.txt" 2>&1
    rc=$?
    echo "compute-sanitizer $tool: rc=$rc ($(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT/sanitize_$tool.txt" | tail -1))" |
      tee -a "$OUT/summary.txt"
    [ $rc -eq 0 ] || status=1
  done
fi

cat "$OUT/summary.txt"
[ -f "$OUT/table.txt" ] && cat "$OUT/table.txt"
exit $status
