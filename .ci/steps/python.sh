#!/usr/bin/env bash
# `pip install ./bindings/python` (scikit-build-core builds libflashport with CMake into the package) in a fresh
# venv, then the pytest suite against the *installed* package. torch/transformers tests skip where those are absent.
# GPU modules are switched off here: this machine has no GPU and the CUDA kernels would take most of the time.
# Needs: python3 python3-venv + the core's build packages (installed here when missing); numpy, pytest, ml_dtypes,
# scikit-build-core and matplotlib (for bench/plot.py's test) from PyPI.
source "$(dirname "${BASH_SOURCE[0]}")/interop_common.sh"
apt_install "${CORE_PACKAGES[@]}" python3 python3-venv python3-pip

work=$ROOT/build-ci-python
rm -rf "$work"
python3 -m venv "$work/venv"
py=$work/venv/bin/python
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet scikit-build-core pytest numpy ml_dtypes matplotlib
# --no-build-isolation: the build backend is the one just installed, so the build needs no second download.
"$py" -m pip install --no-build-isolation --verbose \
  -C build-dir="$work/cmake" \
  -C cmake.define.FLASHPORT_CUDA=OFF -C cmake.define.FLASHPORT_HIP=OFF \
  "$ROOT/bindings/python" >"$work/pip-install.log" 2>&1 || { tail -n 60 "$work/pip-install.log"; exit 1; }
tail -n 3 "$work/pip-install.log"

# From outside the source tree and without FLASHPORT_LIBRARY: the tests must import the installed package and the
# libflashport.so.1 shipped inside it.
cd "$work"
env -u FLASHPORT_LIBRARY "$py" -c 'import flashport, flashport._lib as l; print("flashport", flashport.library_version(), "from", l.lib()._name)'
env -u FLASHPORT_LIBRARY "$py" -m pytest -q -rs "$ROOT/bindings/python/tests"
