#!/usr/bin/env bash
# The CUDA backward on the GPU machine in one command: build (sm_90 only, to save the lease), backward tests
# (conformance against the float64 reference, determinism, workspace), compute-sanitizer memcheck + racecheck on
# small shapes, then flashport-bench backward against PyTorch's flash and cuDNN backends in the same run.
# Logs go to $OUT; the short table is printed last.
#
# Needs, carried with the tree: .deps/include/{eigen3,doctest}, .deps/share/eigen3/cmake, .deps/lib/cmake/doctest
# (copies of this machine's /usr ones; the GPU machine has neither). Usage: bench/device_bwd.sh [bench args...]
set -uo pipefail
OUT=${OUT:-/tmp/flashport-out}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/build-device-bwd
DEPS=${DEPS:-$ROOT/.deps}
export CPLUS_INCLUDE_PATH=$DEPS/include${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}
export PATH=/usr/local/cuda/bin:$PATH
step() { echo "=== $* ($(date +%T))"; }

step configure
cmake -S "$ROOT" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHPORT_CUDA=ON -DFLASHPORT_HIP=OFF \
  -DFLASHPORT_CUDA_ARCHS=90 -DEigen3_DIR="$DEPS/share/eigen3/cmake" -Ddoctest_DIR="$DEPS/lib/cmake/doctest" \
  >"$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
step build
ninja -C "$B" -j16 flashport flashport_cuda flashport_conformance flashport_device_memory flashport-bench \
  >"$OUT/build.log" 2>&1 || { grep -B2 -A8 "error" "$OUT/build.log" | head -60; exit 1; }
grep -E "spill" "$OUT/build.log" | sed 's/.*function //' | sort -u | head -20
# The backward test file, linked like the CUDA test executable would link it.
g++ -std=c++17 -O2 -fopenmp "$ROOT/tests/main.cpp" "$ROOT/tests/cuda/test_cuda_backward.cpp" -I"$ROOT/include" \
  -I"$ROOT/src/cuda" -I"$ROOT/tests/conformance" -I"$ROOT/tools/device_memory" -o "$B/bwd_tests" \
  "$B/tests/conformance/libflashport_conformance.a" "$B/tools/device_memory/libflashport_device_memory.a" \
  -L"$B/lib" -lflashport -Wl,-rpath,"$B/lib" -ldl -lpthread >"$OUT/build_tests.log" 2>&1 ||
  { tail -30 "$OUT/build_tests.log"; exit 1; }

step tests
FLASHPORT_TEST_VERBOSE=1 timeout 150 "$B/bwd_tests" >"$OUT/tests.log" 2>&1
tests_rc=$?
grep -E "failed|ERROR|CHECK|cases ran|test cases|assertions" "$OUT/tests.log" | head -40

step sanitizers
# Small shapes only: the workspace case (s = 300, GQA 4:1, causal, bf16, both modes) under memcheck and racecheck.
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 3 "$B/bwd_tests" -tc="*workspace*" \
  >"$OUT/memcheck.log" 2>&1
memcheck_rc=$?
timeout 120 compute-sanitizer --tool racecheck --racecheck-report hazard --error-exitcode 3 "$B/bwd_tests" \
  -tc="*workspace*" >"$OUT/racecheck.log" 2>&1
racecheck_rc=$?
tail -3 "$OUT/memcheck.log"; tail -3 "$OUT/racecheck.log"

step bench
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(--dtype bf16 --d 64,128,256 --s 1024,4096,16384 --causal both)
timeout 200 "$B/bench/flashport-bench" --backend cuda --direction bwd --peers torch --json "${ARGS[@]}" \
  >"$OUT/bench.jsonl" 2>"$OUT/bench.err"
bench_rc=$?
read -ra DET_ARGS <<<"${DET_BENCH:---d 128 --s 4096,16384 --causal both}"
timeout 60 "$B/bench/flashport-bench" --backend cuda --direction bwd --peers none --json --deterministic \
  --dtype bf16 "${DET_ARGS[@]}" >"$OUT/bench_det.jsonl" 2>>"$OUT/bench.err"
tail -5 "$OUT/bench.err"

# VARIANTS="name:flags;name:flags": the same tree built again per variant with extra CUDA flags (tuning knobs),
# its conformance test run and D 64 / 128 timed.
IFS=';' read -ra VARIANT_LIST <<<"${VARIANTS:-}"
for variant in "${VARIANT_LIST[@]}"; do
  name=${variant%%:*}
  flags=${variant#*:}
  step "variant $name: $flags"
  BV=$ROOT/build-device-bwd-$name
  cmake -S "$ROOT" -B "$BV" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHPORT_CUDA=ON -DFLASHPORT_HIP=OFF \
    -DFLASHPORT_CUDA_ARCHS=90 -DCMAKE_CUDA_FLAGS="$flags" -DEigen3_DIR="$DEPS/share/eigen3/cmake" \
    -Ddoctest_DIR="$DEPS/lib/cmake/doctest" >"$OUT/$name.log" 2>&1 &&
  ninja -C "$BV" -j16 flashport flashport_cuda flashport_conformance flashport_device_memory flashport-bench \
    >>"$OUT/$name.log" 2>&1 &&
  g++ -std=c++17 -O2 -fopenmp "$ROOT/tests/main.cpp" "$ROOT/tests/cuda/test_cuda_backward.cpp" -I"$ROOT/include" \
    -I"$ROOT/src/cuda" -I"$ROOT/tests/conformance" -I"$ROOT/tools/device_memory" -o "$BV/bwd_tests" \
    "$BV/tests/conformance/libflashport_conformance.a" "$BV/tools/device_memory/libflashport_device_memory.a" \
    -L"$BV/lib" -lflashport -Wl,-rpath,"$BV/lib" -ldl -lpthread >>"$OUT/$name.log" 2>&1 ||
    { grep -B2 -A8 error "$OUT/$name.log" | head -30; continue; }
  grep -E "spill" "$OUT/$name.log" | grep bwd_main | sed 's/.*function //' | sort -u | head
  timeout 100 "$BV/bwd_tests" -tc="*conformance*" >>"$OUT/$name.log" 2>&1
  echo "variant $name tests rc=$?"
  read -ra VARIANT_ARGS <<<"${VARIANT_BENCH:---d 64,128 --s 4096,16384 --causal both}"
  timeout 100 "$BV/bench/flashport-bench" --backend cuda --direction bwd --peers none --json --dtype bf16 \
    "${VARIANT_ARGS[@]}" >"$OUT/variant_$name.jsonl" 2>>"$OUT/bench.err"
done

if [ "${NCU:-0}" = 1 ]; then
  step ncu
  # One launch of the main kernel (D 128, S 4096, not causal): where its time goes.
  timeout 120 ncu --kernel-name regex:bwd_main --launch-skip 1 --launch-count 1 --section SpeedOfLight \
    --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis_Tables \
    --metrics sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,smsp__inst_executed_op_ldsm.sum,lts__t_requests_op_red.sum \
    "$B/bench/flashport-bench" --backend cuda --direction bwd --peers none --dtype bf16 --d 128 --s 4096 \
    --causal 0 --reps 1 --warmup 1 >"$OUT/ncu.txt" 2>&1
  grep -E "Duration|Throughput|hmma|bank_conflicts|wavefronts|ldsm|op_red|Achieved Occupancy|Stall|Registers Per|Warp Cycles Per Issued" \
    "$OUT/ncu.txt" | head -40
fi

step summary
echo "tests rc=$tests_rc memcheck rc=$memcheck_rc racecheck rc=$racecheck_rc bench rc=$bench_rc"
python3 - "$OUT/bench.jsonl" "$OUT/bench_det.jsonl" "$OUT"/variant_*.jsonl <<'EOF'
import json, sys
rows = []
for path in sys.argv[1:]:
    try:
        lines = open(path).readlines()
    except OSError:
        continue
    if "variant_" in path and lines:
        rows.append(path.rsplit("variant_", 1)[1].split(".")[0])
    for line in lines:
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
def f(x, spec):
    return format(x, spec) if isinstance(x, (int, float)) else format("-", spec[:-3] if spec.endswith(("f", "2f", "1f", "3f")) else spec)
print(f"{'D':>4} {'S':>6} {'causal':>6} {'det':>3} {'ms':>8} {'TFLOP/s':>8} {'flash':>7} {'ratio':>6} {'cudnn':>7} {'ratio':>6}")
for r in rows:
    if isinstance(r, str):
        print(f"variant {r}:")
        continue
    det = 1 if r.get("deterministic") else 0
    print(f"{r['head_dim']:>4} {r['seqlen_q']:>6} {int(r['causal']):>6} {det:>3} {f(r['ms'], '>8.3f')} {f(r['tflops'], '>8.1f')} "
          f"{f(r.get('peer_flash_tflops'), '>7.1f')} {f(r.get('ratio_flash'), '>6.2f')} "
          f"{f(r.get('peer_cudnn_tflops'), '>7.1f')} {f(r.get('ratio_cudnn'), '>6.2f')}")
EOF
