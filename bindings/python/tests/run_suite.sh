#!/usr/bin/env bash
# The pytest suite against one already built libflashport (no pip install, no build of its own), with a time limit.
# The last line printed is the result:
#   pytest (LABEL): N passed, M skipped, K failed (rc=..., ... s)
#
#   bindings/python/tests/run_suite.sh LIBRARY LOG [LABEL]
#     LIBRARY  libflashport.so.1 of a build tree (FLASHPORT_LIBRARY); GPU modules are found in its directory
#     LOG      file that receives the versions, the backends and the whole pytest output
#     LABEL    names the run in the result line (default: the host name)
#   PYTHON_TIMEOUT  seconds for the whole pytest run (default 240)
#
# bench/device.sh's `python` step runs this on the GPU machine (torch, transformers, CuPy, JAX are there) against
# the library its `build` step made; CI runs the same tests against the pip-installed package (.ci/steps/python.sh).
set -u
if [ $# -lt 2 ]; then sed -n '2,12p' "$0"; exit 2; fi
lib=$(cd "$(dirname "$1")" 2>/dev/null && pwd)/$(basename "$1")
log=$2
label=${3:-$(hostname)}
root=$(cd "$(dirname "$0")/../../.." && pwd)
limit=${PYTHON_TIMEOUT:-240}
if [ ! -e "$lib" ]; then echo "pytest ($label): not run, no library at $1"; exit 1; fi
export PYTHONUNBUFFERED=1 FLASHPORT_LIBRARY=$lib PYTHONPATH=$root/bindings/python${PYTHONPATH:+:$PYTHONPATH}
# JAX (test_frameworks.py) would otherwise take 75 % of the GPU's memory when it starts, leaving torch's tests little.
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
mkdir -p "$(dirname "$log")"
{
  echo "FLASHPORT_LIBRARY=$lib"
  python3 - <<'PY'
import importlib, sys
print("python", sys.version.split()[0])
for name in ("numpy", "ml_dtypes", "torch", "transformers", "cupy", "jax", "matplotlib", "pytest"):
    try:
        module = importlib.import_module(name)
        extra = f", cuda available: {module.cuda.is_available()}" if name == "torch" else ""
        print(f"{name} {getattr(module, '__version__', '?')}{extra}")
    except Exception as e:  # absent is a state: the tests that need it skip
        print(f"{name}: not importable ({type(e).__name__})")
PY
  python3 -c 'import flashport; print("flashport", flashport.library_version()); [print(" ", b) for b in flashport.backends()]'
} > "$log" 2>&1

start=$(date +%s)
timeout "$limit" python3 -m pytest -q -rfEs -p no:cacheprovider "$root/bindings/python/tests" >> "$log" 2>&1
rc=$?
seconds=$(( $(date +%s) - start ))

# pytest's last line: "12 passed, 3 skipped, 1 failed, 2 errors in 9.87s" (any subset, any order).
last=$(grep -E '^=* ?[0-9]+ (passed|failed|skipped|errors?|deselected|xfailed|xpassed)' "$log" | tail -1)
count() { grep -oE "[0-9]+ $1\b" <<< "$last" | grep -oE '^[0-9]+' || echo 0; }
failed=$(( $(count failed) + $(count 'errors?') ))
note="rc=$rc, $seconds s"
[ "$rc" -eq 124 ] && note="timed out after $limit s, counts incomplete"
[ -z "$last" ] && [ "$rc" -ne 124 ] && note="rc=$rc, no pytest summary: see $(basename "$log")"
grep -E '^(FAILED|ERROR|SKIPPED)' "$log" | head -20
echo "pytest ($label): $(count passed) passed, $(count skipped) skipped, $failed failed ($note)"
exit "$rc"
