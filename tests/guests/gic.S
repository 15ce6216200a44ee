// Test guest "gic": the virtual GICv3 and the virtual timer on every vCPU. x0 = vCPU count
// (2 to 8). vCPU 0 sets up the distributor and starts the others with PSCI CPU_ON; every
// vCPU wakes its redistributor, enables SGIs 0-15 and the timer PPI 27, and then:
//   A. sends SGI <own index> to every other vCPU (ICC_SGI1R_EL1 target list), vCPU 0 also
//      SGI 15 to all others at once (IRM broadcast; one sender, because a GICv3 SGI that is
//      already pending does not count twice), and waits until each arrived;
//   B. arms its virtual timer 100 times, 2000 ticks ahead, and checks each interrupt
//      arrives after the deadline it set (and not absurdly late).
// Then vCPU 0 alone:
//   C. raises the self-test device's SPI 40 (level), which the distributor routes (IROUTER)
//      to the last vCPU, on another pCPU, and waits until that vCPU took it twice: its
//      handler EOIs the first one with the line still high, which a GIC delivers again at
//      once (nothing else makes that vCPU exit meanwhile), and lowers the line the second
//      time;
//   D. with IRQs masked, makes SGIs 1-6 pending on itself at six different priorities (more
//      than the four list registers QEMU has), unmasks, and logs the order they arrive.
// Report ids: 1 SGI pairs not received exactly once, 2 vCPUs that did not receive the
// broadcast exactly once (vCPU 0: not at all), 3 timer interrupts taken, 4 timer interrupts early or more than 1 s late,
// 5 SPI 40 deliveries on the last vCPU (2), 6 SPI 40 count on all others, 7 the arrival order of
// SGIs 1-6 as nibbles (first in the low nibble), 8 the vCPU count.

.equ GICD, 0x08000000
.equ GICR, 0x080a0000
.equ TESTDEV, 0x0b000000
.equ TIMER_STEP, 2000
.equ TIMER_ROUNDS, 100

// Offsets into guest_gic_data.
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

.macro ADDR reg, value
    movz    \reg, #((\value) >> 16), lsl #16
    movk    \reg, #((\value) & 0xffff)
.endm

.section .rodata.guest_gic, "a"
.balign 4096
.global guest_gic_start
guest_gic_start:
    mov     x20, x0                     // vCPU count
    mov     x19, #0
    adr     x1, gic_n
    str     x20, [x1]
    // Distributor: Group 1 on, SPI 40 in Group 1, enabled, routed to vCPU n-1.
    ADDR    x1, GICD
    mov     w2, #2
    str     w2, [x1]                    // GICD_CTLR.EnableGrp1
    mov     w2, #-1
    str     w2, [x1, #0x84]             // GICD_IGROUPR1
    mov     w2, #(1 << 8)
    str     w2, [x1, #0x104]            // GICD_ISENABLER1: INTID 40
    sub     x2, x20, #1
    str     x2, [x1, #0x6140]           // GICD_IROUTER40 = Aff0 n-1
    bl      percpu_init
    mov     x23, #1
1:  cmp     x23, x20
    b.hs    2f
    movz    x0, #0xc400, lsl #16
    movk    x0, #0x0003                 // CPU_ON
    mov     x1, x23
    adr     x2, gic_secondary
    mov     x3, x23
    hvc     #0
    add     x23, x23, #1
    b       1b
2:  adr     x21, guest_gic_data
    sub     x3, x20, #1
3:  ldr     x4, [x21, #D_READY]
    cmp     x4, x3
    b.lo    3b
    mov     x4, #1
    str     x4, [x21, #D_GO]
    bl      phases_ab
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
    ADDR    x1, GICR + 0x10000
    mov     x2, #1
15: cmp     x2, #7
    b.hs    16f
    mov     x3, #7
    sub     x3, x3, x2
    lsl     x3, x3, #4
    add     x4, x1, #0x400
    strb    w3, [x4, x2]                // GICR_IPRIORITYR<SGI x2>
    add     x2, x2, #1
    b       15b
16: mov     x4, #1
    str     x4, [x21, #D_LOGON]
    mov     x2, #1
17: cmp     x2, #7
    b.hs    18f
    lsl     x3, x2, #24
    orr     x3, x3, #1                  // target list: vCPU 0
    msr     icc_sgi1r_el1, x3
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
    movz    x0, #0x8400, lsl #16
    movk    x0, #0x0008                 // SYSTEM_OFF
    hvc     #0
23: b       23b

// Secondary vCPUs: x0 = index.
gic_secondary:
    mov     x19, x0
    adr     x1, gic_n
    ldr     x20, [x1]
    bl      percpu_init
    adr     x21, guest_gic_data
    add     x1, x21, #D_READY
24: ldaxr   x2, [x1]
    add     x2, x2, #1
    stlxr   w3, x2, [x1]
    cbnz    w3, 24b
25: ldr     x2, [x21, #D_GO]
    cbz     x2, 25b
    bl      phases_ab
26: wfi
    b       26b

// Per-vCPU set-up: stack, vectors, redistributor, CPU interface, IRQs on. x19 = index.
percpu_init:
    adr     x1, gic_stacks
    add     x2, x19, #1
    add     x1, x1, x2, lsl #10
    mov     sp, x1
    adr     x1, gic_vectors
    msr     vbar_el1, x1
    ADDR    x1, GICR
    lsl     x2, x19, #17
    add     x22, x1, x2                 // this vCPU's RD_base
    str     wzr, [x22, #0x14]           // GICR_WAKER: awake
    add     x1, x22, #0x10000
    mov     w2, #-1
    str     w2, [x1, #0x80]             // GICR_IGROUPR0: all Group 1
    movz    w2, #0xffff
    movk    w2, #(1 << (27 - 16)), lsl #16
    str     w2, [x1, #0x100]            // GICR_ISENABLER0: SGIs 0-15 and PPI 27
    ICC_ON
    msr     daifclr, #2
    ret

// Phases A and B for vCPU x19.
phases_ab:
    mov     x26, x30
    adr     x21, guest_gic_data
    mov     x7, #0
30: cmp     x7, x20
    b.hs    31f
    cmp     x7, x19
    b.eq    305f
    lsl     x3, x19, #24
    mov     x4, #1
    lsl     x4, x4, x7
    orr     x3, x3, x4
    msr     icc_sgi1r_el1, x3
305: add    x7, x7, #1
    b       30b
31: cbnz    x19, 315f
    movz    x3, #(15 << 8), lsl #16
    orr     x3, x3, #(1 << 40)
    msr     icc_sgi1r_el1, x3
315:
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
345:
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

// IRQ handler: acknowledge, count, end of interrupt.
gic_irq:
    stp     x0, x1, [sp, #-64]!
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    mrs     x0, icc_iar1_el1
    cmp     x0, #1020
    b.hs    49f
    adr     x1, guest_gic_data
    mrs     x2, mpidr_el1
    and     x2, x2, #0xff
    cmp     x0, #16
    b.hs    42f
    add     x3, x0, x2, lsl #4          // SGI: count[receiver][sgi]
    ldr     x4, [x1, x3, lsl #3]
    add     x4, x4, #1
    str     x4, [x1, x3, lsl #3]
    ldr     x4, [x1, #D_LOGON]
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
48: msr     icc_eoir1_el1, x0
49: ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp], #64
    eret

.balign 2048
gic_vectors:
    .rept 5
    .balign 0x80
    b       .
    .endr
    .balign 0x80
    b       gic_irq                     // current EL with SP_ELx, IRQ
    .rept 10
    .balign 0x80
    b       .
    .endr

.balign 8
gic_n:
    .quad   0
.balign 64
guest_gic_data:
    .space  1344
.balign 16
gic_stacks:
    .space  1024 * 9
.global guest_gic_end
guest_gic_end:

.purgem REPORT
.purgem SYSTEM_OFF
.purgem ICC_ON
.purgem GIC_V2
.purgem GIC_ACK
.purgem GIC_EOI
.purgem GIC_PRIVATE_ON
.purgem ADDR
