#!/bin/sh
# Checks the device code embedded in libflashport_hip.so without an AMD GPU (see docs/hip.md):
#   - exactly one code object per target of FLASHPORT_HIP_ARCHS, each an offload bundle holding that target only;
#   - the code-object version is the configured one (ELF ABI version: v4 -> 2, v5 -> 3);
#   - matrix instructions where the target has them: v_mfma in CDNA code (gfx908, gfx90a, gfx94x), v_wmma in RDNA3
#     code (gfx11xx), neither in the others (gfx1030 runs the FMA tiles);
#   - the attention kernels are there: every kernel the module's own table may launch (LIST_KERNELS prints them, one
#     launch site a line with its variants; forward and backward, every instance and dtype) has at least one variant
#     in every code object, and the main kernels use the tile policy the target should run;
#   - the f16/bf16 backward has a main kernel for every head-dim instance of the forward (up to 256);
#   - the attention kernels use no static LDS (all of it is the dynamic amount the host passes, at most 64 KB).
# Usage: check_code_objects.sh MODULE LLVM_BIN_DIR CODE_OBJECT_VERSION LIST_KERNELS TARGET...
set -u
module=$1; llvm=$2; cov=$3; list_kernels=$4; shift 4
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
# Tile policy of a mangled kernel name: Mfma, Wmma, Fma32 or Fma64 (TileMmaFma<T, lanes>).
policy_of() {
  case $1 in
    *TileMmaMfma*) echo Mfma ;;
    *TileMmaWmma*) echo Wmma ;;
    *TileMmaFma*) echo "Fma$(printf '%s' "$1" | sed -n 's/.*TileMmaFmaI[^L]*Li\([0-9]*\)E.*/\1/p')" ;;
    *) echo unknown ;;
  esac
}

sections=$("$llvm/llvm-readelf" -S -W "$module" | grep -o '\.flashport_hip_co\.[A-Za-z0-9_]*' | sort -u)
count=$(printf '%s\n' "$sections" | grep -c . || true)
[ "$count" -eq "$#" ] || bad "$count embedded code objects for $# targets ($*): $sections"

"$list_kernels" > "$work/groups.txt" || bad "$list_kernels failed"
ngroups=$(grep -c . "$work/groups.txt")
[ "$(grep -c '^bwd_' "$work/groups.txt")" -gt 0 ] || bad "the kernel table lists no backward kernel"
# The f16/bf16 backward covers every head-dim instance the forward has (D 256 included: kernels/bwd_launch.cuh).
for site in $(sed -n 's/^fwd \(b\{0,1\}f16\) \([0-9x]*\)	.*/\1:\2/p' "$work/groups.txt"); do
  grep -q "^bwd_main ${site%%:*} ${site#*:}$(printf '\t')" "$work/groups.txt" ||
    bad "forward instance ${site%%:*} ${site#*:} has no backward main kernel in the kernel table"
done

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
  # No static LDS in the attention kernels: their LDS is all the dynamic amount the host table passes, which the
  # static_asserts hold to 64 KB (kernels/bwd_main.cuh, kernels/tile_mma_amd.cuh, kernel_table.hip).
  static_lds=$("$llvm/llvm-readelf" --notes "$co" | awk '/\.group_segment_fixed_size:/ { g = $2 }
      /^ *\.name: *_Z/ { if ($2 ~ /(bwd_main|fwd)_kernel/ && g != 0) print $2 " (" g " bytes)" }')
  [ -z "$static_lds" ] || bad "$target: attention kernels with static LDS: $static_lds"
  # Every launch site of the kernel table: at least one of its variants is a kernel of this code object.
  "$llvm/llvm-readelf" --notes "$co" | sed -n 's/^ *\.name: *\(_Z[A-Za-z0-9_]*\)$/\1/p' | sort -u > "$work/$id.names"
  found=0; bwd=0; policies=""
  while IFS="$(printf '\t')" read -r label names; do
    hit=""
    for n in $names; do
      if grep -qxF "$n" "$work/$id.names"; then hit=$n; break; fi
    done
    if [ -z "$hit" ]; then bad "$target: no kernel for '$label' (looked for: $names)"; continue; fi
    found=$((found + 1))
    case $label in bwd_*) bwd=$((bwd + 1)) ;; esac
    # The tile policy of the main kernels (mangled names: TileMmaMfma, TileMmaWmma, TileMmaFma<T, 32|64>).
    case $label in
      "fwd f16"*|"fwd bf16"*|bwd_main*)
        p=$(policy_of "$hit")
        dtype=${label#* }; dtype=${dtype%% *}
        case " $policies " in *" $dtype:$p "*) ;; *) policies="$policies $dtype:$p" ;; esac ;;
    esac
  done < "$work/groups.txt"
  # Expected policies per target and dtype (kernels/tile_mma_amd.cuh).
  case $arch in
    gfx90a|gfx940|gfx941|gfx942) want_p="f16:Mfma bf16:Mfma" ;;
    gfx908) want_p="f16:Mfma bf16:Fma64" ;;
    gfx110[0-3]|gfx115[01]) want_p="f16:Wmma bf16:Wmma" ;;
    *) want_p="f16:Fma32 bf16:Fma32" ;;
  esac
  got_p=$(printf '%s\n' $policies | sort -u | tr '\n' ' ' | sed 's/ $//')
  want_sorted=$(printf '%s\n' $want_p | sort -u | tr '\n' ' ' | sed 's/ $//')
  [ "$got_p" = "$want_sorted" ] || bad "$target: main kernels use [$got_p], expected [$want_sorted]"
  echo "$target: $(wc -c < "$co") bytes, ABI version $got_abi, $mfma v_mfma, $wmma v_wmma, $kernels forward kernels," \
       "$found/$ngroups launch sites present ($bwd backward), policies [$got_p]"
done
exit $fail
