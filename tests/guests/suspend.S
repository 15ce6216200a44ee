// Test guest "suspend": PSCI CPU_SUSPEND to a power-down state. The guest arms its virtual
// timer, turns its data and instruction caches on (SCTLR_EL1.C and I; the MMU stays off) and
// suspends with an entry point and a context id; the timer's interrupt wakes it, which must
// be a warm boot at the entry point: x0 the context id, EL1h, D/A/I/F masked, SCTLR_EL1 as
// at reset (caches off). Returning from the call (standby behaviour) is a failure. Then two
// calls that must be refused.
// Report ids: 1 the call returned (must not appear); 2 x0 at the entry point; 3 SCTLR_EL1
// there; 4 DAIF there; 5 CurrentEL there; 6 CPU_SUSPEND with a reserved power_state bit;
// 7 CPU_SUSPEND (power down) with an entry point outside RAM.

.section .rodata.guest_suspend, "a"
.balign 4096
.global guest_suspend_start
guest_suspend_start:
    movz    x1, #0x0800, lsl #16
    mov     w2, #3
    str     w2, [x1]                    // GICD_CTLR: the groups there are
    GIC_PRIVATE_ON 0, (1 << 11)         // PPI 27, the virtual timer
    ICC_ON
    mrs     x1, sctlr_el1
    orr     x1, x1, #(1 << 2)           // C
    orr     x1, x1, #(1 << 12)          // I
    msr     sctlr_el1, x1
    isb
    mrs     x1, cntvct_el0
    add     x1, x1, #0x10000
    msr     cntv_cval_el0, x1
    mov     x1, #1
    msr     cntv_ctl_el0, x1
    isb
    movz    x0, #0xc400, lsl #16
    movk    x0, #0x0001                 // CPU_SUSPEND (SMC64)
    movz    x1, #1, lsl #16             // StateType 1: power down
    adr     x2, suspend_resume
    mov     x3, #0x1234                 // context id
    hvc     #0
    mov     x4, #1
    REPORT  1, x4
    SYSTEM_OFF

suspend_resume:
    mov     x20, x0
    mrs     x21, sctlr_el1
    mrs     x22, daif
    mrs     x23, currentel
    msr     cntv_ctl_el0, xzr
    REPORT  2, x20
    REPORT  3, x21
    REPORT  4, x22
    REPORT  5, x23
    movz    x0, #0xc400, lsl #16
    movk    x0, #0x0001
    movz    x1, #0x10, lsl #16          // bit 20: reserved
    mov     x2, #0
    mov     x3, #0
    hvc     #0
    mov     x20, x0
    REPORT  6, x20
    movz    x0, #0xc400, lsl #16
    movk    x0, #0x0001
    movz    x1, #1, lsl #16
    mov     x2, #0x1000                 // outside guest RAM
    mov     x3, #0
    hvc     #0
    mov     x20, x0
    REPORT  7, x20
    SYSTEM_OFF

.global guest_suspend_end
guest_suspend_end:

.purgem REPORT
.purgem SYSTEM_OFF
.purgem ICC_ON
.purgem GIC_V2
.purgem GIC_ACK
.purgem GIC_EOI
.purgem GIC_PRIVATE_ON
