#!/usr/bin/env python3
"""How much of the hypervisor host `cargo test` compiles: non-blank, non-comment lines of
the non-test Rust code, split into what the host build compiles (everything portable, over
the fake arch) and what only the EL2 target compiles. Test code is left out of both: unit
test modules (`#[cfg(test)] mod tests` to the end of the file, and tests.rs files), the
in-QEMU suites (src/selftest) and the host stand-in for the arch layer (src/arch/fake).
Assembly (arch/aarch64/*.S) is target-only code, counted with the target-only lines.

usage: portable-share.py [MIN_PERCENT]   (exit status 1 if the share is below MIN_PERCENT)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET_ONLY = ("src/arch/aarch64/", "src/start.rs", "src/mm/heap.rs", "src/main.rs")
TEST_CODE = ("src/selftest/", "src/arch/fake/")


def code_lines(text):
    n = 0
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("//"):
            n += 1
    return n


def strip_tests(text):
    m = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod tests\s*\{", text, re.M)
    return text[: m.start()] if m else text


def main():
    want = float(sys.argv[1]) if len(sys.argv) > 1 else None
    host = target = 0
    for f in sorted(ROOT.glob("src/**/*.rs")):
        rel = f.relative_to(ROOT).as_posix()
        if rel.startswith(TEST_CODE) or f.name == "tests.rs" or "/tests/" in rel:
            continue
        n = code_lines(strip_tests(f.read_text()))
        if rel.startswith(TARGET_ONLY):
            target += n
        else:
            host += n
    asm = sum(code_lines(f.read_text()) for f in sorted(ROOT.glob("arch/aarch64/*.S")))
    total = host + target + asm
    share = 100.0 * host / total
    print(f"non-test lines compiled by host cargo test: {host} of {total} ({share:.1f} %); "
          f"target only: {target} Rust + {asm} assembly")
    if want is not None and share < want:
        print(f"below {want:.0f} %")
        sys.exit(1)


main()
