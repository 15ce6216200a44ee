#!/bin/bash
# Installs what building and testing need and a fresh Debian machine may lack. Idempotent:
# each step checks first and says what it does.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-none-softfloat
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "==> setup: rustup target add $target"
    rustup target add "$target"
fi
sysroot=$(rustc --print sysroot)
if [ ! -x "$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/llvm-objcopy" ]; then
    echo "==> setup: rustup component add llvm-tools (for llvm-objcopy)"
    rustup component add llvm-tools
fi
for c in clippy rustfmt; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
        echo "==> setup: rustup component add $c"
        rustup component add "$c"
    fi
done

missing=()
command -v qemu-system-aarch64 >/dev/null || missing+=(qemu-system-arm)
[ -f /usr/lib/u-boot/qemu_arm64/u-boot.bin ] || missing+=(u-boot-qemu)
command -v dtc >/dev/null || missing+=(device-tree-compiler)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "==> setup: please install: ${missing[*]} (apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "==> setup: apt-get install ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
