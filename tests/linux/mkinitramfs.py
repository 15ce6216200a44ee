#!/usr/bin/env python3
"""Writes a gzip-compressed newc cpio initramfs: /init, /bin/busybox, and kernel modules
in /lib/modules. No cpio tool needed.

usage: mkinitramfs.py OUT INIT BUSYBOX MODULE...
"""
import gzip
import os
import sys


def entry(out, name, mode, data=b"", rdev=(0, 0), ino=[1]):
    ino[0] += 1
    header = "070701" + "".join(
        f"{v:08x}"
        for v in (ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
    )
    out.write(header.encode() + name.encode() + b"\0")
    out.write(b"\0" * ((4 - (110 + len(name) + 1) % 4) % 4))
    out.write(data)
    out.write(b"\0" * ((4 - len(data) % 4) % 4))


def main():
    out_path, init, busybox, *modules = sys.argv[1:]
    with gzip.open(out_path + ".tmp", "wb", compresslevel=6) as out:
        for d in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"):
            entry(out, d, 0o40755)
        # The console must exist before init runs (devtmpfs is mounted by /init).
        entry(out, "dev/console", 0o20600, rdev=(5, 1))
        entry(out, "init", 0o100755, open(init, "rb").read())
        entry(out, "bin/busybox", 0o100755, open(busybox, "rb").read())
        entry(out, "bin/sh", 0o120777, b"busybox")
        for m in modules:
            entry(out, "lib/modules/" + os.path.basename(m), 0o100644, open(m, "rb").read())
        entry(out, "TRAILER!!!", 0)
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()
