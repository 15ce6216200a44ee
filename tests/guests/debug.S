// Test guest "debug": the self-hosted debug hardware is the guest's. Its OS lock starts
// locked and its debug registers reset (nothing of the last VM on this pCPU: the suite runs
// it twice on one pCPU, and it leaves a breakpoint and MDSCR_EL1 behind); a breakpoint at
// EL1 and one at EL0, a watchpoint at EL1, each taken once with its exception class; no
// breakpoint while the OS lock is locked; and a software step over nine instructions, three
// of which trap and are emulated (an ID register read, an SMC, a load from the vGIC) and one
// an HVC, taken exactly nine times, each step one instruction further.
// Report ids: 1 OSLSR_EL1 at start; 2 MDSCR_EL1 at start (the first debug register access);
// 3 DBGBVR1_EL1 | DBGBCR1_EL1 at start; 4 OSLSR_EL1 after unlocking; 5-7 the EL1 breakpoint:
// hits, ESR_EL1.EC, ELR_EL1 right (1); 8-10 the same at EL0; 11 steps taken, 12 steps not
// one instruction on, 13 the last step's ESR_EL1.EC; 14-16 the watchpoint: hits, EC, FAR
// right (1); 17 breakpoint hits with the OS lock locked; 18 ID_AA64DFR0_EL1; 19 the watched
// word after the store; 20 unexpected exceptions; 21 OSLSR_EL1 after locking it again.

.equ MDSCR_SS, 1 << 0
.equ MDSCR_KDE, 1 << 13
.equ MDSCR_MDE, 1 << 15
// DBGBCR: E, PMC (0b01 EL1, 0b10 EL0), BAS 0b1111 (the A64 instruction at the address).
.equ BCR_EL1, 1 | (0b01 << 1) | (0b1111 << 5)
.equ BCR_EL0, 1 | (0b10 << 1) | (0b1111 << 5)
// DBGWCR: E, PAC 0b01 (EL1), LSC 0b10 (stores), BAS 0xff (the whole doubleword).
.equ WCR_EL1_STORE, 1 | (0b01 << 1) | (0b10 << 3) | (0xff << 5)
.equ SPSR_SS, 1 << 21
// Result slots (dbg_res + n).
.equ R_BP1_HITS, 0
.equ R_BP1_ESR, 8
.equ R_BP1_ELR, 16
.equ R_BP0_HITS, 24
.equ R_BP0_ESR, 32
.equ R_BP0_ELR, 40
.equ R_STEPS, 48
.equ R_STEP_BAD, 56
.equ R_STEP_ESR, 64
.equ R_STEP_NEXT, 72
.equ R_WP_HITS, 80
.equ R_WP_ESR, 88
.equ R_WP_FAR, 96
.equ R_UNEXPECTED, 104

.section .rodata.guest_debug, "a"
.balign 4096
.global guest_debug_start
guest_debug_start:
    adr     x1, dbg_stack_top
    mov     sp, x1
    adr     x1, dbg_vectors
    msr     vbar_el1, x1
    isb
    adr     x19, dbg_res
    mrs     x3, oslsr_el1
    REPORT  1, x3
    mrs     x3, mdscr_el1               // the first access: the vCPU takes the hardware over
    REPORT  2, x3
    mrs     x3, dbgbvr1_el1
    mrs     x4, dbgbcr1_el1
    orr     x3, x3, x4
    REPORT  3, x3
    msr     oslar_el1, xzr              // unlock the OS lock, as Linux does at boot
    isb
    mrs     x3, oslsr_el1
    REPORT  4, x3
    mrs     x3, id_aa64dfr0_el1
    REPORT  18, x3

    // A breakpoint at EL1: KDE and MDE, PSTATE.D clear.
    adr     x3, dbg_el1_target
    msr     dbgbvr0_el1, x3
    mov     x3, #BCR_EL1
    msr     dbgbcr0_el1, x3
    mov     x3, #(MDSCR_KDE | MDSCR_MDE)
    msr     mdscr_el1, x3
    isb
    msr     daifclr, #8
    isb
    bl      dbg_el1_target
    msr     daifset, #8
    ldr     x3, [x19, #R_BP1_HITS]
    REPORT  5, x3
    ldr     x3, [x19, #R_BP1_ESR]
    lsr     x3, x3, #26
    REPORT  6, x3
    ldr     x3, [x19, #R_BP1_ELR]
    adr     x4, dbg_el1_target
    cmp     x3, x4
    cset    x3, eq
    REPORT  7, x3

    // A breakpoint at EL0: the code there returns with an SVC.
    adr     x3, dbg_el0_code
    msr     dbgbvr0_el1, x3
    mov     x3, #BCR_EL0
    msr     dbgbcr0_el1, x3
    isb
    adr     x3, dbg_el0_code
    msr     elr_el1, x3
    mov     x3, #0x1c0                  // EL0t, A, I and F masked, D clear
    msr     spsr_el1, x3
    eret
dbg_el0_back:
    ldr     x3, [x19, #R_BP0_HITS]
    REPORT  8, x3
    ldr     x3, [x19, #R_BP0_ESR]
    lsr     x3, x3, #26
    REPORT  9, x3
    ldr     x3, [x19, #R_BP0_ELR]
    adr     x4, dbg_el0_code
    cmp     x3, x4
    cset    x3, eq
    REPORT  10, x3

    // A watchpoint on stores at EL1.
    adr     x3, dbg_watched
    msr     dbgwvr0_el1, x3
    mov     x3, #WCR_EL1_STORE
    msr     dbgwcr0_el1, x3
    isb
    msr     daifclr, #8
    isb
    adr     x4, dbg_watched
    mov     x5, #0x77
    str     x5, [x4]                    // the watchpoint, then again without it
    msr     daifset, #8
    ldr     x3, [x19, #R_WP_HITS]
    REPORT  14, x3
    ldr     x3, [x19, #R_WP_ESR]
    lsr     x3, x3, #26
    REPORT  15, x3
    ldr     x3, [x19, #R_WP_FAR]
    adr     x4, dbg_watched
    cmp     x3, x4
    cset    x3, eq
    REPORT  16, x3
    adr     x4, dbg_watched
    ldr     x3, [x4]
    REPORT  19, x3

    // The OS lock locked: the breakpoint is ignored (software debug events other than BRK).
    adr     x3, dbg_el1_target
    msr     dbgbvr0_el1, x3
    mov     x3, #BCR_EL1
    msr     dbgbcr0_el1, x3
    mov     x3, #1
    msr     oslar_el1, x3
    isb
    mrs     x3, oslsr_el1
    REPORT  21, x3
    ldr     x21, [x19, #R_BP1_HITS]
    msr     daifclr, #8
    isb
    bl      dbg_el1_target
    msr     daifset, #8
    ldr     x3, [x19, #R_BP1_HITS]
    sub     x3, x3, x21
    REPORT  17, x3
    msr     dbgbcr0_el1, xzr
    msr     oslar_el1, xzr
    isb

    // A software step at EL1: KDE and SS, an ERET with SPSR_EL1.SS = 1 and D clear.
    mov     x3, #(MDSCR_KDE | MDSCR_SS)
    msr     mdscr_el1, x3
    isb
    adr     x3, dbg_step_code
    add     x4, x3, #4
    str     x4, [x19, #R_STEP_NEXT]
    msr     elr_el1, x3
    movz    x3, #0x1c5                  // EL1h, A, I and F masked, D clear,
    movk    x3, #(SPSR_SS >> 16), lsl #16  // and SS
    msr     spsr_el1, x3
    movz    x9, #0x0800, lsl #16        // GICD
    eret
dbg_step_code:
    nop
    mrs     x6, id_aa64pfr0_el1         // trapped (HCR_EL2.TID3) and emulated
    add     x7, x7, #1
    movz    x0, #0x8400, lsl #16        // PSCI_VERSION
    smc     #0                          // trapped (HCR_EL2.TSC) and emulated
    movz    x0, #0x8400, lsl #16
    hvc     #0                          // completed by the hardware
    ldr     w8, [x9, #4]                // GICD_TYPER: emulated by the vGIC
    nop
dbg_step_end:
    msr     daifset, #8
    ldr     x3, [x19, #R_STEPS]
    REPORT  11, x3
    ldr     x3, [x19, #R_STEP_BAD]
    REPORT  12, x3
    ldr     x3, [x19, #R_STEP_ESR]
    lsr     x3, x3, #26
    REPORT  13, x3
    ldr     x3, [x19, #R_UNEXPECTED]
    REPORT  20, x3

    // Leave debug state behind for whoever runs next on this pCPU.
    mov     x3, #0x1234
    msr     dbgbvr1_el1, x3
    mov     x3, #(0b1111 << 5)          // BAS set, not enabled
    msr     dbgbcr1_el1, x3
    mov     x3, #(MDSCR_KDE | MDSCR_MDE)
    msr     mdscr_el1, x3
    isb
    SYSTEM_OFF

dbg_el1_target:
    nop
    ret

dbg_el0_code:
    nop
    svc     #0

// Debug exceptions at EL1 (current EL with SP_ELx): count, note, and go on. Clobbers
// x10-x13 only.
dbg_sync_el1:
    mrs     x10, esr_el1
    lsr     x11, x10, #26
    cmp     x11, #0x31                  // breakpoint, no change of EL
    b.eq    1f
    cmp     x11, #0x33                  // software step, no change of EL
    b.eq    2f
    cmp     x11, #0x35                  // watchpoint, no change of EL
    b.eq    3f
    ldr     x11, [x19, #R_UNEXPECTED]
    add     x11, x11, #1
    str     x11, [x19, #R_UNEXPECTED]
    mrs     x11, elr_el1
    add     x11, x11, #4
    msr     elr_el1, x11
    eret
1:  ldr     x11, [x19, #R_BP1_HITS]
    add     x11, x11, #1
    str     x11, [x19, #R_BP1_HITS]
    str     x10, [x19, #R_BP1_ESR]
    mrs     x11, elr_el1
    str     x11, [x19, #R_BP1_ELR]
    msr     dbgbcr0_el1, xzr            // the instruction runs when we return
    isb
    eret
2:  ldr     x11, [x19, #R_STEPS]
    add     x11, x11, #1
    str     x11, [x19, #R_STEPS]
    str     x10, [x19, #R_STEP_ESR]
    mrs     x11, elr_el1                // where the next step starts
    ldr     x12, [x19, #R_STEP_NEXT]
    cmp     x11, x12
    b.eq    4f
    ldr     x12, [x19, #R_STEP_BAD]
    add     x12, x12, #1
    str     x12, [x19, #R_STEP_BAD]
4:  add     x12, x11, #4
    str     x12, [x19, #R_STEP_NEXT]
    adr     x12, dbg_step_end
    cmp     x11, x12
    b.hs    5f
    ldr     x12, [x19, #R_STEPS]
    cmp     x12, #64
    b.hs    5f
    mrs     x12, spsr_el1               // step the next one
    orr     x12, x12, #SPSR_SS
    msr     spsr_el1, x12
    eret
5:  mrs     x12, mdscr_el1              // done: no more stepping
    bic     x12, x12, #MDSCR_SS
    msr     mdscr_el1, x12
    isb
    eret
3:  ldr     x11, [x19, #R_WP_HITS]
    add     x11, x11, #1
    str     x11, [x19, #R_WP_HITS]
    str     x10, [x19, #R_WP_ESR]
    mrs     x11, far_el1
    str     x11, [x19, #R_WP_FAR]
    msr     dbgwcr0_el1, xzr            // the store runs when we return
    isb
    eret

// From EL0: the breakpoint, or the SVC that comes back to EL1.
dbg_sync_el0:
    mrs     x10, esr_el1
    lsr     x11, x10, #26
    cmp     x11, #0x30                  // breakpoint from a lower EL
    b.ne    1f
    ldr     x11, [x19, #R_BP0_HITS]
    add     x11, x11, #1
    str     x11, [x19, #R_BP0_HITS]
    str     x10, [x19, #R_BP0_ESR]
    mrs     x11, elr_el1
    str     x11, [x19, #R_BP0_ELR]
    msr     dbgbcr0_el1, xzr
    isb
    eret
1:  cmp     x11, #0x15                  // SVC
    b.eq    2f
    ldr     x11, [x19, #R_UNEXPECTED]
    add     x11, x11, #1
    str     x11, [x19, #R_UNEXPECTED]
2:  adr     x11, dbg_el0_back
    msr     elr_el1, x11
    mov     x11, #0x3c5                 // EL1h, all masked
    msr     spsr_el1, x11
    eret

.balign 2048
dbg_vectors:
    .rept 4
    .balign 0x80
    b       .
    .endr
    .balign 0x80
    b       dbg_sync_el1                // current EL with SP_ELx, synchronous
    .rept 3
    .balign 0x80
    b       .
    .endr
    .balign 0x80
    b       dbg_sync_el0                // lower EL, AArch64, synchronous
    .rept 7
    .balign 0x80
    b       .
    .endr

.balign 16
dbg_watched:
    .quad   0
dbg_res:
    .space  128
    .space  1024
dbg_stack_top:
.global guest_debug_end
guest_debug_end:

.purgem REPORT
.purgem SYSTEM_OFF
.purgem ICC_ON
.purgem GIC_V2
.purgem GIC_ACK
.purgem GIC_EOI
.purgem GIC_PRIVATE_ON
