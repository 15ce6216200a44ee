#!/usr/bin/env python3
"""Linux stress test: boots the guest under the hypervisor (tests/linux/qemu.sh, 4 vCPUs;
GIC and CPU from the environment as for the system test) and for SECONDS keeps four
CPU-bound loops running while a mover re-pins each of them to another CPU every 0.2 s
(taskset: every move is a migration, so a reschedule IPI) and a fifth loop drops the page
cache (function-call IPIs to every CPU). Then it reads the guest's kernel log: no RCU stall,
soft lockup, hung task, CSD lock timeout (an IPI that never arrived) or warning; every loop
advanced; IPIs were counted on every CPU during the run. Each step prints PASS or FAIL.

usage: stress_test.py HYPERVISOR_BIN IMAGE INITRD DISK TRANSCRIPT [SECONDS]
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from system_test import BOOT_TIMEOUT, PROMPT, Checks, Console, ipi_totals  # noqa: E402

# What a kernel prints when a CPU stopped answering: RCU stalls, lockups, a CSD lock
# (smp_call_function) that waited too long for its IPI, and warnings or oopses.
TROUBLE = re.compile(
    r"rcu.*(stall|self-detected)|soft lockup|hard LOCKUP|hung_task|blocked for more than"
    r"|csd: |CSD lock|WARNING:|BUG:|Oops|Call trace",
    re.IGNORECASE,
)


def main():
    hv, image, initrd, disk, transcript = sys.argv[1:6]
    seconds = int(sys.argv[6]) if len(sys.argv) > 6 else 60
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ.update(SMP="4", MEM="2G", DISK=disk)
    con = Console(["bash", os.path.join(here, "qemu.sh"), hv, image, initrd], transcript)
    check = Checks("stress")

    try:
        con.read_until(PROMPT, BOOT_TIMEOUT)
        check("boots to the shell", True)
        con.quiet_kernel()
        before = ipi_totals(con.run("cat /proc/interrupts"))
        script = (
            "rm -f /tmp/stop /tmp/count*; pids=; "
            "for n in 0 1 2 3; do (i=0; while [ ! -e /tmp/stop ]; do i=$((i+1)); done; echo $i > /tmp/count$n) & "
            "pids=\"$pids $!\"; done; "
            "(while [ ! -e /tmp/stop ]; do echo 1 > /proc/sys/vm/drop_caches; sleep 0.1; done) & "
            f"end=$(( $(cut -d. -f1 /proc/uptime) + {seconds} )); moves=0; failed=0; "
            "while [ $(cut -d. -f1 /proc/uptime) -lt $end ]; do "
            "  k=0; for p in $pids; do taskset -p $(( 1 << ((moves + k) % 4) )) $p >/dev/null 2>&1 || failed=$((failed+1)); "
            "  k=$((k+1)); done; moves=$((moves+1)); sleep 0.2; "
            "done; touch /tmp/stop; wait; echo loops=$(echo $pids | wc -w) moves=$moves failed=$failed; "
            "cat /tmp/count0 /tmp/count1 /tmp/count2 /tmp/count3"
        )
        start = time.monotonic()
        out = con.run(script, timeout=seconds + 120)
        took = time.monotonic() - start
        check(f"the shell answered after the {seconds} s run ({took:.0f} s)", took < seconds + 60, f"{took:.0f} s")
        mover = re.search(r"loops=(\d+) moves=(\d+) failed=(\d+)", out)
        counts = [int(x) for x in re.findall(r"^(\d+)$", out, re.MULTILINE)]
        check(
            "the mover re-pinned all four loops to another CPU, over and over",
            bool(mover) and mover.group(1) == "4" and int(mover.group(2)) >= seconds and mover.group(3) == "0",
            out.strip()[-200:],
        )
        check("all four loops advanced", len(counts) == 4 and all(c > 0 for c in counts), str(counts))
        after = ipi_totals(con.run("cat /proc/interrupts"))
        grew = [a - b for a, b in zip(after, before)]
        check("IPIs taken on every CPU during the run", all(g > 0 for g in grew), f"IPIs during the run {grew}")
        log = con.run("dmesg")
        trouble = [l for l in log.splitlines() if TROUBLE.search(l)]
        check("no RCU stall, lockup, CSD timeout or warning in the kernel log", not trouble, "; ".join(trouble[:5]))
        con.type(b"poweroff -f\r")
        status = con.proc.wait(timeout=120)
        check("poweroff -f ends QEMU with status 0", status == 0, f"status {status}")
    except (TimeoutError, EOFError) as e:
        check("console conversation", False, str(e))
    finally:
        con.kill()
    return check.summary(transcript)


if __name__ == "__main__":
    sys.exit(main())
