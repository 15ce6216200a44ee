//! Host tests of the virtio-blk device, driven as a driver would through its registers and
//! rings in a fake guest RAM.

use super::*;

const BASE: u64 = 0x4000_0000;
const DESC: u64 = BASE;
const AVAIL: u64 = BASE + 0x1000;
const USED: u64 = BASE + 0x2000;
const BUF: u64 = BASE + 0x1_0000;

struct Ram(Vec<u8>);

impl GuestMemory for Ram {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), OutOfGuestRam> {
        let o = gpa.checked_sub(BASE).ok_or(OutOfGuestRam)? as usize;
        buf.copy_from_slice(self.0.get(o..o.checked_add(buf.len()).ok_or(OutOfGuestRam)?).ok_or(OutOfGuestRam)?);
        Ok(())
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), OutOfGuestRam> {
        let o = gpa.checked_sub(BASE).ok_or(OutOfGuestRam)? as usize;
        self.0.get_mut(o..o.checked_add(data.len()).ok_or(OutOfGuestRam)?).ok_or(OutOfGuestRam)?.copy_from_slice(data);
        Ok(())
    }
}

fn set_desc(ram: &mut Ram, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
    let mut b = [0u8; 16];
    b[0..8].copy_from_slice(&addr.to_le_bytes());
    b[8..12].copy_from_slice(&len.to_le_bytes());
    b[12..14].copy_from_slice(&flags.to_le_bytes());
    b[14..16].copy_from_slice(&next.to_le_bytes());
    ram.write(DESC + 16 * i as u64, &b).unwrap();
}

/// A device with a negotiated, ready queue of 8 entries.
fn ready<'d>(disk: &'d mut [u8], ram: &mut Ram) -> VirtioBlk<'d> {
    let mut d = VirtioBlk::new(disk);
    d.write(0x70, 4, 1 | 2, ram);
    d.write(0x24, 4, 1, ram);
    d.write(0x20, 4, 1, ram); // VERSION_1
    d.write(0x24, 4, 0, ram);
    d.write(0x20, 4, F_FLUSH | F_BLK_SIZE, ram);
    d.write(0x70, 4, 1 | 2 | 8, ram);
    assert_eq!(d.read(0x70, 4) & 8, 8, "FEATURES_OK accepted");
    d.write(0x30, 4, 0, ram);
    d.write(0x38, 4, 8, ram);
    for (off, v) in [(0x80, DESC), (0x90, AVAIL), (0xa0, USED)] {
        d.write(off, 4, v & 0xffff_ffff, ram);
        d.write(off + 4, 4, v >> 32, ram);
    }
    d.write(0x44, 4, 1, ram);
    d.write(0x70, 4, 1 | 2 | 8 | 4, ram);
    d
}

/// Makes request chain `head` available and notifies; returns the effect.
fn submit(d: &mut VirtioBlk<'_>, ram: &mut Ram, head: u16, n: u16) -> Effect {
    let mut idx = [0u8; 2];
    ram.read(AVAIL + 2, &mut idx).unwrap();
    let idx = u16::from_le_bytes(idx);
    ram.write(AVAIL + 4 + 2 * (idx % n) as u64, &head.to_le_bytes()).unwrap();
    ram.write(AVAIL + 2, &(idx.wrapping_add(1)).to_le_bytes()).unwrap();
    d.write(0x50, 4, 0, ram)
}

fn request(ram: &mut Ram, kind: u32, sector: u64, data_len: u32, data_write: bool) {
    let mut hdr = [0u8; 16];
    hdr[0..4].copy_from_slice(&kind.to_le_bytes());
    hdr[8..16].copy_from_slice(&sector.to_le_bytes());
    ram.write(BUF, &hdr).unwrap();
    set_desc(ram, 0, BUF, 16, DESC_F_NEXT, 1);
    set_desc(ram, 1, BUF + 0x100, data_len, DESC_F_NEXT | if data_write { DESC_F_WRITE } else { 0 }, 2);
    set_desc(ram, 2, BUF + 0x8000, 1, DESC_F_WRITE, 0);
    ram.write(BUF + 0x8000, &[0xff]).unwrap();
}

fn status(ram: &Ram) -> u8 {
    let mut s = [0u8];
    ram.read(BUF + 0x8000, &mut s).unwrap();
    s[0]
}

fn used(ram: &Ram, slot: u64) -> (u16, u32, u32) {
    let mut b = [0u8; 2];
    ram.read(USED + 2, &mut b).unwrap();
    let mut e = [0u8; 8];
    ram.read(USED + 4 + 8 * slot, &mut e).unwrap();
    (
        u16::from_le_bytes(b),
        u32::from_le_bytes(e[0..4].try_into().unwrap()),
        u32::from_le_bytes(e[4..8].try_into().unwrap()),
    )
}

#[test]
fn identity_and_config_space() {
    let mut disk = vec![0u8; 2 << 20];
    let d = VirtioBlk::new(&mut disk);
    assert_eq!(d.read(0, 4), 0x7472_6976);
    assert_eq!(d.read(4, 4), 2);
    assert_eq!(d.read(8, 4), 2);
    assert_eq!(d.read(0x100, 8), 4096, "capacity in 512-byte sectors");
    assert_eq!(d.read(0x100, 4), 4096);
    assert_eq!(d.read(0x10c, 4), SEG_MAX as u64);
    assert_eq!(d.read(0x114, 4), 512, "blk_size");
    assert_eq!(d.read(0x34, 4), QUEUE_MAX as u64);
}

#[test]
fn features_ok_needs_version_1_and_nothing_unknown() {
    let mut disk = vec![0u8; 4096];
    let mut ram = Ram(vec![0; 0x2_0000]);
    let mut d = VirtioBlk::new(&mut disk);
    d.write(0x20, 4, F_FLUSH, &mut ram);
    d.write(0x70, 4, 8, &mut ram);
    assert_eq!(d.read(0x70, 4) & 8, 0, "no VERSION_1");
    d.write(0x24, 4, 1, &mut ram);
    d.write(0x20, 4, 1 | 2, &mut ram); // VERSION_1 and an unknown bit 33
    d.write(0x70, 4, 8, &mut ram);
    assert_eq!(d.read(0x70, 4) & 8, 0, "unknown feature");
    d.write(0x38, 4, 3, &mut ram);
    assert_eq!(d.read(0x38, 4), 0, "queue size must be a power of two");
}

#[test]
fn write_then_read_back_flush_and_get_id() {
    let mut disk = vec![0u8; 2 << 20];
    let mut ram = Ram(vec![0; 0x2_0000]);
    let mut d = ready(&mut disk, &mut ram);
    let pattern: Vec<u8> = (0..1024u32).map(|i| (i * 7 % 251) as u8).collect();
    ram.write(BUF + 0x100, &pattern).unwrap();
    request(&mut ram, T_OUT, 10, 1024, false);
    assert_eq!(submit(&mut d, &mut ram, 0, 8), Effect { interrupt: true });
    assert_eq!(status(&ram), S_OK);
    assert_eq!(used(&ram, 0), (1, 0, 1), "used idx 1, head 0, 1 byte written (status)");
    assert_eq!(d.read(0x60, 4), 1);
    d.write(0x64, 4, 1, &mut ram);
    assert_eq!(d.read(0x60, 4), 0);

    ram.write(BUF + 0x100, &[0u8; 1024]).unwrap();
    request(&mut ram, T_IN, 10, 1024, true);
    submit(&mut d, &mut ram, 0, 8);
    assert_eq!(status(&ram), S_OK);
    let mut back = vec![0u8; 1024];
    ram.read(BUF + 0x100, &mut back).unwrap();
    assert_eq!(back, pattern);
    assert_eq!(used(&ram, 1), (2, 0, 1025));

    request(&mut ram, T_FLUSH, 0, 0, false);
    set_desc(&mut ram, 0, BUF, 16, DESC_F_NEXT, 2);
    submit(&mut d, &mut ram, 0, 8);
    assert_eq!(status(&ram), S_OK);

    request(&mut ram, T_GET_ID, 0, 20, true);
    submit(&mut d, &mut ram, 0, 8);
    let mut id = [0u8; 20];
    ram.read(BUF + 0x100, &mut id).unwrap();
    assert_eq!(&id[..14], b"armvisor-disk0");
    let _ = d;
    assert_eq!(&disk[10 * 512..10 * 512 + 1024], &pattern[..]);
}

#[test]
fn bad_requests_complete_with_an_error() {
    let mut disk = vec![0u8; 2 << 20];
    let mut ram = Ram(vec![0; 0x2_0000]);
    let mut d = ready(&mut disk, &mut ram);
    request(&mut ram, T_IN, 4095, 1024, true);
    submit(&mut d, &mut ram, 0, 8);
    assert_eq!(status(&ram), S_IOERR, "past the end of the disk");
    request(&mut ram, T_IN, u64::MAX / 256, 512, true);
    submit(&mut d, &mut ram, 0, 8);
    assert_eq!(status(&ram), S_IOERR, "sector overflows");
    request(&mut ram, T_IN, 0, 512, false);
    submit(&mut d, &mut ram, 0, 8);
    assert_eq!(status(&ram), S_IOERR, "read into a driver-readable buffer");
    request(&mut ram, 99, 0, 512, true);
    submit(&mut d, &mut ram, 0, 8);
    assert_eq!(status(&ram), S_UNSUPP);
    request(&mut ram, T_IN, 0, 512, true);
    set_desc(&mut ram, 1, BASE + 0x10_0000, 512, DESC_F_NEXT | DESC_F_WRITE, 2);
    submit(&mut d, &mut ram, 0, 8);
    assert_eq!(status(&ram), S_IOERR, "data buffer outside guest RAM");
    assert_eq!(d.read(0x70, 4) as u32 & STATUS_NEEDS_RESET, 0, "the device is still usable");
    assert_eq!(d.errors, 5);
}

#[test]
fn broken_chains_need_a_reset_and_do_not_hang() {
    for case in 0..5 {
        let mut disk = vec![0u8; 4096];
        let mut ram = Ram(vec![0; 0x2_0000]);
        let mut d = ready(&mut disk, &mut ram);
        request(&mut ram, T_IN, 0, 512, true);
        match case {
            0 => set_desc(&mut ram, 1, BUF + 0x100, 512, DESC_F_NEXT | DESC_F_WRITE, 1), // loop
            1 => set_desc(&mut ram, 2, BUF + 0x8000, 1, DESC_F_WRITE | DESC_F_NEXT, 9),  // next out of the table
            2 => set_desc(&mut ram, 0, BUF, 8, DESC_F_NEXT, 1),                          // short header
            3 => set_desc(&mut ram, 0, BUF, 16, DESC_F_INDIRECT, 1),                     // indirect
            _ => set_desc(&mut ram, 2, 0x1000, 1, DESC_F_WRITE, 0),                      // status outside RAM
        }
        let effect = submit(&mut d, &mut ram, 0, 8);
        assert!(effect.interrupt, "case {case}");
        assert_eq!(d.read(0x70, 4) as u32 & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET, "case {case}");
        // Further notifications do nothing until the driver resets the device.
        assert_eq!(submit(&mut d, &mut ram, 0, 8), Effect::default(), "case {case}");
        d.write(0x70, 4, 0, &mut ram);
        assert_eq!(d.read(0x70, 4), 0);
    }
    // An available index that jumps past the ring size.
    let mut disk = vec![0u8; 4096];
    let mut ram = Ram(vec![0; 0x2_0000]);
    let mut d = ready(&mut disk, &mut ram);
    ram.write(AVAIL + 2, &100u16.to_le_bytes()).unwrap();
    d.write(0x50, 4, 0, &mut ram);
    assert_eq!(d.read(0x70, 4) as u32 & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
}

#[test]
fn register_garbage_is_harmless() {
    let mut disk = vec![0u8; 4096];
    let mut ram = Ram(vec![0; 0x2_0000]);
    let mut d = VirtioBlk::new(&mut disk);
    for off in 0..SIZE + 0x10 {
        for size in [1u8, 2, 4, 8] {
            let _ = d.read(off, size);
            let _ = d.write(off, size, u64::MAX, &mut ram);
        }
    }
}
