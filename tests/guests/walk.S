// Test guest "walk": runs with its stage-1 MMU on (4 KiB granule, 39-bit VAs, tables built
// 1 MiB into its RAM) to check the two things a stage-2 abort says about a guest's own
// translation:
// - the UART is also mapped at an alias VA, 0x1_4000_3000, through a level-3 page, so a
//   write there faults at stage 2 with a FAR whose only bits in common with the IPA are
//   the page offset; CR written there reads back through the identity map, and "walk\n"
//   written to DR there reaches the console;
// - TTBR1_EL1 points at the GIC distributor, outside guest RAM: a load through it faults
//   on the stage-1 table walk (S1PTW), which must come back as an external abort, not as
//   an emulated GICD access. The load runs in EL1t (SP_EL0) with SCTLR_EL1.SPAN clear,
//   so the abort must arrive at the EL1t vector (+0x000) with PSTATE.PAN set.
// Report ids: 1 CR read through the identity map; 2 ESR_EL1 of the TTBR1 load; 3 its FAR;
// 4 the load's destination register afterwards (still 0x55); 5 aborts taken (exactly 1);
// 6 the vector offset the abort arrived at; 7 its SPSR_EL1; 8 PSTATE.PAN in the handler
// (read only where ID_AA64MMFR1_EL1.PAN says the register exists: on an ARMv8.0 core such
// as the Cortex-A53 it is UNDEFINED); 9 ID_AA64MMFR1_EL1.PAN as the guest sees it.

.section .rodata.guest_walk, "a"
.balign 4096
.global guest_walk_start
guest_walk_start:
    adr     x1, walk_vectors
    msr     vbar_el1, x1
    mov     x25, #0                     // aborts taken
    mov     x26, #0xbad                 // vector offset taken
    mrs     x19, id_aa64mmfr1_el1
    ubfx    x19, x19, #20, #4           // PAN: 0 on ARMv8.0
    mov     x28, #0xbad                 // PSTATE.PAN in the handler, if it has one

    // Three zeroed tables: L1, then L2 and L3 for the alias.
    adr     x10, guest_walk_start
    add     x10, x10, #0x100000
    mov     x1, x10
    add     x2, x10, #0x3000
1:  stp     xzr, xzr, [x1], #16
    cmp     x1, x2
    b.lo    1b
    add     x11, x10, #0x1000           // L2
    add     x12, x10, #0x2000           // L3
    mov     x1, #0x405                  // L1[0]: 1 GiB block at PA 0, Device (attr 1), AF
    str     x1, [x10]
    movz    x1, #0x8000, lsl #16        // L1[2]: 1 GiB block at the RAM, Normal (attr 0),
    movk    x1, #0x0701                 //        inner shareable, AF
    str     x1, [x10, #16]
    orr     x1, x11, #3                 // L1[5] -> L2
    str     x1, [x10, #40]
    orr     x1, x12, #3                 // L2[0] -> L3
    str     x1, [x11]
    movz    x1, #0x0900, lsl #16        // L3[3]: the UART's page, Device, AF
    movk    x1, #0x0407
    str     x1, [x12, #24]
    dsb     sy

    mov     x1, #0xff                   // MAIR: attr 0 Normal WB, attr 1 Device-nGnRnE
    msr     mair_el1, x1
    // TCR: T0SZ = T1SZ = 25, 4 KiB granules, non-cacheable walks (the tables were written
    // with the MMU off), inner shareable, IPS 36 bits.
    movz    x1, #0x3019
    movk    x1, #0xb019, lsl #16
    movk    x1, #0x1, lsl #32
    msr     tcr_el1, x1
    msr     ttbr0_el1, x10
    movz    x1, #0x0800, lsl #16        // TTBR1: the GICD, not RAM
    msr     ttbr1_el1, x1
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    mrs     x1, sctlr_el1
    mov     x2, #0x1005                 // M, C, I
    orr     x1, x1, x2
    msr     sctlr_el1, x1
    isb

    mov     x20, #0x3000                // the alias: VA 0x1_4000_3000
    movk    x20, #0x4000, lsl #16
    movk    x20, #0x1, lsl #32
    mov     w2, #0x301
    str     w2, [x20, #0x30]            // CR: UARTEN, TXE, RXE
    movz    x21, #0x0900, lsl #16
    ldr     w3, [x21, #0x30]
    REPORT  1, x3
    adr     x3, walk_msg
2:  ldrb    w4, [x3], #1
    cbz     w4, 3f
    str     w4, [x20]                   // DR
    b       2b

3:  mrs     x1, sctlr_el1               // SPAN = 0: taking an exception sets PAN
    bic     x1, x1, #(1 << 23)
    msr     sctlr_el1, x1
    isb
    mov     x5, #0x55
    movz    x4, #0xff80, lsl #32        // the lowest TTBR1 address
    movk    x4, #0xffff, lsl #48
    msr     spsel, #0                   // EL1t
    ldr     x5, [x4]
    msr     spsel, #1
    REPORT  2, x23
    REPORT  3, x24
    REPORT  4, x5
    REPORT  5, x25
    REPORT  6, x26
    REPORT  7, x27
    REPORT  8, x28
    REPORT  9, x19
    SYSTEM_OFF

// EL1 synchronous exceptions: keep ESR, FAR, SPSR and PAN, step over the instruction.
walk_sync:
    mrs     x23, esr_el1
    mrs     x24, far_el1
    mrs     x27, spsr_el1
    cbz     x19, 1f                     // no FEAT_PAN: no PAN register to read
    mrs     x28, S3_0_C4_C2_3           // PAN
1:  add     x25, x25, #1
    mrs     x22, elr_el1
    add     x22, x22, #4
    msr     elr_el1, x22
    eret

walk_msg:
    .asciz  "walk\n"

.balign 0x800
walk_vectors:
    mov     x26, #0x000                 // current EL with SP_EL0: synchronous
    b       walk_sync
    .balign 0x80
    .rept 3
    b       .
    .balign 0x80
    .endr
    mov     x26, #0x200                 // current EL with SP_ELx: synchronous
    b       walk_sync
    .balign 0x80
    .rept 11
    b       .
    .balign 0x80
    .endr

.global guest_walk_end
guest_walk_end:

.purgem REPORT
.purgem SYSTEM_OFF
.purgem ICC_ON
.purgem GIC_V2
.purgem GIC_ACK
.purgem GIC_EOI
.purgem GIC_PRIVATE_ON
