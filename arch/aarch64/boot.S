// Entry of the EL2 image: the arm64 Image header, then the primary pCPU's path from the
// bootloader to Rust, and the secondary pCPUs' path from PSCI CPU_ON or a spin-table release.
//
// Included by src/arch/aarch64/boot.rs with global_asm!, which supplies the SB_* offsets
// into SecondaryBoot (checked by the compiler, never hand-copied).
//
// Register use until Rust runs: x19 = DTB address from the bootloader, x20 = load address.

.section .text.head, "ax"
.global _start
_start:
    // Image header (Linux Documentation/arch/arm64/booting.rst).
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0                       // text_offset: the image runs where it is loaded
    .quad   __image_size            // image_size, BSS included
    .quad   0xa                     // flags: little-endian, 4K pages, anywhere in RAM
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

.section .text.boot, "ax"
primary_entry:
    mov     x19, x0
    adrp    x20, __image_start

    // Self-relocation: add the load address to every R_AARCH64_RELATIVE entry (the Makefile
    // checks that the image has no other kind).
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
1:  cmp     x1, x2
    b.hs    2f
    ldp     x3, x4, [x1], #16       // r_offset, r_info
    ldr     x5, [x1], #8            // r_addend
    add     x5, x5, x20
    str     x5, [x20, x3]
    b       1b
2:
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
3:  cmp     x1, x2
    b.hs    4f
    stp     xzr, xzr, [x1], #16
    b       3b
4:
    adrp    x1, boot_stack_top
    add     x1, x1, :lo12:boot_stack_top
    mov     sp, x1

    mrs     x1, CurrentEL
    ubfx    x1, x1, #2, #2
    cmp     x1, #2
    b.ne    wrong_el

    msr     tpidr_el2, xzr              // no per-pCPU data yet
    adrp    x2, el2_vectors
    add     x2, x2, :lo12:el2_vectors
    msr     vbar_el2, x2
    isb
    mov     x0, x19
    mov     x1, x20
    bl      primary_main
    b       park

// Started at EL1 or EL3: install vectors that step over a faulting instruction (so that a
// semihosting call on a machine without semihosting returns) and let Rust say what is wrong.
wrong_el:
    cmp     x1, #1
    b.ne    5f
    adrp    x2, skip_vectors_el1
    add     x2, x2, :lo12:skip_vectors_el1
    msr     vbar_el1, x2
    b       6f
5:  cmp     x1, #3
    b.ne    6f
    adrp    x2, skip_vectors_el3
    add     x2, x2, :lo12:skip_vectors_el3
    msr     vbar_el3, x2
6:  isb
    mov     x0, x19
    bl      wrong_el_main

.global park
park:
    msr     daifset, #0xf
7:  wfe
    b       7b

// Secondary pCPUs arrive here at EL2 with the MMU off (PSCI CPU_ON's entry point, or the
// address written to a spin-table release slot). They find their slot by MPIDR in
// SecondaryBoot, which the primary filled and cleaned to the point of coherency.
.global secondary_entry
secondary_entry:
    mrs     x1, CurrentEL
    ubfx    x1, x1, #2, #2
    cmp     x1, #2
    b.ne    park
    msr     tpidr_el2, xzr
    mrs     x1, mpidr_el1
    mov     x2, #0xffffff
    movk    x2, #0xff, lsl #32
    and     x1, x1, x2
    adrp    x2, SECONDARY_BOOT
    add     x2, x2, :lo12:SECONDARY_BOOT
    ldr     x3, [x2, #{SB_COUNT}]
    add     x4, x2, #{SB_SLOTS}
    mov     x5, #0
8:  cmp     x5, x3
    b.hs    park
    ldr     x6, [x4, #{SB_SLOT_MPIDR}]
    cmp     x6, x1
    b.eq    9f
    add     x4, x4, #{SB_SLOT_SIZE}
    add     x5, x5, #1
    b       8b
9:
    ldr     x6, [x4, #{SB_SLOT_STACK}]
    mov     sp, x6
    adrp    x6, el2_vectors
    add     x6, x6, :lo12:el2_vectors
    msr     vbar_el2, x6
    mov     x19, x5
    mov     x20, x2
    ldr     x0, [x20, #{SB_MAIR}]
    ldr     x1, [x20, #{SB_TCR}]
    ldr     x2, [x20, #{SB_TTBR0}]
    ldr     x3, [x20, #{SB_SCTLR}]
    bl      el2_mmu_enable
    mov     x0, x19
    bl      secondary_main
    b       park

// el2_mmu_enable(mair, tcr, ttbr0, sctlr): turn on the EL2 stage-1 MMU and caches with
// tables that identity-map this code. Called with the MMU off.
.global el2_mmu_enable
el2_mmu_enable:
    msr     mair_el2, x0
    msr     tcr_el2, x1
    msr     ttbr0_el2, x2
    isb
    tlbi    alle2
    ic      iallu
    dsb     nsh
    isb
    msr     sctlr_el2, x3
    isb
    ret

.section .bss.boot_stack, "aw", %nobits
.balign 4096
.global boot_stack_guard
boot_stack_guard:
    .space  4096                    // left unmapped: an overflow faults instead of corrupting
.global boot_stack_bottom
boot_stack_bottom:
    .space  0x20000                 // mm::layout::BOOT_STACK_SIZE: discovery and the self-test run here
.global boot_stack_top
boot_stack_top:
