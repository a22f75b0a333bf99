#!/usr/bin/env bash
# One run on the GPU machine: configure (Release, CUDA archs 80;90a as CMake's default), build, run the CUDA
# conformance tests and compute-sanitizer, profile one forward kernel with ncu, flashport-bench on the CUDA backend with the PyTorch peers
# (SDPA flash and cuDNN, FlashAttention 4 when importable) measured in the same run, the Python test suite against
# the library just built, and charts of the bench. Prints a short table last.
#
#   bench/device.sh                      everything: build test check ncu bench sanitize python plot
#   STEPS="build test bench" bench/device.sh   a subset of: build test check sanitize ncu bench python plot
#   STEPS="build python" bench/device.sh       only the Python tests (torch, transformers, CuPy, JAX) on the GPU
#   STEPS="python plot" bench/device.sh  a later call on the same warm machine: reuses build-device and the last
#                                        bench run (build-device/last-bench.jsonl, copied back into $OUT)
#   DIRECTION=both bench/device.sh       also time the backward (default fwd)
#   CUDA_ARCHS=90a bench/device.sh       build one architecture only (halves the build; default "80;90a", the
#                                        CMake default: 90a adds the Hopper wgmma forward; "80;90" leaves it out)
#   COMMIT=$(git rev-parse --short HEAD) the commit named in the charts (the GPU machine gets the tree without .git)
#   NCU_DIRECTION=bwd NCU_D="64 128" NCU_SOURCE=1   what the ncu step profiles (default: the D 128 forward)
#   BENCH_DETERMINISTIC=1                also time the deterministic backward at D 64 / 128 (bench step)
#   TEST_TIMEOUT CHECK_TIMEOUT BENCH_TIMEOUT SANITIZE_TIMEOUT PYTHON_TIMEOUT   seconds per step (150 90 300 100 240;
#                                        the bench's 36 shapes in both directions took 240 s on the H100 at 81afb7f)
# One kernel change measured against its base on one warm build: bench/device_ab.sh.
#
# $OUT receives at most 8 files (what the device tool brings back): summary.txt (one line per step), table.txt,
# bench.jsonl, the charts (bench-cuda-<fwd|bwd>-bf16.png) and logs.tar.gz, which holds every log (logs/*.txt) and
# is packed when the script exits. Wheels in .whl/ (git-ignored, carried on purpose) are installed first.
# Needs Eigen and doctest headers + CMake configs under .deps (carried with the working tree: see the device notes).
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device-out}
LOGS=$OUT/logs
mkdir -p "$LOGS"
: > "$OUT/summary.txt"
STEPS=${STEPS:-"build test check sanitize ncu bench python plot"}
DIRECTION=${DIRECTION:-fwd}
CUDA_ARCHS=${CUDA_ARCHS:-"80;90a"}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
BUILD=build-device
JOBS=$(nproc)
has() { [[ " $STEPS " == *" $1 "* ]]; }
status=0
# Every log into one archive when the script ends, however it ends (timeout sends TERM).
pack_logs() { tar -C "$OUT" -czf "$OUT/logs.tar.gz" logs && rm -rf "$LOGS"; }
trap pack_logs EXIT
trap 'exit 143' TERM INT

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv 2>&1 | tee "$LOGS/gpu.txt"
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
echo "device: ${GPU_NAME:-no GPU seen}, $(date -u +%F), commit $COMMIT" >> "$OUT/summary.txt"

if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    > "$LOGS/wheels.txt" 2>&1 && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  echo "wheels from .whl: rc=$? ($(ls .whl/*.whl | wc -l) wheels)" | tee -a "$OUT/summary.txt"
fi

if has build; then
  start=$(date +%s)
  cmake -S . -B $BUILD -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHPORT_CUDA=ON -DFLASHPORT_CUDA_ARCHS="$CUDA_ARCHS" \
    -DFLASHPORT_HIP=OFF -DFLASHPORT_CUDA_FMA=ON -DCMAKE_PREFIX_PATH="$PWD/.deps" > "$LOGS/configure.txt" 2>&1 &&
  ninja -C $BUILD -j"$JOBS" flashport flashport_cuda flashport_cuda_tests flashport_cuda_backward_tests \
    flashport-bench flashport-check > "$LOGS/build.txt" 2>&1
  rc=$?
  echo "build: rc=$rc, $(( $(date +%s) - start )) s on $JOBS cores for archs $CUDA_ARCHS" | tee -a "$OUT/summary.txt"
  if [ $rc -ne 0 ]; then tail -n 40 "$LOGS/configure.txt" "$LOGS/build.txt"; exit 1; fi
  # C75xx: ptxas serialised wgmma instructions (a 1.5x slowdown of the Hopper forward once; docs/perf/cuda-forward.md).
  grep -E "spill|warning|C75[0-9][0-9]" "$LOGS/build.txt" | sort | uniq -c | head -20
fi
T=$BUILD/tests/cuda/flashport_cuda_tests
B=$BUILD/bench/flashport-bench

if has test; then
  timeout ${TEST_TIMEOUT:-150} $T > "$LOGS/test.txt" 2>&1
  rc=$?
  grep -E "^(FAIL|==|   |PASS|SKIP)" "$LOGS/test.txt" | head -40
  echo "cuda tests (forward conformance): rc=$rc" | tee -a "$OUT/summary.txt"
  [ $rc -eq 0 ] || status=1
  timeout ${TEST_TIMEOUT:-150} $BUILD/tests/cuda/flashport_cuda_backward_tests > "$LOGS/test_backward.txt" 2>&1
  rc=$?
  echo "cuda tests (backward): rc=$rc ($(grep -E "test cases:" "$LOGS/test_backward.txt" | tail -1))" |
    tee -a "$OUT/summary.txt"
  [ $rc -eq 0 ] || status=1
fi

if has check; then
  # flashport-check: the conformance suite against the float64 CPU reference on the tensor-core backend and on
  # cuda-fma, the generic FMA tile path that the HIP module runs on AMD gfx1030 (forward and backward, the latter
  # with AMD's block shapes).
  timeout ${CHECK_TIMEOUT:-90} $BUILD/bin/flashport-check --quick --backend cuda > "$LOGS/check_cuda.txt" 2>&1
  echo "flashport-check cuda: rc=$?" | tee -a "$OUT/summary.txt"
  timeout ${CHECK_TIMEOUT:-90} $BUILD/bin/flashport-check --backend cuda-fma > "$LOGS/check_cuda_fma.txt" 2>&1
  echo "flashport-check cuda-fma (all cases, forward and backward): rc=$?" | tee -a "$OUT/summary.txt"
  tail -n 4 "$LOGS/check_cuda.txt" "$LOGS/check_cuda_fma.txt" | tee -a "$OUT/summary.txt"
fi

if has ncu; then
  # One bf16 S=4096 non-causal kernel per head dim in NCU_D (default 128) of NCU_DIRECTION (fwd: the forward kernel,
  # bwd: the backward main kernel): occupancy, tensor-pipe use, shared-memory bank conflicts, and the average stall
  # reasons per issued instruction; NCU_SOURCE=1 adds the 25 SASS lines with the most stall samples.
  ncu_kernel='fwd_(sm90_)?kernel'
  [ "${NCU_DIRECTION:-fwd}" = bwd ] && ncu_kernel='bwd_(sm90|main)_kernel'
  for d in ${NCU_D:-128}; do
    timeout 150 ncu --kernel-name regex:"$ncu_kernel" --launch-count 1 --import-source yes \
      ${NCU_SOURCE:+--section SourceCounters --section WarpStateStats -o $BUILD/ncu_d$d -f} --metrics \
sm__warps_active.avg.pct_of_peak_sustained_active,\
sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,\
sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,\
sm__inst_executed_pipe_tensor_op_hmma.avg.pct_of_peak_sustained_active,\
l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum,\
l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum,smsp__inst_executed_op_ldsm.sum,\
l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ldsm.sum,\
lts__t_sectors_op_red.sum,lts__t_sectors_op_read.sum,dram__bytes_read.sum,lts__throughput.avg.pct_of_peak_sustained_elapsed,\
regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,smsp__issue_active.avg.pct_of_peak_sustained_active,\
launch__registers_per_thread,launch__occupancy_limit_registers,gpu__time_duration.sum \
      $B --backend cuda --dtype bf16 --d $d --s 4096 --causal 0 --direction "${NCU_DIRECTION:-fwd}" --reps 1 \
      --warmup 0 --peers none --quiet > "$LOGS/ncu_d$d.txt" 2>&1
    echo "ncu ${NCU_DIRECTION:-fwd} D $d: rc=$?" | tee -a "$OUT/summary.txt"
    # Metrics as name value; stall ratios under 0.05 (cycles per issued instruction) left out of the summary.
    grep -E "^\s+(sm__|l1tex__|smsp__|launch__|gpu__|lts__|dram__)" "$LOGS/ncu_d$d.txt" |
      awk '!($1 ~ /stalled/ && $(NF) + 0 < 0.05) {print $1, $(NF)}' | tee -a "$OUT/summary.txt"
    if [ -n "${NCU_SOURCE:-}" ] && [ -f $BUILD/ncu_d$d.ncu-rep ]; then
      ncu -i $BUILD/ncu_d$d.ncu-rep --page source --csv --print-source sass > "$LOGS/ncu_source_d$d.csv" 2>&1
      python3 bench/ncu_top_stalls.py "$LOGS/ncu_source_d$d.csv" 25 | tee "$LOGS/ncu_top_d$d.txt" | tee -a "$OUT/summary.txt"
    fi
  done
fi

if has bench; then
  timeout ${BENCH_TIMEOUT:-300} $B --backend cuda --dtype bf16 --d 64,128,256 --s 1024,4096,16384 --causal both \
    --direction "$DIRECTION" --peers torch --peers-script bench/peers_torch.py --json > "$OUT/bench.jsonl" \
    2> "$LOGS/bench_stderr.txt"
  echo "bench: rc=$?" | tee -a "$OUT/summary.txt"
  cp "$OUT/bench.jsonl" $BUILD/last-bench.jsonl  # for a plot step in a later call ($OUT starts empty each call)
  grep -m1 -E "FA[34] not measured" "$LOGS/bench_stderr.txt" | tee -a "$OUT/summary.txt"
  python3 - "$OUT/bench.jsonl" <<'PY' > "$OUT/table.txt"
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{") and '"backend"' in l]
# flashport and every GPU peer that has a number in this run (flash, cudnn; fa3 when the flash-attn3-jax wheel is
# carried in .whl; fa4 when flash_attn.cute imported).
peers = [p for p in ("flash", "cudnn", "fa3", "fa4") if any(r.get(f"peer_{p}_tflops") is not None for r in rows)]
num = lambda r, k: r[k] if r.get(k) is not None else math.nan
print("dir  D     S     causal  flashport" + "".join(f"  {p:>7}" for p in peers)
      + "".join(f"  x_{p:<6}" for p in peers) + "   (TFLOP/s, bf16)")
for r in rows:
    print(f"{r['direction']:4} {r['head_dim']:3} {r['seqlen_q']:6} {int(r['causal']):5}  {num(r, 'tflops'):9.1f}"
          + "".join(f"  {num(r, f'peer_{p}_tflops'):7.1f}" for p in peers)
          + "".join(f"  {num(r, f'ratio_{p}'):8.2f}" for p in peers))
PY
  cat "$OUT/table.txt"
  if [ -n "${BENCH_DETERMINISTIC:-}" ]; then
    # The deterministic backward (dQ in key-block order) at D 64 / 128, flashport only: its cost is the ratio to
    # the rows of the same run above.
    timeout ${BENCH_TIMEOUT:-300} $B --backend cuda --dtype bf16 --d 64,128 --s 4096,16384 --causal both \
      --direction bwd --deterministic --peers none 2>&1 | tee "$LOGS/bench_deterministic.txt" | grep -E "^bwd" |
      sed 's/^/deterministic: /' | tee -a "$OUT/summary.txt"
  fi
fi
if has sanitize; then
  for tool in memcheck racecheck; do
    timeout ${SANITIZE_TIMEOUT:-100} compute-sanitizer --tool $tool --error-exitcode 9 $T --quick > "$LOGS/sanitize_$tool.txt" 2>&1
    rc=$?
    echo "compute-sanitizer $tool: rc=$rc ($(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$LOGS/sanitize_$tool.txt" | tail -1))" |
      tee -a "$OUT/summary.txt"
    [ $rc -eq 0 ] || status=1
  done
fi

if has python; then
  # The pytest suite (NumPy, torch autograd / custom op / torch.compile, a tiny transformers Llama against sdpa, CuPy
  # and JAX through DLPack) against the library the build step made: FLASHPORT_LIBRARY=build-device/lib/
  # libflashport.so.1, with libflashport_cuda.so beside it. One pass covers both backends: NumPy arrays and CPU
  # tensors run on its CPU backend, CUDA tensors on the CUDA module. No CPU-only tree is built; PYTHON_CPU_ONLY=1
  # adds a pass against a copy of libflashport.so.1 alone in a temporary folder, i.e. the same library without its
  # module (CUDA tests must then skip, as in CI).
  bindings/python/tests/run_suite.sh $BUILD/lib/libflashport.so.1 "$LOGS/pytest.txt" "GPU machine" \
    > "$LOGS/pytest_result.txt"
  rc=$?
  cat "$LOGS/pytest_result.txt"
  tail -n 1 "$LOGS/pytest_result.txt" >> "$OUT/summary.txt"
  [ $rc -eq 0 ] || status=1
  if [ -n "${PYTHON_CPU_ONLY:-}" ]; then
    cpu_only=$(mktemp -d)
    cp -L $BUILD/lib/libflashport.so.1 "$cpu_only/"
    bindings/python/tests/run_suite.sh "$cpu_only/libflashport.so.1" "$LOGS/pytest_cpu_only.txt" \
      "GPU machine, library without its CUDA module" | tail -n 1 | tee -a "$OUT/summary.txt"
    [ $? -eq 0 ] || status=1
  fi
fi

if has plot; then
  # One chart per direction of this run (bf16): TFLOP/s against sequence length, a panel per head dim x causal,
  # flashport beside every peer of the same run, titled with the GPU, today's date and $COMMIT. At most 3 files, so
  # that $OUT stays within the 8 files the device tool brings back.
  [ -s "$OUT/bench.jsonl" ] || cp $BUILD/last-bench.jsonl "$OUT/bench.jsonl" 2>/dev/null
  python3 bench/plot.py "$OUT/bench.jsonl" -o "$OUT/bench" --device "${GPU_NAME:-unknown GPU}" --commit "$COMMIT" \
    --max-charts 3 > "$LOGS/plot.txt" 2>&1
  echo "plot: rc=$? ($(grep -c '\.png$' "$LOGS/plot.txt") charts: $(grep '\.png$' "$LOGS/plot.txt" | xargs -r -n1 basename | paste -sd ' '))" |
    tee -a "$OUT/summary.txt"
fi

cat "$OUT/summary.txt"
[ -f "$OUT/table.txt" ] && cat "$OUT/table.txt"
exit $status
