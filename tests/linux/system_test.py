#!/usr/bin/env python3
"""Linux system test: boots the guest under the hypervisor (tests/linux/qemu.sh) with a
virtio-blk disk and drives its shell like a person: waits for the prompt, checks nproc and
/proc/interrupts, runs four CPU-bound loops in parallel, writes a pattern to /dev/vda and
reads it back through a dropped page cache, reads the clock (date, hwclock: the emulated
PL031 counts from the board's RTC) and lets an RTC alarm fire, then `poweroff -f` and checks
QEMU's exit status. GIC, CPU and BOARD (virt or zcu102) choose the machine, as for qemu.sh. Each step prints PASS or FAIL; on any failure the console transcript is kept.

usage: system_test.py HYPERVISOR_BIN IMAGE INITRD DISK TRANSCRIPT
"""
import os
import re
import selectors
import signal
import subprocess
import sys
import time

PROMPT = b"armvisor-guest# "
# A line of the hypervisor's own on the console (`[    1.234567] W cpu3: ...`), with the
# line break written before it.
HYPERVISOR_LINE = re.compile(rb"\r\n\[\s*\d+\.\d+\] [EWIDT] cpu[\d?]+: [^\n]*\n")
BOOT_TIMEOUT = 600
STEP_TIMEOUT = 300


class Console:
    def __init__(self, cmd, transcript):
        # A session of its own: qemu.sh may run QEMU as a child (not exec), and a test that
        # ends early must not leave it running.
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.out = bytearray()
        self.pos = 0
        self.log = open(transcript, "wb")

    def kill(self):
        """Ends QEMU and the script around it, if they still run."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def find(self, pattern):
        """Where `pattern` (a token: a prompt, a marker, no line break in it) stands in what
        was read since the last match: (start, end) in `self.out`, or None. The console ends
        a VM's line in the making before it writes a hypervisor line of its own, so such a
        line may cut a token in two ("armv", the line, "isor-guest# "); the token is also
        found across one (the hypervisor's lines and the break before each left out)."""
        at = self.out.find(pattern, self.pos)
        if at >= 0:
            return at, at + len(pattern)
        tail = bytes(self.out[self.pos:])
        kept, last = [], 0
        for m in HYPERVISOR_LINE.finditer(tail):
            kept.append((last, m.start()))
            last = m.end()
        if not kept:
            return None
        kept.append((last, len(tail)))
        at = b"".join(tail[a:b] for a, b in kept).find(pattern)
        if at < 0:
            return None

        def raw(k):
            for a, b in kept:
                if k < b - a:
                    return a + k
                k -= b - a
            return len(tail)

        return self.pos + raw(at), self.pos + raw(at + len(pattern) - 1) + 1

    def read_until(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(pattern)
            if found:
                text = bytes(self.out[self.pos:found[0]])
                self.pos = found[1]
                return text
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {pattern!r} within {timeout} s")
            for _ in self.sel.select(timeout=min(left, 1.0)):
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise EOFError(f"QEMU exited (status {self.proc.wait()}) while waiting for {pattern!r}")
                self.out += chunk
                self.log.write(chunk)
                self.log.flush()

    def wait_for(self, done, what, timeout):
        """Reads until `done(everything read so far)` holds; then reading goes on from the
        end. For output whose order is not known (several VMs on one console)."""
        deadline = time.monotonic() + timeout
        while not done(bytes(self.out)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {timeout} s")
            try:
                self.read_until(b"\0never\0", 1)
            except TimeoutError:
                pass
        self.pos = len(self.out)

    def type(self, keys):
        """Sends `keys` (bytes) to the console as if typed, at once."""
        self.proc.stdin.write(keys)
        self.proc.stdin.flush()

    def quiet_kernel(self):
        """From here on only emergency kernel messages reach the console (`dmesg -n 1`; the
        kernel log keeps the rest): a warning printed in the middle of a command's output
        (TCG's `hrtimer: interrupt took 60177072 ns`) would read as part of it."""
        self.run("dmesg -n 1")

    def run(self, command, timeout=STEP_TIMEOUT):
        """Runs a shell command and returns its output (between two markers)."""
        marker = f"__{int(time.monotonic() * 1000)}__"
        self.type(f"echo {marker}; {command}; echo {marker}END\r".encode())
        self.read_until(f"{marker}\r\n".encode(), timeout)
        text = self.read_until(f"{marker}END".encode(), timeout)
        self.read_until(PROMPT, timeout)
        return text.decode(errors="replace").replace("\r", "")


class Checks:
    """PASS/FAIL lines prefixed with `label`, counted for the closing line."""

    def __init__(self, label):
        self.label = label
        self.passed = 0
        self.failures = []

    def __call__(self, name, ok, detail=""):
        print(f"{'PASS' if ok else 'FAIL'} {self.label}: {name}" + (f" ({detail})" if detail and not ok else ""), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failures.append(name)

    def summary(self, transcript):
        """Prints the closing line; the exit status."""
        tail = f"; transcript in {transcript}" if self.failures else ""
        print(f"{self.label}: {self.passed} passed, {len(self.failures)} failed{tail}")
        return 1 if self.failures else 0


def own_lines(text):
    """`text` without the lines other VMs and the hypervisor wrote in between: on a console
    several VMs share, those are `(name) ...` lines, `[armvisor: ...]` notices and the
    hypervisor's log lines."""
    foreign = re.compile(r"^(\([\w@.-]+\) |\[armvisor: |\[\s*\d+\.\d+\] [EWIDT] cpu)")
    return "\n".join(l for l in text.split("\n") if not foreign.match(l))


def irq_total(interrupts, name):
    """Interrupts of the /proc/interrupts row naming `name`, summed over the 4 CPUs; None
    without such a row."""
    rows = [l.split() for l in interrupts.splitlines() if name in l.split()]
    return sum(int(x) for x in rows[0][1:5]) if rows else None


def ipi_totals(interrupts):
    """IPIs taken by each of the 4 CPUs, summed over the IPI rows of /proc/interrupts."""
    totals = [0, 0, 0, 0]
    for line in interrupts.splitlines():
        fields = line.split()
        if fields and re.fullmatch(r"IPI\d+:", fields[0]):
            for cpu in range(4):
                totals[cpu] += int(fields[1 + cpu])
    return totals


def clock_checks(con, check, boot, board):
    """The guest's real-time clock: every VM has an emulated PL031 that counts from the
    board's wall clock, which the hypervisor read from the board's PL031 at boot. QEMU's
    virt has one (it reads the host's clock); QEMU's ZCU102 model has none, so there the
    guest's clock starts at 0 (1970) and the hypervisor says why."""
    has_rtc = board != "zcu102"
    check("Linux probed the emulated PL031 (rtc-pl031)", "rtc-pl031 9010000.pl031: registered as rtc0" in boot)
    if has_rtc:
        said = re.search(r"wall clock: (\d{4})-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s\) from the PL031 at 0x9010000", boot)
        check("the hypervisor read the board's RTC at boot", said is not None)
        check("Linux set its clock from the RTC", "rtc-pl031 9010000.pl031: setting system clock to" in boot)
    else:
        check("the hypervisor says the board has no RTC", "wall clock: no arm,pl031 RTC in the device tree" in boot)
    want = str(time.gmtime().tm_year if has_rtc else 1970)
    year = con.run("date -u +%Y").strip()
    check(f"date says {want}", year == want, year)
    if has_rtc:
        guest, host = int(con.run("date -u +%s").strip()), time.time()
        check("the guest's clock is within 60 s of the host's", abs(guest - host) < 60, f"{guest - host:+.0f} s")
    hwclock = con.run("hwclock -r -u").strip()
    check(f"hwclock -r reads {want} from the RTC", want in hwclock, hwclock)
    # The alarm: the RTC's match raises SPI 34 two seconds on, while the shell sleeps.
    before = irq_total(con.run("cat /proc/interrupts"), "rtc-pl031")
    con.run("echo 0 > /sys/class/rtc/rtc0/wakealarm; echo +2 > /sys/class/rtc/rtc0/wakealarm")
    armed = con.run("cat /sys/class/rtc/rtc0/wakealarm").strip()
    con.run("sleep 4")
    after = irq_total(con.run("cat /proc/interrupts"), "rtc-pl031")
    left = con.run("cat /sys/class/rtc/rtc0/wakealarm").strip()
    check(
        "an RTC alarm fires (wakealarm +2 s: the rtc-pl031 interrupt counted, the alarm gone)",
        armed != "" and before is not None and after is not None and after > before and left == "",
        f"armed {armed!r}, rtc-pl031 interrupts {before} -> {after}, wakealarm after {left!r}",
    )


def main():
    hv, image, initrd, disk, transcript = sys.argv[1:6]
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ.update(SMP="4", MEM="2G", DISK=disk)
    cmd = ["bash", os.path.join(here, "qemu.sh"), hv, image, initrd]
    con = Console(cmd, transcript)
    check = Checks("linux")

    try:
        start = time.monotonic()
        con.read_until(PROMPT, BOOT_TIMEOUT)
        boot = con.out.decode(errors="replace")
        check(f"boots to the shell ({time.monotonic() - start:.0f} s)", True)
        con.quiet_kernel()
        check("kernel brought up 4 CPUs", "smp: Brought up 1 node, 4 CPUs" in boot)
        if os.environ.get("BOARD") == "zcu102":
            # The board's own console and its GIC-400, whose CPU interfaces the tree gives as
            # 128 KiB, each 4 KiB page repeated every 64 KiB: the 8 KiB GICV is 0xf000 in.
            check("hypervisor console on the board's Cadence UART", "console: cadence at 0xff000000" in boot)
            check("aliased GIC-400 GICV found 0xf000 in", "GICv2 virtual CPU interface at 0xf906f000" in boot)
        check("each pCPU runs its vCPU", all(f"cpu{i}: VM 'linux': vCPU {i} running" in boot for i in range(4)))
        check("virtio-blk disk found", "virtio_blk virtio0: [vda] 4096 512-byte logical blocks" in boot)
        nproc = con.run("nproc").strip()
        check("nproc says 4", nproc == "4", nproc)
        loops = con.run(
            "for n in 1 2 3 4; do (i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; echo loop$n=$i) & done; wait"
        )
        done = sorted(re.findall(r"loop(\d)=30000", loops))
        check("4 CPU-bound loops ran to completion in parallel", done == ["1", "2", "3", "4"], loops.strip())
        interrupts = con.run("cat /proc/interrupts")
        ipis = ipi_totals(interrupts)
        check("IPIs counted on all 4 CPUs", all(t > 0 for t in ipis), f"IPI totals {ipis}")
        timer = [l for l in interrupts.splitlines() if "arch_timer" in l]
        # The interrupt chip Linux drives: the GIC the hypervisor's guest sees is the board's.
        board = os.environ.get("BOARD", "virt")
        chip = "GIC-0" if os.environ.get("GIC", "3") == "2" or board == "zcu102" else "GICv3"
        check(f"the guest's GIC is the board's ({chip})", bool(timer) and chip in timer[0], str(timer))
        check("timer interrupts on all 4 CPUs", bool(timer) and all(int(x) > 0 for x in timer[0].split()[1:5]), str(timer))
        pattern = f"ARMVISOR-{os.getpid()}-{int(time.time())}"
        con.run(f"echo {pattern} > /tmp/pattern && dd if=/tmp/pattern of=/dev/vda bs=512 seek=100 conv=sync 2>/dev/null && sync")
        con.run("echo 3 > /proc/sys/vm/drop_caches")
        back = con.run("dd if=/dev/vda bs=512 skip=100 count=1 2>/dev/null | head -n 1")
        check("disk: pattern written, page cache dropped, read back", back.strip() == pattern, repr(back.strip()))
        interrupts = con.run("cat /proc/interrupts")
        virtio = [l for l in interrupts.splitlines() if "virtio0" in l]
        check("virtio interrupt counted", bool(virtio) and sum(int(x) for x in virtio[0].split()[1:5]) > 0, str(virtio))
        clock_checks(con, check, boot, board)
        con.type(b"poweroff -f\r")
        asked = time.monotonic()
        status = con.proc.wait(timeout=120)
        took = time.monotonic() - asked
        check("poweroff -f ends QEMU with status 0", status == 0, f"status {status}")
        # QEMU directly: 0.06 s. Scrubbing the guest's 1 GiB on the way out took 3.7 s.
        check("poweroff -f ends QEMU within 2 s", took < 2, f"{took:.2f} s")
    except (TimeoutError, EOFError, subprocess.TimeoutExpired) as e:
        check("console conversation", False, str(e))
    finally:
        con.kill()
    return check.summary(transcript)


if __name__ == "__main__":
    sys.exit(main())
