// Test guest "cache": cache maintenance as firmware does it (U-Boot's, EDK2's
// flush_dcache_all): every data or unified cache level up to the Level of Coherence from
// CLIDR_EL1, its geometry from CCSIDR_EL1 (either format, FEAT_CCIDX from
// ID_AA64MMFR2_EL1), every set and way cleaned and invalidated (DC CISW), cleaned (DC CSW)
// and invalidated (DC ISW) -- first with the MMU and caches off, then with them on through
// an identity map (1 GiB blocks: device memory below 1 GiB, write-back RAM at 2-3 GiB).
// Each time a pattern written just before must read back intact. Then cache maintenance by
// VA of device addresses (the emulated GIC distributor, the UART): no fault.
// Report ids: 1 set/way operations with caches off; 2 pattern words wrong after them;
// 3 operations with caches on; 4 pattern words wrong after those; 5 exceptions taken (the
// ESR of the last in 6); 7 CLIDR_EL1; 8 SCTLR_EL1 with caches on (M, C, I set).

.equ PATTERN_WORDS, 512

.section .rodata.guest_cache, "a"
.balign 4096
.global guest_cache_start
guest_cache_start:
    adr     x1, cache_vectors
    msr     vbar_el1, x1
    mov     x25, #0                     // exceptions taken
    mov     x26, #0                     // last ESR
    mrs     x1, clidr_el1
    REPORT  7, x1

    // Caches off (the reset state).
    mov     x19, #0x5a
    bl      fill
    mov     x24, #0
    bl      setway_all
    bl      verify
    REPORT  1, x24
    REPORT  2, x23

    // The identity map: L1 table (39-bit VAs, 1 GiB blocks).
    adr     x1, cache_table
    mov     x2, #0x401                  // block, AF, AttrIndx 0 (device), at 0
    orr     x2, x2, #(1 << 54)          // XN
    str     x2, [x1]
    movz    x2, #0x8000, lsl #16
    orr     x2, x2, #0x400              // AF
    orr     x2, x2, #(3 << 8)           // inner shareable
    orr     x2, x2, #(1 << 2)           // AttrIndx 1: normal write-back
    orr     x2, x2, #1                  // block
    str     x2, [x1, #16]               // entry 2: 0x80000000
    dsb     sy
    mov     x2, #0xff00                 // attr1 normal WB RW-allocate, attr0 device nGnRnE
    msr     mair_el1, x2
    // T0SZ 25, IRGN0/ORGN0 write-back, SH0 inner, TG0 4 KiB, EPD1, IPS 40 bits.
    mov     x2, #25
    orr     x2, x2, #(1 << 8)
    orr     x2, x2, #(1 << 10)
    orr     x2, x2, #(3 << 12)
    orr     x2, x2, #(1 << 23)
    orr     x2, x2, #(2 << 32)
    msr     tcr_el1, x2
    msr     ttbr0_el1, x1
    isb
    tlbi    vmalle1
    dsb     sy
    isb
    mrs     x2, sctlr_el1
    orr     x2, x2, #1                  // M
    orr     x2, x2, #(1 << 2)           // C
    orr     x2, x2, #(1 << 12)          // I
    msr     sctlr_el1, x2
    isb
    mrs     x2, sctlr_el1
    REPORT  8, x2

    mov     x19, #0xa5
    bl      fill
    mov     x24, #0
    bl      setway_all
    bl      verify
    REPORT  3, x24
    REPORT  4, x23

    // By VA, of device addresses: the GIC distributor (emulated) and the UART.
    movz    x1, #0x0800, lsl #16
    dc      civac, x1
    dc      cvac, x1
    movz    x1, #0x0900, lsl #16
    dc      civac, x1
    dsb     sy
    REPORT  5, x25
    REPORT  6, x26
    SYSTEM_OFF

// Fills the pattern buffer with words derived from x19.
fill:
    adr     x1, cache_buf
    mov     x2, #0
1:  add     x3, x2, x19, lsl #32
    str     x3, [x1, x2, lsl #3]
    add     x2, x2, #1
    cmp     x2, #PATTERN_WORDS
    b.lo    1b
    dsb     sy
    ret

// x23 = words of the pattern buffer not as `fill` left them.
verify:
    adr     x1, cache_buf
    mov     x2, #0
    mov     x23, #0
1:  ldr     x4, [x1, x2, lsl #3]
    add     x3, x2, x19, lsl #32
    cmp     x3, x4
    cinc    x23, x23, ne
    add     x2, x2, #1
    cmp     x2, #PATTERN_WORDS
    b.lo    1b
    ret

// All three set/way operations over every level; x24 counts them.
setway_all:
    mov     x18, x30
    mov     x15, #0
    bl      setway
    mov     x15, #1
    bl      setway
    mov     x15, #2
    bl      setway
    mov     x30, x18
    ret

// One set/way operation (x15: 0 CISW, 1 CSW, 2 ISW) on every set and way of every data or
// unified cache level below the Level of Coherence.
setway:
    dsb     sy
    mrs     x0, clidr_el1
    ubfx    x3, x0, #24, #3             // LoC
    lsl     x3, x3, #1
    cbz     x3, 9f
    mrs     x12, id_aa64mmfr2_el1
    ubfx    x12, x12, #20, #4           // CCIDX: 64-bit CCSIDR format
    mov     x10, #0                     // level << 1
1:  add     x2, x10, x10, lsr #1        // 3 * level
    lsr     x1, x0, x2
    and     x1, x1, #7                  // Ctype
    cmp     x1, #2
    b.lt    8f                          // no data cache at this level
    msr     csselr_el1, x10
    isb
    mrs     x1, ccsidr_el1
    and     x2, x1, #7
    add     x2, x2, #4                  // log2(line bytes)
    cbnz    x12, 2f
    ubfx    x4, x1, #3, #10             // ways - 1
    ubfx    x7, x1, #13, #15            // sets - 1
    b       3f
2:  ubfx    x4, x1, #3, #21
    ubfx    x7, x1, #32, #24
3:  clz     w5, w4                      // the way field's shift (32-bit operand)
4:  mov     x9, x4                      // way
5:  lsl     x6, x9, x5
    orr     x11, x10, x6
    lsl     x6, x7, x2
    orr     x11, x11, x6
    cbz     x15, 6f
    cmp     x15, #1
    b.eq    7f
    dc      isw, x11
    b       71f
6:  dc      cisw, x11
    b       71f
7:  dc      csw, x11
71: add     x24, x24, #1
    subs    x9, x9, #1
    b.ge    5b
    subs    x7, x7, #1
    b.ge    4b
8:  add     x10, x10, #2
    cmp     x3, x10
    b.gt    1b
9:  msr     csselr_el1, xzr
    dsb     sy
    isb
    ret

// Any synchronous exception: count it, keep its ESR, step over the instruction.
cache_sync:
    add     x25, x25, #1
    mrs     x26, esr_el1
    mrs     x27, elr_el1
    add     x27, x27, #4
    msr     elr_el1, x27
    eret

.balign 2048
cache_vectors:
    .rept 4
    .balign 0x80
    b       cache_sync
    .endr
    .balign 0x80
    b       cache_sync                  // current EL with SP_ELx, synchronous
    .rept 11
    .balign 0x80
    b       .
    .endr

.balign 4096
cache_table:
    .space  4096
cache_buf:
    .space  PATTERN_WORDS * 8
.global guest_cache_end
guest_cache_end:

.purgem REPORT
.purgem SYSTEM_OFF
.purgem ICC_ON
.purgem GIC_V2
.purgem GIC_ACK
.purgem GIC_EOI
.purgem GIC_PRIVATE_ON
