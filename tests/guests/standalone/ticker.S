// ticker: a quiet guest on one vCPU that keeps time with the virtual timer.
//
// Prints "ticker: up\n", then "ticker: N\n" once a second for ever, N = 1, 2, 3, ...: the
// seconds since it started, as the virtual timer (PPI 27) counted them. Between ticks it
// sleeps in WFI. The IRQ handler acknowledges the interrupt (ICC_IAR1_EL1), moves
// CNTV_CVAL_EL0 one second (CNTFRQ_EL0 ticks) on from the previous deadline, so the ticks
// neither drift nor get lost when the vCPU runs late (a late interrupt is followed at once
// by the ones missed), EOIs (ICC_EOIR1_EL1) and returns. The main loop prints the count
// whenever it changed; a line whose N jumps by more than one means the guest was not run
// (or not interrupted) for over a second.
//
// Anything unexpected is printed and survived: an interrupt other than the timer is
// counted and EOIed, "ticker: unexpected interrupt N\n"; a synchronous exception is
// skipped, "ticker: unexpected exception, ESR 0x..., ELR 0x...\n"; another vector,
// "ticker: unexpected vector N\n".

main:
    adr     x0, s_up
    bl      uart_puts
    mov     w0, #(1 << INTID_VTIMER)
    bl      gic_init
    mrs     x0, cntfrq_el0
    adr     x1, freq
    str     x0, [x1]
    // The first deadline, one second from now; the timer on, its interrupt unmasked.
    isb
    mrs     x1, cntvct_el0
    add     x1, x1, x0
    msr     cntv_cval_el0, x1
    mov     x1, #CNTV_CTL_ENABLE
    msr     cntv_ctl_el0, x1
    isb

    mov     x19, #0                     // the count last printed
    adr     x20, ticks
    adr     x21, other_irqs
    mov     x22, #0                     // other_irqs last printed
loop:
    // Check with IRQs masked, then WFI: an interrupt that comes in between still wakes
    // the WFI (it is pending), and is taken once IRQs are unmasked.
    msr     daifset, #2
    ldr     x23, [x20]
    ldr     x24, [x21]
    cmp     x23, x19
    b.ne    tick
    cmp     x24, x22
    b.ne    other
    wfi
    msr     daifclr, #2
    isb
    b       loop

tick:
    msr     daifclr, #2
    mov     x19, x23
    adr     x0, s_tick
    bl      uart_puts
    mov     x0, x19
    bl      uart_putdec
    mov     w0, #10
    bl      uart_putc
    b       loop

other:
    msr     daifclr, #2
    mov     x22, x24
    adr     x0, s_other_irq
    bl      uart_puts
    adr     x0, last_other_irq
    ldr     x0, [x0]
    bl      uart_putdec
    mov     w0, #10
    bl      uart_putc
    b       loop

// IRQ: the timer's deadline one second on, then EOI; any other interrupt is counted.
guest_irq:
    mrs     x0, icc_iar1_el1
    and     w1, w0, #0xffffff
    cmp     w1, #INTID_SPECIAL
    b.hs    9f                          // nothing pending after all: no EOI
    cmp     w1, #INTID_VTIMER
    b.ne    1f
    adr     x2, freq
    ldr     x2, [x2]
    mrs     x3, cntv_cval_el0
    add     x3, x3, x2
    msr     cntv_cval_el0, x3           // the timer's line drops (unless still behind);
    isb                                 // CNTV_CTL stays as it was: enabled, unmasked
    INC64   ticks, x2, x3
    b       2f
1:  adr     x2, last_other_irq
    str     x1, [x2]
    INC64   other_irqs, x2, x3
2:  msr     icc_eoir1_el1, x0
9:  ret

guest_sync:
    stp     x19, x20, [sp, #-32]!
    str     x30, [sp, #16]
    mov     x20, x0
    adr     x0, s_exc
    bl      uart_puts
    mov     x0, x20
    bl      uart_puthex
    adr     x0, s_elr
    bl      uart_puts
    mrs     x0, elr_el1
    bl      uart_puthex
    mov     w0, #10
    bl      uart_putc
    bl      skip_insn
    ldr     x30, [sp, #16]
    ldp     x19, x20, [sp], #32
    ret

guest_other:
    stp     x19, x20, [sp, #-32]!
    str     x30, [sp, #16]
    mov     x20, x0
    adr     x0, s_vector
    bl      uart_puts
    mov     x0, x20
    bl      uart_putdec
    mov     w0, #10
    bl      uart_putc
    ldr     x30, [sp, #16]
    ldp     x19, x20, [sp], #32
    ret

.section .rodata.ticker, "a"
s_up:
    .asciz  "ticker: up\n"
s_tick:
    .asciz  "ticker: "
s_other_irq:
    .asciz  "ticker: unexpected interrupt "
s_exc:
    .asciz  "ticker: unexpected exception, ESR "
s_elr:
    .asciz  ", ELR "
s_vector:
    .asciz  "ticker: unexpected vector "

.section .bss.ticker, "aw", %nobits
.balign 8
freq:
    .space  8                           // CNTFRQ_EL0: counter ticks per second
ticks:
    .space  8                           // timer interrupts taken = seconds since start
other_irqs:
    .space  8
last_other_irq:
    .space  8
