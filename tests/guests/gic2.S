// Test guest "gic2": the virtual GICv2 (IHI 0048B) and the virtual timer on every vCPU, the
// GICv2 counterpart of "gic". x0 = vCPU count (2 to 8). Every interrupt stays in Group 0,
// as Linux leaves them, and the CPU interface is the memory-mapped GICC. vCPU 0 sets up the
// distributor and starts the others with PSCI CPU_ON; every vCPU enables SGIs 0-15 and the
// timer PPI 27 in its banked GICD registers, checks that its GICD_ITARGETSR0 names its own
// CPU interface, and then:
//   A. sends SGI <own index> to every other vCPU (GICD_SGIR target list), vCPU 0 also SGI 15
//      to all others at once ("all but self"), every vCPU but the last SGI 14 to the last
//      vCPU (so that several senders of one SGI are pending there together: each is its own
//      interrupt, and GICC_IAR names its sender), and SGI 13 to itself ("self"); and waits
//      until each arrived;
//   B. arms its virtual timer 100 times, 2000 ticks ahead, and checks each interrupt
//      arrives after the deadline it set (and not absurdly late).
// Then vCPU 0 alone:
//   C. raises the self-test device's SPI 40 (level), which ITARGETSR routes to the last
//      vCPU, on another pCPU, and waits until that vCPU took it twice (EOId once with the
//      line still high);
//   D. with IRQs masked, makes SGIs 1-6 pending on itself ("self") at six different
//      priorities (more than the four list registers QEMU has), unmasks, and logs the order
//      they arrive.
// Report ids: 1 SGI pairs not received exactly once, 2 vCPUs that did not receive the
// broadcast exactly once (vCPU 0: not at all), 3 timer interrupts taken, 4 timer interrupts
// early or more than 1 s late, 5 SPI 40 deliveries on the last vCPU (2), 6 SPI 40 count on
// all others, 7 the arrival order of SGIs 1-6 as nibbles (first in the low nibble), 8 the
// vCPU count, 9 senders of SGI 14 at the last vCPU not seen exactly once, 10 vCPUs whose
// ITARGETSR0 was not their own bit, 11 SGIs 13 from self (want one per vCPU) and
// 12 interrupts whose GICC_IAR named the wrong sender.

.equ GICD, 0x08000000
.equ GICC, 0x08010000
.equ TESTDEV, 0x0b000000
.equ TIMER_STEP, 2000
.equ TIMER_ROUNDS, 100

// Offsets into guest_gic2_data.
.equ D_SGI, 0                   // u64 [8][16]: SGIs received, by receiver and SGI number
.equ D_FIRES, 1024              // u64 [8]: timer interrupts
.equ D_LATE, 1088               // u64 [8]: timer interrupts early or too late
.equ D_SPI, 1152                // u64 [8]: SPI 40 interrupts
.equ D_LOG, 1216                // u64 [8]: vCPU 0's arrival log in phase D
.equ D_LOGN, 1280               // u64: entries in the log
.equ D_LOGON, 1288              // u64: logging on
.equ D_READY, 1296              // u64: secondaries initialised
.equ D_GO, 1304                 // u64: start phases A and B
.equ D_DONE, 1312               // u64: vCPUs done with A and B
.equ D_SRC14, 1320              // u64 [8]: SGI 14 at the last vCPU, by sender
.equ D_TGT, 1384                // u64: vCPUs whose ITARGETSR0 was wrong
.equ D_BADSRC, 1392             // u64: GICC_IAR with the wrong sender

.macro ADDR reg, value
    movz    \reg, #((\value) >> 16), lsl #16
    movk    \reg, #((\value) & 0xffff)
.endm

.section .rodata.guest_gic2, "a"
.balign 4096
.global guest_gic2_start
guest_gic2_start:
    mov     x20, x0                     // vCPU count
    mov     x19, #0
    adr     x1, gic2_n
    str     x20, [x1]
    // Distributor: Group 0 on, SPI 40 enabled and targeted at CPU interface n-1.
    ADDR    x1, GICD
    mov     w2, #1
    str     w2, [x1]                    // GICD_CTLR.EnableGrp0
    mov     w2, #(1 << 8)
    str     w2, [x1, #0x104]            // GICD_ISENABLER1: INTID 40
    sub     x2, x20, #1
    mov     x3, #1
    lsl     x3, x3, x2
    strb    w3, [x1, #0x828]            // GICD_ITARGETSR40
    bl      percpu_init_v2
    mov     x23, #1
1:  cmp     x23, x20
    b.hs    2f
    movz    x0, #0xc400, lsl #16
    movk    x0, #0x0003                 // CPU_ON
    mov     x1, x23
    adr     x2, gic2_secondary
    mov     x3, x23
    hvc     #0
    add     x23, x23, #1
    b       1b
2:  adr     x21, guest_gic2_data
    sub     x3, x20, #1
3:  ldr     x4, [x21, #D_READY]
    cmp     x4, x3
    b.lo    3b
    mov     x4, #1
    str     x4, [x21, #D_GO]
    bl      phases_ab_v2
    // Wait for every vCPU to finish A and B, then check A.
4:  ldr     x4, [x21, #D_DONE]
    cmp     x4, x20
    b.lo    4b
    mov     x5, #0                      // pair mismatches
    mov     x6, #0                      // broadcast mismatches
    mov     x7, #0                      // receiver
5:  cmp     x7, x20
    b.hs    8f
    mov     x8, #0                      // SGI number = sender
6:  cmp     x8, x20
    b.hs    7f
    add     x9, x8, x7, lsl #4
    ldr     x10, [x21, x9, lsl #3]
    cmp     x7, x8
    b.eq    65f
    cmp     x10, #1
    cinc    x5, x5, ne
65: add     x8, x8, #1
    b       6b
7:  lsl     x9, x7, #4
    add     x9, x9, #15
    ldr     x10, [x21, x9, lsl #3]
    cmp     x7, #0
    cset    x11, ne                     // want 1, or 0 for the sender
    cmp     x10, x11
    cinc    x6, x6, ne
    add     x7, x7, #1
    b       5b
8:  mov     x24, x5
    mov     x25, x6
    REPORT  1, x24
    REPORT  2, x25
    // SGI 14 at the last vCPU: once from each other vCPU, told apart by GICC_IAR.CPUID.
    mov     x5, #0
    mov     x7, #0
91: sub     x8, x20, #1
    cmp     x7, x8
    b.hs    92f
    add     x9, x21, x7, lsl #3
    ldr     x10, [x9, #D_SRC14]
    cmp     x10, #1
    cinc    x5, x5, ne
    add     x7, x7, #1
    b       91b
92: mov     x24, x5
    REPORT  9, x24
    ldr     x24, [x21, #D_TGT]
    REPORT  10, x24
    mov     x5, #0                      // SGI 13 to self, on every vCPU
    mov     x7, #0
93: cmp     x7, x20
    b.hs    94f
    lsl     x9, x7, #4
    add     x9, x9, #13
    ldr     x10, [x21, x9, lsl #3]
    add     x5, x5, x10
    add     x7, x7, #1
    b       93b
94: mov     x24, x5
    REPORT  11, x24
    // Timer results.
    mov     x5, #0
    mov     x6, #0
    mov     x7, #0
9:  cmp     x7, x20
    b.hs    10f
    add     x9, x21, x7, lsl #3
    ldr     x10, [x9, #D_FIRES]
    add     x5, x5, x10
    ldr     x10, [x9, #D_LATE]
    add     x6, x6, x10
    add     x7, x7, #1
    b       9b
10: mov     x24, x5
    mov     x25, x6
    REPORT  3, x24
    REPORT  4, x25

    // C: raise SPI 40 and wait (bounded) for the last vCPU to take it twice.
    ADDR    x1, TESTDEV
    mov     w2, #1
    str     w2, [x1, #0x100]
    sub     x3, x20, #1
    add     x3, x21, x3, lsl #3
    movz    x4, #0x100, lsl #16
11: ldr     x5, [x3, #D_SPI]
    cmp     x5, #2
    b.hs    12f
    subs    x4, x4, #1
    b.ne    11b
12: ldr     x24, [x3, #D_SPI]
    REPORT  5, x24
    mov     x5, #0
    mov     x7, #0
13: sub     x8, x20, #1
    cmp     x7, x8
    b.hs    14f
    add     x9, x21, x7, lsl #3
    ldr     x10, [x9, #D_SPI]
    add     x5, x5, x10
    add     x7, x7, #1
    b       13b
14: mov     x24, x5
    REPORT  6, x24

    // D: six SGIs pending at once on vCPU 0, in priority order SGI 6 (0x10) .. SGI 1 (0x60).
    msr     daifset, #2
    ADDR    x1, GICD
    mov     x2, #1
15: cmp     x2, #7
    b.hs    16f
    mov     x3, #7
    sub     x3, x3, x2
    lsl     x3, x3, #4
    add     x4, x1, #0x400
    strb    w3, [x4, x2]                // GICD_IPRIORITYR<SGI x2> (banked)
    add     x2, x2, #1
    b       15b
16: mov     x4, #1
    str     x4, [x21, #D_LOGON]
    mov     x2, #1
17: cmp     x2, #7
    b.hs    18f
    movz    w3, #0x0200, lsl #16        // TargetListFilter 2: self
    orr     w3, w3, w2
    str     w3, [x1, #0xf00]
    add     x2, x2, #1
    b       17b
18: isb
    msr     daifclr, #2
    movz    x4, #0x100, lsl #16
19: ldr     x5, [x21, #D_LOGN]
    cmp     x5, #6
    b.hs    20f
    subs    x4, x4, #1
    b.ne    19b
20: mov     x5, #0
    mov     x7, #0
21: ldr     x8, [x21, #D_LOGN]
    cmp     x7, x8
    b.hs    22f
    add     x9, x21, x7, lsl #3
    ldr     x10, [x9, #D_LOG]
    lsl     x11, x7, #2
    lsl     x10, x10, x11
    orr     x5, x5, x10
    add     x7, x7, #1
    b       21b
22: mov     x24, x5
    REPORT  7, x24
    REPORT  8, x20
    ldr     x24, [x21, #D_BADSRC]
    REPORT  12, x24
    movz    x0, #0x8400, lsl #16
    movk    x0, #0x0008                 // SYSTEM_OFF
    hvc     #0
23: b       23b

// Secondary vCPUs: x0 = index.
gic2_secondary:
    mov     x19, x0
    adr     x1, gic2_n
    ldr     x20, [x1]
    bl      percpu_init_v2
    adr     x21, guest_gic2_data
    add     x1, x21, #D_READY
24: ldaxr   x2, [x1]
    add     x2, x2, #1
    stlxr   w3, x2, [x1]
    cbnz    w3, 24b
25: ldr     x2, [x21, #D_GO]
    cbz     x2, 25b
    bl      phases_ab_v2
26: wfi
    b       26b

// Per-vCPU set-up: stack, vectors, redistributor, CPU interface, IRQs on. x19 = index.
percpu_init_v2:
    adr     x1, gic2_stacks
    add     x2, x19, #1
    add     x1, x1, x2, lsl #10
    mov     sp, x1
    adr     x1, gic2_vectors
    msr     vbar_el1, x1
    ADDR    x1, GICD
    movz    w2, #0xffff
    movk    w2, #(1 << (27 - 16)), lsl #16
    str     w2, [x1, #0x100]            // GICD_ISENABLER0 (banked): SGIs 0-15 and PPI 27
    ldr     w2, [x1, #0x800]            // GICD_ITARGETSR0: our own CPU interface's bit
    movz    w3, #0x0101
    movk    w3, #0x0101, lsl #16
    lsl     w3, w3, w19
    cmp     w2, w3
    b.eq    1f
    adr     x1, guest_gic2_data
    add     x1, x1, #D_TGT
2:  ldaxr   x2, [x1]
    add     x2, x2, #1
    stlxr   w3, x2, [x1]
    cbnz    w3, 2b
1:  ADDR    x1, GICC
    mov     w2, #0xff
    str     w2, [x1, #0x4]              // GICC_PMR
    mov     w2, #1
    str     w2, [x1]                    // GICC_CTLR.EnableGrp0
    msr     daifclr, #2
    ret

// Phases A and B for vCPU x19.
phases_ab_v2:
    mov     x26, x30
    adr     x21, guest_gic2_data
    mov     x7, #0
30: cmp     x7, x20
    b.hs    31f
    cmp     x7, x19
    b.eq    305f
    mov     x4, #1
    add     x5, x7, #16
    lsl     x4, x4, x5                  // CPUTargetList: vCPU x7
    orr     x3, x4, x19                 // SGI <own index>
    ADDR    x1, GICD
    str     w3, [x1, #0xf00]            // GICD_SGIR
305: add    x7, x7, #1
    b       30b
31: ADDR    x1, GICD
    cbnz    x19, 315f
    movz    w3, #0x0100, lsl #16        // TargetListFilter 1: all but self
    add     w3, w3, #15
    str     w3, [x1, #0xf00]
315: sub    x3, x20, #1                 // SGI 14 to the last vCPU, unless we are it
    cmp     x19, x3
    b.eq    316f
    mov     x4, #1
    lsl     x4, x4, x3
    lsl     x4, x4, #16
    add     x4, x4, #14
    str     w4, [x1, #0xf00]
316: movz   w3, #0x0200, lsl #16        // TargetListFilter 2: self
    add     w3, w3, #13
    str     w3, [x1, #0xf00]
    // Wait (bounded) until every SGI addressed to us arrived.
    movz    x4, #0x200, lsl #16
32: mov     x7, #0
    mov     x8, #0                      // missing
33: cmp     x7, x20
    b.hs    34f
    cmp     x7, x19
    b.eq    335f
    add     x9, x7, x19, lsl #4
    ldr     x10, [x21, x9, lsl #3]
    cmp     x10, #0
    cinc    x8, x8, eq
335: add    x7, x7, #1
    b       33b
34: cbz     x19, 345f
    lsl     x9, x19, #4
    add     x9, x9, #15
    ldr     x10, [x21, x9, lsl #3]
    cmp     x10, #0
    cinc    x8, x8, eq
345: lsl    x9, x19, #4                 // SGI 13 from ourselves
    add     x9, x9, #13
    ldr     x10, [x21, x9, lsl #3]
    cmp     x10, #0
    cinc    x8, x8, eq
    sub     x9, x20, #1                 // the last vCPU: SGI 14 from every other
    cmp     x19, x9
    b.ne    347f
    mov     x7, #0
346: cmp    x7, x9
    b.hs    347f
    add     x10, x21, x7, lsl #3
    ldr     x10, [x10, #D_SRC14]
    cmp     x10, #0
    cinc    x8, x8, eq
    add     x7, x7, #1
    b       346b
347:
    cbz     x8, 35f
    subs    x4, x4, #1
    b.ne    32b
35: // B: the virtual timer, TIMER_ROUNDS times.
    mov     x27, #0
36: cmp     x27, #TIMER_ROUNDS
    b.hs    39f
    mrs     x3, cntvct_el0
    add     x3, x3, #TIMER_STEP
    msr     cntv_cval_el0, x3
    mov     x3, #1
    msr     cntv_ctl_el0, x3            // enable, unmasked
    isb
    add     x9, x21, x19, lsl #3
    movz    x4, #0x200, lsl #16
37: ldr     x5, [x9, #D_FIRES]
    cmp     x5, x27
    b.hi    38f
    subs    x4, x4, #1
    b.ne    37b
38: add     x27, x27, #1
    b       36b
39: msr     cntv_ctl_el0, xzr
    add     x1, x21, #D_DONE
40: ldaxr   x2, [x1]
    add     x2, x2, #1
    stlxr   w3, x2, [x1]
    cbnz    w3, 40b
    mov     x30, x26
    ret

// IRQ handler: acknowledge (GICC_IAR), count, check the sender an SGI names, end of
// interrupt with the whole IAR value (GICC_EOIR).
gic2_irq:
    stp     x0, x1, [sp, #-80]!
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    ADDR    x8, GICC
    ldr     w7, [x8, #0xc]              // GICC_IAR
    and     x0, x7, #0x3ff
    cmp     x0, #1020
    b.hs    49f
    ubfx    x9, x7, #10, #3             // the sender, for an SGI
    adr     x1, guest_gic2_data
    mrs     x2, mpidr_el1
    and     x2, x2, #0xff
    cmp     x0, #16
    b.hs    42f
    add     x3, x0, x2, lsl #4          // SGI: count[receiver][sgi]
    ldr     x4, [x1, x3, lsl #3]
    add     x4, x4, #1
    str     x4, [x1, x3, lsl #3]
    cmp     x0, #14
    b.ne    401f
    add     x5, x1, #D_SRC14            // SGI 14: count by sender
    ldr     x4, [x5, x9, lsl #3]
    add     x4, x4, #1
    str     x4, [x5, x9, lsl #3]
    b       405f
401: mov    x5, #0                      // SGI 15: from vCPU 0
    cmp     x0, #15
    b.eq    404f
    mov     x5, x2                      // SGI 13: from ourselves
    cmp     x0, #13
    b.eq    404f
    ldr     x4, [x1, #D_LOGON]
    mov     x5, #0                      // phase D: vCPU 0 to itself
    cbnz    x4, 404f
    mov     x5, x0                      // phase A: SGI n from vCPU n
404: cmp    x9, x5
    b.eq    405f
    add     x5, x1, #D_BADSRC
402: ldaxr  x4, [x5]
    add     x4, x4, #1
    stlxr   w6, x4, [x5]
    cbnz    w6, 402b
405: ldr    x4, [x1, #D_LOGON]
    cbz     x4, 48f
    ldr     x4, [x1, #D_LOGN]
    add     x5, x1, #D_LOG
    str     x0, [x5, x4, lsl #3]
    add     x4, x4, #1
    str     x4, [x1, #D_LOGN]
    b       48f
42: cmp     x0, #27
    b.ne    44f
    mrs     x3, cntvct_el0              // timer: on time?
    mrs     x4, cntv_cval_el0
    msr     cntv_ctl_el0, xzr
    add     x5, x1, x2, lsl #3
    ldr     x6, [x5, #D_FIRES]
    add     x6, x6, #1
    str     x6, [x5, #D_FIRES]
    subs    x3, x3, x4                  // now - deadline
    b.lo    43f                         // early
    mrs     x6, cntfrq_el0
    cmp     x3, x6                      // more than a second late
    b.ls    48f
43: ldr     x6, [x5, #D_LATE]
    add     x6, x6, #1
    str     x6, [x5, #D_LATE]
    b       48f
44: cmp     x0, #40
    b.ne    48f
    add     x5, x1, x2, lsl #3
    ldr     x6, [x5, #D_SPI]
    add     x6, x6, #1
    str     x6, [x5, #D_SPI]
    cmp     x6, #2
    b.lo    48f                         // first time: EOI with the line still high
    ADDR    x3, TESTDEV
    str     wzr, [x3, #0x100]           // lower the line
48: str     w7, [x8, #0x10]             // GICC_EOIR: the whole IAR value
49: ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp], #80
    eret

.balign 2048
gic2_vectors:
    .rept 5
    .balign 0x80
    b       .
    .endr
    .balign 0x80
    b       gic2_irq                     // current EL with SP_ELx, IRQ
    .rept 10
    .balign 0x80
    b       .
    .endr

.balign 8
gic2_n:
    .quad   0
.balign 64
guest_gic2_data:
    .space  1408
.balign 16
gic2_stacks:
    .space  1024 * 9
.global guest_gic2_end
guest_gic2_end:

.purgem REPORT
.purgem SYSTEM_OFF
.purgem ICC_ON
.purgem GIC_V2
.purgem GIC_ACK
.purgem GIC_EOI
.purgem GIC_PRIVATE_ON
.purgem ADDR
