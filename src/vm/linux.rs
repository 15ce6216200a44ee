//! Where a Linux guest's pieces go in its RAM (Documentation/arch/arm64/booting.rst): the
//! kernel Image at a 2 MiB-aligned base plus its `text_offset`, the device tree in the last
//! 2 MiB (at most 2 MiB, 8-byte aligned), the initramfs just below it. Pure, host-tested.
#![forbid(unsafe_code)]

const MIB2: u64 = 2 << 20;

/// The arm64 Image header fields we need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    pub text_offset: u64,
    /// Memory the kernel needs from its load address, BSS included.
    pub image_size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinuxError {
    /// No `ARM\x64` magic at 0x38: not an arm64 Image (a compressed vmlinuz, say).
    NotAnImage,
    /// The pieces do not fit in the guest's RAM.
    TooBig(&'static str),
}

impl core::fmt::Display for LinuxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotAnImage => write!(f, "the kernel module is not an arm64 Image (no ARM\\x64 magic at 0x38)"),
            Self::TooBig(what) => write!(f, "guest RAM too small for the {what}"),
        }
    }
}

pub fn parse_header(image: &[u8]) -> Result<ImageHeader, LinuxError> {
    let field = |off: usize| image.get(off..off + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    if image.get(0x38..0x3c) != Some(b"ARM\x64") {
        return Err(LinuxError::NotAnImage);
    }
    let text_offset = field(8).ok_or(LinuxError::NotAnImage)?;
    let image_size = field(16).ok_or(LinuxError::NotAnImage)?;
    // image_size 0 means a pre-3.17 kernel: text_offset is then 0x80000 by convention and
    // the size unknown; assume the file plus generous BSS.
    if image_size == 0 {
        return Ok(ImageHeader { text_offset: 0x8_0000, image_size: (image.len() as u64).saturating_mul(2) });
    }
    Ok(ImageHeader { text_offset, image_size: image_size.max(image.len() as u64) })
}

/// Guest-physical addresses of the pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub kernel: u64,
    pub initrd: Option<(u64, u64)>,
    pub dtb: u64,
}

pub fn place(
    ram_base: u64,
    ram_size: u64,
    header: &ImageHeader,
    initrd_len: Option<u64>,
) -> Result<Placement, LinuxError> {
    let ram_end = ram_base.checked_add(ram_size).ok_or(LinuxError::TooBig("RAM range"))?;
    if ram_size < 2 * MIB2 {
        return Err(LinuxError::TooBig("device tree"));
    }
    let kernel = ram_base.checked_add(header.text_offset % MIB2).ok_or(LinuxError::TooBig("kernel"))?;
    let kernel_end = kernel.checked_add(header.image_size).ok_or(LinuxError::TooBig("kernel"))?;
    let dtb = ram_end - MIB2;
    let mut top = dtb;
    let initrd = match initrd_len {
        None => None,
        Some(len) => {
            let start = top.checked_sub(len).ok_or(LinuxError::TooBig("initramfs"))? & !0xfff;
            top = start;
            Some((start, start + len))
        }
    };
    if kernel_end > top {
        return Err(LinuxError::TooBig(if initrd.is_some() { "kernel and initramfs" } else { "kernel" }));
    }
    Ok(Placement { kernel, initrd, dtb })
}

/// Where a kernel module's pages (`pages` bytes: the Image, page-rounded) can serve guest
/// RAM so that the kernel runs where the bootloader put it: the kernel's offset in RAM, if
/// that is page aligned and the pages end at or below the initramfs and the device tree
/// (which are loaded into RAM and must not land in the module). `None`: copy the kernel.
pub fn in_place_offset(ram_base: u64, place: &Placement, pages: u64) -> Option<u64> {
    let end = place.kernel.checked_add(pages)?;
    let limit = place.initrd.map_or(place.dtb, |(start, _)| start.min(place.dtb));
    (place.kernel.is_multiple_of(crate::mm::PAGE_SIZE) && pages > 0 && end <= limit)
        .then(|| place.kernel.checked_sub(ram_base))
        .flatten()
}

/// The device tree gets the last 2 MiB of guest RAM, whatever its size, so it can be built
/// after [`place`] (it names the initramfs the placement chose) and checked here.
pub fn check_dtb(len: usize) -> Result<(), LinuxError> {
    if len as u64 > MIB2 { Err(LinuxError::TooBig("device tree")) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(text_offset: u64, image_size: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len.max(64)];
        v[8..16].copy_from_slice(&text_offset.to_le_bytes());
        v[16..24].copy_from_slice(&image_size.to_le_bytes());
        v[0x38..0x3c].copy_from_slice(b"ARM\x64");
        v
    }

    #[test]
    fn header() {
        assert_eq!(
            parse_header(&image(0, 0x200_0000, 4096)),
            Ok(ImageHeader { text_offset: 0, image_size: 0x200_0000 })
        );
        assert_eq!(parse_header(&image(0, 0, 4096)).unwrap().text_offset, 0x8_0000);
        assert_eq!(parse_header(&[0u8; 16]), Err(LinuxError::NotAnImage));
        let mut gz = image(0, 1, 64);
        gz[0x38] = 0;
        assert_eq!(parse_header(&gz), Err(LinuxError::NotAnImage));
    }

    #[test]
    fn placement_and_limits() {
        let h = ImageHeader { text_offset: 0, image_size: 40 << 20 };
        let p = place(0x4000_0000, 1 << 30, &h, Some(1 << 20)).unwrap();
        assert_eq!(p.kernel, 0x4000_0000);
        assert_eq!(p.dtb, 0x4000_0000 + (1 << 30) - MIB2);
        assert_eq!(p.initrd, Some((p.dtb - (1 << 20), p.dtb)));
        assert_eq!(place(0x4000_0000, 32 << 20, &h, None), Err(LinuxError::TooBig("kernel")));
        assert_eq!(place(0x4000_0000, 64 << 20, &h, Some(30 << 20)), Err(LinuxError::TooBig("kernel and initramfs")));
        assert_eq!(check_dtb(4 << 20), Err(LinuxError::TooBig("device tree")));
        assert_eq!(check_dtb(2 << 20), Ok(()));
        assert_eq!(place(0x4000_0000, 1 << 30, &h, Some(u64::MAX)), Err(LinuxError::TooBig("initramfs")));
    }

    #[test]
    fn kernel_in_place_only_where_nothing_else_lands() {
        let base = 0x4000_0000;
        let h = ImageHeader { text_offset: 0, image_size: 0x1f6_e000 };
        let p = place(base, 64 << 20, &h, Some(0x10_0000)).unwrap();
        // The page-rounded module ends at or below the initramfs: served from the module.
        assert_eq!(in_place_offset(base, &p, 0x1f6_e000), Some(0));
        // Pages reaching into the initramfs or the device tree: copy instead.
        let initrd = p.initrd.unwrap().0;
        assert_eq!(in_place_offset(base, &p, initrd - base), Some(0));
        assert_eq!(in_place_offset(base, &p, initrd - base + 0x1000), None);
        let no_initrd = place(base, 64 << 20, &h, None).unwrap();
        assert_eq!(in_place_offset(base, &no_initrd, no_initrd.dtb - base), Some(0));
        assert_eq!(in_place_offset(base, &no_initrd, no_initrd.dtb - base + 0x1000), None);
        // A text_offset that is not page aligned puts the kernel off a page boundary.
        let odd = place(base, 64 << 20, &ImageHeader { text_offset: 0x800, ..h }, None).unwrap();
        assert_eq!(odd.kernel, base + 0x800);
        assert_eq!(in_place_offset(base, &odd, 0x1000), None);
        let text = place(base, 64 << 20, &ImageHeader { text_offset: 0x8_0000, ..h }, None).unwrap();
        assert_eq!(in_place_offset(base, &text, 0x1000), Some(0x8_0000));
        // Empty, overflowing, or below the RAM base.
        assert_eq!(in_place_offset(base, &p, 0), None);
        assert_eq!(in_place_offset(base, &p, u64::MAX), None);
        assert_eq!(in_place_offset(base + 0x1000, &p, 0x1000), None);
    }
}
