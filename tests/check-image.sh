#!/bin/bash
# Checks a freshly built image: only R_AARCH64_RELATIVE relocations (all boot.S applies),
# the arm64 Image header (magic, image_size covering BSS), and prints the size.
set -euo pipefail
elf=$1 bin=$2 llvm=$3
kinds=$("$llvm/llvm-readobj" -r "$elf" | awk '/R_AARCH64/ {print $2}' | sort -u)
if [ -n "$kinds" ] && [ "$kinds" != "R_AARCH64_RELATIVE" ]; then
    echo "error: $elf has relocations boot.S cannot apply: $kinds" >&2
    exit 1
fi
python3 - "$bin" <<'PY'
import struct, sys
path = sys.argv[1]
data = open(path, 'rb').read()
code0, code1, text_offset, image_size, flags = struct.unpack_from('<IIQQQ', data, 0)
magic = data[0x38:0x3c]
if magic != b'ARM\x64':
    sys.exit(f"error: {path}: no arm64 Image magic at 0x38")
if image_size < len(data) or image_size % 4096:
    sys.exit(f"error: {path}: image_size {image_size:#x} does not cover the {len(data):#x}-byte file")
if text_offset != 0 or flags != 0xa:
    sys.exit(f"error: {path}: text_offset {text_offset:#x} flags {flags:#x}, want 0 and 0xa")
print(f"==> {path}: {len(data)} bytes in the file, image_size {image_size} bytes (BSS included)")
PY
