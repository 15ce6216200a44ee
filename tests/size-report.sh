#!/bin/bash
# `make size`: how big the hypervisor is: ELF section sizes and lines of Rust per module.
set -euo pipefail
elf=$1 llvm=$2
echo "== sections of $elf"
"$llvm/llvm-size" -A "$elf" | awk '$1 ~ /^\.(text|rodata|data|bss)/ {printf "%-10s %8d bytes\n", $1, $2}'
echo "== lines of Rust (non-blank, non-comment) per module"
for d in src/*; do
    n=$(find "$d" -name '*.rs' -print0 | xargs -0 cat | grep -cvE '^\s*(//.*)?$' || true)
    printf "%-24s %6d\n" "$d" "$n"
done
n=$(find arch -name '*.S' -print0 | xargs -0 cat | grep -cvE '^\s*(//.*)?$' || true)
printf "%-24s %6d\n" "arch (assembly)" "$n"
echo "== share of the hypervisor the host tests compile (tests/portable-share.py)"
python3 tests/portable-share.py
