// Test guest "mmio": loads and stores of 8, 16, 32 and 64 bits to the self-test device at
// 0x0b000000, with zero and sign extension into W and X registers, and pre- and post-index
// writeback forms (which the hardware reports without a syndrome, so the hypervisor decodes
// the instruction). Results go to the harness with REPORT; ends with SYSTEM_OFF.
//
// Report ids: 1 64-bit store then load; 2 LDRSB X; 3 LDRSB W; 4 LDRB W; 5 LDRSH X; 6 LDRH W;
// 7 LDRSW X; 8 LDR W; 9 pre-index load value; 10 its base register advance; 11 post-index
// store's base register advance; 12 the value that store wrote; 13 a load into XZR leaves
// the next register alone; 14 MagicValue and 15 DeviceID of virt's virtio-mmio transport 0
// at 0x0a000000 (a transport with no device: "virt", 0).

.section .rodata.guest_mmio, "a"
.balign 4096
.global guest_mmio_start
guest_mmio_start:
    movz    x4, #0x0a00, lsl #16        // virt's virtio-mmio window
    ldr     w5, [x4]
    REPORT  14, x5
    ldr     w5, [x4, #8]
    REPORT  15, x5
    movz    x4, #0x0b00, lsl #16
    movz    x1, #0x7788
    movk    x1, #0x5566, lsl #16
    movk    x1, #0x3344, lsl #32
    movk    x1, #0x1122, lsl #48
    str     x1, [x4]
    mov     x11, x1                     // REPORT clobbers x0-x2
    ldr     x2, [x4]
    REPORT  1, x2

    mov     w3, #0x80
    strb    w3, [x4, #8]
    ldrsb   x5, [x4, #8]
    REPORT  2, x5
    ldrsb   w6, [x4, #8]
    REPORT  3, x6
    ldrb    w7, [x4, #8]
    REPORT  4, x7

    movz    w3, #0x8001
    strh    w3, [x4, #0x10]
    ldrsh   x5, [x4, #0x10]
    REPORT  5, x5
    ldrh    w6, [x4, #0x10]
    REPORT  6, x6

    movz    w3, #0x8000, lsl #16
    str     w3, [x4, #0x18]
    ldrsw   x5, [x4, #0x18]
    REPORT  7, x5
    ldr     w6, [x4, #0x18]
    REPORT  8, x6

    mov     x8, x4
    ldr     x9, [x8, #8]!
    REPORT  9, x9
    sub     x8, x8, x4
    REPORT  10, x8
    add     x8, x4, #0x20
    str     x11, [x8], #-8
    sub     x8, x8, x4
    REPORT  11, x8
    ldr     x2, [x4, #0x20]
    REPORT  12, x2

    movz    x10, #0x1234
    ldr     xzr, [x4]
    REPORT  13, x10

    SYSTEM_OFF
.global guest_mmio_end
guest_mmio_end:

.purgem REPORT
.purgem SYSTEM_OFF
.purgem ICC_ON
.purgem GIC_V2
.purgem GIC_ACK
.purgem GIC_EOI
.purgem GIC_PRIVATE_ON
