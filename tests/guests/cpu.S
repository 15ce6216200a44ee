// Test guest "cpu": the CPU a guest sees. FP/SIMD registers start zeroed (nothing left by an
// earlier guest on this pCPU) and keep their values across 200 exits; the ID registers hide
// SVE, SME, MTE, pointer authentication and the PMU; an SVE instruction is UNDEFINED;
// MDSCR_EL1 is the guest's; the EL1 physical timer works and its interrupt (PPI 30)
// arrives; the registers of optional features read as the harness expects for the core.
// Report ids: 1 OR of every FP/SIMD register, FPCR and FPSR at start; 2 bytes of V0-V31 not
// holding their pattern after the exits; 3 ID_AA64PFR0_EL1; 4 ID_AA64PFR1_EL1; 5
// ID_AA64ISAR1_EL1; 6 ID_AA64DFR0_EL1; 7 ID_AA64ZFR0_EL1; 8 ESR_EL1 after RDVL; 9 MDSCR_EL1
// after writing KDE and MDE; 10 physical timer interrupts taken; 11 OR of CNTV_CVAL,
// CNTP_CVAL, PAR_EL1 and CSSELR_EL1 at start (an earlier guest's values must not show: each
// guest leaves them non-zero for the next, the suite runs it twice on one pCPU). Then, each
// value with the ESR_EL1 its access raised (0: none) in the next id: 12/13 TPIDR2_EL0 at
// start (SME), 14/15 DISR_EL1 at start (RAS: VDISR_EL2), both also left non-zero; 16/17
// LORID_EL1, 18 LORC_EL1 after writing 1; 19/20 ERRIDR_EL1; 21 ESR of an AMCR_EL0 read, 22
// of a TRFCR_EL1 read; 23/24 ICC_SRE_EL1 after writing 0.

.arch_extension fp
.arch_extension simd
.arch_extension sve

.section .rodata.guest_cpu, "a"
.balign 4096
.global guest_cpu_start
guest_cpu_start:
    adr     x1, cpu_stack_top
    mov     sp, x1
    adr     x1, cpu_vectors
    msr     vbar_el1, x1
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1               // FP/SIMD on at EL1
    isb
    adr     x20, cpu_buf
    bl      store_v
    mrs     x3, fpcr
    mrs     x4, fpsr
    orr     x3, x3, x4
    mov     x5, #0
1:  cmp     x5, #64
    b.hs    2f
    ldr     x6, [x20, x5, lsl #3]
    orr     x3, x3, x6
    add     x5, x5, #1
    b       1b
2:  REPORT  1, x3
    mrs     x3, cntv_cval_el0
    mrs     x4, cntp_cval_el0
    orr     x3, x3, x4
    mrs     x4, par_el1
    orr     x3, x3, x4
    mrs     x4, csselr_el1
    orr     x3, x3, x4
    REPORT  11, x3

    // Patterns: every byte of Vn is n + 1.
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    mov     w3, #(\n + 1)
    dup     v\n\().16b, w3
    .endr
    mov     x21, #200
3:  movz    x0, #0x8400, lsl #16        // PSCI_VERSION: an exit each time
    hvc     #0
    subs    x21, x21, #1
    b.ne    3b
    bl      store_v
    mov     x3, #0                      // wrong bytes
    mov     x5, #0
4:  cmp     x5, #512
    b.hs    5f
    ldrb    w6, [x20, x5]
    lsr     x7, x5, #4
    add     x7, x7, #1
    cmp     x6, x7
    cinc    x3, x3, ne
    add     x5, x5, #1
    b       4b
5:  REPORT  2, x3

    mrs     x3, id_aa64pfr0_el1
    REPORT  3, x3
    mrs     x3, id_aa64pfr1_el1
    REPORT  4, x3
    mrs     x3, id_aa64isar1_el1
    REPORT  5, x3
    mrs     x3, id_aa64dfr0_el1
    REPORT  6, x3
    mrs     x3, s3_0_c0_c4_4            // ID_AA64ZFR0_EL1
    REPORT  7, x3
    mrs     x3, cpacr_el1
    orr     x3, x3, #(3 << 16)          // ZEN: the guest enables SVE at EL1 as a kernel
    msr     cpacr_el1, x3               // would; the hypervisor's trap (CPTR_EL2.TZ) wins
    isb
    mov     x21, #0
    rdvl    x3, #1                      // SVE: must be UNDEFINED
    REPORT  8, x21
    mov     x3, #((1 << 13) | (1 << 15))
    msr     mdscr_el1, x3               // the first debug access: the vCPU owns them now
    mrs     x3, mdscr_el1
    REPORT  9, x3
    // Registers of optional features: the value, then the ESR the access raised.
    mov     x21, #0
    mrs     x3, s3_3_c13_c0_5           // TPIDR2_EL0
    REPORT  12, x3
    REPORT  13, x21
    mov     x21, #0
    mrs     x3, s3_0_c12_c1_1           // DISR_EL1
    REPORT  14, x3
    REPORT  15, x21
    mov     x21, #0
    mrs     x3, s3_0_c10_c4_7           // LORID_EL1
    REPORT  16, x3
    REPORT  17, x21
    mov     x3, #1
    msr     s3_0_c10_c4_3, x3           // LORC_EL1
    mov     x3, #-1
    mrs     x3, s3_0_c10_c4_3
    REPORT  18, x3
    mov     x21, #0
    mrs     x3, s3_0_c5_c3_0            // ERRIDR_EL1
    REPORT  19, x3
    REPORT  20, x21
    mov     x21, #0
    mrs     x3, s3_3_c13_c2_0           // AMCR_EL0
    REPORT  21, x21
    mov     x21, #0
    mrs     x3, s3_0_c1_c2_1            // TRFCR_EL1
    REPORT  22, x21
    mov     x21, #0
    msr     s3_0_c12_c12_5, xzr         // ICC_SRE_EL1
    mov     x3, #-1
    mrs     x3, s3_0_c12_c12_5
    REPORT  23, x3
    REPORT  24, x21

    // The EL1 physical timer, through the vGIC: PPI 30.
    movz    x1, #0x0800, lsl #16
    mov     w2, #3
    str     w2, [x1]                    // GICD_CTLR: the groups there are
    GIC_PRIVATE_ON 0, (1 << (30 - 16))  // PPI 30
    ICC_ON
    msr     daifclr, #2
    mov     x22, #0                     // interrupts taken (the handler increments)
    mrs     x3, cntpct_el0
    add     x3, x3, #1000
    msr     cntp_cval_el0, x3
    mov     x3, #1
    msr     cntp_ctl_el0, x3
    movz    x4, #0x400, lsl #16
6:  cbnz    x22, 7f
    subs    x4, x4, #1
    b.ne    6b
7:  REPORT  10, x22
    // Leave state behind for whoever runs next on this pCPU.
    msr     cntp_ctl_el0, xzr
    mov     x3, #0x1234
    msr     cntv_cval_el0, x3
    msr     cntp_cval_el0, x3
    msr     par_el1, x3
    mov     x3, #1                      // CSSELR: level 1 instruction cache
    msr     csselr_el1, x3
    mov     x3, #0x1234
    msr     s3_3_c13_c0_5, x3           // TPIDR2_EL0 (UNDEFINED without SME: skipped)
    msr     s3_0_c12_c1_1, x3           // DISR_EL1 (UNDEFINED without RAS: skipped)
    SYSTEM_OFF

// Stores V0-V31 to cpu_buf (x20). Clobbers nothing else.
store_v:
    stp     q0, q1, [x20, #0]
    stp     q2, q3, [x20, #32]
    stp     q4, q5, [x20, #64]
    stp     q6, q7, [x20, #96]
    stp     q8, q9, [x20, #128]
    stp     q10, q11, [x20, #160]
    stp     q12, q13, [x20, #192]
    stp     q14, q15, [x20, #224]
    stp     q16, q17, [x20, #256]
    stp     q18, q19, [x20, #288]
    stp     q20, q21, [x20, #320]
    stp     q22, q23, [x20, #352]
    stp     q24, q25, [x20, #384]
    stp     q26, q27, [x20, #416]
    stp     q28, q29, [x20, #448]
    stp     q30, q31, [x20, #480]
    ret

cpu_sync:
    mrs     x21, esr_el1
    mrs     x9, elr_el1
    add     x9, x9, #4
    msr     elr_el1, x9
    eret

cpu_irq:
    stp     x0, x1, [sp, #-16]!
    GIC_ACK 0, 1
    cmp     x0, #30
    b.ne    9f
    msr     cntp_ctl_el0, xzr
    add     x22, x22, #1
9:  GIC_EOI 0, 1
    ldp     x0, x1, [sp], #16
    eret

.balign 2048
cpu_vectors:
    .rept 4
    .balign 0x80
    b       .
    .endr
    .balign 0x80
    b       cpu_sync                    // current EL with SP_ELx, synchronous
    .balign 0x80
    b       cpu_irq                     // current EL with SP_ELx, IRQ
    .rept 10
    .balign 0x80
    b       .
    .endr

.balign 16
cpu_buf:
    .space  512
    .space  1024
cpu_stack_top:
.global guest_cpu_end
guest_cpu_end:

.purgem REPORT
.purgem SYSTEM_OFF
.purgem ICC_ON
.purgem GIC_V2
.purgem GIC_ACK
.purgem GIC_EOI
.purgem GIC_PRIVATE_ON
