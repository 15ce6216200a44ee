// Test guest "basic": HVC and SMC round trips, unknown function IDs, a trapped system
// register the hypervisor does not emulate, and loads/stores to guest-physical addresses
// with nothing behind them (one of them the hypervisor's own physical address, passed in
// x0). Every result goes to the harness with the test ABI's REPORT(id, value) hypercall;
// the guest ends with PSCI SYSTEM_OFF. Runs at EL1 with its MMU off, position independent.
//
// Report ids: 1 PSCI_VERSION by HVC, 2 by SMC, 3 unknown PSCI-range id by HVC, 4 unknown
// vendor id by HVC, 5 unknown id by SMC, 6 PSCI_FEATURES(CPU_ON_64), 7 MIGRATE_INFO_TYPE,
// 8 ESR_EL1 after MRS PMCR_EL0, 9 ESR_EL1 / 10 FAR_EL1 after a load from unmapped IPA,
// 11 ESR_EL1 / 12 FAR_EL1 after a load from the hypervisor's address, 13 ESR_EL1 after a
// store to unmapped IPA, 14 the value of the register the faulting load targeted (must be
// untouched), 15 a word the guest wrote to and read back from its own RAM, 16 that word
// before the guest wrote it (an earlier VM wrote it in the same RAM: it must be scrubbed).

.section .rodata.guest_basic, "a"
.balign 4096
.global guest_basic_start
guest_basic_start:
    mov     x20, x0
    adr     x1, guest_basic_vectors
    msr     vbar_el1, x1
    isb

    movz    x0, #0x8400, lsl #16        // PSCI_VERSION
    hvc     #0
    REPORT  1, x0
    movz    x0, #0x8400, lsl #16
    smc     #0
    REPORT  2, x0
    movz    x0, #0x8400, lsl #16
    movk    x0, #0x0012                 // not a PSCI 1.1 function
    hvc     #0
    REPORT  3, x0
    movz    x0, #0xc500, lsl #16
    movk    x0, #0x1234                 // an SiP service id nobody implements here
    hvc     #0
    REPORT  4, x0
    movz    x0, #0xc500, lsl #16
    movk    x0, #0x1234
    smc     #0
    REPORT  5, x0
    movz    x0, #0x8400, lsl #16
    movk    x0, #0x000a                 // PSCI_FEATURES
    movz    x1, #0xc400, lsl #16
    movk    x1, #0x0003                 // (CPU_ON_64)
    hvc     #0
    REPORT  6, x0
    movz    x0, #0x8400, lsl #16
    movk    x0, #0x0006                 // MIGRATE_INFO_TYPE
    hvc     #0
    REPORT  7, x0

    mov     x21, #0
    mrs     x0, pmcr_el0                // trapped by MDCR_EL2.TPMCR, not emulated: UNDEF
    REPORT  8, x21

    mov     x21, #0
    mov     x22, #0
    movz    x4, #0x1000, lsl #16        // IPA 0x10000000: nothing there
    movz    x3, #0x5a5a
    ldr     x3, [x4]
    REPORT  9, x21
    REPORT  10, x22
    mov     x23, x3
    mov     x21, #0
    mov     x22, #0
    ldr     x3, [x20]                   // the hypervisor's own physical address
    REPORT  11, x21
    REPORT  12, x22
    mov     x21, #0
    str     x3, [x4]
    REPORT  13, x21
    REPORT  14, x23

    adr     x5, guest_basic_scratch
    ldr     x7, [x5]                    // what the previous VM in this RAM left: nothing
    REPORT  16, x7
    adr     x5, guest_basic_scratch
    movz    x6, #0xbeef
    str     x6, [x5]
    ldr     x7, [x5]
    REPORT  15, x7

    SYSTEM_OFF

// EL1 vectors: a synchronous exception at EL1 (SPx, offset 0x200) records ESR_EL1 in x21
// and FAR_EL1 in x22 and returns past the faulting instruction. Anything else spins.
.balign 2048
guest_basic_vectors:
    .rept 4
    .balign 0x80
    b       .
    .endr
    .balign 0x80
    mrs     x21, esr_el1
    mrs     x22, far_el1
    mrs     x9, elr_el1
    add     x9, x9, #4
    msr     elr_el1, x9
    eret
    .rept 11
    .balign 0x80
    b       .
    .endr

.balign 8
guest_basic_scratch:
    .quad   0
.global guest_basic_end
guest_basic_end:

// Macros are per assembly unit: leave none behind for the next guest.
.purgem REPORT
.purgem SYSTEM_OFF
.purgem ICC_ON
.purgem GIC_V2
.purgem GIC_ACK
.purgem GIC_EOI
.purgem GIC_PRIVATE_ON
