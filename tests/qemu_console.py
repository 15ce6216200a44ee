#!/usr/bin/env python3
"""Drives QEMU's serial console like a person: waits for text, types lines, and returns
QEMU's exit status. Used by the U-Boot boot test (and any test that needs a conversation).

usage: qemu_console.py --log FILE --timeout SECONDS [--expect TEXT --send LINE]... [--until TEXT]
       -- QEMU ARGS...

Each --expect waits (within the overall timeout) for TEXT to appear in the output after the
previous match, then sends the paired --send line (or a bare newline when LINE is empty).
After the last pair the script waits for QEMU to exit, or with --until for TEXT, which ends
QEMU and the script with status 0 (for guests that run for ever). On a timeout it kills
QEMU, keeps the transcript in --log, and exits 124.
"""
import argparse
import os
import selectors
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--send", action="append", default=[])
    ap.add_argument("--until", default=None)
    ap.add_argument("qemu", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.qemu[1:] if args.qemu and args.qemu[0] == "--" else args.qemu
    if len(args.expect) != len(args.send):
        sys.exit("each --expect needs a --send")
    steps = list(zip(args.expect, args.send))

    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + args.timeout
    out = bytearray()
    searched = 0
    with open(args.log, "wb") as log:
        while True:
            if steps:
                want = steps[0][0].encode()
                at = out.find(want, searched)
                if at >= 0:
                    searched = at + len(want)
                    line = steps.pop(0)[1]
                    proc.stdin.write(line.encode() + b"\r")
                    proc.stdin.flush()
                    continue
            elif args.until and out.find(args.until.encode(), searched) >= 0:
                proc.kill()
                proc.wait()
                return 0
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                proc.wait()
                pending = steps[0][0] if steps else "QEMU to exit"
                print(f"timeout after {args.timeout:.0f} s waiting for {pending!r}; transcript in {args.log}")
                return 124
            for _key, _ in sel.select(timeout=min(left, 1.0)):
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    proc.wait()
                    return proc.returncode
                out += chunk
                log.write(chunk)
                log.flush()
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
