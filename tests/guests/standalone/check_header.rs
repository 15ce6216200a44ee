//! Host check of standalone guest images against the hypervisor's own Image parser: builds
//! with plain rustc around `src/vm/linux.rs` (nothing else of the crate), and for each
//! image given checks that `parse_header` accepts it with text_offset 0 and an image_size
//! that covers the file, that `place` puts it at the start of a small VM's RAM, and that
//! the VM can serve it from the module in place (`in_place_offset`). Exits non-zero and
//! says why otherwise. Used by the Makefile's guest rules.

/// The one item of the crate linux.rs uses.
mod mm {
    pub const PAGE_SIZE: u64 = 4096;
}

#[path = "../../../src/vm/linux.rs"]
#[allow(dead_code)]
mod linux;

const RAM_BASE: u64 = 0x4000_0000;
/// The smallest VM RAM these guests are meant for: 2 MiB for the device tree at its top,
/// the image below it.
const RAM_SIZE: u64 = 4 << 20;

fn check(path: &str) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let header = linux::parse_header(&bytes).map_err(|e| e.to_string())?;
    let raw_size = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    let flags = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
    if header.text_offset != 0 {
        return Err(format!("text_offset {:#x}, want 0", header.text_offset));
    }
    if raw_size == 0 || raw_size < bytes.len() as u64 || !raw_size.is_multiple_of(4096) {
        return Err(format!(
            "image_size {raw_size:#x}: want non-zero, 4 KiB-rounded, >= the file ({:#x})",
            bytes.len()
        ));
    }
    if flags != 0xa {
        return Err(format!("flags {flags:#x}, want 0xa (LE, 4K pages, anywhere)"));
    }
    let place = linux::place(RAM_BASE, RAM_SIZE, &header, None).map_err(|e| e.to_string())?;
    if place.kernel != RAM_BASE {
        return Err(format!("placed at {:#x}, want the RAM base", place.kernel));
    }
    let pages = (bytes.len() as u64).div_ceil(4096) * 4096;
    if linux::in_place_offset(RAM_BASE, &place, pages) != Some(0) {
        return Err("not usable in place from the module".into());
    }
    Ok(format!("{} bytes, image_size {raw_size:#x}, placed at {:#x}", bytes.len(), place.kernel))
}

fn main() {
    let mut ok = true;
    for path in std::env::args().skip(1) {
        match check(&path) {
            Ok(what) => println!("{path}: arm64 Image accepted by vm::linux: {what}"),
            Err(why) => {
                eprintln!("{path}: {why}");
                ok = false;
            }
        }
    }
    std::process::exit(if ok { 0 } else { 1 });
}
