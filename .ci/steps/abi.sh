#!/usr/bin/env bash
# ABI check: builds libflashport with debug info and compares it with abi/libflashport.so.<N>.abi (abi/check.sh),
# after proving the check's policy on edited copies of the baseline (abi/check.sh --self-test).
# Needs: abigail-tools + the core's build packages (installed here when missing).
source "$(dirname "${BASH_SOURCE[0]}")/interop_common.sh"
apt_install "${CORE_PACKAGES[@]}" abigail-tools

"$ROOT/abi/check.sh" --self-test
FLASHPORT_ABI_BUILD_DIR=$ROOT/build-ci-abi FLASHPORT_ABI_JOBS=$CI_JOBS "$ROOT/abi/check.sh"
