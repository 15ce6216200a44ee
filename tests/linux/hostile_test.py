#!/usr/bin/env python3
"""Isolation system test: three VMs on -smp 4 (tests/linux/qemu.sh BOARD=vms): Debian Linux
on 2 vCPUs with its disk, next to two test guests of one vCPU each
(tests/guests/standalone): `ticker`, quiet, printing a line a second, and `hostile`, which
floods the console, storms faults and SGIs and abuses PSCI without end. The Linux VM has
the console input. Its shell must answer throughout, promptly; `sleep` must take the time
it says (its timer keeps time); the ticker must keep ticking once a second; the hostile VM
must be running (its rounds advance) with its lost output counted, not silently dropped;
and `poweroff -f` in Linux leaves the two test guests running (2 VMs left).

usage: hostile_test.py HYPERVISOR_BIN IMAGE INITRD DISK TICKER HOSTILE TRANSCRIPT
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from system_test import BOOT_TIMEOUT, PROMPT, Checks, Console, own_lines  # noqa: E402

# How long the hostile VM runs next to the Linux VM while the checks go on.
WATCH_S = 30


def main():
    hv, image, initrd, disk, ticker, hostile, transcript = sys.argv[1:8]
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ.update(
        BOARD="vms",
        SMP="4",
        MEM="2G",
        DISK=disk,
        VMS=f"linux:2:512 ticker:1:16:{ticker} hostile:1:16:{hostile}",
    )
    os.environ.setdefault("LINUX_ARGS", "console=ttyAMA0 earlycon")
    cmd = ["bash", os.path.join(here, "qemu.sh"), hv, image, initrd]
    con = Console(cmd, transcript)
    check = Checks("hostile")

    def run(command, timeout=120):
        """`command` in the Linux VM; its output without the other VMs' lines."""
        return own_lines(con.run(command, timeout))

    try:
        start = time.monotonic()
        a_prompt = re.compile(rb"(^|\n)" + re.escape(PROMPT))
        con.wait_for(lambda out: bool(a_prompt.search(out)), "Linux prompt", BOOT_TIMEOUT)
        check(f"Linux boots to its shell next to a hostile VM ({time.monotonic() - start:.0f} s)", True)
        boot = con.out.decode(errors="replace")
        check("the hostile VM started", "(hostile) hostile: up" in boot)
        check("the ticker started", "(ticker) ticker: up" in boot)

        # WATCH_S seconds of commands, each timed: the shell answers, `sleep 1` takes 1 s.
        slowest, sleeps = 0.0, []
        watch_start = time.monotonic()
        up_start = float(run("cut -d' ' -f1 /proc/uptime").strip())
        while time.monotonic() - watch_start < WATCH_S:
            t = time.monotonic()
            answer = run("echo alive", 60).strip()
            slowest = max(slowest, time.monotonic() - t)
            if answer != "alive":
                check("the shell answers", False, answer)
                break
            t = time.monotonic()
            run("sleep 1", 60)
            sleeps.append(time.monotonic() - t)
        wall = time.monotonic() - watch_start
        up_end = float(run("cut -d' ' -f1 /proc/uptime").strip())
        check(f"the shell answered every command within 5 s (slowest {slowest:.2f} s)", slowest < 5, f"{slowest:.2f} s")
        check(
            f"'sleep 1' took 1 s each time ({len(sleeps)} runs, {min(sleeps):.2f}-{max(sleeps):.2f} s)",
            bool(sleeps) and min(sleeps) >= 0.95 and max(sleeps) < 2.5,
            f"{sleeps}",
        )
        drift = (up_end - up_start) / wall
        check(f"Linux's clock kept time ({up_end - up_start:.1f} s of uptime in {wall:.1f} s)", 0.9 < drift < 1.1, f"{drift:.3f}")
        out = con.out.decode(errors="replace")
        ticks = [int(n) for n in re.findall(r"\(ticker\) ticker: (\d+)", out)]
        check(
            f"the ticker ticked through it ({len(ticks)} ticks, up to {max(ticks, default=0)})",
            len(ticks) >= WATCH_S * 0.8 and ticks == sorted(ticks),
            f"{len(ticks)} ticks",
        )
        reports = re.findall(r"\(hostile\) hostile: round (\d+), faults (\d+), sgis (\d+), other (\d+)", out)
        rounds = [int(r[0]) for r in reports]
        check(f"the hostile VM ran all along ({max(rounds, default=0)} rounds)", len(rounds) >= 2, f"{rounds[-3:]}")
        last = reports[-1] if reports else None
        check(
            "its faults were injected back to it, each one (400 a round), with nothing unexpected",
            last is not None and int(last[1]) == 400 * int(last[0]) and int(last[3]) == 0,
            f"{last}",
        )
        check("it saw no PSCI answer the architecture does not allow", "psci surprise" not in out)
        # Its flood (2,000 bytes a round, in 50-byte lines) either reached the console or was
        # counted as lost: none of it is missing silently. The count runs up to its last
        # report of N rounds, and what follows it comes from at most 16 rounds more; a loss
        # report may cut a line in two (not counted as a whole line).
        lost = [int(n) for n in re.findall(r"\(hostile\) \[armvisor: (\d+) bytes of output lost\]", out)]
        flood = out.count("(hostile) flood-flood-flood-flood-flood-flood-flood-flood-!\r\n") + out.count(
            "(hostile) flood-flood-flood-flood-flood-flood-flood-flood-!\n"
        )
        n = max(rounds, default=0)
        seen = flood * 50 + sum(lost)
        check(
            f"its flood was printed or counted as lost, none missing ({flood} lines, {sum(lost)} bytes in {len(lost)} loss reports)",
            n > 0 and 2000 * n - 100 * (len(lost) + 1) <= seen <= 2000 * (n + 16),
            f"{seen} bytes for {n} rounds",
        )
        check("the hypervisor did not panic", "PANIC" not in out)
        con.type(b"poweroff -f\r")
        con.read_until(b"VM 'linux' powered off", 60)
        con.read_until(b"2 VMs left", 30)
        check("poweroff -f in Linux ends it alone (2 VMs left)", con.proc.poll() is None)
    except (TimeoutError, EOFError, subprocess.TimeoutExpired) as e:
        check("console conversation", False, str(e))
    finally:
        con.kill()
    return check.summary(transcript)


if __name__ == "__main__":
    sys.exit(main())
