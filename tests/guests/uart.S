// Test guest "uart": the emulated PL011 at 0x09000000. Transmits a line, then takes the
// receive interrupt (SPI 1, INTID 33, through the vGIC) for bytes the harness queued as
// console input, and reads them from the FIFO.
// Report ids: 1 the first 8 bytes received, little-endian; 2 how many were received;
// 3 receive interrupts taken (at least 1); 4 UARTPeriphID0-3 as one word; 5 FR after
// the FIFO drained, read 1000 times in a row (from the register page: no exit each).

.section .rodata.guest_uart, "a"
.balign 4096
.global guest_uart_start
guest_uart_start:
    adr     x1, uart_stack_top
    mov     sp, x1
    adr     x1, uart_vectors
    msr     vbar_el1, x1
    movz    x20, #0x0900, lsl #16       // UART
    adr     x21, uart_rx                // receive buffer
    mov     x22, #0                     // bytes received
    mov     x23, #0                     // interrupts taken

    movz    x1, #0x0800, lsl #16        // GICD
    mov     w2, #3
    str     w2, [x1]                    // GICD_CTLR: the groups there are
    mov     w2, #2
    str     w2, [x1, #0x104]            // ISENABLER1: INTID 33
    GIC_V2  3
    cbnz    x3, 1f
    str     w2, [x1, #0x84]             // GICv3: IGROUPR1: INTID 33 in Group 1
    str     xzr, [x1, #0x6108]          // IROUTER33: vCPU 0
    movz    x1, #0x080a, lsl #16
    str     wzr, [x1, #0x14]            // GICR_WAKER
    b       2f
1:  mov     w2, #1
    strb    w2, [x1, #0x821]            // GICv2: ITARGETSR33: CPU interface 0
2:  ICC_ON

    ldr     w2, [x20, #0xfe0]           // peripheral ID
    ldr     w3, [x20, #0xfe4]
    orr     w2, w2, w3, lsl #8
    ldr     w3, [x20, #0xfe8]
    orr     w2, w2, w3, lsl #16
    ldr     w3, [x20, #0xfec]
    orr     w2, w2, w3, lsl #24
    mov     x24, x2

    mov     w2, #0x301
    str     w2, [x20, #0x30]            // CR: UARTEN, TXE, RXE
    adr     x3, uart_msg
1:  ldrb    w4, [x3], #1
    cbz     w4, 3f
2:  ldr     w5, [x20, #0x18]            // FR
    tbnz    w5, #5, 2b                  // TXFF
    str     w4, [x20]                   // DR
    b       1b
3:  msr     daifclr, #2
    mov     w2, #0x50
    str     w2, [x20, #0x38]            // IMSC: RX, RX timeout
    movz    x4, #0x400, lsl #16
4:  cmp     x22, #5
    b.hs    5f
    subs    x4, x4, #1
    b.ne    4b
5:  msr     daifset, #2
    ldr     x3, [x21]
    REPORT  1, x3
    REPORT  2, x22
    REPORT  3, x23
    REPORT  4, x24
    mov     x9, #1000
6:  ldr     w5, [x20, #0x18]            // FR
    subs    x9, x9, #1
    b.ne    6b
    REPORT  5, x5
    SYSTEM_OFF

uart_irq:
    stp     x0, x1, [sp, #-32]!
    stp     x2, x3, [sp, #16]
    GIC_ACK 0, 1
    cmp     x0, #33
    b.ne    8f
    add     x23, x23, #1
7:  ldr     w1, [x20, #0x18]
    tbnz    w1, #4, 8f                  // RXFE
    ldr     w1, [x20]
    cmp     x22, #16
    b.hs    7b
    strb    w1, [x21, x22]
    add     x22, x22, #1
    b       7b
8:  GIC_EOI 0, 1
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp], #32
    eret

.balign 2048
uart_vectors:
    .rept 5
    .balign 0x80
    b       .
    .endr
    .balign 0x80
    b       uart_irq
    .rept 10
    .balign 0x80
    b       .
    .endr

uart_msg:
    .asciz  "hello from the uart guest\n"
.balign 16
uart_rx:
    .space  16
    .space  512
uart_stack_top:
.global guest_uart_end
guest_uart_end:

.purgem REPORT
.purgem SYSTEM_OFF
.purgem ICC_ON
.purgem GIC_V2
.purgem GIC_ACK
.purgem GIC_EOI
.purgem GIC_PRIVATE_ON
