// Shared by every test guest (prepended to each by src/selftest/guests.rs).
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
