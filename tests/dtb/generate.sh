#!/bin/bash
# Regenerates the DTB fixtures for the host unit tests (src/platform/tests.rs): board-shaped
# trees compiled from the .dts sources here, and QEMU's virt machine's own tree dumped in
# several shapes. Run by `make dtbs`; the outputs are committed so that `cargo test` needs
# neither dtc nor QEMU.
set -euo pipefail
cd "$(dirname "$0")"
module=$(mktemp)
trap 'rm -f "$module"' EXIT
printf 'module' >"$module"
dump() {
    local name=$1 gic=$2 smp=$3 mem=$4
    shift 4
    qemu-system-aarch64 -machine "virt,virtualization=on,gic-version=$gic,dumpdtb=$name.dtb" \
        -cpu max -smp "$smp" -m "$mem" -nographic -nic none "$@" >/dev/null 2>&1
    # QEMU pads the blob to 1 MiB; dtc re-encodes the same tree compactly.
    dtc -q -I dtb -O dtb -o "$name.dtb" "$name.dtb"
    echo "wrote tests/dtb/$name.dtb"
}
# Board consoles: a DesignWare APB UART (RK3399) and a Cadence UART (ZynqMP).
for name in rk3399-uart2 zynqmp-uart0; do
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
