// common.S: the part the standalone test guests (ticker.S, hostile.S) share. image.rs
// assembles this file followed by one guest into one object; image.ld links it at 0 with
// the header first, and llvm-objcopy makes the flat arm64 Image of it.
//
// The image follows Documentation/arch/arm64/booting.rst: it is entered at its first byte,
// at EL1h (SP_EL1), MMU and caches off, DAIF masked, x0 = the device tree's address (not
// used). Everything is position independent (adr, never an absolute address of our own
// symbols), so it runs wherever it is loaded at a 4 KiB boundary: the hypervisor puts it at
// the start of the VM's RAM (text_offset 0), QEMU's -kernel 2 MiB into RAM.
//
// With the MMU off every data access is to Device-nGnRnE memory: all accesses here are
// naturally aligned (an unaligned one would be an alignment fault), and there are no
// exclusives. No FP/SIMD register is touched.
//
// Assembler notes: no C preprocessor (.equ and .macro only), and no curly braces anywhere,
// comments included: global_asm! reads them as operands.
//
// Each guest defines:
//   main        where entry goes once the stack, BSS and vectors are set up;
//   guest_sync  a synchronous exception at EL1 (SP_EL1), x0 = ESR_EL1;
//   guest_irq   an IRQ at EL1 (SP_EL1);
//   guest_other any other vector, x0 = its index (0-15, 0x80 apart in the table).
// The handlers are ordinary functions (they may clobber x0-x18 and must keep x19-x29 and
// sp); the vector code saves and restores x0-x18, x29 and x30 around them and returns with
// eret, to ELR_EL1 as the handler left it.
//
// Vector indexes: 0-3 current EL with SP_EL0 (sync, IRQ, FIQ, SError), 4-7 current EL with
// SP_ELx, 8-11 lower EL AArch64, 12-15 lower EL AArch32.

// Devices: QEMU virt's layout, which is also every armvisor VM's.
.equ UART, 0x09000000           // PL011
.equ UART_DR, 0x00
.equ UART_FR, 0x18
.equ UART_FR_TXFF, 5            // FR bit: transmit FIFO full
.equ UART_CR, 0x30
.equ GICD, 0x08000000           // GICv3 distributor
.equ GICR, 0x080a0000           // first redistributor
.equ GICR_STRIDE, 0x20000       // RD_base + SGI_base frames (0x40000 with VLPIs)
.equ GICR_SGI, 0x10000          // SGI_base frame, from RD_base

.equ GICD_CTLR, 0x0
.equ GICD_CTLR_GRP1, 1 << 1     // EnableGrp1 (EnableGrp1NS with two security states)
.equ GICD_CTLR_ARE, 1 << 4      // affinity routing (ARE_NS with two security states)
.equ GICD_CTLR_RWP, 31
.equ GICR_CTLR, 0x0
.equ GICR_CTLR_RWP, 3
.equ GICR_TYPER, 0x8
.equ GICR_TYPER_VLPIS, 1
.equ GICR_TYPER_LAST, 4
.equ GICR_WAKER, 0x14
.equ GICR_WAKER_SLEEP, 1 << 1   // ProcessorSleep
.equ GICR_WAKER_ASLEEP, 2       // ChildrenAsleep (bit)
.equ GICR_IGROUPR0, 0x80        // in the SGI_base frame
.equ GICR_ISENABLER0, 0x100
.equ GICR_ICENABLER0, 0x180
.equ GICR_IPRIORITYR, 0x400

.equ INTID_SGI1, 1
.equ INTID_VTIMER, 27           // the virtual timer's PPI
.equ INTID_SPECIAL, 1020        // 1020-1023: no interrupt (spurious); not EOIed
.equ PRIORITY, 0xa0             // every SGI and PPI; ICC_PMR_EL1 0xff lets it through

.equ CNTV_CTL_ENABLE, 1

.equ STACK_SIZE, 16384

// MOV32 reg, value: a 32-bit constant (a device address, a function ID).
.macro MOV32 reg, value
    movz    \reg, #(((\value) >> 16) & 0xffff), lsl #16
    movk    \reg, #((\value) & 0xffff)
.endm

// INC64 sym, t, u: the u64 at sym += 1 (sym within 1 MiB). Clobbers xt and xu.
.macro INC64 sym, t, u
    adr     \t, \sym
    ldr     \u, [\t]
    add     \u, \u, #1
    str     \u, [\t]
.endm

// ---------------------------------------------------------------------------------------
// The arm64 Image header (booting.rst, "Header notes"), 64 bytes at offset 0.
.section .text.head, "ax"
.global _start
_start:
    b       entry                       // code0: branch to the real entry
    .long   0                           // code1
    .quad   0                           // text_offset: load at the 2 MiB-aligned base
    .quad   _image_size                 // image_size: the whole image, BSS included
                                        //   (image.ld; a multiple of 4 KiB)
    .quad   0xa                         // flags: bit 0 = 0 little endian, bits 1-2 = 1 4K
                                        //   pages, bit 3 = 1 placed anywhere in RAM
    .quad   0                           // res2
    .quad   0                           // res3
    .quad   0                           // res4
    .long   0x644d5241                  // magic "ARM\x64"
    .long   0                           // res5 (PE header offset: none)

// ---------------------------------------------------------------------------------------
.text
entry:
    msr     daifset, #0xf
    adr     x1, stack_top
    mov     sp, x1
    // Zero the BSS (the stack is in it; nothing is on it yet): guest RAM need not be zero.
    adr     x1, _bss_start
    adr     x2, _bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  mrs     x1, CurrentEL
    cmp     x1, #(1 << 2)
    b.ne    not_el1
    adr     x1, vectors
    msr     vbar_el1, x1
    isb
    b       main

// Booted at EL2 (QEMU -machine virtualization=on without a hypervisor): say so and stop.
not_el1:
    adr     x0, s_not_el1
    bl      uart_puts
3:  wfi
    b       3b

// ---------------------------------------------------------------------------------------
// Console (PL011). Nothing here needs the UART set up: QEMU and armvisor transmit from
// reset. uart_putc waits for room in the transmit FIFO (FR.TXFF clear), at most ~1M polls,
// so a UART that claims to be full for ever cannot hang the guest.

// uart_putc: w0 = the byte. Clobbers x1-x3.
.global uart_putc
uart_putc:
    MOV32   x1, UART
    movz    x3, #0x10, lsl #16
1:  ldr     w2, [x1, #UART_FR]
    tbz     w2, #UART_FR_TXFF, 2f
    subs    x3, x3, #1
    b.ne    1b
2:  str     w0, [x1, #UART_DR]
    ret

// uart_puts: x0 = a NUL-terminated string. Clobbers x0-x5.
.global uart_puts
uart_puts:
    mov     x4, x30
    mov     x5, x0
1:  ldrb    w0, [x5], #1
    cbz     w0, 2f
    bl      uart_putc
    b       1b
2:  mov     x30, x4
    ret

// uart_putdec: x0 = an unsigned number, printed in decimal. Clobbers x0-x9.
.global uart_putdec
uart_putdec:
    mov     x9, x30
    sub     sp, sp, #32                 // digits, least significant last
    add     x6, sp, #24                 // one past the last digit slot (24 >= 20 digits)
    mov     x7, #10
1:  udiv    x8, x0, x7
    msub    x5, x8, x7, x0              // x5 = x0 % 10
    add     w5, w5, #0x30               // '0'
    strb    w5, [x6, #-1]!
    mov     x0, x8
    cbnz    x0, 1b
    add     x7, sp, #24
2:  ldrb    w0, [x6], #1
    bl      uart_putc
    cmp     x6, x7
    b.lo    2b
    add     sp, sp, #32
    mov     x30, x9
    ret

// uart_puthex: x0 = a number, printed as 0x and 16 hex digits. Clobbers x0-x9.
.global uart_puthex
uart_puthex:
    mov     x9, x30
    mov     x6, x0
    mov     w0, #0x30                   // '0'
    bl      uart_putc
    mov     w0, #0x78                   // 'x'
    bl      uart_putc
    mov     x7, #60
1:  lsr     x0, x6, x7
    and     x0, x0, #0xf
    cmp     x0, #10
    add     x8, x0, #0x30               // '0' + n
    add     x0, x0, #(0x61 - 10)        // 'a' + n - 10
    csel    x0, x8, x0, lo
    bl      uart_putc
    subs    x7, x7, #4
    b.pl    1b
    mov     x30, x9
    ret

// ---------------------------------------------------------------------------------------
// gic_init: the GICv3 for this vCPU. w0 = the SGIs and PPIs to enable (a GICR_ISENABLER0
// mask); every SGI and PPI goes to Group 1 at priority PRIORITY, the others stay disabled.
// Returns x0 = this vCPU's redistributor (RD_base). Clobbers x0-x10.
.global gic_init
gic_init:
    mov     x10, x30
    mov     w9, w0
    // Distributor: affinity routing first, then Group 1 (changing ARE with a group enabled
    // is UNPREDICTABLE), each write completed (RWP) before the next.
    MOV32   x1, GICD
    mov     w2, #GICD_CTLR_ARE
    str     w2, [x1, #GICD_CTLR]
    bl      gicd_wait_rwp
    mov     w2, #(GICD_CTLR_ARE | GICD_CTLR_GRP1)
    str     w2, [x1, #GICD_CTLR]
    bl      gicd_wait_rwp

    // Our redistributor: the one whose GICR_TYPER.Affinity_Value is our MPIDR's affinity
    // (Aff3.Aff2.Aff1.Aff0); the first one if the walk finds none.
    mrs     x3, mpidr_el1
    ubfx    x4, x3, #0, #24
    ubfx    x5, x3, #32, #8
    orr     x4, x4, x5, lsl #24
    MOV32   x1, GICR
    mov     x6, #64                     // frames looked at, at most
1:  ldr     x7, [x1, #GICR_TYPER]
    cmp     x4, x7, lsr #32
    b.eq    3f
    tbnz    x7, #GICR_TYPER_LAST, 2f
    mov     x8, #GICR_STRIDE
    tst     x7, #(1 << GICR_TYPER_VLPIS)
    lsl     x5, x8, #1
    csel    x8, x8, x5, eq
    add     x1, x1, x8
    subs    x6, x6, #1
    b.ne    1b
2:  MOV32   x1, GICR
3:
    // Wake it: ProcessorSleep clear, then wait (bounded) for ChildrenAsleep to clear.
    ldr     w2, [x1, #GICR_WAKER]
    bic     w2, w2, #GICR_WAKER_SLEEP
    str     w2, [x1, #GICR_WAKER]
    movz    x3, #0x10, lsl #16
4:  ldr     w2, [x1, #GICR_WAKER]
    tbz     w2, #GICR_WAKER_ASLEEP, 5f
    subs    x3, x3, #1
    b.ne    4b
5:
    // SGI_base frame: all SGIs and PPIs disabled, Group 1, priority PRIORITY; then ours on.
    add     x2, x1, #GICR_SGI
    mov     w3, #-1
    str     w3, [x2, #GICR_ICENABLER0]
    bl      gicr_wait_rwp
    str     w3, [x2, #GICR_IGROUPR0]
    MOV32   w3, (PRIORITY * 0x01010101)
    mov     x4, #0
6:  add     x5, x2, x4
    str     w3, [x5, #GICR_IPRIORITYR]
    add     x4, x4, #4
    cmp     x4, #32                     // 32 private interrupts, a byte each
    b.lo    6b
    str     w9, [x2, #GICR_ISENABLER0]

    // CPU interface: system registers, every priority, Group 1 on.
    mrs     x3, icc_sre_el1
    orr     x3, x3, #1                  // SRE
    msr     icc_sre_el1, x3
    isb
    mov     x3, #0xff
    msr     icc_pmr_el1, x3
    msr     icc_bpr1_el1, xzr
    mov     x3, #1
    msr     icc_igrpen1_el1, x3
    isb
    mov     x0, x1
    mov     x30, x10
    ret

// gicd_wait_rwp: wait (bounded) for GICD_CTLR.RWP to clear. x1 = GICD. Clobbers x5, x6.
gicd_wait_rwp:
    movz    x6, #0x10, lsl #16
1:  ldr     w5, [x1, #GICD_CTLR]
    tbz     w5, #GICD_CTLR_RWP, 2f
    subs    x6, x6, #1
    b.ne    1b
2:  ret

// gicr_wait_rwp: the same for GICR_CTLR.RWP. x1 = RD_base. Clobbers x5, x6.
gicr_wait_rwp:
    movz    x6, #0x10, lsl #16
1:  ldr     w5, [x1, #GICR_CTLR]
    tbz     w5, #GICR_CTLR_RWP, 2f
    subs    x6, x6, #1
    b.ne    1b
2:  ret

// ---------------------------------------------------------------------------------------
// skip_insn: return past the instruction that took the current synchronous exception:
// ELR_EL1 += 4, except after SVC, HVC or SMC (EC 0x15-0x17), whose preferred return
// address is already the next instruction. Clobbers x0 and x1.
.global skip_insn
skip_insn:
    mrs     x0, esr_el1
    ubfx    x0, x0, #26, #6
    sub     x0, x0, #0x15
    cmp     x0, #2
    b.ls    1f
    mrs     x1, elr_el1
    add     x1, x1, #4
    msr     elr_el1, x1
1:  ret

// ---------------------------------------------------------------------------------------
// The exception vector table (VBAR_EL1): 16 entries of 0x80 bytes. Entry n saves x0 and x1,
// puts n in x0 and goes to exception_entry. We run at EL1h, so 4 (sync, 0x200) and 5
// (IRQ, 0x280) are the ones used; the rest go to guest_other.
.equ FRAME, 176                         // x0-x18, x29, x30, rounded up to 16 bytes

.macro VENTRY n
    .balign 0x80
    sub     sp, sp, #FRAME
    stp     x0, x1, [sp, #0]
    mov     x0, #\n
    b       exception_entry
.endm

.balign 0x800
vectors:
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    VENTRY  \n
    .endr

exception_entry:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    str     x30, [sp, #160]
    cmp     x0, #4                      // current EL with SP_ELx, synchronous (0x200)
    b.eq    1f
    cmp     x0, #5                      // current EL with SP_ELx, IRQ (0x280)
    b.eq    2f
    bl      guest_other
    b       3f
1:  mrs     x0, esr_el1
    bl      guest_sync
    b       3f
2:  bl      guest_irq
3:  ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x29, [sp, #144]
    ldr     x30, [sp, #160]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #FRAME
    eret

// ---------------------------------------------------------------------------------------
.section .rodata.common, "a"
s_not_el1:
    .asciz  "guest: entered at EL2, not EL1; stopping (boot it without virtualization=on)\n"

.section .bss.common, "aw", %nobits
.balign 16
stack:
    .space  STACK_SIZE
stack_top:

.text
