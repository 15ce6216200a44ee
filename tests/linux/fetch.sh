#!/bin/bash
# `make guest`: fetches Debian's arm64 kernel (linux-image-arm64, resolved to its versioned
# package now) and busybox-static, without touching the system's apt configuration (private
# package lists and cache), and builds an initramfs whose /init mounts proc, sys and
# devtmpfs, loads virtio_mmio and virtio_blk from the kernel package and starts a shell.
# Everything goes to $GUEST_CACHE; a second run reuses what is there.
#
# usage: fetch.sh CACHE_DIR
set -euo pipefail
cache=${1:?usage: fetch.sh CACHE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
# The initramfs is rebuilt when /init or its builder changed (by content: a fresh clone's
# files are all newer than the cache).
recipe=$(cat "$here/init" "$here/mkinitramfs.py" | sha256sum | cut -d' ' -f1)
if [ -f "$cache/Image" ] && [ -f "$cache/initramfs.cpio.gz" ] && [ "$(cat "$cache/recipe" 2>/dev/null)" = "$recipe" ]; then
    echo "==> guest: using $cache/Image and $cache/initramfs.cpio.gz (delete them to refetch)"
    exit 0
fi
apt_opts=(-o APT::Architecture=arm64 -o APT::Architectures=arm64
    -o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache=$cache/apt/cache"
    -o Dir::State::status=/dev/null -o Debug::NoLocking=1)
mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" "$cache/debs"
echo "==> guest: apt-get update (arm64, private lists in $cache/apt)"
apt-get "${apt_opts[@]}" update -q >"$cache/apt/update.log" 2>&1 || { cat "$cache/apt/update.log"; exit 1; }
kernel_pkg=$(apt-cache "${apt_opts[@]}" depends linux-image-arm64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kernel_pkg" ] || { echo "error: could not resolve linux-image-arm64" >&2; exit 1; }
echo "==> guest: linux-image-arm64 is $kernel_pkg; downloading it and busybox-static"
(cd "$cache/debs" && rm -f ./*.deb && apt-get "${apt_opts[@]}" download -q "$kernel_pkg" busybox-static:arm64 2>&1 | grep -v "unsandboxed" || true)
ls "$cache/debs"/linux-image-*.deb "$cache/debs"/busybox-static*.deb >/dev/null
rm -rf "$cache/kernel" "$cache/busybox"
dpkg-deb -x "$cache/debs"/linux-image-*.deb "$cache/kernel"
dpkg-deb -x "$cache/debs"/busybox-static*.deb "$cache/busybox"
cp "$cache"/kernel/boot/vmlinuz-* "$cache/Image"
version=$(basename "$cache"/kernel/lib/modules/*)
echo "==> guest: kernel $version, building the initramfs"
python3 "$here/mkinitramfs.py" "$cache/initramfs.cpio.gz" \
    "$here/init" "$cache/busybox/bin/busybox" \
    "$cache/kernel/lib/modules/$version/kernel/drivers/virtio/virtio_mmio.ko" \
    "$cache/kernel/lib/modules/$version/kernel/drivers/block/virtio_blk.ko"
echo "$version" >"$cache/version"
echo "$recipe" >"$cache/recipe"
ls -la "$cache/Image" "$cache/initramfs.cpio.gz"
