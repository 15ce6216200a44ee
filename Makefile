# armvisor: build, run and test. `make help` lists the targets.
#
#   make                 build the hypervisor image: build/armvisor.bin
#   make run             build the test flavour and run the in-QEMU suites (SMP=4 MEM=512M)
#   make test            everything: host tests, clippy, in-QEMU suites in several machine
#                        shapes, the failure/EL1/U-Boot system tests
#   make run-linux-smp   boot Debian's arm64 Linux on 4 vCPUs / 4 pCPUs to a BusyBox shell
#   make run-zcu102      the same on QEMU's Zynq UltraScale+ ZCU102 board model (GIC-400,
#                        Cortex-A53, the vendor device tree, console on the Cadence UART)
#   make run-linux-vms   two Linux VMs, a and b (2 vCPUs, 512 MiB and a disk each), side by
#                        side on 4 pCPUs; Ctrl-A three times moves console input
#   make guest           fetch the guest kernel and build the initramfs (run on demand)
#   make bench           boot-to-prompt time, QEMU directly vs under the hypervisor
#   make guests          the standalone test guests build/guest-ticker.bin, -hostile.bin
#   make conformance     the differential suite: one test guest on QEMU directly and under the
#                        hypervisor, every check's two verdicts side by side
#
# Variables: SMP (QEMU -smp), MEM (QEMU -m), GIC (virt's gic-version), CPU (QEMU -cpu),
# QEMU, TIMEOUT (seconds per QEMU run),
# GUEST_CACHE (where guest artifacts live), LINUX_IMAGE and INITRD (your own instead).

SHELL        := /bin/bash
TARGET       := aarch64-unknown-none-softfloat
SMP          ?= 4
MEM          ?= 512M
TIMEOUT      ?= 600
QEMU         ?= qemu-system-aarch64
BUILD        := build
CARGO        ?= cargo
SYSROOT       = $(shell rustc --print sysroot)
LLVM_BIN      = $(SYSROOT)/lib/rustlib/x86_64-unknown-linux-gnu/bin
# (tests/guests/standalone is not part of the hypervisor: the `guests` rules build it.)
SOURCES      := $(shell find src arch tests/guests -path tests/guests/standalone -prune -o -type f -print) \
	Cargo.toml Cargo.lock build.rs .cargo/config.toml
# -nic none: without it the virt machine adds a virtio-net PCI card whose boot ROM
# (efi-virtio.rom, package ipxe-qemu) QEMU must find; nothing here uses a network.
# GIC (the virt machine's gic-version: 3 or 2) and CPU (QEMU -cpu: max, cortex-a53, ...)
# pick the machine shape the suites run on. The default is QEMU's max with its own pointer
# authentication algorithm (pauth-impdef): guests have pointer authentication, as on the
# machine, and TCG's QARMA5 (plain max) makes a Linux boot about three times as slow.
GIC          ?= 3
CPU          ?= max,pauth-impdef=on
QEMU_MACHINE := -machine virt,virtualization=on,gic-version=$(GIC) -cpu $(CPU) -nic none
# A small module handed over as a multiboot module, so discovery is checked end to end.
TEST_MODULE  := $(BUILD)/test-module.bin
MODULE_ADDR  := 0x4c000000

.PHONY: all help setup run test host-test clippy qemu-tests size clean dtbs guest guests conformance run-linux-smp run-linux-vms run-zcu102 bench

GUEST_CACHE  ?= $(HOME)/.cache/armvisor-guest
LINUX_IMAGE  ?= $(GUEST_CACHE)/Image
INITRD       ?= $(GUEST_CACHE)/initramfs.cpio.gz
LINUX_ARGS   ?= console=ttyAMA0 earlycon

all: $(BUILD)/armvisor.bin

help:
	@sed -n '1,17p' Makefile

# Toolchain pieces rust-toolchain.toml names but rustup may not have fetched yet, and the
# QEMU/U-Boot/dtc packages the tests use. Each step says what it installs.
setup: $(BUILD)/.setup
$(BUILD)/.setup: rust-toolchain.toml tests/setup.sh
	@bash tests/setup.sh
	@mkdir -p $(BUILD) && touch $@

# $(call image,flavour,features): cargo build, raw binary, relocation and header checks.
define image
$(BUILD)/armvisor$(1).bin: $(SOURCES) $(BUILD)/.setup
	@echo "==> building $$@ (cargo build --release $(if $(2),--features $(2)))"
	@CARGO_TARGET_DIR=target/flavour$(1) $(CARGO) build --release --target $(TARGET) --features hv$(if $(2),$(comma)$(2)) --quiet
	@mkdir -p $(BUILD)
	@cp target/flavour$(1)/$(TARGET)/release/armvisor $(BUILD)/armvisor$(1).elf
	@$(LLVM_BIN)/llvm-objcopy -O binary $(BUILD)/armvisor$(1).elf $$@
	@bash tests/check-image.sh $(BUILD)/armvisor$(1).elf $$@ "$(LLVM_BIN)"
endef
comma := ,
$(eval $(call image,,))
$(eval $(call image,-selftest,selftest))
$(eval $(call image,-selftest-fail,selftest-fail))

# The standalone test guests (tests/guests/standalone): arm64 Images a VM boots as its
# multiboot,kernel module, or QEMU directly with -kernel. Assembly in a no_std Rust file
# (there is no GNU cross assembler), linked at 0 by image.ld, then a flat binary; the rule
# checks the header (the magic, and the hypervisor's own parse_header and place on it,
# through guest-check-header).
GUEST_DIR    := tests/guests/standalone
GUEST_IMAGES := $(BUILD)/guest-ticker.bin $(BUILD)/guest-hostile.bin
GUEST_RUSTC   = rustc --edition 2024 --target $(TARGET) --crate-type bin -C panic=abort -C opt-level=s \
	--check-cfg 'cfg(guest, values("ticker", "hostile"))' -C link-arg=-T$(GUEST_DIR)/image.ld

guests: $(GUEST_IMAGES)

$(GUEST_IMAGES): $(BUILD)/guest-%.bin: $(GUEST_DIR)/%.S $(GUEST_DIR)/common.S $(GUEST_DIR)/image.rs \
		$(GUEST_DIR)/image.ld $(BUILD)/guest-check-header $(BUILD)/.setup
	@echo "==> building $@"
	@$(GUEST_RUSTC) --cfg 'guest="$*"' -o $(BUILD)/guest-$*.elf $(GUEST_DIR)/image.rs
	@$(LLVM_BIN)/llvm-objcopy -O binary $(BUILD)/guest-$*.elf $@
	@magic=$$(od -An -tx1 -j56 -N4 $@ | tr -d ' \n'); [ "$$magic" = 41524d64 ] || \
		{ echo "$@: no ARM\\x64 magic at 0x38 ($$magic)"; rm -f $@; exit 1; }
	@$(BUILD)/guest-check-header $@ || { rm -f $@; exit 1; }

# The conformance guest (tests/conformance/guest): Rust this time, a position-independent
# executable that relocates itself (entry.S), so the same image runs where QEMU -kernel and
# armvisor put it. check-image.sh checks it has only R_AARCH64_RELATIVE relocations and a
# sound header; guest-check-header that the hypervisor's own parser accepts it.
CONF_DIR     := tests/conformance
CONF_IMAGE   := $(BUILD)/guest-conformance.bin
CONF_RUSTC    = rustc --edition 2024 --target $(TARGET) --crate-type bin -C panic=abort -C opt-level=2 \
	-C relocation-model=pie -C link-arg=-pie -C link-arg=--no-dynamic-linker -C link-arg=-znotext \
	-C link-arg=-T$(CONF_DIR)/guest/link.ld

$(CONF_IMAGE): $(wildcard $(CONF_DIR)/guest/*.rs $(CONF_DIR)/guest/*/*.rs) $(CONF_DIR)/guest/entry.S \
		$(CONF_DIR)/guest/link.ld $(BUILD)/guest-check-header $(BUILD)/.setup
	@echo "==> building $@"
	@$(CONF_RUSTC) -o $(BUILD)/guest-conformance.elf $(CONF_DIR)/guest/main.rs
	@$(LLVM_BIN)/llvm-objcopy -O binary $(BUILD)/guest-conformance.elf $@
	@bash tests/check-image.sh $(BUILD)/guest-conformance.elf $@ "$(LLVM_BIN)" || { rm -f $@; exit 1; }
	@$(BUILD)/guest-check-header $@ || { rm -f $@; exit 1; }

# The differential suite: the conformance guest directly on QEMU (EL1) and as an armvisor
# VM, one row per check with both verdicts (tests/conformance/README.md).
conformance: $(BUILD)/armvisor.bin $(CONF_IMAGE)
	@CPU='$(CPU)' GIC='$(GIC)' python3 $(CONF_DIR)/run.py $(BUILD)/armvisor.bin $(CONF_IMAGE)

$(BUILD)/guest-check-header: $(GUEST_DIR)/check_header.rs src/vm/linux.rs
	@mkdir -p $(BUILD)
	@rustc --edition 2024 -O -o $@ $(GUEST_DIR)/check_header.rs

$(TEST_MODULE):
	@mkdir -p $(BUILD)
	@printf 'ARMVISOR-TEST-MODULE' > $@

# One in-QEMU self-test run. Extra QEMU arguments in QEMU_EXTRA.
QEMU_SELFTEST = timeout --foreground $(TIMEOUT) $(QEMU) $(QEMU_MACHINE) -smp $(SMP) -m $(MEM) \
	-nographic -no-reboot -semihosting \
	-kernel $(BUILD)/armvisor-selftest.bin \
	-append "selftest.cpus=$(SMP) selftest.mem=$(MEM) selftest.gic=$(GIC) selftest.module=$(MODULE_ADDR)" \
	-device guest-loader,addr=$(MODULE_ADDR),kernel=$(TEST_MODULE),bootargs=test-module \
	$(QEMU_EXTRA)

run: $(BUILD)/armvisor-selftest.bin $(TEST_MODULE)
	@echo "==> running the in-QEMU suites: -smp $(SMP) -m $(MEM), GICv$(GIC), -cpu $(CPU)"
	$(QEMU_SELFTEST)

host-test: $(BUILD)/.setup
	@echo "==> host unit tests (cargo test)"
	$(CARGO) test --quiet

clippy: $(BUILD)/.setup
	@echo "==> rustfmt check, then clippy with warnings as errors (host library, both EL2 flavours)"
	$(CARGO) fmt --check
	$(CARGO) clippy --quiet --all-targets -- -D warnings
	$(CARGO) clippy --quiet --target $(TARGET) --features hv -- -D warnings
	$(CARGO) clippy --quiet --target $(TARGET) --features selftest-fail -- -D warnings

test: $(BUILD)/armvisor.bin $(BUILD)/armvisor-selftest.bin $(BUILD)/armvisor-selftest-fail.bin $(TEST_MODULE) guest $(BUILD)/disk.img $(GUEST_IMAGES) $(CONF_IMAGE)
	@LINUX_IMAGE="$(LINUX_IMAGE)" INITRD="$(INITRD)" bash tests/run-all.sh

guest: $(BUILD)/.setup
	@if [ "$(LINUX_IMAGE)" = "$(GUEST_CACHE)/Image" ]; then bash tests/linux/fetch.sh "$(GUEST_CACHE)"; fi

# The guest's virtio-blk disk (a module with compatible "armvisor,disk"); 2 MiB by default.
DISK         ?= $(BUILD)/disk.img
$(BUILD)/disk.img:
	@mkdir -p $(BUILD)
	@truncate -s 2M $@

run-linux-smp: $(BUILD)/armvisor.bin guest $(DISK)
	@echo "==> booting Linux on 4 vCPUs / 4 pCPUs with a $$(($$(stat -c %s $(DISK)) / 1024)) KiB virtio disk (Ctrl-A X quits; 'poweroff -f' ends QEMU)"
	@SMP=4 MEM=2G DISK="$(DISK)" LINUX_ARGS="$(LINUX_ARGS)" bash tests/linux/qemu.sh $(BUILD)/armvisor.bin "$(LINUX_IMAGE)" "$(INITRD)"

run-linux-vms: $(BUILD)/armvisor.bin guest $(DISK)
	@echo "==> booting two Linux VMs, a and b, 2 vCPUs and 512 MiB each, on 4 pCPUs, each with its own copy of the $$(($$(stat -c %s $(DISK)) / 1024)) KiB disk"
	@echo "==> console input goes to VM a; Ctrl-A three times moves it to the next VM. Ctrl-T X quits QEMU; 'poweroff -f' in both VMs ends it"
	@BOARD=vms SMP=4 MEM=2G DISK="$(DISK)" LINUX_ARGS="$(LINUX_ARGS)" bash tests/linux/qemu.sh $(BUILD)/armvisor.bin "$(LINUX_IMAGE)" "$(INITRD)"

run-zcu102: $(BUILD)/armvisor.bin guest $(DISK)
	@echo "==> booting Linux on QEMU's ZCU102 model: 4 Cortex-A53, GIC-400, the hypervisor's console on the Cadence UART (Ctrl-A X quits; 'poweroff -f' ends QEMU)"
	@BOARD=zcu102 SMP=4 DISK="$(DISK)" LINUX_ARGS="$(LINUX_ARGS)" bash tests/linux/qemu.sh $(BUILD)/armvisor.bin "$(LINUX_IMAGE)" "$(INITRD)"

bench: $(BUILD)/armvisor.bin guest
	@echo "==> bench: boot to the prompt, QEMU directly vs under the hypervisor (4 vCPUs), 3 runs each"
	@python3 tests/linux/bench.py $(BUILD)/armvisor.bin "$(LINUX_IMAGE)" "$(INITRD)" 3

size: $(BUILD)/armvisor.bin
	@bash tests/size-report.sh $(BUILD)/armvisor.elf "$(LLVM_BIN)"

dtbs:
	@bash tests/dtb/generate.sh

clean:
	rm -rf $(BUILD) target
