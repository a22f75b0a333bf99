#!/usr/bin/env bash
# Installs libflashport into a scratch prefix with `cmake --install` and uses it from outside the tree, as users do:
#   - examples/c built with find_package(flashport) (CMake) and with pkg-config (Makefile), both run;
#   - examples/rust (hand-written extern "C", no crates) built with plain rustc and run.
# Reuses an existing build with FLASHPORT_BUILD_DIR=<dir> (e.g. the CI's `build`); otherwise builds the core.
# Needs: g++ cmake ninja-build libeigen3-dev pkg-config make rustc (installed here when missing).
source "$(dirname "${BASH_SOURCE[0]}")/interop_common.sh"
apt_install "${CORE_PACKAGES[@]}" pkg-config make
command -v rustc >/dev/null || [[ -x $HOME/.cargo/bin/rustc ]] || apt_install rustc
RUSTC=$(command -v rustc || echo "$HOME/.cargo/bin/rustc")

work=$ROOT/build-ci-consumers
prefix=$work/prefix
rm -rf "$work"
build=${FLASHPORT_BUILD_DIR:-$work/build}
[[ -n ${FLASHPORT_BUILD_DIR:-} ]] || build_core "$build"
cmake --install "$build" --prefix "$prefix" >/dev/null

# The installed layout users rely on: the SONAME, the CMake package and the pkg-config file.
libdir=$prefix/lib
lib=$libdir/libflashport.so.1
[[ -e $lib ]] || { echo "consumers: $lib was not installed" >&2; exit 1; }
readelf -d "$lib" | grep -q 'Library soname: \[libflashport\.so\.1\]' || { echo "consumers: wrong SONAME" >&2; exit 1; }
[[ -e $libdir/cmake/flashport/flashportConfig.cmake && -e $libdir/pkgconfig/flashport.pc ]] ||
  { echo "consumers: CMake package or flashport.pc missing under $libdir" >&2; exit 1; }

echo "== examples/c with find_package(flashport)"
cmake -S "$ROOT/examples/c" -B "$work/c-cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/c-cmake"
"$work/c-cmake/flashport_example"

echo "== examples/c with pkg-config"
PKG_CONFIG_PATH=$libdir/pkgconfig make -s -C "$ROOT/examples/c" EXAMPLE="$work/c-pkgconfig"
"$work/c-pkgconfig"

echo "== examples/rust with rustc"
"$RUSTC" --version
"$RUSTC" --edition 2021 -O "$ROOT/examples/rust/src/main.rs" -L "native=$libdir" \
  -C "link-args=-Wl,-rpath,$libdir" -o "$work/rust-example"
"$work/rust-example"
echo "consumers: OK"
