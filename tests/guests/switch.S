// Test guest "switch": a vCPU that shares its pCPU with another VM's vCPU, checking that
// everything it keeps in the hardware comes back intact after each switch. x0 = seed (1, 2,
// ...), which makes every value it writes its own.
//
// It fills six general registers, V0-V31, FPCR, FPSR, a set of EL1 system registers, the
// EL1 physical timer's compare value, its GIC CPU interface's priority mask and binary
// point, and debug state (the first access gives it the debug hardware: breakpoint 0's
// value and control, watchpoint 0's value, MDSCR_EL1, the OS lock), then ROUNDS times: arms its virtual timer STEP ticks ahead, waits in WFI (trapped
// while the other vCPU can run, so the pCPU switches to it), takes the timer interrupt
// (IRQs stay masked: WFI wakes on a pending interrupt anyway, and ICC_IAR1_EL1 acknowledges
// it), and checks the virtual timer's compare value and everything above.
// Report ids: 1 rounds done, 2 failures (bit 0 general registers, 1 FP/SIMD, 2 FPCR/FPSR,
// 3 system registers, 4 timers, 5 GIC CPU interface, 6 debug), 3 timer interrupts taken, 4
// the seed, 5 MPIDR_EL1.

// The guest's own FP/SIMD registers (the hypervisor is built softfloat): say so here, not
// rely on another block's directive coming first.
.arch_extension fp
.arch_extension simd

.equ ROUNDS, 200
.equ STEP, 20000                    // ticks: 0.3 ms at QEMU's 62.5 MHz

// PAT reg, i: a value of this vCPU's pattern (seed in bits 63:48).
.macro PAT reg, i
    movz    \reg, #(0x1000 + \i), lsl #32
    movk    \reg, #(0x2000 + \i), lsl #16
    movk    \reg, #(0x3000 + \i)
    eor     \reg, \reg, x19, lsl #48
.endm

// CHECK reg, expected, bit: sets failure bit `bit` in x28 unless reg == expected.
.macro CHECK reg, expected, bit
    cmp     \reg, \expected
    b.eq    9f
    orr     x28, x28, #(1 << \bit)
9:
.endm

.section .rodata.guest_switch, "a"
.balign 4096
.global guest_switch_start
guest_switch_start:
    mov     x19, x0
    mov     x26, #0                     // timer interrupts
    mov     x27, #0                     // rounds
    mov     x28, #0                     // failures
    // GIC: Group 1 on; our redistributor awake, PPI 27 (the virtual timer) in Group 1 and
    // enabled.
    movz    x1, #0x0800, lsl #16
    mov     w2, #3
    str     w2, [x1]                    // GICD_CTLR: the groups there are
    GIC_PRIVATE_ON 0, (1 << 11)         // PPI 27 (bit 27: bit 11 of the high half)
    // CPU interface: PMR 0xf8 - 8 * seed, BPR 3 + seed (both live in ICH_VMCR_EL2 or
    // GICH_VMCR), the group our interrupts are in on.
    GIC_V2  3
    cbnz    x3, 1f
    mov     x2, #0xf8
    sub     x2, x2, x19, lsl #3
    msr     icc_pmr_el1, x2
    add     x2, x19, #3
    msr     icc_bpr1_el1, x2
    mov     x2, #1
    msr     icc_igrpen1_el1, x2
    b       2f
1:  movz    x3, #(GICC_V2 >> 16), lsl #16
    mov     x2, #0xf8
    sub     x2, x2, x19, lsl #3
    str     w2, [x3, #0x4]              // GICC_PMR
    add     x2, x19, #3
    str     w2, [x3, #0x8]              // GICC_BPR
    mov     w2, #1
    str     w2, [x3]                    // GICC_CTLR.EnableGrp0
2:
    // FP/SIMD on at EL1.
    mov     x2, #(3 << 20)
    msr     cpacr_el1, x2
    isb
    // General registers.
    PAT     x20, 20
    PAT     x21, 21
    PAT     x22, 22
    PAT     x23, 23
    PAT     x24, 24
    PAT     x25, 25
    // V0-V31 from switch_fp: 64 words, word j = (seed << 32) | j.
    adr     x1, switch_fp
    mov     x2, #0
1:  orr     x3, x2, x19, lsl #32
    str     x3, [x1, x2, lsl #3]
    add     x2, x2, #1
    cmp     x2, #64
    b.lo    1b
    ldp     q0, q1, [x1, #0]
    ldp     q2, q3, [x1, #32]
    ldp     q4, q5, [x1, #64]
    ldp     q6, q7, [x1, #96]
    ldp     q8, q9, [x1, #128]
    ldp     q10, q11, [x1, #160]
    ldp     q12, q13, [x1, #192]
    ldp     q14, q15, [x1, #224]
    ldp     q16, q17, [x1, #256]
    ldp     q18, q19, [x1, #288]
    ldp     q20, q21, [x1, #320]
    ldp     q22, q23, [x1, #352]
    ldp     q24, q25, [x1, #384]
    ldp     q26, q27, [x1, #416]
    ldp     q28, q29, [x1, #448]
    ldp     q30, q31, [x1, #480]
    // FPCR.RMode = seed & 3; FPSR.QC and IOC/DZC by seed.
    and     x2, x19, #3
    lsl     x2, x2, #22
    msr     fpcr, x2
    and     x2, x19, #3
    orr     x2, x2, #(1 << 27)
    msr     fpsr, x2
    // EL1 system registers.
    bl      switch_sysregs_expected
    msr     tpidr_el1, x10
    msr     tpidr_el0, x11
    msr     tpidrro_el0, x12
    msr     sp_el0, x13
    msr     mair_el1, x14
    msr     far_el1, x15
    msr     elr_el1, x16
    msr     contextidr_el1, x17
    msr     vbar_el1, x6
    msr     ttbr0_el1, x7
    msr     ttbr1_el1, x8
    msr     esr_el1, x9
    msr     spsr_el1, x3
    msr     par_el1, x4
    msr     cntkctl_el1, x5
    // Two pointer authentication keys, where the guest's ID registers say it has them.
    bl      switch_has_pauth
    cbz     x1, 4f
    PAT     x2, 30
    msr     s3_0_c2_c1_0, x2            // APIAKeyLo_EL1
    PAT     x2, 31
    msr     s3_0_c2_c3_1, x2            // APGAKeyHi_EL1
4:
    sub     x2, x19, #1
    lsl     x2, x2, #1
    msr     csselr_el1, x2              // L1 data for seed 1, L2 for seed 2
    // The EL1 physical timer: a compare value, off.
    PAT     x2, 40
    msr     cntp_cval_el0, x2
    msr     cntp_ctl_el0, xzr
    // Debug state (nothing enabled: PSTATE.D stays set, no breakpoint has E).
    bl      switch_debug_expected
    msr     dbgbvr0_el1, x2
    msr     dbgbcr0_el1, x3
    msr     dbgwvr0_el1, x4
    msr     mdscr_el1, x5
    msr     oslar_el1, x6
    isb

switch_round:
    mrs     x12, cntvct_el0
    movz    x2, #STEP
    add     x12, x12, x2
    msr     cntv_cval_el0, x12
    mov     x2, #1
    msr     cntv_ctl_el0, x2
    isb
2:  wfi
    GIC_ACK 13, 1
    cmp     x13, #1020
    b.hs    2b                          // nothing pending (a spurious wake-up)
    GIC_EOI 13, 1
    cmp     x13, #27
    b.ne    2b
    add     x26, x26, #1
    mrs     x14, cntv_cval_el0
    CHECK   x14, x12, 4
    msr     cntv_ctl_el0, xzr
    isb
    bl      switch_check
    add     x27, x27, #1
    cmp     x27, #ROUNDS
    b.lo    switch_round

    REPORT  1, x27
    REPORT  2, x28
    REPORT  3, x26
    REPORT  4, x19
    mrs     x3, mpidr_el1
    REPORT  5, x3
    SYSTEM_OFF

// The debug state for this seed: DBGBVR0_EL1 in x2, DBGBCR0_EL1 (PMC from the seed, BAS
// for an A64 instruction, not enabled) in x3, DBGWVR0_EL1 in x4, MDSCR_EL1 in x5 (MDE for seed 1, TDCC for 2), the OS
// lock in x6 (locked for seed 1: OSLAR_EL1's OSLK, and OSLSR_EL1's OSLK is bit 1).
switch_debug_expected:
    lsl     x2, x19, #32
    movk    x2, #0x1230
    lsl     x3, x19, #1
    orr     x3, x3, #(0b1111 << 5)
    lsl     x4, x19, #36
    movk    x4, #0x4560
    mov     x5, #(1 << 15)
    cmp     x19, #1
    mov     x6, #(1 << 12)
    csel    x5, x5, x6, eq
    cset    x6, eq
    ret

// The system register values for this seed, in x3-x17 (x10-x17, x6-x9, x3-x5).
switch_sysregs_expected:
    PAT     x10, 30
    PAT     x11, 31
    PAT     x12, 32
    PAT     x13, 33
    PAT     x14, 34
    PAT     x15, 35
    PAT     x16, 36
    mov     x17, #0x4000
    add     x17, x17, x19               // CONTEXTIDR_EL1: 32 bits
    lsl     x6, x19, #20                // VBAR_EL1: bits 10:0 are RES0
    lsl     x7, x19, #36
    movk    x7, #0x5000                 // TTBR0_EL1: a base address
    lsl     x8, x19, #37
    movk    x8, #0x7000                 // TTBR1_EL1
    lsl     x9, x19, #24
    movk    x9, #0x1234                 // ESR_EL1: 32 bits
    lsl     x3, x19, #28
    movk    x3, #0x3c5                  // SPSR_EL1: EL1h, masked, flags from the seed
    lsl     x4, x19, #12                // PAR_EL1: F = 0, a physical address
    and     x5, x19, #3                 // CNTKCTL_EL1: EL0PCTEN/EL0VCTEN
    ret

// Checks everything but the virtual timer; failures into x28. Clobbers x1-x18.
// x1 = non-zero if ID_AA64ISAR1_EL1 advertises pointer authentication (APA, API, GPA,
// GPI). Clobbers x2.
switch_has_pauth:
    mrs     x1, id_aa64isar1_el1
    movz    x2, #0xff00, lsl #16
    movk    x2, #0x0ff0
    and     x1, x1, x2
    ret

switch_check:
    mov     x18, x30
    PAT     x2, 20
    CHECK   x20, x2, 0
    PAT     x2, 21
    CHECK   x21, x2, 0
    PAT     x2, 22
    CHECK   x22, x2, 0
    PAT     x2, 23
    CHECK   x23, x2, 0
    PAT     x2, 24
    CHECK   x24, x2, 0
    PAT     x2, 25
    CHECK   x25, x2, 0
    // V0-V31 out to switch_fp_out, compared with switch_fp.
    adr     x1, switch_fp_out
    stp     q0, q1, [x1, #0]
    stp     q2, q3, [x1, #32]
    stp     q4, q5, [x1, #64]
    stp     q6, q7, [x1, #96]
    stp     q8, q9, [x1, #128]
    stp     q10, q11, [x1, #160]
    stp     q12, q13, [x1, #192]
    stp     q14, q15, [x1, #224]
    stp     q16, q17, [x1, #256]
    stp     q18, q19, [x1, #288]
    stp     q20, q21, [x1, #320]
    stp     q22, q23, [x1, #352]
    stp     q24, q25, [x1, #384]
    stp     q26, q27, [x1, #416]
    stp     q28, q29, [x1, #448]
    stp     q30, q31, [x1, #480]
    adr     x2, switch_fp
    mov     x3, #0
3:  ldr     x4, [x1, x3, lsl #3]
    ldr     x5, [x2, x3, lsl #3]
    CHECK   x4, x5, 1
    add     x3, x3, #1
    cmp     x3, #64
    b.lo    3b
    mrs     x4, fpcr
    and     x5, x19, #3
    lsl     x5, x5, #22
    CHECK   x4, x5, 2
    mrs     x4, fpsr
    and     x5, x19, #3
    orr     x5, x5, #(1 << 27)
    CHECK   x4, x5, 2
    // System registers: read each into x1 and compare with the expected value.
    bl      switch_sysregs_expected
    mrs     x1, tpidr_el1
    CHECK   x1, x10, 3
    mrs     x1, tpidr_el0
    CHECK   x1, x11, 3
    mrs     x1, tpidrro_el0
    CHECK   x1, x12, 3
    mrs     x1, sp_el0
    CHECK   x1, x13, 3
    mrs     x1, mair_el1
    CHECK   x1, x14, 3
    mrs     x1, far_el1
    CHECK   x1, x15, 3
    mrs     x1, elr_el1
    CHECK   x1, x16, 3
    mrs     x1, contextidr_el1
    CHECK   x1, x17, 3
    mrs     x1, vbar_el1
    CHECK   x1, x6, 3
    mrs     x1, ttbr0_el1
    CHECK   x1, x7, 3
    mrs     x1, ttbr1_el1
    CHECK   x1, x8, 3
    mrs     x1, esr_el1
    CHECK   x1, x9, 3
    mrs     x1, spsr_el1
    CHECK   x1, x3, 3
    bl      switch_has_pauth
    cbz     x1, 4f
    mrs     x1, s3_0_c2_c1_0            // APIAKeyLo_EL1
    PAT     x2, 30
    CHECK   x1, x2, 3
    mrs     x1, s3_0_c2_c3_1            // APGAKeyHi_EL1
    PAT     x2, 31
    CHECK   x1, x2, 3
4:
    mrs     x1, par_el1
    CHECK   x1, x4, 3
    mrs     x1, cntkctl_el1
    and     x1, x1, #3
    CHECK   x1, x5, 3
    mrs     x1, csselr_el1
    sub     x2, x19, #1
    lsl     x2, x2, #1
    CHECK   x1, x2, 3
    mrs     x1, cpacr_el1
    and     x1, x1, #(3 << 20)
    mov     x2, #(3 << 20)
    CHECK   x1, x2, 3
    // The physical timer's compare value and control.
    mrs     x1, cntp_cval_el0
    PAT     x2, 40
    CHECK   x1, x2, 4
    mrs     x1, cntp_ctl_el0
    and     x1, x1, #3
    CHECK   x1, xzr, 4
    // GIC CPU interface.
    // (x0 and x29 as scratch: x3-x5 hold expected values for every round.)
    GIC_V2  0
    cbnz    x0, 1f
    mrs     x1, icc_pmr_el1
    mrs     x29, icc_bpr1_el1
    b       2f
1:  movz    x0, #(GICC_V2 >> 16), lsl #16
    ldr     w1, [x0, #0x4]              // GICC_PMR
    ldr     w29, [x0, #0x8]             // GICC_BPR
2:  mov     x2, #0xf8
    sub     x2, x2, x19, lsl #3
    CHECK   x1, x2, 5
    add     x2, x19, #3
    CHECK   x29, x2, 5
    // Debug state.
    bl      switch_debug_expected
    mrs     x1, dbgbvr0_el1
    CHECK   x1, x2, 6
    mrs     x1, dbgbcr0_el1
    CHECK   x1, x3, 6
    mrs     x1, dbgwvr0_el1
    CHECK   x1, x4, 6
    mrs     x1, mdscr_el1
    CHECK   x1, x5, 6
    mrs     x1, oslsr_el1
    ubfx    x1, x1, #1, #1
    CHECK   x1, x6, 6
    mov     x30, x18
    ret

.balign 16
switch_fp:
    .skip   512
switch_fp_out:
    .skip   512
.global guest_switch_end
guest_switch_end:

.purgem PAT
.purgem CHECK
.purgem REPORT
.purgem SYSTEM_OFF
.purgem ICC_ON
.purgem GIC_V2
.purgem GIC_ACK
.purgem GIC_EOI
.purgem GIC_PRIVATE_ON
