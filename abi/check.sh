#!/usr/bin/env bash
# ABI check of libflashport against the stored baseline abi/<SONAME>.abi (libabigail: abidw/abidiff).
#
#   abi/check.sh                  build libflashport with debug info (in $FLASHPORT_ABI_BUILD_DIR, default build-abi)
#                                 and compare it with the baseline of its SONAME
#   abi/check.sh LIB|FILE.abi     compare a given libflashport.so.N (built with -g) or abidw output instead
#   abi/check.sh --update [LIB]   (re)write the baseline for the library's SONAME, after a reviewed change
#   abi/check.sh --self-test      prove the policy on edited copies of the baseline (no build)
#
# Policy: any change abidiff still reports after abi/suppressions.abignore (which hides added functions and fields
# appended to the versioned argument structs) fails, unless the SONAME was bumped, i.e. FLASHPORT_ABI_VERSION in
# CMakeLists.txt and include/flashport/flashport.h went up together. Needs: abigail-tools, cmake, a C++ compiler.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
suppressions=$here/suppressions.abignore
build=${FLASHPORT_ABI_BUILD_DIR:-$root/build-abi}
jobs=${FLASHPORT_ABI_JOBS:-2}

die() { echo "abi/check.sh: $*" >&2; exit 2; }
command -v abidw >/dev/null && command -v abidiff >/dev/null || die "abidw/abidiff not found (apt-get install abigail-tools)"

# Only what the public header declares, with stable hashed type ids and no paths, so baselines diff cleanly.
dump() {
  abidw --headers-dir "$root/include/flashport" --drop-private-types --exported-interfaces-only --no-show-locs \
        --no-comp-dir-path --no-corpus-path --type-id-style hash "$1" | sed "s|path='$root/|path='|"
}

build_library() {
  echo "abi/check.sh: building libflashport with debug info in $build" >&2
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLASHPORT_BUILD_TESTS=OFF \
        -DFLASHPORT_BUILD_BENCH=OFF -DFLASHPORT_CUDA=OFF -DFLASHPORT_HIP=OFF >/dev/null
  cmake --build "$build" --target flashport -j "$jobs" >/dev/null
  local lib
  lib=$(find "$build" -name 'libflashport.so.[0-9]*' ! -name '*.*.*.*' | head -n 1)
  [[ -n $lib ]] || die "no libflashport.so.N in $build"
  echo "$lib"
}

# The corpus of a library or an .abi file, written to $2.
corpus() {
  if [[ $1 == *.abi ]]; then cp "$1" "$2"; else dump "$1" >"$2"; fi
}

soname_of() { sed -n "s/^<abi-corpus [^>]*soname='\([^']*\)'.*/\1/p" "$1" | head -n 1; }

header_abi_version() {
  sed -n 's/^#define FLASHPORT_ABI_VERSION \([0-9][0-9]*\).*/\1/p' "$root/include/flashport/flashport.h"
}

# compare NEW_CORPUS: 0 when compatible (or the SONAME was bumped), 1 otherwise, with abidiff's report.
compare() {
  local new=$1 soname baseline
  soname=$(soname_of "$new")
  [[ -n $soname ]] || die "$new has no SONAME"
  baseline=$here/$soname.abi
  if [[ ! -f $baseline ]]; then
    local older
    older=$(ls "$here"/libflashport.so.*.abi 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n $older ]] || die "no baseline in $here; create one with abi/check.sh --update"
    echo "abi/check.sh: the SONAME is now $soname (baseline: $(basename "$older" .abi)): an ABI break is allowed."
    echo "  Record the new baseline with abi/check.sh --update and commit $soname.abi. Changes against the old one:"
    abidiff --suppressions "$suppressions" "$older" "$new" || true
    return 0
  fi
  local rc=0
  abidiff --suppressions "$suppressions" "$baseline" "$new" || rc=$?
  if (( rc & 3 )); then
    die "abidiff failed (status $rc)"
  elif (( rc & 12 )); then
    echo "abi/check.sh: FAILED: incompatible ABI change against $(basename "$baseline") (abidiff status $rc)." >&2
    echo "  Undo it, or bump FLASHPORT_ABI_VERSION in CMakeLists.txt and include/flashport/flashport.h together." >&2
    return 1
  fi
  # Compatible additions pass; recording them lets a later removal of them be caught.
  if ! abidiff --no-default-suppression "$baseline" "$new" >/dev/null 2>&1; then
    echo "abi/check.sh: compatible additions only; record them with abi/check.sh --update"
  fi
  echo "abi/check.sh: OK: $soname is compatible with its baseline"
}

self_test() {
  local base tmp failures=0
  base=$(ls "$here"/libflashport.so.*.abi | sort -V | tail -n 1)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  local fn="flashport_forward" st="flashport_forward_args"
  # 1. An exported function removed: must fail.
  awk "/<elf-symbol name='$fn' /{next} /<function-decl name='$fn' /{skip=1} !skip{print} /<\\/function-decl>/{skip=0}" \
      "$base" >"$tmp/removed.abi"
  # 2. A field dropped from the middle of a versioned struct: must fail.
  awk "/<class-decl name='$st' /{inside=1} inside && /<data-member /{head=\$0; getline decl;
       if (decl ~ /name='softcap'/) {getline; next} print head; print decl; next}
       /<\\/class-decl>/{inside=0} {print}" "$base" >"$tmp/middle.abi"
  # 3. A field appended to a versioned struct: must pass.
  awk "/<class-decl name='$st' /{inside=1; match(\$0, /size-in-bits='[0-9]+'/);
       size=substr(\$0, RSTART+14, RLENGTH-15); sub(/size-in-bits='[0-9]+'/, \"size-in-bits='\" size+64 \"'\")}
       inside && /<\\/class-decl>/{print \"      <data-member access='public' layout-offset-in-bits='\" size \"'>\";
       print \"        <var-decl name='appended' type-id='\" tid \"' visibility='default'/>\"; print \"      </data-member>\";
       inside=0} inside && /name='window_left'/{match(\$0, /type-id='[^']+'/); tid=substr(\$0, RSTART+9, RLENGTH-10)}
       {print}" "$base" >"$tmp/appended.abi"
  # 4. Case 1 with the SONAME bumped: must pass.
  local next_soname="libflashport.so.$(( $(soname_of "$base" | sed 's/.*\.so\.//') + 1 ))"
  sed "s/soname='[^']*'/soname='$next_soname'/" "$tmp/removed.abi" >"$tmp/bumped.abi"
  # 5. An exported function added (a copy of $fn under a new name, symbol and declaration): must pass.
  awk "/<elf-symbol name='$fn' /{print; sub(/name='$fn'/, \"name='${fn}_added'\")}
       /<function-decl name='$fn' /{copy=1; buf=\"\"} copy{buf=buf \$0 \"\\n\"}
       {print} copy && /<\\/function-decl>/{copy=0; gsub(/$fn/, \"${fn}_added\", buf); printf \"%s\", buf}" \
      "$base" >"$tmp/added.abi"
  for case in removed:1 middle:1 appended:0 bumped:0 added:0; do
    local name=${case%:*} want=${case#*:} got=0
    cmp -s "$base" "$tmp/$name.abi" && { echo "self-test: edit '$name' changed nothing" >&2; failures=1; continue; }
    compare "$tmp/$name.abi" >"$tmp/$name.log" 2>&1 || got=$?
    if [[ $got == "$want" ]]; then
      echo "self-test: $name -> $([[ $got == 0 ]] && echo passes || echo fails), as it should"
    else
      echo "self-test: $name gave status $got, expected $want:" >&2; cat "$tmp/$name.log" >&2; failures=1
    fi
  done
  return $failures
}

case "${1:-}" in
  --self-test)
    self_test
    ;;
  --update)
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    corpus "${2:-$(build_library)}" "$tmp"
    soname=$(soname_of "$tmp")
    [[ ${soname##*.} == "$(header_abi_version)" ]] || die "SONAME $soname disagrees with FLASHPORT_ABI_VERSION $(header_abi_version) in flashport.h"
    cp "$tmp" "$here/$soname.abi"
    echo "abi/check.sh: wrote abi/$soname.abi"
    ;;
  -h|--help)
    sed -n '2,13p' "$0"
    ;;
  *)
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    corpus "${1:-$(build_library)}" "$tmp"
    soname=$(soname_of "$tmp")
    [[ ${soname##*.} == "$(header_abi_version)" ]] || {
      echo "abi/check.sh: FAILED: SONAME $soname disagrees with FLASHPORT_ABI_VERSION $(header_abi_version) in include/flashport/flashport.h" >&2
      exit 1
    }
    compare "$tmp"
    ;;
esac
