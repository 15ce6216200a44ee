#!/usr/bin/env python3
"""`make bench`: boot-to-prompt wall time of the same kernel and initramfs, booted by QEMU
directly and under the hypervisor with 4 vCPUs on 4 pCPUs, RUNS times each in back-to-back
pairs, side by side with the ratio (the median of the pairs' ratios, and the ratio of the
medians); plus the hypervisor's image size, its fixed RAM and the guest's stage-2 table RAM (from
its boot log).

usage: bench.py HYPERVISOR_BIN IMAGE INITRD [RUNS]
"""
import os
import re
import statistics
import subprocess
import sys
import time

PROMPT = b"armvisor-guest# "


def boot_time(cmd, log_path):
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = bytearray()
    try:
        while True:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"QEMU exited before the prompt; see {log_path}")
            seen = max(0, len(out) - len(PROMPT))
            out += chunk
            if out.find(PROMPT, seen) >= 0:
                break
            if time.monotonic() - start > 600:
                raise RuntimeError(f"no prompt within 600 s; see {log_path}")
            # QEMU writes the console a byte at a time; reading as it came woke this
            # process ~8,600 times a boot (0.05 s of CPU, 0.01 s now, on a 2-core host
            # where QEMU's threads want both cores). Waiting 2 ms between reads costs at
            # most 2 ms of the measured time, in both modes alike.
            time.sleep(0.002)
        elapsed = time.monotonic() - start
        proc.stdin.write(b"poweroff -f\r")
        proc.stdin.flush()
        proc.stdin.close()
        out += proc.stdout.read()
        proc.wait(timeout=120)
        return elapsed, out.decode(errors="replace")
    finally:
        open(log_path, "wb").write(out)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def host_steal():
    """CPU time the host took from this machine so far (clock ticks, all CPUs)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8]) if len(fields) > 8 else 0


def main():
    hv, image, initrd = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    here = os.path.dirname(os.path.abspath(__file__))
    qemu = ["bash", os.path.join(here, "qemu.sh")]
    os.makedirs("build/logs", exist_ok=True)
    # The guest under armvisor (-cpu max,pauth-impdef=on) sees pointer authentication
    # but no SVE or SME (hidden: not virtualized); so the fair baseline is QEMU directly
    # with the same CPU features, and the same RAM as the guest gets under armvisor (all
    # that is left free: read from the first boot's log). The plain -cpu max boot, whose
    # architected QARMA5 pointer authentication TCG emulates slowly, is shown too.
    hv_cpu = "max,pauth-impdef=on"
    fair_cpu = "max,pauth-impdef=on,sve=off,sme=off"
    direct, plain, under = [], [], []
    log = ""

    def boot(kind, log_path):
        """Boots `kind` ("hv", "direct" or "plain") once: (seconds to the prompt, console)."""
        if kind == "hv":
            os.environ["CPU"] = hv_cpu
            return boot_time(qemu + [hv, image, initrd], log_path)
        os.environ["DIRECT_CPU"] = fair_cpu if kind == "direct" else "max"
        return boot_time(qemu + ["--direct", hv, image, initrd], log_path)

    def measure(kind, i):
        nonlocal log
        steal = host_steal()
        t, out = boot(kind, f"build/logs/bench-{kind}-{i}.log")
        {"hv": under, "direct": direct, "plain": plain}[kind].append(t)
        if kind == "hv":
            log = out
            label = "under armvisor"
        else:
            label = f"QEMU directly ({os.environ['DIRECT_CPU']})"
        stolen = (host_steal() - steal) / os.sysconf("SC_CLK_TCK")
        print(f"run {i + 1}/{runs}: {label:45} {t:6.1f} s   (host steal {stolen:.2f} s)", flush=True)

    # One uncounted boot of each first: the first QEMU start after a build or a while idle
    # pays for cold caches (it was the slowest run of its kind more often than not).
    print("warming up: one uncounted boot each", flush=True)
    _, out = boot("hv", "build/logs/bench-warmup-hv.log")
    m = re.search(r"VM '[^']+': \d+ vCPUs on pCPUs \[[^]]*\], (\d+) MiB RAM", out)
    if not m:
        raise RuntimeError("the hypervisor's log names no guest RAM size; see build/logs/bench-warmup-hv.log")
    guest_mib = int(m.group(1))
    os.environ["DIRECT_MEM"] = f"{guest_mib}M"
    print(f"the guest gets {guest_mib} MiB under armvisor: QEMU directly runs with -m {guest_mib}M", flush=True)
    boot("direct", "build/logs/bench-warmup-direct.log")
    # The compared pair alternates which goes first, and the long plain -cpu max boots
    # come after them all: a run that always follows another, or the 7-10 s of four busy
    # threads, starts on a host that is still paying for it.
    for i in range(runs):
        for kind in ("direct", "hv") if i % 2 == 0 else ("hv", "direct"):
            measure(kind, i)
    for i in range(runs):
        measure("plain", i)
    d, p, h = statistics.median(direct), statistics.median(plain), statistics.median(under)
    runs_of = lambda xs: ", ".join(f"{x:.1f}" for x in xs)
    print()
    print(f"boot to the BusyBox prompt, 4 vCPUs, {guest_mib} MiB, median of {runs}:")
    print(f"  QEMU directly, -cpu {fair_cpu:38} {d:6.1f} s   ({runs_of(direct)})")
    print(f"  QEMU directly, -cpu max{'':35} {p:6.1f} s   ({runs_of(plain)})")
    print(f"  under armvisor, -cpu {hv_cpu} (no SVE/SME for the guest) {h:6.1f} s   ({runs_of(under)})")
    # Each round's two boots run back to back, so they see the same host; the host's speed
    # drifts by up to a third over minutes (eight baseline boots in a row: 1.95-2.86 s),
    # which a ratio of medians taken across rounds mixes in.
    pairs = [u / x for u, x in zip(under, direct)]
    paired = f"median of the back-to-back pairs ({', '.join(f'{r:.2f}' for r in pairs)})"
    print("  ratio armvisor / direct with the same CPU features:")
    print(f"    {paired:52} {statistics.median(pairs):6.2f}")
    print(f"    {'ratio of the medians':52} {h / d:6.2f}")
    size = os.path.getsize(hv)
    fixed = re.search(r"hypervisor RAM (\d+) KiB fixed", log)
    tables = re.search(r"stage-2 tables (\d+) KiB of (\d+) KiB taken for them", log)
    print(f"hypervisor image {size // 1024} KiB; fixed RAM {fixed.group(1) if fixed else '?'} KiB (at most 8192 KiB)")
    print(f"the guest's stage-2 tables: {tables.group(1) if tables else '?'} KiB used of {tables.group(2) if tables else '?'} KiB taken for them from guest RAM")
    if not fixed or int(fixed.group(1)) > 8192:
        raise SystemExit("the hypervisor's fixed RAM is not reported, or more than 8 MiB")


if __name__ == "__main__":
    main()
