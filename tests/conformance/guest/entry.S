// entry.S: the conformance guest's assembly (main.rs includes it with global_asm!): the arm64
// Image header, the primary's entry (self-relocation, BSS, stack), the entry points PSCI
// calls (CPU_ON's secondary_entry, CPU_SUSPEND's resume_entry), the exception vectors, the
// recovery point for a check that took an unexpected exception (try_call), and the few
// instruction sequences whose exact addresses the checks compare with ELR_EL1 and FAR_EL1.
//
// Entered as booting.rst says: EL1h, MMU and caches off, DAIF masked, x0 = the device
// tree. Everything here is PC-relative (adr/adrp), so it runs wherever it is loaded.
// No curly braces anywhere, comments included: global_asm! reads them as operands.

.equ STACK_SIZE, 32768
.equ CPUS_MAX, 4
.equ FRAME, 288                 // x0-x30, ELR, SPSR, ESR, FAR: main.rs's Frame

// CpuBoot (smp.rs), read here with the MMU off: offsets of its fields.
.equ BOOT_SP, 0
.equ BOOT_CPU, 8
.equ BOOT_MAIR, 16
.equ BOOT_TCR, 24
.equ BOOT_TTBR0, 32
.equ BOOT_SCTLR, 40

// SuspendCtx (psci check): x19-x30 at 0-95, sp 96, then system registers, then what the
// resume entry found.
.equ SUS_SP, 96
.equ SUS_VBAR, 104
.equ SUS_MAIR, 112
.equ SUS_TCR, 120
.equ SUS_TTBR0, 128
.equ SUS_SCTLR, 136
.equ SUS_CPACR, 144
.equ SUS_TPIDR, 152
.equ SUS_RESUMED, 160
.equ SUS_EL, 168
.equ SUS_DAIF, 176
.equ SUS_ENTRY_SCTLR, 184
.equ SUS_X0, 192
.equ SUS_SIZE, 256

// JmpBuf (exc.rs): x19-x30 at 0-95, sp 96, DAIF 104.
.equ JB_SP, 96
.equ JB_DAIF, 104

.section .text.head, "ax"
.global _start
_start:
    b       entry                       // code0
    .long   0                           // code1
    .quad   0                           // text_offset: at the 2 MiB-aligned base (QEMU adds 2 MiB)
    .quad   _image_size                 // image_size, BSS included (link.ld)
    .quad   0xa                         // flags: little endian, 4K pages, anywhere in RAM
    .quad   0                           // res2
    .quad   0                           // res3
    .quad   0                           // res4
    .long   0x644d5241                  // magic "ARM\x64"
    .long   0                           // res5

.text
entry:
    msr     daifset, #0xf
    mov     x19, x0
    adrp    x20, _start                 // the load address (linked at 0)
    add     x20, x20, :lo12:_start
    // Self-relocation: every R_AARCH64_RELATIVE entry gets the load address added.
    adrp    x1, _rela_start
    add     x1, x1, :lo12:_rela_start
    adrp    x2, _rela_end
    add     x2, x2, :lo12:_rela_end
1:  cmp     x1, x2
    b.hs    2f
    ldp     x3, x4, [x1], #16           // r_offset, r_info
    ldr     x5, [x1], #8                // r_addend
    add     x5, x5, x20
    str     x5, [x20, x3]
    b       1b
2:  adrp    x1, _bss_start
    add     x1, x1, :lo12:_bss_start
    adrp    x2, _bss_end
    add     x2, x2, :lo12:_bss_end
3:  cmp     x1, x2
    b.hs    4f
    stp     xzr, xzr, [x1], #16
    b       3b
4:  mrs     x1, CurrentEL
    cmp     x1, #(1 << 2)
    b.ne    not_el1
    adrp    x1, conf_stacks
    add     x1, x1, :lo12:conf_stacks
    add     x1, x1, #STACK_SIZE
    mov     sp, x1
    msr     tpidr_el1, xzr              // CPU index 0
    adrp    x1, vectors
    add     x1, x1, :lo12:vectors
    msr     vbar_el1, x1
    isb
    mov     x0, x19
    mov     x1, x20
    bl      primary_main
5:  wfi
    b       5b

// Entered at EL2 (virtualization=on without a hypervisor): say so on the PL011, stop.
not_el1:
    adr     x1, s_not_el1
    movz    x2, #0x0900, lsl #16
6:  ldrb    w3, [x1], #1
    cbz     w3, 7f
    str     w3, [x2]
    b       6b
7:  wfi
    b       7b

// ---------------------------------------------------------------------------------------
// CPU_ON's entry point: x0 = the context id = the CPU's CpuBoot. Notes the entry state
// (CurrentEL, DAIF, SCTLR_EL1, x0) for the PSCI checks, takes the stack and the MMU set-up
// from CpuBoot (which the primary cleaned to the point of coherency), turns the MMU on and
// calls secondary_main(boot, el, daif, sctlr).
.global secondary_entry
secondary_entry:
    mrs     x9, CurrentEL
    mrs     x10, daif
    mrs     x11, sctlr_el1
    mov     x12, x0
    ldr     x1, [x12, #BOOT_SP]
    mov     sp, x1
    adrp    x1, vectors
    add     x1, x1, :lo12:vectors
    msr     vbar_el1, x1
    ldr     x1, [x12, #BOOT_MAIR]
    msr     mair_el1, x1
    ldr     x1, [x12, #BOOT_TCR]
    msr     tcr_el1, x1
    ldr     x1, [x12, #BOOT_TTBR0]
    msr     ttbr0_el1, x1
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x1, [x12, #BOOT_SCTLR]
    msr     sctlr_el1, x1
    isb
    ic      iallu
    dsb     nsh
    isb
    ldr     x1, [x12, #BOOT_CPU]
    msr     tpidr_el1, x1
    mov     x0, x12
    mov     x1, x9
    mov     x2, x10
    mov     x3, x11
    bl      secondary_main
8:  wfi
    b       8b

// SAVE_CALLEE base / LOAD_CALLEE base: x19-x30 to / from the 96 bytes at [base] (the
// callee-saved registers and LR; suspend_ctx and a jump buffer both start with them).
.macro SAVE_CALLEE base
    stp     x19, x20, [\base, #0]
    stp     x21, x22, [\base, #16]
    stp     x23, x24, [\base, #32]
    stp     x25, x26, [\base, #48]
    stp     x27, x28, [\base, #64]
    stp     x29, x30, [\base, #80]
.endm
.macro LOAD_CALLEE base
    ldp     x19, x20, [\base, #0]
    ldp     x21, x22, [\base, #16]
    ldp     x23, x24, [\base, #32]
    ldp     x25, x26, [\base, #48]
    ldp     x27, x28, [\base, #64]
    ldp     x29, x30, [\base, #80]
.endm

// ---------------------------------------------------------------------------------------
// suspend_call(fid, power_state) -> x0: CPU_SUSPEND by HVC with entry point resume_entry and
// context id = the address of suspend_ctx. Saves what a power-down loses (the callee-saved
// registers, sp, the EL1 state this guest set up) in suspend_ctx and cleans it to the point
// of coherency (resume_entry reads it with the MMU off). If the call returns (a standby, or
// an error), x0 is its result and suspend_ctx.resumed stays 0; if the CPU powers down and
// resumes at resume_entry, that restores everything, records what it found
// (suspend_ctx.resumed = 1, the entry EL, DAIF, SCTLR_EL1 and x0) and returns from here
// with x0 = 0.
.global suspend_call
suspend_call:
    adrp    x9, suspend_ctx
    add     x9, x9, :lo12:suspend_ctx
    SAVE_CALLEE   x9
    mov     x10, sp
    str     x10, [x9, #SUS_SP]
    mrs     x10, vbar_el1
    str     x10, [x9, #SUS_VBAR]
    mrs     x10, mair_el1
    str     x10, [x9, #SUS_MAIR]
    mrs     x10, tcr_el1
    str     x10, [x9, #SUS_TCR]
    mrs     x10, ttbr0_el1
    str     x10, [x9, #SUS_TTBR0]
    mrs     x10, sctlr_el1
    str     x10, [x9, #SUS_SCTLR]
    mrs     x10, cpacr_el1
    str     x10, [x9, #SUS_CPACR]
    mrs     x10, tpidr_el1
    str     x10, [x9, #SUS_TPIDR]
    str     xzr, [x9, #SUS_RESUMED]
    // Clean the context to the point of coherency, 16 bytes at a time (every line of it,
    // whatever the line size).
    mov     x10, x9
    add     x11, x9, #SUS_SIZE
1:  dc      cvac, x10
    add     x10, x10, #16
    cmp     x10, x11
    b.lo    1b
    dsb     sy
    mov     x3, x9                      // context id
    adr     x2, resume_entry            // entry point
    hvc     #0                          // x0 = fid, x1 = power_state
    ret

.global resume_entry
resume_entry:
    mrs     x9, CurrentEL
    mrs     x10, daif
    mrs     x11, sctlr_el1
    mov     x12, x0
    adrp    x0, suspend_ctx
    add     x0, x0, :lo12:suspend_ctx
    ldr     x1, [x0, #SUS_MAIR]
    msr     mair_el1, x1
    ldr     x1, [x0, #SUS_TCR]
    msr     tcr_el1, x1
    ldr     x1, [x0, #SUS_TTBR0]
    msr     ttbr0_el1, x1
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x1, [x0, #SUS_SCTLR]
    msr     sctlr_el1, x1
    isb
    ic      iallu
    dsb     nsh
    isb
    ldr     x1, [x0, #SUS_VBAR]
    msr     vbar_el1, x1
    ldr     x1, [x0, #SUS_CPACR]
    msr     cpacr_el1, x1
    ldr     x1, [x0, #SUS_TPIDR]
    msr     tpidr_el1, x1
    isb
    LOAD_CALLEE   x0
    ldr     x1, [x0, #SUS_SP]
    mov     sp, x1
    str     x9, [x0, #SUS_EL]
    str     x10, [x0, #SUS_DAIF]
    str     x11, [x0, #SUS_ENTRY_SCTLR]
    str     x12, [x0, #SUS_X0]
    mov     x1, #1
    str     x1, [x0, #SUS_RESUMED]
    mov     x0, #0
    ret

// ---------------------------------------------------------------------------------------
// try_call(f, arg, jb) -> 0 if f(arg) returned, 1 if an unexpected exception in it came
// back to recover_land (exc.rs points ELR_EL1 there, with x0 = jb).
.global try_call
try_call:
    SAVE_CALLEE   x2
    mov     x9, sp
    str     x9, [x2, #JB_SP]
    mrs     x9, daif
    str     x9, [x2, #JB_DAIF]
    mov     x19, x2
    mov     x9, x0
    mov     x0, x1
    blr     x9
    mov     x2, x19
    ldp     x19, x20, [x2, #0]
    ldp     x29, x30, [x2, #80]
    mov     x0, #0
    ret

.global recover_land
recover_land:
    LOAD_CALLEE   x0
    ldr     x9, [x0, #JB_SP]
    mov     sp, x9
    ldr     x9, [x0, #JB_DAIF]
    msr     daif, x9
    mov     x0, #1
    ret

// ---------------------------------------------------------------------------------------
// Instruction sequences at known addresses.

// bp_target: the breakpoint check's target (DBGBVR0_EL1 = its address).
.global bp_target
bp_target:
    nop
    ret

// wp_load(addr) -> [addr], wp_store(addr, value): the watchpoint check's accesses, at
// wp_load_insn and wp_store_insn.
.global wp_load
.global wp_load_insn
wp_load:
wp_load_insn:
    ldr     x0, [x0]
    ret
.global wp_store
.global wp_store_insn
wp_store:
wp_store_insn:
    str     x1, [x0]
    ret

// abort_load(addr, nzcv) -> [addr], abort_store(addr, nzcv): the abort checks' accesses,
// at abort_load_insn and abort_store_insn, with NZCV set to the given value first (so that
// SPSR_EL1 has a known one).
.global abort_load
.global abort_load_insn
abort_load:
    msr     nzcv, x1
abort_load_insn:
    ldr     x0, [x0]
    ret
.global abort_store
.global abort_store_insn
abort_store:
    msr     nzcv, x1
abort_store_insn:
    str     x2, [x0]
    ret

// step_run() -> the count of stepped additions (8): enters step_start by ERET with
// SPSR_EL1.SS = 1, D clear, IRQ/FIQ/SError masked, so that with MDSCR_EL1.SS and KDE set
// each of the eight instructions takes a software step exception (ELR = the next one).
.global step_run
.global step_start
.global step_end
step_run:
    mov     x9, #0
    adr     x10, step_start
    msr     elr_el1, x10
    mov     x10, #0x1c5                 // EL1h, A, I, F masked, D clear
    orr     x10, x10, #(1 << 21)        // SS
    msr     spsr_el1, x10
    isb
    eret
step_start:
    add     x9, x9, #1
    add     x9, x9, #1
    add     x9, x9, #1
    add     x9, x9, #1
    add     x9, x9, #1
    add     x9, x9, #1
    add     x9, x9, #1
    add     x9, x9, #1
step_end:
    mov     x0, x9
    msr     daifset, #0xf
    ret

// ---------------------------------------------------------------------------------------
// The exception vector table: entry n saves x0 and x1, puts n in x0 and goes to exc_common,
// which saves the rest and ELR, SPSR, ESR, FAR (the Frame), calls exception(frame, n) and
// returns with ELR and SPSR as the handler left them in the frame.
.macro VENTRY n
    .balign 0x80
    sub     sp, sp, #FRAME
    stp     x0, x1, [sp, #0]
    mov     x0, #\n
    b       exc_common
.endm

.balign 0x800
.global vectors
vectors:
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    VENTRY  \n
    .endr

exc_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x1, elr_el1
    stp     x30, x1, [sp, #240]
    mrs     x1, spsr_el1
    mrs     x2, esr_el1
    stp     x1, x2, [sp, #256]
    mrs     x1, far_el1
    str     x1, [sp, #272]
    mov     x1, x0
    mov     x0, sp
    bl      exception
    ldp     x30, x1, [sp, #240]
    msr     elr_el1, x1
    ldr     x1, [sp, #256]
    msr     spsr_el1, x1
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #FRAME
    eret

// ---------------------------------------------------------------------------------------
.section .rodata.entry, "a"
s_not_el1:
    .asciz  "conformance: entered at EL2, not EL1; stopping (boot it without virtualization=on)\n"

.section .bss.entry, "aw", %nobits
.balign 4096
.global conf_stacks
conf_stacks:
    .space  STACK_SIZE * CPUS_MAX
.balign 64
.global suspend_ctx
suspend_ctx:
    .space  SUS_SIZE

.text
