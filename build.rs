//! Passes the linker script to the EL2 image and rebuilds when the assembly changes.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("aarch64-unknown-none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/arch/aarch64/linker.ld");
    }
    for f in ["linker.ld", "boot.S", "vectors.S"] {
        println!("cargo:rerun-if-changed=arch/aarch64/{f}");
    }
}
