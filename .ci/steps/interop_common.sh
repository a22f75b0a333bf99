# Shared by .ci/steps/{consumers,python,abi}.sh (sourced, not run).
# Each step works alone on a fresh Debian 12 root machine: it installs what it needs by package name, builds in its
# own build-ci-* folder, and uses at most $CI_JOBS (default 2) compiler jobs.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CI_JOBS=${CI_JOBS:-2}
export CMAKE_BUILD_PARALLEL_LEVEL=$CI_JOBS
export DEBIAN_FRONTEND=noninteractive

# apt_install PKG...: installs the packages that are missing (apt-get update only when something is).
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  echo "+ apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
}

# The packages every step needs to build libflashport's core.
CORE_PACKAGES=(ca-certificates g++ cmake ninja-build libeigen3-dev)

# build_core DIR [CMAKE ARGS...]: the core library alone (no tests, bench or GPU modules), Release.
build_core() {
  local dir=$1
  shift
  cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHPORT_BUILD_TESTS=OFF \
    -DFLASHPORT_BUILD_BENCH=OFF -DFLASHPORT_CUDA=OFF -DFLASHPORT_HIP=OFF "$@" >/dev/null
  cmake --build "$dir" -j "$CI_JOBS"
}
