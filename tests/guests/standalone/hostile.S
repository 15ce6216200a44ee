// hostile: a guest on one vCPU that abuses everything a VM can reach, for ever, so that a
// test can check the VMs beside it do not notice. Never powers off or resets.
//
// Prints "hostile: up\n", then runs rounds; after every 16th it prints
//   "hostile: round N, faults F, sgis S, other O\n"
// (decimal, totals since start: N rounds done, F data aborts taken, S SGIs taken, O other
// exceptions: synchronous ones that are not data aborts, interrupts other than SGI 1 and
// the timer, and any other vector). Each round does, in turn:
//
//   1. Console flood: 2,000 bytes (40 lines "flood-flood-...-!\n") written to the PL011's
//      DR without looking at FR.
//   2. Fault storm: 200 loads and 200 stores (50 times: ldr x, ldr w, ldrb, ldp; str x,
//      strh, stp, str pre-indexed; the pairs and the writeback have no syndrome the
//      hypervisor can emulate from, ISV=0) and 50 DC CIVAC, at IPAs where nothing is:
//      0x0c000000 (QEMU virt's empty platform bus), 0x0e000000 (virt's secure RAM, absent
//      without secure=on), 0x100001000 (4 GiB, above a small VM's RAM) and 0x100000000000
//      (16 TiB, past a 40-bit IPA space), in turn (fault_addrs). Each access is an
//      external data abort (EC 0x25) that the synchronous handler counts and skips: 400 a
//      round (DC CIVAC of an address without RAM does nothing).
//   3. SGI storm: with IRQs masked, 1,000 writes of ICC_SGI1R_EL1 sending SGI 1 to itself;
//      then IRQs unmasked for 1 ms, taking what comes (a GICv3 keeps one pending SGI, so
//      usually one a round).
//   4. PSCI and SMCCC abuse: the calls of psci_table over HVC, and SMC #0 with a garbage
//      function ID (see the table). A CPU_ON whose target answers AFFINITY_INFO (a VM with
//      more vCPUs than the one this guest is meant for) is not made: nothing is ever started.
//      Calls that may sleep (CPU_SUSPEND) go with the virtual timer armed 1 ms ahead, so a
//      standby state always wakes. An answer outside what the table allows is a "surprise":
//      the first 8 are printed,
//        "hostile: psci surprise: fid 0x..., x1 0x..., got 0x...\n"
//      (skipped CPU_ONs too, with the AFFINITY_INFO answer as "got"), and counted.
//
// Under armvisor (HVC conduit; a trapped SMC answered like HVC) no call is a surprise and
// O stays 0. On QEMU directly without EL2/EL3 (its own PSCI over HVC) the SMC is
// UNDEFINED (EC 0x0: counted in O, 1 a round with QEMU 7.2, x0 left as it was, which the
// table allows; an HVC its PSCI does not know may be too), CPU_SUSPEND of a power-down
// state sleeps and returns 0, AFFINITY_INFO above level 0 answers ON: allowed too.
//
// Interrupts: SGI 1 and the timer PPI 27 enabled, everything else disabled. The handler
// EOIs what it acknowledged; the timer it also switches off (CNTV_CTL_EL0 = 0), so the
// level-triggered PPI drops. IRQs are masked except in the SGI window.

.equ ROUNDS_PER_LINE, 16
.equ FLOOD_LINES, 40
.equ FLOOD_LINE_LEN, 50
.equ FAULT_ITERATIONS, 50               // 4 loads and 4 stores each
.equ SGI_WRITES, 1000
.equ SURPRISES_PRINTED, 8

// psci_table entries: function ID, x1, x2, x3, the answer wanted, another answer allowed,
// flags. Answers compare as 32 bits (an SMC32 result is w0).
.equ P_FID, 0
.equ P_WANT, 32
.equ P_ALT, 40
.equ P_FLAGS, 48
.equ P_SIZE, 56
.equ F_ANY, 0                           // flag bits: any answer is fine
.equ F_TIMER, 1                         //   arm the timer first (the call may sleep)
.equ F_GUARD, 2                         //   a CPU_ON: only if x1 names no vCPU
.equ F_SMC, 3                           //   SMC #0 instead of HVC #0

.equ PSCI_VERSION, 0x84000000
.equ PSCI_CPU_SUSPEND32, 0x84000001
.equ PSCI_CPU_SUSPEND64, 0xc4000001
.equ PSCI_CPU_ON32, 0x84000003
.equ PSCI_CPU_ON64, 0xc4000003
.equ PSCI_AFFINITY_INFO32, 0x84000004
.equ PSCI_AFFINITY_INFO64, 0xc4000004
.equ PSCI_MIGRATE_INFO_TYPE, 0x84000006
.equ PSCI_FEATURES, 0x8400000a
.equ SMCCC_VERSION, 0x80000000
.equ NOT_SUPPORTED, -1
.equ INVALID_PARAMETERS, -2
.equ ALREADY_ON, -4
.equ INVALID_ADDRESS, -9
.equ MIGRATE_NOT_REQUIRED, 2            // MIGRATE_INFO_TYPE: no Trusted OS to migrate

main:
    adr     x0, s_up
    bl      uart_puts
    MOV32   w0, ((1 << INTID_SGI1) | (1 << INTID_VTIMER))
    bl      gic_init
    mrs     x0, cntfrq_el0
    mov     x1, #1000
    udiv    x0, x0, x1
    adr     x1, ticks_1ms
    str     x0, [x1]
    msr     cntv_ctl_el0, xzr
    isb
    mov     x19, #0                     // rounds done
round:
    bl      flood
    bl      fault_storm
    bl      sgi_storm
    bl      psci_abuse
    add     x19, x19, #1
    tst     x19, #(ROUNDS_PER_LINE - 1)
    b.ne    round
    adr     x0, s_round
    bl      uart_puts
    mov     x0, x19
    bl      uart_putdec
    adr     x0, s_faults
    bl      uart_puts
    adr     x0, faults
    ldr     x0, [x0]
    bl      uart_putdec
    adr     x0, s_sgis
    bl      uart_puts
    adr     x0, sgis
    ldr     x0, [x0]
    bl      uart_putdec
    adr     x0, s_other
    bl      uart_puts
    adr     x0, others
    ldr     x0, [x0]
    bl      uart_putdec
    mov     w0, #10
    bl      uart_putc
    b       round

// 1. FLOOD_LINES times flood_line, straight into DR. Clobbers x0-x5.
flood:
    MOV32   x1, UART
    mov     x4, #FLOOD_LINES
1:  adr     x2, flood_line
    mov     x3, #FLOOD_LINE_LEN
2:  ldrb    w5, [x2], #1
    str     w5, [x1, #UART_DR]
    subs    x3, x3, #1
    b.ne    2b
    subs    x4, x4, #1
    b.ne    1b
    ret

// 2. Loads and stores where nothing is mapped. Clobbers x9-x14. The handler skips each
// access, so the registers loaded keep whatever they had.
fault_storm:
    adr     x9, fault_addrs
    mov     x10, #0
1:  and     x11, x10, #3
    ldr     x12, [x9, x11, lsl #3]
    ldr     x13, [x12]
    ldr     w13, [x12, #8]
    ldrb    w13, [x12, #3]
    ldp     x13, x14, [x12, #16]
    str     x10, [x12]
    strh    w10, [x12, #2]
    stp     x10, x10, [x12, #32]
    str     x10, [x12, #48]!
    dc      civac, x12
    add     x10, x10, #1
    cmp     x10, #FAULT_ITERATIONS
    b.lo    1b
    ret

// 3. SGI 1 to ourselves SGI_WRITES times with IRQs masked, then 1 ms with them unmasked.
// ICC_SGI1R_EL1: TargetList [15:0] (a bit per Aff0 value), Aff1 [23:16], INTID [27:24],
// Aff2 [39:32], Aff3 [55:48]; built from MPIDR_EL1 (vCPU 0: 1 | 1 << 24). Clobbers x0-x8.
sgi_storm:
    mrs     x1, mpidr_el1
    and     x2, x1, #0xf
    mov     x3, #1
    lsl     x3, x3, x2
    ubfx    x4, x1, #8, #8
    orr     x3, x3, x4, lsl #16
    ubfx    x4, x1, #16, #8
    orr     x3, x3, x4, lsl #32
    ubfx    x4, x1, #32, #8
    orr     x3, x3, x4, lsl #48
    orr     x3, x3, #(INTID_SGI1 << 24)
    msr     daifset, #2
    mov     x5, #SGI_WRITES
1:  msr     icc_sgi1r_el1, x3
    subs    x5, x5, #1
    b.ne    1b
    isb
    adr     x6, ticks_1ms
    ldr     x6, [x6]
    mrs     x7, cntvct_el0
    add     x7, x7, x6
    msr     daifclr, #2
2:  isb
    mrs     x8, cntvct_el0
    cmp     x8, x7
    b.lo    2b
    msr     daifset, #2
    ret

// arm_timer_soon: the virtual timer fires 1 ms from now. Clobbers x0 and x1.
arm_timer_soon:
    adr     x0, ticks_1ms
    ldr     x0, [x0]
    isb
    mrs     x1, cntvct_el0
    add     x1, x1, x0
    msr     cntv_cval_el0, x1
    mov     x1, #CNTV_CTL_ENABLE
    msr     cntv_ctl_el0, x1
    isb
    ret

// 4. Every call of psci_table, with IRQs masked. Keeps x19.
psci_abuse:
    stp     x29, x30, [sp, #-48]!
    stp     x20, x21, [sp, #16]
    stp     x22, x23, [sp, #32]
    adr     x20, psci_table
    adr     x23, psci_table_end
1:  cmp     x20, x23
    b.hs    9f
    ldr     x21, [x20, #P_FLAGS]
    tbz     x21, #F_GUARD, 2f
    // Is x1 a vCPU? AFFINITY_INFO answers ON (0), OFF (1) or ON_PENDING (2) if so.
    MOV32   x0, PSCI_AFFINITY_INFO64
    ldr     x1, [x20, #8]
    mov     x2, #0
    hvc     #0
    tbnz    w0, #31, 2f                 // an error: nobody there, go ahead
    mov     x1, x0
    mov     x0, x20
    bl      psci_surprise
    b       8f
2:  tbz     x21, #F_TIMER, 3f
    bl      arm_timer_soon
3:  ldp     x0, x1, [x20]
    ldp     x2, x3, [x20, #16]
    tbnz    x21, #F_SMC, 4f
    hvc     #0
    b       5f
4:  smc     #0
5:  tbnz    x21, #F_ANY, 8f
    ldr     x1, [x20, #P_WANT]
    cmp     w0, w1
    b.eq    8f
    ldr     x1, [x20, #P_ALT]
    cmp     w0, w1
    b.eq    8f
    mov     x1, x0
    mov     x0, x20
    bl      psci_surprise
8:  add     x20, x20, #P_SIZE
    b       1b
9:  msr     cntv_ctl_el0, xzr           // the timer off: its interrupt, if pending, drops
    isb
    ldp     x22, x23, [sp, #32]
    ldp     x20, x21, [sp, #16]
    ldp     x29, x30, [sp], #48
    ret

// psci_surprise: x0 = the psci_table entry, x1 = the answer. Counts it; prints the first
// SURPRISES_PRINTED. Clobbers x0-x9.
psci_surprise:
    stp     x29, x30, [sp, #-32]!
    stp     x19, x20, [sp, #16]
    mov     x19, x0
    mov     x20, x1
    adr     x2, surprises
    ldr     x3, [x2]
    add     x3, x3, #1
    str     x3, [x2]
    cmp     x3, #SURPRISES_PRINTED
    b.hi    1f
    adr     x0, s_surprise
    bl      uart_puts
    ldr     x0, [x19, #P_FID]
    bl      uart_puthex
    adr     x0, s_x1
    bl      uart_puts
    ldr     x0, [x19, #8]
    bl      uart_puthex
    adr     x0, s_got
    bl      uart_puts
    mov     x0, x20
    bl      uart_puthex
    mov     w0, #10
    bl      uart_putc
1:  ldp     x19, x20, [sp, #16]
    ldp     x29, x30, [sp], #32
    ret

// Synchronous exceptions: data aborts (EC 0x25, from the fault storm) counted in faults,
// anything else in others; either way, on past the instruction.
guest_sync:
    ubfx    x0, x0, #26, #6
    cmp     x0, #0x25
    b.ne    1f
    INC64   faults, x1, x2
    b       skip_insn
1:  INC64   others, x1, x2
    b       skip_insn

// IRQ: SGI 1 counted in sgis; the timer switched off; anything else counted in others.
guest_irq:
    mrs     x0, icc_iar1_el1
    and     w1, w0, #0xffffff
    cmp     w1, #INTID_SPECIAL
    b.hs    9f                          // nothing pending after all: no EOI
    cmp     w1, #INTID_SGI1
    b.ne    1f
    INC64   sgis, x2, x3
    b       8f
1:  cmp     w1, #INTID_VTIMER
    b.ne    2f
    msr     cntv_ctl_el0, xzr
    isb
    INC64   timer_irqs, x2, x3
    b       8f
2:  INC64   others, x2, x3
8:  msr     icc_eoir1_el1, x0
9:  ret

// FIQ, SError, or an exception from a lower EL or on SP_EL0: none expected.
guest_other:
    INC64   others, x1, x2
    ret

.section .rodata.hostile, "a"
.balign 8
// Where nothing is, in an armvisor VM (RAM at 0x40000000, devices below 0x0b000000) and
// on QEMU's virt machine alike.
fault_addrs:
    .quad   0x0c000000                  // virt's platform bus: empty
    .quad   0x100001000                 // 4 GiB: above the RAM of a VM below 3 GiB
    .quad   0x100000000000              // 16 TiB: past a 40-bit IPA space
    .quad   0x0e000000                  // virt's secure RAM: absent without secure=on

// The calls of step 4: fid, x1, x2, x3, wanted answer, other allowed answer, flags.
// The other answer is the function ID itself where HVC/SMC may be UNDEFINED (QEMU
// without EL2/EL3 leaves x0 as it was), or what QEMU's own PSCI answers.
.macro CALL fid, a1, a2, a3, want, alt, flags
    .quad   \fid, \a1, \a2, \a3, \want, \alt, \flags
.endm
psci_table:
    CALL    PSCI_VERSION, 0, 0, 0, 0, 0, (1 << F_ANY)
    // CPU_ON: ourselves, already on; nonexistent MPIDRs with entry 0, garbage, or a valid
    // entry; MPIDRs with reserved bits.
    CALL    PSCI_CPU_ON64, 0, 0, 0, ALREADY_ON, ALREADY_ON, 0
    CALL    PSCI_CPU_ON64, 1, 0, 0, INVALID_PARAMETERS, INVALID_PARAMETERS, (1 << F_GUARD)
    CALL    PSCI_CPU_ON64, 2, 0xdeadbeef, 0x1234, INVALID_PARAMETERS, INVALID_PARAMETERS, (1 << F_GUARD)
    CALL    PSCI_CPU_ON64, 0xff, 0x40000000, 0, INVALID_PARAMETERS, INVALID_PARAMETERS, (1 << F_GUARD)
    CALL    PSCI_CPU_ON64, 0xffffffff, 0xffffffffffffffff, 0, INVALID_PARAMETERS, INVALID_PARAMETERS, (1 << F_GUARD)
    CALL    PSCI_CPU_ON32, 1, 3, 0, INVALID_PARAMETERS, INVALID_PARAMETERS, (1 << F_GUARD)
    CALL    PSCI_CPU_ON64, 0x80000001, 0x40000000, 0, INVALID_PARAMETERS, INVALID_PARAMETERS, (1 << F_GUARD)
    // AFFINITY_INFO: nobody; a level above 0 (optional in PSCI: armvisor refuses it, QEMU
    // answers ON (0) for any); all ones.
    CALL    PSCI_AFFINITY_INFO64, 0xdeadbeef, 0, 0, INVALID_PARAMETERS, INVALID_PARAMETERS, 0
    CALL    PSCI_AFFINITY_INFO64, 0, 7, 0, INVALID_PARAMETERS, 0, 0
    CALL    PSCI_AFFINITY_INFO32, 0xffffffff, 0xffffffff, 0, INVALID_PARAMETERS, 0, 0
    // CPU_SUSPEND: reserved power_state bits; power down with a misaligned and a null
    // entry (armvisor: INVALID_ADDRESS; QEMU sleeps and says 0); standby with a garbage
    // entry (ignored); power level 1 standby (QEMU: INVALID_PARAMETERS).
    CALL    PSCI_CPU_SUSPEND64, 0xdeadbeef, 1, 0, INVALID_PARAMETERS, INVALID_PARAMETERS, (1 << F_TIMER)
    CALL    PSCI_CPU_SUSPEND64, 0x10000, 2, 0, INVALID_ADDRESS, 0, (1 << F_TIMER)
    CALL    PSCI_CPU_SUSPEND64, 0x10000, 0, 0, INVALID_ADDRESS, 0, (1 << F_TIMER)
    CALL    PSCI_CPU_SUSPEND64, 0, 0xffffffffffff0000, 5, 0, 0, (1 << F_TIMER)
    CALL    PSCI_CPU_SUSPEND32, 0x01000000, 0, 0, 0, INVALID_PARAMETERS, (1 << F_TIMER)
    CALL    PSCI_MIGRATE_INFO_TYPE, 0, 0, 0, MIGRATE_NOT_REQUIRED, MIGRATE_NOT_REQUIRED, 0
    // Unknown functions: NOT_SUPPORTED.
    CALL    0x84000099, 1, 2, 3, NOT_SUPPORTED, 0x84000099, 0
    CALL    0xc4000077, 1, 2, 3, NOT_SUPPORTED, 0xc4000077, 0
    CALL    0x12345678, 1, 2, 3, NOT_SUPPORTED, 0x12345678, 0
    CALL    PSCI_FEATURES, 0x12345678, 0, 0, NOT_SUPPORTED, PSCI_FEATURES, 0
    // SMCCC_VERSION: 1.0 hypervisors answer NOT_SUPPORTED, later ones a version.
    CALL    SMCCC_VERSION, 0, 0, 0, 0, 0, (1 << F_ANY)
    // An SMC with a garbage function ID.
    CALL    0xdeadbeef, 0xdead, 0xbeef, 0, NOT_SUPPORTED, 0xdeadbeef, (1 << F_SMC)
psci_table_end:

flood_line:                             // FLOOD_LINE_LEN = 8 * 6 + 2 bytes
    .rept   8
    .ascii  "flood-"
    .endr
    .ascii  "!\n"

s_up:
    .asciz  "hostile: up\n"
s_round:
    .asciz  "hostile: round "
s_faults:
    .asciz  ", faults "
s_sgis:
    .asciz  ", sgis "
s_other:
    .asciz  ", other "
s_surprise:
    .asciz  "hostile: psci surprise: fid "
s_x1:
    .asciz  ", x1 "
s_got:
    .asciz  ", got "

.section .bss.hostile, "aw", %nobits
.balign 8
ticks_1ms:
    .space  8                           // CNTFRQ_EL0 / 1000
faults:
    .space  8
sgis:
    .space  8
others:
    .space  8
timer_irqs:
    .space  8
surprises:
    .space  8
