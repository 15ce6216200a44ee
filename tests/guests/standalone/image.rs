//! A standalone test guest as a flat arm64 Image: the assembly of `common.S` followed by
//! one guest, `--cfg guest="ticker"` or `--cfg guest="hostile"`. No Rust code runs; this
//! file exists so that the repository's own toolchain (rustc, rust-lld, llvm-objcopy;
//! there is no GNU cross assembler) builds the guests. `make guests` builds both; see the
//! Makefile and image.ld.
#![no_std]
#![no_main]

#[cfg(guest = "ticker")]
core::arch::global_asm!(concat!(include_str!("common.S"), include_str!("ticker.S")));

#[cfg(guest = "hostile")]
core::arch::global_asm!(concat!(include_str!("common.S"), include_str!("hostile.S")));

#[cfg(not(any(guest = "ticker", guest = "hostile")))]
compile_error!("build with --cfg guest=\"ticker\" or --cfg guest=\"hostile\"");

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
