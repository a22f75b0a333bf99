#!/usr/bin/env bash
# The Python tests on the GPU machine (torch, transformers, CuPy, JAX are there): a CPU-only core and a CUDA core
# built side by side, then the pytest suite against each. Logs land in $OUT. Run from the repository root:
#   bash bindings/python/tests/device_run.sh          (carry .deps: Eigen headers + CMake config, see the device notes)
# JOBS_CUDA / JOBS_CPU set the build jobs (default 12 / 4 on the 16-core machine); SKIP_CUDA=1 builds only the CPU core.

set -u
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/bindings/python
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
python3 -c 'import torch, transformers, numpy; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers", transformers.__version__, "numpy", numpy.__version__)' 2>&1 | tee "$OUT/versions.txt"
python3 -c 'import ml_dtypes' 2>/dev/null || echo "no ml_dtypes" | tee -a "$OUT/versions.txt"
common=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHPORT_BUILD_TESTS=OFF -DFLASHPORT_BUILD_BENCH=OFF -DFLASHPORT_HIP=OFF
        -DCMAKE_PREFIX_PATH=$PWD/.deps)
# The CUDA tree starts first (it is the slow one); the CPU tree gets a few cores beside it.
cuda_pid=
[ -n "${SKIP_CUDA:-}" ] || ( cmake -S . -B build-device-py/cuda "${common[@]}" -DFLASHPORT_CUDA=ON -DFLASHPORT_CUDA_ARCHS=90 &&
  timeout 420 cmake --build build-device-py/cuda -j "${JOBS_CUDA:-12}" --target flashport flashport_cuda ) > "$OUT/build-cuda.log" 2>&1 &
[ -n "${SKIP_CUDA:-}" ] || cuda_pid=$!
( cmake -S . -B build-device-py/cpu "${common[@]}" -DFLASHPORT_CUDA=OFF && cmake --build build-device-py/cpu -j "${JOBS_CPU:-4}" --target flashport ) \
  > "$OUT/build-cpu.log" 2>&1 || { echo "CPU build failed"; tail -30 "$OUT/build-cpu.log"; }
echo "== pytest, CPU-only library"
FLASHPORT_LIBRARY=$PWD/build-device-py/cpu/lib/libflashport.so.1 timeout 200 python3 -m pytest -q -rs \
  bindings/python/tests -p no:cacheprovider > "$OUT/pytest-cpu.log" 2>&1
echo "rc=$?"; tail -40 "$OUT/pytest-cpu.log"
[ -z "$cuda_pid" ] || { wait $cuda_pid; echo "cuda build rc=$?"; }; tail -5 "$OUT/build-cuda.log"
lib=build-device-py/cuda/lib/libflashport.so.1
if [ -e build-device-py/cuda/lib/libflashport_cuda.so ]; then
  echo "== pytest, CUDA library"
  FLASHPORT_LIBRARY=$PWD/$lib python3 -c 'import flashport; [print(b) for b in flashport.backends()]'
  FLASHPORT_LIBRARY=$PWD/$lib timeout 240 python3 -m pytest -q -rs bindings/python/tests/test_torch.py \
    bindings/python/tests/test_transformers.py bindings/python/tests/test_frameworks.py -p no:cacheprovider > "$OUT/pytest-cuda.log" 2>&1
  echo "rc=$?"; tail -60 "$OUT/pytest-cuda.log"
else
  echo "no CUDA module built"; grep -m5 -i -B2 -A5 "error" "$OUT/build-cuda.log" | head -40
fi
