#!/bin/bash
# Regenerates the DTB fixtures for the host unit tests (src/platform/tests.rs): board-shaped
# trees compiled from the .dts sources here, and QEMU's virt machine's own tree dumped in
# several shapes. Run by `make dtbs`; the outputs are committed so that `cargo test` needs
# neither dtc nor QEMU. With fixture names as arguments (generate.sh virt-gicv2-smp9), only
# those: every dump has fresh random seeds in /chosen.
set -euo pipefail
cd "$(dirname "$0")"
only=("$@")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
module=$tmp/module
printf 'module' >"$module"
wanted() {
    [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" $1 "* ]]
}
dump_to() { # dump_to FILE GIC SMP MEM [QEMU-ARGS...]
    local file=$1 gic=$2 smp=$3 mem=$4
    shift 4
    qemu-system-aarch64 -machine "virt,virtualization=on,gic-version=$gic,dumpdtb=$file" \
        -cpu max -smp "$smp" -m "$mem" -nographic -nic none "$@" >/dev/null 2>&1
    # QEMU pads the blob to 1 MiB; dtc re-encodes the same tree compactly.
    dtc -q -I dtb -O dtb -o "$file" "$file"
}
dump() { # dump NAME GIC SMP MEM [QEMU-ARGS...]
    local name=$1
    shift
    wanted "$name" || return 0
    dump_to "$name.dtb" "$@"
    echo "wrote tests/dtb/$name.dtb"
}
# QEMU refuses -smp 9 with a GICv2, so the nine-CPU tree for the refusal tests (the
# gicv2-9cpus step of tests/run-all.sh, src/platform/tests.rs) is its eight-CPU tree with a
# copy of cpu@7 as cpu@8, reg 8. The copy leaves out cpu@7's phandle, which must stay unique
# (nothing refers to cpu@8). The .dts is committed with the .dtb, to read and to diff.
nine_cpus() { # nine_cpus NAME
    local name=$1
    wanted "$name" || return 0
    dump_to "$tmp/smp8.dtb" 2 8 512M
    dtc -q -I dtb -O dts -o "$tmp/smp8.dts" "$tmp/smp8.dtb"
    awk '
        /^\t\tcpu@7 \{$/ { copying = 1 }
        copying { print; copy = copy $0 "\n" }
        !copying { print }
        copying && /^\t\t\};$/ {
            copying = 0
            gsub(/cpu@7/, "cpu@8", copy)
            gsub(/reg = <0x07>;/, "reg = <0x08>;", copy)
            gsub(/\t\t\tphandle = <[^>]*>;\n/, "", copy)
            printf "\n%s", copy
            added = 1
        }
        END { if (!added) { print "no cpu@7 node to copy" > "/dev/stderr"; exit 1 } }
    ' "$tmp/smp8.dts" >"$name.dts"
    dtc -q -I dts -O dtb -o "$name.dtb" "$name.dts"
    echo "wrote tests/dtb/$name.dts and tests/dtb/$name.dtb"
}
# Board consoles: a DesignWare APB UART (RK3399) and a Cadence UART (ZynqMP).
for name in rk3399-uart2 zynqmp-uart0; do
    wanted "$name" || continue
    dtc -q -I dts -O dtb -o "$name.dtb" "$name.dts"
    echo "wrote tests/dtb/$name.dtb"
done
dump virt-gicv3-smp1-512m 3 1 512M
dump virt-gicv3-smp4-512m 3 4 512M
dump virt-gicv3-smp8-4g 3 8 4G
dump virt-gicv2-smp4-512m 2 4 512M
dump virt-gicv3-smp4-4g-modules 3 4 4G \
    -device "guest-loader,addr=0x48000000,kernel=$module,bootargs=console=ttyAMA0 earlycon" \
    -device "guest-loader,addr=0x49000000,initrd=$module"
nine_cpus virt-gicv2-smp9
