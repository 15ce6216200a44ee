#!/bin/bash
# Starts QEMU with the hypervisor and a Linux guest given as multiboot modules
# (-device guest-loader). Used by `make run-linux-smp`, the Linux system test and the bench.
#
# usage: qemu.sh [--direct] HYPERVISOR_BIN IMAGE INITRD [extra QEMU args...]
#   --direct: boot IMAGE on QEMU itself, without the hypervisor (the bench's baseline).
# Environment: SMP (4), MEM (2G), LINUX_ARGS (console=ttyAMA0 earlycon), QEMU, DISK (a disk
# image for the guest's virtio-blk), GIC (3: the virt machine's gic-version), CPU (QEMU -cpu:
# max,pauth-impdef=on, QEMU's max with its fast pointer authentication algorithm), BOARD (virt, or zcu102: QEMU's model of the Zynq UltraScale+ ZCU102 with the vendor
# device tree Debian's kernel package ships, a GIC-400 with 64 KiB-aliased CPU interfaces and
# the hypervisor's console on the board's Cadence UART), and for --direct: DIRECT_MEM (1G; the bench sets
# the RAM the hypervisor gives its guest), DIRECT_CPU (max,pauth-impdef=on).
#
# The disk is a multiboot module with compatible "armvisor,disk", which guest-loader cannot
# write: QEMU's device tree is dumped with the kernel and initramfs modules in it, the disk
# module node is added (as a board's U-Boot script would with `fdt mknode`), and QEMU boots
# with that tree (-dtb) and the disk image loaded at DISK_ADDR.
set -euo pipefail
direct=0
if [ "${1:-}" = --direct ]; then
    direct=1
    shift
fi
hv=$1 image=$2 initrd=$3
shift 3
smp=${SMP:-4} mem=${MEM:-2G} args=${LINUX_ARGS:-console=ttyAMA0 earlycon}
qemu=${QEMU:-qemu-system-aarch64}
for f in "$image" "$initrd"; do
    [ -f "$f" ] || { echo "error: $f not found (run 'make guest', or set LINUX_IMAGE / INITRD)" >&2; exit 1; }
done
# Both modes run with -nic none: neither guest gets a network card (see the Makefile).
if [ $direct = 1 ]; then
    exec "$qemu" -machine "virt,gic-version=${GIC:-3}" -cpu "${DIRECT_CPU:-max,pauth-impdef=on}" -smp "$smp" -m "${DIRECT_MEM:-1G}" -nographic -nic none -no-reboot \
        -kernel "$image" -initrd "$initrd" -append "$args" "$@"
fi

# What the modes that write their own device tree share.
scratch() { # a temporary directory in $tmp, removed on exit
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
}
loads=()
module() { # module ADDR FILE COMPATIBLE [BOOTARGS]: a /chosen module node on stdout, and
    # FILE loaded at ADDR (added to `loads`: call it in this shell, not in a subshell)
    printf 'module@%x {\n    compatible = "%s", "multiboot,module";\n' "$1" "$3"
    printf '    reg = <0x0 0x%x 0x0 0x%x>;\n' "$1" "$(stat -c %s "$2")"
    [ -z "${4:-}" ] || printf '    bootargs = "%s";\n' "$4"
    printf '};\n'
    loads+=(-device "loader,file=$2,addr=$(printf 0x%x "$1"),force-raw=on")
}
dump_dts() { # dump_dts MACHINE QEMU-ARGS...: QEMU's own device tree for MACHINE, as $tmp/machine.dts
    local machine=$1
    shift
    if ! "$qemu" -machine "$machine,dumpdtb=$tmp/qemu.dtb" "$@" >"$tmp/dump.log" 2>&1; then
        echo "error: QEMU could not dump its device tree:" >&2
        cat "$tmp/dump.log" >&2
        exit 1
    fi
    dtc -q -I dtb -O dts -o "$tmp/machine.dts" "$tmp/qemu.dtb"
}
if [ "${BOARD:-virt}" = zcu102 ]; then
    # No guest-loader here (it edits only a tree QEMU generates): the modules go into the
    # vendor tree's /chosen as a board's U-Boot script would put them (`fdt mknode`), and
    # their bytes are loaded where the nodes say. 2 GiB: with more, QEMU rewrites /memory
    # as one bank across the board's device window at 2-4 GiB.
    vendor=$(ls "$(dirname "$image")"/kernel/usr/lib/linux-image-*/xilinx/zynqmp-zcu102-rev1.0.dtb 2>/dev/null | head -n 1)
    [ -n "$vendor" ] || { echo "error: no zynqmp-zcu102-rev1.0.dtb in $(dirname "$image")/kernel (run 'make guest')" >&2; exit 1; }
    scratch
    dtc -q -I dtb -O dts -o "$tmp/board.dts" "$vendor"
    {
        printf '/ {\n    chosen {\n        #address-cells = <2>;\n        #size-cells = <2>;\n'
        module 0x20000000 "$image" multiboot,kernel "$args"
        module 0x28000000 "$initrd" multiboot,ramdisk
        [ -z "${DISK:-}" ] || module 0x2c000000 "$DISK" armvisor,disk
        printf '    };\n};\n'
    } >>"$tmp/board.dts" # a group, not a subshell: `module` fills `loads` here
    dtc -q -I dts -O dtb -o "$tmp/board.dtb" "$tmp/board.dts"
    "$qemu" -machine xlnx-zcu102,virtualization=on -m 2G -nographic -audiodev none,id=snd0 \
        -no-reboot -kernel "$hv" -dtb "$tmp/board.dtb" "${loads[@]}" "$@"
    exit
fi
if [ "${BOARD:-virt}" = vms ]; then
    # Several VMs on virt, in Xen's dom0less binding: a "xen,domain" node per VM under
    # /chosen, its modules as children, as a board's U-Boot script writes them with `fdt`
    # commands (docs/board.md). VMS lists the VMs, "NAME:VCPUS:MIB" each (default two Linux
    # VMs, a and b, 2 vCPUs and 512 MiB each), or "NAME:VCPUS:MIB:IMAGE" for a VM that boots
    # IMAGE (a test guest) alone; each Linux VM gets its own copy of the kernel, the
    # initramfs and (with DISK) of the disk image, and bootargs LINUX_ARGS plus
    # "armvisor.vm=NAME". QEMU's own escape is Ctrl-T here (-echr 20), so that Ctrl-A
    # reaches the hypervisor, whose Ctrl-A three times moves console input to the next VM.
    scratch
    machine=virt,virtualization=on,gic-version=${GIC:-3}
    base=(-cpu "${CPU:-max,pauth-impdef=on}" -smp "$smp" -m "$mem" -nographic -nic none -no-reboot -echr 20 -semihosting -kernel "$hv")
    dump_dts "$machine" "${base[@]}"
    align() { echo $(( ($1 + 0x1fffff) & ~0x1fffff )); }
    at=$((0x50000000))
    {
        printf '/ {\n    chosen {\n'
        for vm in ${VMS:-a:2:512 b:2:512}; do
            IFS=: read -r name vcpus mib kernel <<<"$vm"
            printf '        %s {\n            compatible = "xen,domain";\n' "$name"
            printf '            #address-cells = <2>;\n            #size-cells = <2>;\n'
            printf '            memory = <0x0 0x%x>;\n            cpus = <%d>;\n' $((mib * 1024)) "$vcpus"
            if [ -n "$kernel" ]; then
                # A test guest (an arm64 Image of its own): no initramfs, no disk.
                [ -f "$kernel" ] || { echo "error: $kernel not found (make guests)" >&2; exit 1; }
                module $at "$kernel" multiboot,kernel "armvisor.vm=$name"
                at=$(align $((at + $(stat -c %s "$kernel"))))
                printf '        };\n'
                continue
            fi
            module $at "$image" multiboot,kernel "$args armvisor.vm=$name"
            at=$(align $((at + $(stat -c %s "$image"))))
            module $at "$initrd" multiboot,ramdisk
            at=$(align $((at + $(stat -c %s "$initrd"))))
            if [ -n "${DISK:-}" ]; then
                cp "$DISK" "$tmp/disk-$name.img"
                module $at "$tmp/disk-$name.img" armvisor,disk
                at=$(align $((at + $(stat -c %s "$DISK"))))
            fi
            printf '        };\n'
        done
        printf '    };\n};\n'
    } >"$tmp/domains.dtsi" # a group, not a subshell: `module` fills `loads` here
    cat "$tmp/domains.dtsi" >>"$tmp/machine.dts"
    dtc -q -I dts -O dtb -o "$tmp/machine.dtb" "$tmp/machine.dts"
    "$qemu" -machine "$machine" "${base[@]}" -dtb "$tmp/machine.dtb" "${loads[@]}" "$@"
    exit
fi
# guest-loader's own option syntax: a comma inside a value is written twice.
machine=virt,virtualization=on,gic-version=${GIC:-3}
common=(-cpu "${CPU:-max,pauth-impdef=on}" -smp "$smp" -m "$mem" -nographic -nic none -no-reboot -kernel "$hv"
    -device "guest-loader,addr=0x50000000,kernel=$image,bootargs=${args//,/,,}"
    -device "guest-loader,addr=0x54000000,initrd=$initrd")
if [ -z "${DISK:-}" ]; then
    exec "$qemu" -machine "$machine" "${common[@]}" "$@"
fi
scratch
dump_dts "$machine" "${common[@]}"
{
    printf '/ {\n    chosen {\n'
    module "${DISK_ADDR:-0x58000000}" "$DISK" armvisor,disk
    printf '    };\n};\n'
} >>"$tmp/machine.dts" # a group, not a subshell: `module` fills `loads` here
dtc -q -I dts -O dtb -o "$tmp/machine.dtb" "$tmp/machine.dts"
"$qemu" -machine "$machine" "${common[@]}" -dtb "$tmp/machine.dtb" "${loads[@]}" "$@"
