#!/bin/bash
# `make test`: every test, each step reported as PASS or FAIL with its log, then one
# closing "N passed, N failed" line over the steps.
#
#   host        cargo test: the portable code over the fake arch (DTB discovery, memory,
#               vGIC, PSCI, devices, the run loop and scheduler with test guests)
#   clippy      -D warnings on the host library and on the EL2 image
#   portable    at least 70 % of the non-test lines are compiled (and tested) on the host
#   qemu-*      the in-QEMU suites (`make run`) in several machine shapes, one binary,
#               including a GICv2 machine (-smp 1, 4, 8) and the ARMv8.0 Cortex-A53, A57, A72
#   fail        a build with one failing assertion makes QEMU exit non-zero, "1 failed"
#   el1         started without virtualization=on: the EL2 message and a non-zero exit
#   panic       a panic on pCPU 1: message with location and pCPU, QEMU exits 1
#   no-dtb      entered with x0 = 0 (no device tree): a clear message and a non-zero exit
#   no-guest    the hypervisor proper with no kernel module: says so, powers off, exits non-zero
#   gicv2-9cpus a GICv2 machine whose DTB lists nine CPUs (tests/dtb/virt-gicv2-smp9.dtb): the
#               eight-CPU-interface limit named, with the ninth CPU's node, and a non-zero exit
#   bad-vms     two-VM configurations the board cannot run (more vCPUs than free pCPUs, more
#               memory than free RAM): one message naming node and property, exit non-zero
#   conformance the differential suite (tests/conformance): one test guest directly on QEMU
#               and as an armvisor VM, every architectural check passing in both
#   conformance-gicv2  the same on a GICv2 machine (GICC, GICD_SGIR, banked SGI state)
#   uboot       U-Boot (u-boot-qemu) boots the image with booti from 0x50000000
#   uboot-two-vms  U-Boot builds a two-VM tree (dom0less nodes) with fdt commands, boots it
#   linux       Debian's arm64 kernel boots on 4 vCPUs / 4 pCPUs with a virtio disk; its shell is driven like a
#               person would (tests/linux/system_test.py); again on a GICv2 machine and on
#               the ARMv8.0 Cortex-A53
#   linux-zcu102  the same on QEMU's Zynq UltraScale+ ZCU102 model with its vendor device tree
#               (GIC-400 aliased every 64 KiB, the hypervisor's console on the Cadence UART)
#   linux-vms   make run-linux-vms's machine: two Linux VMs (Xen dom0less nodes) side by side,
#               driven at the one console (Ctrl-A three times): own CPUs, command lines and
#               disks, a reboot of one while the other's busy loop runs on, power-off one by one
#   linux-hostile  Linux next to a ticking test guest and a hostile one (console flood,
#               fault and SGI storms, PSCI abuse): the shell answers, its timer keeps time,
#               the ticker ticks, the flood is printed or counted, never silently lost
#   linux-stress-gicv2  60 s of loops moved between the 4 CPUs and IPIs on a GICv2: no RCU
#               stall, lockup or CSD timeout in the guest's log (tests/linux/stress_test.py)
set -uo pipefail
cd "$(dirname "$0")/.."
logs=build/logs
LINUX_IMAGE=${LINUX_IMAGE:?set by make test}
INITRD=${INITRD:?set by make test}
mkdir -p $logs
passed=0
failed=0
failures=()

step() { # step NAME COMMAND...: runs COMMAND, output in $logs/NAME.log
    local name=$1
    shift
    local start=$SECONDS
    if "$@" >"$logs/$name.log" 2>&1; then
        echo "PASS $name ($((SECONDS - start)) s)"
        passed=$((passed + 1))
    else
        echo "FAIL $name ($((SECONDS - start)) s), log: $logs/$name.log"
        tail -n 25 "$logs/$name.log" | sed 's/^/    | /'
        failed=$((failed + 1))
        failures+=("$name")
    fi
}

# The closing line of a run in FILE: "selftest: N passed, 0 failed" with N >= MIN.
clean_closing_line() { # clean_closing_line FILE MIN
    local line
    line=$(grep -aE '^selftest: [0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    if [[ $line =~ ^selftest:\ ([0-9]+)\ passed,\ 0\ failed ]] && ((BASH_REMATCH[1] >= $2)); then
        echo "closing line ok: $line"
    else
        echo "closing line not clean or too few checks (want >= $2): '$line'"
        return 1
    fi
}

qemu_suites() { # qemu_suites MIN make-variables...: `make run`, exit 0 and a clean closing line
    local min=$1 out
    shift
    out=$(mktemp)
    make --no-print-directory run "$@" 2>&1 | tee "$out"
    local status=${PIPESTATUS[0]}
    echo "make run exit status: $status"
    [ "$status" -eq 0 ] && clean_closing_line "$out" "$min"
}

# Runs QEMU with the given arguments; passes if it exits non-zero (not by timeout) and its
# output matches every PATTERN (extended regular expressions).
refuses_with() { # refuses_with PATTERN... -- qemu-args...
    local patterns=() out status=0 p
    while [ "$1" != -- ]; do
        patterns+=("$1")
        shift
    done
    shift
    out=$(mktemp)
    timeout --foreground 60 qemu-system-aarch64 -cpu max -m 512M -nographic -nic none -no-reboot -semihosting "$@" >"$out" 2>&1 || status=$?
    cat "$out"
    echo "QEMU exit status: $status (want non-zero, not the timeout's 124)"
    [ "$status" -ne 0 ] && [ "$status" -ne 124 ] || return 1
    for p in "${patterns[@]}"; do
        grep -aqE "$p" "$out" || { echo "missing: $p"; return 1; }
    done
}

# U-Boot builds a two-VM tree with its `fdt` commands (Xen's dom0less binding, as
# docs/board.md shows) and boots the hypervisor with booti: two ticker test guests, a and b,
# one vCPU and 16 MiB each, both ticking (b's lines prefixed with its name).
uboot_two_vms() {
    local size out cmds=() vm at
    size=$(printf 0x%x "$(stat -c %s build/guest-ticker.bin)")
    # `fdt mknode` makes the new node its parent's first child: b first, so that a comes
    # first in the tree (the binding's order: a gets pCPU 0 and the console input).
    for vm in b:0x60200000 a:0x60000000; do
        at=${vm#*:} vm=${vm%%:*}
        cmds+=(--expect "=>" --send "fdt mknode /chosen $vm; fdt set /chosen/$vm compatible xen,domain")
        cmds+=(--expect "=>" --send "fdt set /chosen/$vm \\#address-cells <2>; fdt set /chosen/$vm \\#size-cells <2>")
        cmds+=(--expect "=>" --send "fdt set /chosen/$vm memory <0 0x4000>; fdt set /chosen/$vm cpus <1>")
        cmds+=(--expect "=>" --send "fdt mknode /chosen/$vm module@${at#0x}")
        cmds+=(--expect "=>" --send "fdt set /chosen/$vm/module@${at#0x} compatible multiboot,kernel multiboot,module")
        cmds+=(--expect "=>" --send "fdt set /chosen/$vm/module@${at#0x} reg <0 $at 0 $size>")
    done
    out=$(mktemp)
    python3 tests/qemu_console.py --log "$out" --timeout 300 \
        --expect "Hit any key to stop autoboot" --send "" \
        --expect "=>" --send "fdt addr \${fdtcontroladdr}; fdt resize 4096" \
        "${cmds[@]}" \
        --expect "=>" --send "fdt print /chosen; booti 0x50000000 - \${fdtcontroladdr}" \
        --until "(b) ticker: 3" \
        -- qemu-system-aarch64 -machine virt,virtualization=on,gic-version=3 -cpu max -smp 4 -m 1G \
        -nographic -nic none -no-reboot -semihosting -bios /usr/lib/u-boot/qemu_arm64/u-boot.bin \
        -device loader,file=build/armvisor.bin,addr=0x50000000,force-raw=on \
        -device loader,file=build/guest-ticker.bin,addr=0x60000000,force-raw=on \
        -device loader,file=build/guest-ticker.bin,addr=0x60200000,force-raw=on
    local status=$?
    echo "qemu_console exit status: $status"
    [ "$status" -eq 0 ] && grep -aq "VM 'a': 1 vCPUs on pCPUs \[0\]" "$out" && grep -aq "VM 'b': 1 vCPUs on pCPUs \[1\]" "$out" &&
        grep -aq "^ticker: 3" "$out"
}

# A several-VM configuration the board cannot run (qemu.sh BOARD=vms with VMS): refused
# at boot with the message naming the node and property, and QEMU exits non-zero.
vms_refused() { # vms_refused PATTERN VMS
    local out status=0
    out=$(mktemp)
    BOARD=vms SMP=4 MEM=1G VMS="$2" timeout --foreground 60 \
        bash tests/linux/qemu.sh build/armvisor.bin "$LINUX_IMAGE" "$INITRD" </dev/null >"$out" 2>&1 || status=$?
    cat "$out"
    echo "QEMU exit status: $status (want non-zero, not the timeout's 124)"
    [ "$status" -ne 0 ] && [ "$status" -ne 124 ] && grep -aqE "$1" "$out" && grep -aq "nothing to run; powering off" "$out"
}

bad_vms() {
    vms_refused "VM 'b' \(/chosen/b\): property 'cpus': 3 vCPUs, but 2 pCPUs are free" "a:2:64 b:3:64" &&
        vms_refused "VM 'a' \(/chosen/a\): property 'memory': 4194304 KiB and its stage-2 tables" "a:2:4096"
}

uboot_boots_it() {
    local args='selftest.cpus=4 selftest.mem=512M selftest.module=0x4c000000' out
    out=$(mktemp)
    python3 tests/qemu_console.py --log "$out" --timeout 300 \
        --expect "Hit any key to stop autoboot" --send "" \
        --expect "=>" --send "setenv bootargs '$args'; booti 0x50000000 - \${fdtcontroladdr}" \
        -- qemu-system-aarch64 -machine virt,virtualization=on,gic-version=3 -cpu max -smp 4 -m 512M \
        -nographic -nic none -no-reboot -semihosting -bios /usr/lib/u-boot/qemu_arm64/u-boot.bin \
        -device loader,file=build/armvisor-selftest.bin,addr=0x50000000,force-raw=on \
        -device guest-loader,addr=0x4c000000,kernel=build/test-module.bin,bootargs=test-module
    local status=$?
    echo "QEMU exit status: $status"
    [ "$status" -eq 0 ] && grep -aq "loaded at 0x50000000" "$out" && clean_closing_line "$out" 40
}

step host cargo test
step clippy make --no-print-directory clippy
step portable python3 tests/portable-share.py 70
step qemu-smp4-512m qemu_suites 40 SMP=4 MEM=512M
step qemu-smp1 qemu_suites 30 SMP=1 MEM=512M
step qemu-smp2 qemu_suites 30 SMP=2 MEM=512M
step qemu-smp8 qemu_suites 40 SMP=8 MEM=512M
step qemu-mem4g qemu_suites 40 SMP=4 MEM=4G
# A GICv2 board (GIC-400 style, QEMU's gic-version=2): the same binary drives it, and its
# guests see a GICv2 (the gic2 guest: GICD_SGIR, SGIs per sender, ITARGETSR).
step qemu-gicv2-smp1 qemu_suites 30 SMP=1 MEM=512M GIC=2
step qemu-gicv2-smp4 qemu_suites 40 SMP=4 MEM=512M GIC=2
step qemu-gicv2-smp8 qemu_suites 40 SMP=8 MEM=512M GIC=2
# ARMv8.0 cores (no PAN, VHE, LSE): what the suites check that a core lacks is a skip line.
step qemu-cortex-a53 qemu_suites 40 SMP=4 MEM=512M CPU=cortex-a53
step qemu-cortex-a57 qemu_suites 40 SMP=4 MEM=512M CPU=cortex-a57
step qemu-cortex-a72 qemu_suites 40 SMP=4 MEM=512M CPU=cortex-a72
step fail refuses_with '^selftest: [0-9]+ passed, 1 failed' -- \
    -machine virt,virtualization=on,gic-version=3 -smp 2 -kernel build/armvisor-selftest-fail.bin
step el1 refuses_with "entered at EL1, but a hypervisor needs EL2" "virtualization=on" -- \
    -machine virt,gic-version=3 -smp 2 -kernel build/armvisor.bin
step panic refuses_with "E cpu1: PANIC: panicked at src/selftest/mod.rs" -- \
    -machine virt,virtualization=on,gic-version=3 -smp 2 -kernel build/armvisor-selftest.bin -append selftest.panic
step no-dtb refuses_with "no usable device tree at x0 = 0x0" -- \
    -machine virt,virtualization=on,gic-version=3 \
    -device loader,file=build/armvisor.bin,addr=0x40200000,force-raw=on -device loader,addr=0x40200000,cpu-num=0
step no-guest refuses_with "no multiboot,kernel module in /chosen and no xen,domain node: no guest to run" "nothing to run; powering off" -- \
    -machine virt,virtualization=on,gic-version=3 -smp 2 -kernel build/armvisor.bin
step gicv2-9cpus refuses_with 'the GICv2 serves at most 8 CPUs; the device tree lists 9 \(the 9th is /cpus/cpu@8\)' -- \
    -machine virt,virtualization=on,gic-version=2 -smp 8 -dtb tests/dtb/virt-gicv2-smp9.dtb -kernel build/armvisor.bin
step bad-vms bad_vms
step conformance python3 tests/conformance/run.py build/armvisor.bin build/guest-conformance.bin
step conformance-gicv2 env GIC=2 python3 tests/conformance/run.py build/armvisor.bin build/guest-conformance.bin
step uboot uboot_boots_it
step uboot-two-vms uboot_two_vms
step linux python3 tests/linux/system_test.py build/armvisor.bin "$LINUX_IMAGE" "$INITRD" build/disk.img "$logs/linux.transcript"
step linux-gicv2 env GIC=2 python3 tests/linux/system_test.py build/armvisor.bin "$LINUX_IMAGE" "$INITRD" build/disk.img "$logs/linux-gicv2.transcript"
step linux-stress-gicv2 env GIC=2 python3 tests/linux/stress_test.py build/armvisor.bin "$LINUX_IMAGE" "$INITRD" build/disk.img "$logs/linux-stress-gicv2.transcript" 60
step linux-zcu102 env BOARD=zcu102 python3 tests/linux/system_test.py build/armvisor.bin "$LINUX_IMAGE" "$INITRD" build/disk.img "$logs/linux-zcu102.transcript"
step linux-cortex-a53 env CPU=cortex-a53 python3 tests/linux/system_test.py build/armvisor.bin "$LINUX_IMAGE" "$INITRD" build/disk.img "$logs/linux-cortex-a53.transcript"
step linux-vms python3 tests/linux/vms_test.py build/armvisor.bin "$LINUX_IMAGE" "$INITRD" build/disk.img "$logs/linux-vms.transcript"
step linux-hostile python3 tests/linux/hostile_test.py build/armvisor.bin "$LINUX_IMAGE" "$INITRD" build/disk.img \
    build/guest-ticker.bin build/guest-hostile.bin "$logs/linux-hostile.transcript"

echo
[ $failed -eq 0 ] || echo "failed steps: ${failures[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
