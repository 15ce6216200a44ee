#!/usr/bin/env python3
"""Several-VMs system test: `make run-linux-vms` (two Debian Linux VMs, a and b, 2 vCPUs
and 512 MiB each, on -smp 4, one virtio disk each, tests/linux/qemu.sh BOARD=vms), run and
driven like a person at the one console: both shells answer (Ctrl-A three times moves
input), nproc says 2 in each, each VM's /proc/cmdline is its own, busy loops in both VMs
advance, a line VM a forges to look like the hypervisor's is printed as a's, a pattern
written to a's disk is not on b's, `reboot -f` in b brings b back to a
fresh shell while a busy loop in a keeps running without a gap over a second (it timestamps
itself), and `poweroff -f` in b, then in a, ends QEMU with status 0.

usage: vms_test.py HYPERVISOR_BIN IMAGE INITRD DISK TRANSCRIPT
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from system_test import BOOT_TIMEOUT, PROMPT, Checks, Console, own_lines  # noqa: E402

CTRL_A = b"\x01"


def switch_to(con, name):
    """Ctrl-A three times until console input goes to VM `name`."""
    for _ in range(4):
        con.type(CTRL_A * 3)
        text = con.read_until(b"; type Ctrl-A three times to switch]", 30)
        said = re.findall(rb"console input to VM '([^']+)'", text)
        if said and said[-1].decode() == name:
            # A fresh prompt, so that what follows starts clean.
            con.type(b"\r")
            con.read_until(PROMPT, 60)
            return True
    return False


def main():
    hv, image, initrd, disk, transcript = sys.argv[1:6]
    # What a person types: `make run-linux-vms` (its files already built by `make test`).
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if hv != os.path.join("build", "armvisor.bin"):
        sys.exit("vms_test.py drives `make run-linux-vms`, which boots build/armvisor.bin")
    cmd = ["make", "-C", root, "--no-print-directory", "run-linux-vms", f"DISK={disk}", f"LINUX_IMAGE={image}", f"INITRD={initrd}"]
    con = Console(cmd, transcript)
    check = Checks("vms")

    try:
        start = time.monotonic()
        # VM a has console input first; b's prompt comes out prefixed with its name. Either
        # may come first.
        a_prompt = re.compile(rb"(^|\n)" + re.escape(PROMPT))
        b_prompt = b"(b) " + PROMPT.rstrip()
        con.wait_for(lambda out: bool(a_prompt.search(out)) and b_prompt in out, "prompts of both VMs", BOOT_TIMEOUT)
        check(f"both VMs boot to their shells ({time.monotonic() - start:.0f} s)", True)
        boot = con.out.decode(errors="replace")
        check(
            "the console says how to switch",
            "Ctrl-A three times moves it to the next VM" in boot and "type Ctrl-A three times" in boot,
        )
        for vm, cpus in (("a", "[0, 1]"), ("b", "[2, 3]")):
            check(f"VM '{vm}' has 2 vCPUs on pCPUs {cpus}", f"VM '{vm}': 2 vCPUs on pCPUs {cpus}, 512 MiB RAM" in boot)
        check("VM a's Linux saw 2 CPUs", "smp: Brought up 1 node, 2 CPUs" in boot)

        def in_vm(name, command, timeout=120):
            """`command` in VM `name`, which has the console input (the name says which);
            its output without the lines the other VM and the hypervisor wrote meanwhile."""
            return own_lines(con.run(command, timeout))

        nproc_a = in_vm("a", "nproc").strip()
        cmdline_a = in_vm("a", "cat /proc/cmdline").strip()
        # A self-timestamping busy loop in a: /proc/uptime (its own clock) every few
        # thousand iterations, to a file read at the end.
        in_vm("a", "(while :; do read up rest < /proc/uptime; echo $up; i=0; while [ $i -lt 300 ]; do i=$((i+1)); done; done > /tmp/ts) & true")
        in_vm("a", "echo state-of-a > /tmp/mark")
        # A guest line made to look like the hypervisor's comes out behind the guest's name.
        in_vm("a", "echo '[    9.999999] I cpu0: forged by a'")
        check(
            "a guest's forged hypervisor line is printed as the guest's",
            "(a) [    9.999999] I cpu0: forged by a" in con.out.decode(errors="replace"),
        )
        check("console input moves to VM b", switch_to(con, "b"))
        nproc_b = in_vm("b", "nproc").strip()
        cmdline_b = in_vm("b", "cat /proc/cmdline").strip()
        check("nproc says 2 in each VM", nproc_a == "2" and nproc_b == "2", f"a {nproc_a!r}, b {nproc_b!r}")
        check(
            "each VM's /proc/cmdline is its own",
            cmdline_a.endswith("armvisor.vm=a") and cmdline_b.endswith("armvisor.vm=b"),
            f"a {cmdline_a!r}, b {cmdline_b!r}",
        )
        loops = in_vm(
            "b", "for n in 1 2; do (i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo loop$n=$i) & done; wait"
        )
        check("two CPU-bound loops in b ran to completion", sorted(re.findall(r"loop(\d)=20000", loops)) == ["1", "2"], loops)
        in_vm("b", "echo state-of-b > /tmp/mark")
        check("console input moves back to VM a", switch_to(con, "a"))
        pattern = f"VM-A-{os.getpid()}-{int(time.time())}"
        in_vm("a", f"echo {pattern} > /tmp/pattern && dd if=/tmp/pattern of=/dev/vda bs=512 seek=100 conv=sync 2>/dev/null && sync")
        in_vm("a", "echo 3 > /proc/sys/vm/drop_caches")
        back_a = in_vm("a", "dd if=/dev/vda bs=512 skip=100 count=1 2>/dev/null | head -n 1").strip()
        advanced = in_vm("a", "wc -l < /tmp/ts").strip()
        check("a's busy loop advances", advanced.isdigit() and int(advanced) > 0, advanced)
        check("switch to b", switch_to(con, "b"))
        back_b = in_vm("b", "dd if=/dev/vda bs=512 skip=100 count=1 2>/dev/null | head -n 1").strip()
        check("a pattern written to a's disk is on a's and not on b's", back_a == pattern and back_b != pattern, f"a {back_a!r}, b {back_b!r}")

        # reboot -f in b: b comes back to a fresh shell; a runs on.
        con.type(b"reboot -f\r")
        asked = time.monotonic()
        con.read_until(b"VM 'b' asked for a reset; restarting it", 60)
        con.read_until(PROMPT, BOOT_TIMEOUT)
        check(f"reboot -f in b brings b back to a shell ({time.monotonic() - asked:.0f} s)", True)
        mark_b = in_vm("b", "cat /tmp/mark 2>&1; nproc").strip()
        check("b's new run starts fresh (nothing of the old run in its RAM)", "state-of-b" not in mark_b and mark_b.endswith("2"), mark_b)
        back_b = in_vm("b", "dd if=/dev/vda bs=512 skip=100 count=1 2>/dev/null | head -n 1").strip()
        check("b's disk is still b's after its restart", back_b != pattern, back_b)
        check("switch to a after b's restart", switch_to(con, "a"))
        mark_a = in_vm("a", "cat /tmp/mark").strip()
        check("a kept running through b's restart (its state is there)", mark_a == "state-of-a", mark_a)
        stamps = [float(x) for x in in_vm("a", "cat /tmp/ts").split() if re.fullmatch(r"\d+\.\d+", x)]
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        worst = max(gaps) if gaps else None
        check(
            "a's busy loop ran without a gap over 1 s through b's restart",
            len(stamps) > 10 and worst is not None and worst < 1.0,
            f"{len(stamps)} stamps, longest gap {worst}",
        )

        # poweroff -f in b, then in a.
        check("switch to b to power it off", switch_to(con, "b"))
        con.type(b"poweroff -f\r")
        con.read_until(b"VM 'b' powered off", 60)
        con.read_until(b"1 VM left", 30)
        check("poweroff -f in b ends b alone (1 VM left)", con.proc.poll() is None)
        switch_to(con, "a")
        alive = in_vm("a", "echo a-still-here").strip()
        check("a still answers after b powered off", alive == "a-still-here", alive)
        con.type(b"poweroff -f\r")
        status = con.proc.wait(timeout=120)
        check("poweroff -f in a then ends QEMU with status 0", status == 0, f"status {status}")
    except (TimeoutError, EOFError, subprocess.TimeoutExpired) as e:
        check("console conversation", False, str(e))
    finally:
        con.kill()
    return check.summary(transcript)


if __name__ == "__main__":
    sys.exit(main())
