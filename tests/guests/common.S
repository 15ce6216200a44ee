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

// ICC_ON: this vCPU's GIC CPU interface takes every priority and Group 1 interrupts.
// Clobbers x2. (Unmasking PSTATE.I is left to the caller.)
.macro ICC_ON
    mov     x2, #0xff
    msr     icc_pmr_el1, x2
    mov     x2, #1
    msr     icc_igrpen1_el1, x2
    isb
.endm
