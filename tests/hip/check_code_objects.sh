#!/bin/sh
# Checks the device code embedded in libflashport_hip.so without an AMD GPU (see docs/hip.md):
#   - exactly one code object per target of FLASHPORT_HIP_ARCHS, each an offload bundle holding that target only;
#   - the code-object version is the configured one (ELF ABI version: v4 -> 2, v5 -> 3);
#   - matrix instructions where the target has them: v_mfma in CDNA code (gfx908, gfx90a, gfx94x), v_wmma in RDNA3
#     code (gfx11xx), neither in the others (gfx1030 runs the FMA tiles);
#   - the attention kernels are there: a forward kernel in every code object.
# Usage: check_code_objects.sh MODULE LLVM_BIN_DIR CODE_OBJECT_VERSION TARGET...
set -u
module=$1; llvm=$2; cov=$3; shift 3
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

sections=$("$llvm/llvm-readelf" -S -W "$module" | grep -o '\.flashport_hip_co\.[A-Za-z0-9_]*' | sort -u)
count=$(printf '%s\n' "$sections" | grep -c . || true)
[ "$count" -eq "$#" ] || bad "$count embedded code objects for $# targets ($*): $sections"

case $cov in 4) abi=2 ;; 5) abi=3 ;; 6) abi=4 ;; *) abi=unknown ;; esac
for target in "$@"; do
  id=$(printf '%s' "$target" | tr -c 'A-Za-z0-9_\n' '_')
  arch=${target%%:*}
  fb="$work/$id.hipfb"; co="$work/$id.co"
  "$llvm/llvm-objcopy" -O binary --only-section=".flashport_hip_co.$id" "$module" "$fb" ||
    { bad "$target: no section .flashport_hip_co.$id"; continue; }
  entries=$("$llvm/clang-offload-bundler" --list --type=o --input="$fb" | grep -v '^host-')
  [ "$entries" = "hipv4-amdgcn-amd-amdhsa--$target" ] || bad "$target: bundle holds [$entries]"
  "$llvm/clang-offload-bundler" --unbundle --type=o --input="$fb" \
      --targets="hipv4-amdgcn-amd-amdhsa--$target" --output="$co" || { bad "$target: unbundle failed"; continue; }
  got_abi=$("$llvm/llvm-readelf" -h "$co" | sed -n 's/.*ABI Version: *//p')
  [ "$got_abi" = "$abi" ] || bad "$target: ELF ABI version $got_abi, expected $abi (code object v$cov)"
  dis="$work/$id.s"
  "$llvm/llvm-objdump" -d --mcpu="$arch" "$co" > "$dis" || { bad "$target: disassembly failed"; continue; }
  mfma=$(grep -c 'v_mfma' "$dis"); wmma=$(grep -c 'v_wmma' "$dis")
  case $arch in
    gfx908|gfx90a|gfx940|gfx941|gfx942) want=mfma ;;
    gfx110[0-3]|gfx115[01]) want=wmma ;;
    *) want=none ;;
  esac
  case $want in
    mfma) [ "$mfma" -gt 0 ] && [ "$wmma" -eq 0 ] || bad "$target: $mfma v_mfma, $wmma v_wmma (want MFMA)" ;;
    wmma) [ "$wmma" -gt 0 ] && [ "$mfma" -eq 0 ] || bad "$target: $mfma v_mfma, $wmma v_wmma (want WMMA)" ;;
    none) [ "$mfma" -eq 0 ] && [ "$wmma" -eq 0 ] || bad "$target: $mfma v_mfma, $wmma v_wmma (want neither)" ;;
  esac
  kernels=$("$llvm/llvm-readelf" --notes "$co" | grep -c '\.name: *_ZN9flashport7kernels10fwd_kernel')
  [ "$kernels" -gt 0 ] || bad "$target: no forward kernel in the code object"
  echo "$target: $(wc -c < "$co") bytes, ABI version $got_abi, $mfma v_mfma, $wmma v_wmma, $kernels forward kernels"
done
exit $fail
