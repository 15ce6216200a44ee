// Shared by every test guest (prepended to each by src/selftest/guests.rs; each guest
// ends with .purgem for every macro here).
//
// REPORT id, reg: the test ABI's REPORT(id, value) hypercall (SMCCC vendor hypervisor
// service 0xc6000000). Clobbers x0-x2.
.macro REPORT id, reg
    mov     x2, \reg
    mov     x1, #\id
    movz    x0, #0xc600, lsl #16
    hvc     #0
.endm

// SYSTEM_OFF: PSCI SYSTEM_OFF; does not return.
.macro SYSTEM_OFF
    movz    x0, #0x8400, lsl #16
    movk    x0, #0x0008
    hvc     #0
    b       .
.endm

// The GIC the guest has: the harness stores 2 (a vGICv2) or 3 (a vGICv3) at GIC_INFO, in
// the last page of the guest's 2 MiB of RAM, before it starts. A GICv2 guest's CPU
// interface is memory-mapped at GICC_V2; a GICv3 guest's is the ICC_* registers.
.equ GIC_INFO, 0x801ff000
.equ GICC_V2, 0x08010000

// GIC_V2 t: xt = 0 on a vGICv3, non-zero on a vGICv2.
.macro GIC_V2 t
    movz    x\t, #(GIC_INFO >> 16), lsl #16
    movk    x\t, #(GIC_INFO & 0xffff)
    ldr     x\t, [x\t]
    sub     x\t, x\t, #3
.endm

// GIC_ACK r, t: xr = the interrupt acknowledged (ICC_IAR1_EL1, or GICC_IAR whole: a GICv2
// SGI's sender is in bits [12:10], 0 for every other interrupt). Clobbers xt.
.macro GIC_ACK r, t
    GIC_V2  \t
    cbnz    x\t, .Lack_v2\@
    mrs     x\r, icc_iar1_el1
    b       .Lack_done\@
.Lack_v2\@:
    movz    x\t, #(GICC_V2 >> 16), lsl #16
    ldr     w\r, [x\t, #0xc]
.Lack_done\@:
.endm

// GIC_EOI r, t: ends the interrupt GIC_ACK returned in xr. Clobbers xt.
.macro GIC_EOI r, t
    GIC_V2  \t
    cbnz    x\t, .Leoi_v2\@
    msr     icc_eoir1_el1, x\r
    b       .Leoi_done\@
.Leoi_v2\@:
    movz    x\t, #(GICC_V2 >> 16), lsl #16
    str     w\r, [x\t, #0x10]
.Leoi_done\@:
.endm

// ICC_ON: this vCPU's GIC CPU interface takes every priority, and its interrupts: Group 1
// on a GICv3 (ICC_IGRPEN1_EL1), Group 0 on a GICv2 (GICC_CTLR.EnableGrp0, where every
// interrupt is at reset and Linux leaves them). Clobbers x2 and x3. (Unmasking PSTATE.I is
// left to the caller.)
.macro ICC_ON
    GIC_V2  3
    cbnz    x3, .Licc_v2\@
    mov     x2, #0xff
    msr     icc_pmr_el1, x2
    mov     x2, #1
    msr     icc_igrpen1_el1, x2
    isb
    b       .Licc_done\@
.Licc_v2\@:
    movz    x3, #(GICC_V2 >> 16), lsl #16
    mov     w2, #0xff
    str     w2, [x3, #0x4]              // GICC_PMR
    mov     w2, #1
    str     w2, [x3]                    // GICC_CTLR.EnableGrp0
.Licc_done\@:
.endm

// GIC_PRIVATE_ON lo, hi: enables vCPU 0's private interrupts (SGIs and PPIs) whose bits
// are hi:lo (two 16-bit immediates). On a GICv3 its redistributor is woken and every
// private interrupt put in Group 1 first (GICR_*); on a GICv2 they are the distributor's
// banked registers and stay in Group 0. Clobbers x1-x3.
.macro GIC_PRIVATE_ON lo, hi
    GIC_V2  3
    movz    w2, #\lo
    movk    w2, #\hi, lsl #16
    cbnz    x3, .Lpriv_v2\@
    movz    x1, #0x080a, lsl #16
    str     wzr, [x1, #0x14]            // GICR_WAKER
    add     x1, x1, #0x10000            // SGI_base
    mov     w3, #-1
    str     w3, [x1, #0x80]             // GICR_IGROUPR0: all Group 1
    str     w2, [x1, #0x100]            // GICR_ISENABLER0
    b       .Lpriv_done\@
.Lpriv_v2\@:
    movz    x1, #0x0800, lsl #16
    str     w2, [x1, #0x100]            // GICD_ISENABLER0 (banked)
.Lpriv_done\@:
.endm
