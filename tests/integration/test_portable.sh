#!/usr/bin/env bash
# test_portable.sh: the default build is one binary for every x86-64 CPU with
# AVX2: no object outside the AVX-512 copy of src/nn/isa/ holds an AVX-512
# instruction (zmm, mask or upper-16 vector registers), the generic copy holds
# no AVX at all, the AVX-512 copy does hold them (so the check can fail), and
# `shelf version --cpu` reports the level that SHELF_CPU asks for, clamped to
# the CPU. Usage: test_portable.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1
build=$(dirname "$shelf")
dir=$2
rm -rf "$dir" && mkdir -p "$dir" || exit 1
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what" >&2; fi; }
command -v objdump >/dev/null || { echo "objdump missing (binutils)"; exit 1; }

AVX512='%zmm|%k[1-7]|%[xy]mm(1[6-9]|2[0-9]|3[01])'
# objects of a target, disassembled into one file; "" when it has none
disasm() {
    local out="$dir/$1.s"
    : > "$out"
    local n=0
    while IFS= read -r -d '' o; do
        objdump -d --no-show-raw-insn "$o" >> "$out" && n=$((n + 1))
    done < <(find "$build/CMakeFiles/$1.dir" -name '*.o' -print0 2>/dev/null)
    [ "$n" -gt 0 ] && echo "$out"
}
none_of() { ! grep -Eq "$2" "$1"; }
some_of() { grep -Eq "$2" "$1"; }

march=$(sed -n 's/^SHELF_MARCH:STRING=//p' "$build/CMakeCache.txt")
gen=$(disasm shelf_isa_generic) avx2=$(disasm shelf_isa_avx2) avx512=$(disasm shelf_isa_avx512)
check "the per-level objects are built" test -n "$gen" -a -n "$avx2" -a -n "$avx512"
check "generic copy: no AVX" none_of "$gen" '%ymm|%zmm'
check "AVX2 copy: 256-bit registers, no AVX-512" eval 'some_of "$avx2" "%ymm" && none_of "$avx2" "$AVX512"'
check "AVX-512 copy: has zmm (the check sees them)" some_of "$avx512" '%zmm'
if [ "$march" = x86-64-v3 ] || [ -z "$march" ]; then
    lib=$(disasm shelf_obj) cli=$(disasm shelf)
    check "library outside src/nn/isa: no AVX-512" none_of "$lib" "$AVX512"
    check "the shelf command: no AVX-512" none_of "$cli" "$AVX512"
else
    echo "SHELF_MARCH=$march: not the portable default, the library's own objects are not checked"
fi

# the level in use: detected, lowered by SHELF_CPU, never raised
det=$("$shelf" version --cpu | python3 -c 'import json, sys; print(json.load(sys.stdin)["detected"])')
check "detected level named" test -n "$det"
rank() { case $1 in generic) echo 0 ;; avx2) echo 1 ;; avx512) echo 2 ;; avx512bf16) echo 3 ;; *) echo 9 ;; esac; }
for l in generic avx2 avx512 avx512bf16; do
    want=$l
    [ "$(rank "$l")" -gt "$(rank "$det")" ] && want=$det
    got=$(SHELF_CPU=$l "$shelf" version --cpu 2>"$dir/err_$l" |
        python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["level"], d["kernels"]["cehead_f32"], d["cpu"] != "")')
    check "SHELF_CPU=$l gives $want" test "$got" = "$want ${want%bf16} True"
    if [ "$want" != "$l" ]; then check "SHELF_CPU=$l above the CPU is reported" grep -q "above what this CPU supports" "$dir/err_$l"; fi
done
SHELF_CPU=sse9 "$shelf" version --cpu > "$dir/out_bad" 2> "$dir/err_bad"
check "bad SHELF_CPU: still answers" test -s "$dir/out_bad"
check "bad SHELF_CPU: says what is allowed" grep -q "generic|avx2|avx512|avx512bf16" "$dir/err_bad"
check "version --bogus is refused" eval '! "$shelf" version --bogus 2>/dev/null'
echo "$pass passed, $fail failed"
test "$fail" -eq 0
