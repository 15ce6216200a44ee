// EL2 exception vectors. Entries are indexed 0-15 in Arm's table order: current EL with
// SP_EL0, current EL with SP_ELx, lower EL AArch64, lower EL AArch32; each sync, IRQ, FIQ,
// SError.
//
// Current-EL entries (0-7, the hypervisor's own exceptions) save x0/x1, put the index in x1
// and join el2_trap_common, which saves a TrapFrame (layout checked in
// src/arch/aarch64/exception.rs) and calls el2_trap(frame, index).
//
// Lower-EL entries (8-15) are guest exits: they save the guest's registers into the
// GuestRegs that vcpu_run (src/arch/aarch64/vcpu.rs) left a pointer to on the EL2 stack and
// return from vcpu_run with the index.

.macro VENTRY index
    .balign 0x80
    sub     sp, sp, #{TF_SIZE}
    stp     x0, x1, [sp, #0]
    mov     x1, #\index
    b       el2_trap_common
.endm

.macro GUEST_VENTRY index
    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    mov     x1, #\index
    b       guest_exit
.endm

.section .text.vectors, "ax"
.balign 0x800
.global el2_vectors
el2_vectors:
    VENTRY 0
    VENTRY 1
    VENTRY 2
    VENTRY 3
    VENTRY 4
    VENTRY 5
    VENTRY 6
    VENTRY 7
    GUEST_VENTRY 8
    GUEST_VENTRY 9
    GUEST_VENTRY 10
    GUEST_VENTRY 11
    GUEST_VENTRY 12
    GUEST_VENTRY 13
    GUEST_VENTRY 14
    GUEST_VENTRY 15

el2_trap_common:
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
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x30, x2, [sp, #({TF_ELR} - 8)]
    str     x3, [sp, #{TF_SPSR}]
    mov     x0, sp
    bl      el2_trap
    ldr     x3, [sp, #{TF_SPSR}]
    ldp     x30, x2, [sp, #({TF_ELR} - 8)]
    msr     elr_el2, x2
    msr     spsr_el2, x3
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
    add     sp, sp, #{TF_SIZE}
    eret

// Vectors for a start at the wrong exception level: every exception returns to the
// instruction after the one that trapped (used only to survive a semihosting call where
// there is no semihosting). x9 is preserved on the stack.
.macro SKIP_ENTRY elr
    .balign 0x80
    str     x9, [sp, #-16]!
    mrs     x9, \elr
    add     x9, x9, #4
    msr     \elr, x9
    ldr     x9, [sp], #16
    eret
.endm

.macro SKIP_TABLE name, elr
.balign 0x800
.global \name
\name:
    .rept 16
    SKIP_ENTRY \elr
    .endr
.endm

SKIP_TABLE skip_vectors_el1, elr_el1
SKIP_TABLE skip_vectors_el3, elr_el3
