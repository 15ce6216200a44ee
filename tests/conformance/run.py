#!/usr/bin/env python3
"""The differential conformance suite (`make conformance`): runs the conformance guest
(tests/conformance/guest, an arm64 Image) twice with the same image and arguments, directly
on QEMU virt at EL1 (QEMU's own GIC, timers, PSCI and devices) and as the guest of armvisor
(a multiboot,kernel module, as many vCPUs as QEMU has CPUs), then prints one row per check
with both verdicts:

    timer-disable-clears-pending   qemu: pass   armvisor: FAIL (still pending ...)   -> FAIL

A check passes when both runs pass it (each verdict is the architecture's, decided by the
guest; rtc-wallclock is decided here, against this machine's clock). Then
"N passed, N failed"; the exit status is 1 if any check failed.

A run that hangs (no output for IDLE_S seconds) or stops (a fatal exception, QEMU gone)
fails the rows of the group it was in that were not reported, naming the group, and is
started again after that group (bootargs conf.from=N) until every group ran once.

usage: run.py HYPERVISOR_BIN GUEST_IMAGE [--logs DIR] [--verbose]
Environment: QEMU (qemu-system-aarch64), SMP (4), GIC (virt's gic-version, 3 or 2; 3),
CPU (QEMU -cpu, max,pauth-impdef=on), CONF_ARGS (more bootargs for both runs),
CONF_IDLE_S (the hang timeout, 30).
"""
import argparse
import os
import re
import select
import signal
import subprocess
import sys
import time

# No protocol line for this long: hung (the longest group prints within ~6 s).
IDLE_S = int(os.environ.get("CONF_IDLE_S", "30"))
RUN_S = 150  # one QEMU run at most
SIDE_S = 300  # all the runs of one side (restarts included) at most
WALLCLOCK_SLACK_S = 3
QEMU = os.environ.get("QEMU", "qemu-system-aarch64")
SMP = int(os.environ.get("SMP", "4"))
# The virt machine's GIC (both runs): 3, or 2 (the guest finds which from its device tree).
GIC = os.environ.get("GIC") or "3"
# The bootargs of both runs; CONF_ARGS adds to them (conf.hang=GROUP tests a hang).
BASE_ARGS = " ".join(["conformance", *os.environ.get("CONF_ARGS", "").split()])
COMMON = ["-cpu", os.environ.get("CPU", "max,pauth-impdef=on"), "-smp", str(SMP), "-m", "512M", "-nographic", "-nic", "none", "-no-reboot",
          # Modern (version 2) virtio-mmio transports, as armvisor's window is.
          "-global", "virtio-mmio.force-legacy=false"]

HV_LINE = re.compile(r"^\[\s*\d+\.\d+\] [A-Z] cpu[0-9?]+: ")


def qemu_direct(image, args):
    return [QEMU, "-machine", f"virt,gic-version={GIC}", *COMMON, "-kernel", image, "-append", args]


def qemu_armvisor(hv, image, args):
    # guest-loader's option syntax: a comma inside a value is written twice.
    return [QEMU, "-machine", f"virt,virtualization=on,gic-version={GIC}", *COMMON, "-semihosting", "-kernel", hv,
            "-device", f"guest-loader,addr=0x50000000,kernel={image},bootargs={args.replace(',', ',,')}"]


class Run:
    """One side (qemu or armvisor): the plan, the rows, what went wrong, the log."""

    def __init__(self, name):
        self.name = name
        self.plan = []  # [(group, [rows])]
        self.rows = {}  # row -> (verdict, what failed, what was seen)
        self.notes = []
        self.log = []
        self.seconds = 0.0

    def group_index(self, group):
        return next((i for i, (g, _) in enumerate(self.plan) if g == group), None)


def records(out, log):
    """Yields protocol records ('@conf ' ... ' ;') from the byte stream lines, joining a
    record a hypervisor log line broke in two."""
    held = None
    for raw in out:
        line = raw.rstrip("\r\n")
        log.append(line)
        if held is not None:
            if HV_LINE.match(line):
                continue
            held += line
        else:
            at = line.find("@conf ")
            if at < 0:
                continue
            held = line[at + len("@conf "):]
        if held.endswith(" ;"):
            yield held[:-2]
            held = None


def lines_of(proc, deadline, idle):
    """The lines QEMU prints, until it exits, the deadline passes, or it is quiet for
    `idle` seconds; then (as the generator's return value) why it stopped."""
    buf = b""
    last = time.monotonic()
    fd = proc.stdout.fileno()
    while True:
        now = time.monotonic()
        if now > deadline:
            return f"the run took over {RUN_S} s"
        if now - last > idle:
            return f"no output for {idle} s"
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            if proc.poll() is not None:
                return "QEMU exited"
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return "QEMU exited"
        buf += chunk
        last = time.monotonic()
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.decode("utf-8", "replace")


def stop(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def run_once(run, cmd, start_from):
    """One QEMU run from group `start_from`: returns the index of the group to restart
    after, or None when the guest finished (or nothing more can be done)."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    current = None  # the group that began and has not ended
    last_begun = None  # the index of the last group this run began
    done = False
    fatal = None
    gen = lines_of(proc, started + RUN_S, IDLE_S)
    why = None

    def pump():
        nonlocal why
        while True:
            try:
                yield next(gen)
            except StopIteration as e:
                why = e.value
                return

    try:
        for rec in records(pump(), run.log):
            kind, _, rest = rec.partition(" ")
            if kind == "plan":
                parts = rest.split()
                if parts and run.group_index(parts[0]) is None:
                    run.plan.append((parts[0], parts[1:]))
            elif kind == "begin":
                current = rest.split()[0] if rest else None
                last_begun = run.group_index(current)
            elif kind == "end":
                current = None
            elif kind == "row":
                name, _, tail = rest.partition(" ")
                verdict, _, detail = tail.partition(" ")
                if verdict == "host":
                    verdict, detail = host_verdict(name, detail)
                if verdict == "pass":
                    fails, notes = "", detail
                else:
                    fails, _, notes = detail.partition(" | ")
                run.rows.setdefault(name, (verdict, fails.strip(), notes.strip()))
            elif kind == "fatal":
                fatal = rest
            elif kind == "note":
                run.notes.append(f"{run.name}: {rest}")
            elif kind == "done":
                done = True
                break
    finally:
        if done:
            # SYSTEM_OFF ends QEMU; give it a moment.
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        stop(proc)
        run.seconds += time.monotonic() - started
    if done:
        return None
    reason = f"fatal: {fatal}" if fatal else (why or "QEMU exited")
    if not run.plan:
        tail = " | ".join(line for line in run.log[-5:] if line.strip())
        run.notes.append(f"{run.name}: no plan printed ({reason}); its last lines: {tail}")
        return None
    if current is None:
        # Between groups: the next one is where it stopped.
        nxt = start_from if last_begun is None else last_begun + 1
        if nxt >= len(run.plan):
            run.notes.append(f"{run.name}: {reason} after the last group, without its closing line")
            return None
        current = run.plan[nxt][0]
    i = max(run.group_index(current), start_from)
    current = run.plan[i][0]
    rows = run.plan[i][1]
    missing = [r for r in rows if r not in run.rows]
    at = f" at {missing[0]}" if missing else ""
    run.notes.append(f"{run.name}: {reason} in group {current}{at}; restarting after it")
    for r in missing:
        run.rows[r] = ("fail", f"guest {'stopped' if fatal or why == 'QEMU exited' else 'hung'} in group {current}{at}: {reason}", "")
    return i + 1 if i + 1 < len(run.plan) else None


def host_verdict(name, detail):
    """The rows the guest leaves to the runner."""
    if name == "rtc-wallclock":
        m = re.search(r"epoch=(\d+)", detail)
        if not m:
            return "fail", f"no epoch in {detail!r}"
        got, now = int(m.group(1)), time.time()
        diff = got - now
        ok = abs(diff) <= WALLCLOCK_SLACK_S
        return ("pass" if ok else "fail"), f"RTCDR {got}, host clock {now:.0f} ({diff:+.0f} s)"
    return "fail", f"unknown host row: {detail}"


def run_side(run, make_cmd):
    start_from = 0
    while start_from is not None:
        if run.seconds > SIDE_S:
            run.notes.append(f"{run.name}: over {SIDE_S} s in all; the groups from {run.plan[start_from][0]} on are not run")
            for _, rows in run.plan[start_from:]:
                for r in rows:
                    run.rows.setdefault(r, ("fail", f"not run: the {run.name} side took over {SIDE_S} s", ""))
            return
        args = BASE_ARGS if start_from == 0 else f"{BASE_ARGS} conf.from={start_from}"
        start_from = run_once(run, make_cmd(args), start_from)


def cell(row, verbose):
    verdict, fails, notes = row
    if verdict == "pass":
        return f"pass ({notes})" if verbose and notes else "pass"
    text = fails + (f"; {notes}" if verbose and notes else "")
    return f"FAIL ({text})" if text else "FAIL"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("hv")
    ap.add_argument("image")
    ap.add_argument("--logs", default="build/logs")
    ap.add_argument("--verbose", action="store_true", help="print every row's details")
    a = ap.parse_args()
    for f in (a.hv, a.image):
        if not os.path.isfile(f):
            sys.exit(f"error: {f} not found")
    os.makedirs(a.logs, exist_ok=True)

    if GIC not in ("2", "3"):
        sys.exit(f"error: GIC={GIC}: the suite runs on gic-version 3 or 2")
    print(f"==> conformance: GICv{GIC}, -smp {SMP}, -cpu {COMMON[1]}", flush=True)
    sides = [Run("qemu"), Run("armvisor")]
    makers = [lambda args: qemu_direct(a.image, args), lambda args: qemu_armvisor(a.hv, a.image, args)]
    for run, make in zip(sides, makers):
        print(f"==> conformance: {run.name} run", flush=True)
        run_side(run, make)
        # A GICv2 run's logs beside a GICv3 run's (make test runs both).
        log = os.path.join(a.logs, f"conformance{'-gicv2' if GIC == '2' else ''}-{run.name}.log")
        with open(log, "w") as f:
            f.write("\n".join(run.log) + "\n")
        for n in run.notes:
            print(f"    {n}")
        print(f"    {run.seconds:.0f} s, log {log}", flush=True)

    q, h = sides
    plan = q.plan or h.plan
    if q.plan and h.plan and q.plan != h.plan:
        print("note: the two runs printed different plans (the same image should not)")
    names = [r for _, rows in plan for r in rows]
    for extra in list(q.rows) + list(h.rows):
        if extra not in names:
            names.append(extra)
    if not names:
        print("no rows: neither run printed a plan")
        print("0 passed, 1 failed")
        return 1
    w = max(len(n) for n in names)
    passed = failed = 0
    print()
    for n in names:
        qr = q.rows.get(n, ("fail", "not reported", ""))
        hr = h.rows.get(n, ("fail", "not reported", ""))
        ok = qr[0] == "pass" and hr[0] == "pass"
        passed += ok
        failed += not ok
        print(f"{n:<{w}}  qemu: {cell(qr, a.verbose)}   armvisor: {cell(hr, a.verbose)}   -> {'pass' if ok else 'FAIL'}")
    print()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
