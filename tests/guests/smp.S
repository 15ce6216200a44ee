// Test guest "smp": vCPU 0 starts every other vCPU with PSCI CPU_ON, checks CPU_ON's error
// answers, waits until each secondary has counted and turned itself off (AFFINITY_INFO),
// and reports. Each secondary records its MPIDR, then 10,000 times takes a spinlock in
// shared memory (load-acquire exclusive / store exclusive), adds 1 to a counter with plain
// loads and stores, and releases the lock (store-release): only mutual exclusion across
// pCPUs sharing the Stage-2 makes the count exact. Then it calls CPU_OFF. x0 = the number of
// vCPUs (at least 2).
//
// Report ids: 1 vCPU 0's MPIDR, 2 CPU_ON(self), 3 CPU_ON(no such MPIDR), 4 CPU_ON(bad
// entry), 5 OR of the CPU_ON results for the secondaries, 6 the counter, 7 MPIDR mismatches
// among the secondaries, 8 AFFINITY_INFO(vCPU 1) at the end, 9 CPU_ON(vCPU 1) again after
// it turned off (must succeed), 10 what that second start added to the counter.

.macro CPU_ON target, entry, context
    movz    x0, #0xc400, lsl #16
    movk    x0, #0x0003
    mov     x1, \target
    mov     x2, \entry
    mov     x3, \context
    hvc     #0
.endm

.equ INCREMENTS, 10000

.section .rodata.guest_smp, "a"
.balign 4096
.global guest_smp_start
guest_smp_start:
    mov     x20, x0                     // vCPU count
    adr     x24, guest_smp_counter
    adr     x25, guest_smp_mpidrs
    adr     x26, guest_smp_secondary
    mrs     x1, mpidr_el1
    REPORT  1, x1
    CPU_ON  #0, x26, #0
    REPORT  2, x0
    CPU_ON  #0xff, x26, #0
    REPORT  3, x0
    mov     x27, #0x1000                // outside guest RAM
    CPU_ON  #1, x27, #0
    REPORT  4, x0

    mov     x21, #0                     // OR of results
    mov     x22, #1
1:  cmp     x22, x20
    b.hs    2f
    CPU_ON  x22, x26, x22
    orr     x21, x21, x0
    add     x22, x22, #1
    b       1b
2:  REPORT  5, x21
    bl      wait_all_off
    ldr     x6, [x24]
    REPORT  6, x6

    mov     x21, #0                     // mismatches
    mov     x22, #1
3:  cmp     x22, x20
    b.hs    4f
    ldr     x6, [x25, x22, lsl #3]
    orr     x7, x22, #0x80000000
    cmp     x6, x7
    cinc    x21, x21, ne
    add     x22, x22, #1
    b       3b
4:  REPORT  7, x21
    movz    x0, #0xc400, lsl #16
    movk    x0, #0x0004                 // AFFINITY_INFO(1, level 0)
    mov     x1, #1
    mov     x2, #0
    hvc     #0
    REPORT  8, x0

    ldr     x23, [x24]                  // start vCPU 1 a second time
    CPU_ON  #1, x26, #1
    REPORT  9, x0
    bl      wait_all_off
    ldr     x6, [x24]
    sub     x6, x6, x23
    REPORT  10, x6

    SYSTEM_OFF

// Waits until AFFINITY_INFO says every secondary is off. Clobbers x0-x3, x9, x10.
wait_all_off:
    mov     x10, x30
    mov     x9, #1
6:  cmp     x9, x20
    b.hs    8f
7:  movz    x0, #0xc400, lsl #16
    movk    x0, #0x0004
    mov     x1, x9
    mov     x2, #0
    hvc     #0
    cmp     x0, #1                      // OFF
    b.ne    7b
    add     x9, x9, #1
    b       6b
8:  mov     x30, x10
    ret

// Secondary vCPUs: x0 = context = vCPU index.
guest_smp_secondary:
    adr     x24, guest_smp_counter
    adr     x25, guest_smp_mpidrs
    mrs     x1, mpidr_el1
    str     x1, [x25, x0, lsl #3]
    adr     x26, guest_smp_lock
    movz    x3, #(INCREMENTS & 0xffff)
    mov     w6, #1
9:  ldaxr   w5, [x26]                   // lock
    cbnz    w5, 9b
    stxr    w5, w6, [x26]
    cbnz    w5, 9b
    ldr     x4, [x24]                   // the critical section: a plain increment
    add     x4, x4, #1
    str     x4, [x24]
    stlr    wzr, [x26]                  // unlock
    subs    x3, x3, #1
    b.ne    9b
    movz    x0, #0x8400, lsl #16
    movk    x0, #0x0002                 // CPU_OFF
    hvc     #0
10: b       10b

.balign 64
guest_smp_counter:
    .quad   0
.balign 64
guest_smp_lock:
    .word   0
.balign 64
guest_smp_mpidrs:
    .space  8 * 64
.global guest_smp_end
guest_smp_end:

// Macros are per assembly unit: leave none behind for the next guest.
.purgem REPORT
.purgem SYSTEM_OFF
.purgem ICC_ON
.purgem GIC_V2
.purgem GIC_ACK
.purgem GIC_EOI
.purgem GIC_PRIVATE_ON
.purgem CPU_ON
