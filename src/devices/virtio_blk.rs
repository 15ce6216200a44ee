//! A virtio-mmio (virtio 1.2, modern transport, section 4.2) block device over a guest
//! memory trait: registers, feature negotiation, one request virtqueue (split ring, 2.7),
//! and read, write, flush and get-id requests (5.2) against a disk image in memory.
//!
//! Every descriptor is input: addresses must lie in guest RAM, lengths are bounded, chains
//! are bounded by the queue size (which also stops loops), and a request that breaks a rule
//! completes with VIRTIO_BLK_S_IOERR when its status byte can be found, or puts the device
//! in DEVICE_NEEDS_RESET when it cannot. The hypervisor keeps running either way.
#![forbid(unsafe_code)]

pub use super::{GuestMemory, OutOfGuestRam};

pub const SIZE: u64 = 0x200;
/// Queue size we offer (QueueNumMax).
pub const QUEUE_MAX: u16 = 128;
/// Largest single data descriptor we accept (also seg_max x this bounds a request).
pub const MAX_SEGMENT: u32 = 1 << 20;
pub const SEG_MAX: u32 = 126;
const SECTOR: u64 = 512;

const MAGIC: u32 = 0x7472_6976;
const VERSION: u32 = 2;
const DEVICE_ID_BLOCK: u32 = 2;
const VENDOR_ID: u32 = 0x4152_4d56; // "ARMV"

/// Feature bits (5.2.3, 6).
pub const F_SEG_MAX: u64 = 1 << 2;
pub const F_BLK_SIZE: u64 = 1 << 6;
pub const F_FLUSH: u64 = 1 << 9;
pub const F_VERSION_1: u64 = 1 << 32;
const FEATURES: u64 = F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_VERSION_1;

/// Device status bits (2.1).
const STATUS_FEATURES_OK: u32 = 8;
const STATUS_DRIVER_OK: u32 = 4;
pub const STATUS_NEEDS_RESET: u32 = 64;

/// Request types and status values (5.2.6).
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;
pub const S_OK: u8 = 0;
pub const S_IOERR: u8 = 1;
pub const S_UNSUPP: u8 = 2;

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;

#[derive(Debug, Default, Clone, Copy)]
struct Queue {
    num: u16,
    ready: bool,
    desc: u64,
    avail: u64,
    used: u64,
    last_avail: u16,
}

pub struct VirtioBlk<'d> {
    disk: &'d mut [u8],
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queue: Queue,
    pub interrupt_status: u32,
    /// Requests completed with IOERR or UNSUPP, and chains rejected outright (statistics).
    pub errors: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    /// Raise the device's interrupt (edge).
    pub interrupt: bool,
}

#[derive(Debug, Clone, Copy)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

impl<'d> VirtioBlk<'d> {
    pub fn new(disk: &'d mut [u8]) -> Self {
        Self {
            disk,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queue: Queue::default(),
            interrupt_status: 0,
            errors: 0,
        }
    }

    /// The disk's bytes back (the device is gone: a VM restarting keeps its disk).
    pub fn into_disk(self) -> &'d mut [u8] {
        self.disk
    }

    pub fn capacity_sectors(&self) -> u64 {
        self.disk.len() as u64 / SECTOR
    }

    fn reset(&mut self) {
        self.status = 0;
        self.driver_features = 0;
        self.queue = Queue::default();
        self.interrupt_status = 0;
    }

    fn config_read(&self, offset: u64, size: u8) -> u64 {
        let mut cfg = [0u8; 0x20];
        cfg[0..8].copy_from_slice(&self.capacity_sectors().to_le_bytes());
        cfg[8..12].copy_from_slice(&MAX_SEGMENT.to_le_bytes());
        cfg[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
        cfg[0x14..0x18].copy_from_slice(&(SECTOR as u32).to_le_bytes());
        let o = offset as usize;
        match cfg.get(o..o + size as usize) {
            Some(b) => b.iter().rev().fold(0, |acc, &x| (acc << 8) | x as u64),
            None => 0,
        }
    }

    pub fn read(&self, offset: u64, size: u8) -> u64 {
        if offset >= 0x100 {
            return self.config_read(offset - 0x100, size);
        }
        if size != 4 {
            return 0;
        }
        let q = &self.queue;
        let v: u32 = match offset {
            0x000 => MAGIC,
            0x004 => VERSION,
            0x008 => DEVICE_ID_BLOCK,
            0x00c => VENDOR_ID,
            0x010 => match self.device_features_sel {
                0 => FEATURES as u32,
                1 => (FEATURES >> 32) as u32,
                _ => 0,
            },
            0x034 if self.queue_sel == 0 => QUEUE_MAX as u32,
            0x038 if self.queue_sel == 0 => q.num as u32,
            0x044 if self.queue_sel == 0 => q.ready as u32,
            0x060 => self.interrupt_status,
            0x070 => self.status,
            0x0fc => 0,
            _ => 0,
        };
        v as u64
    }

    pub fn write(&mut self, offset: u64, size: u8, value: u64, mem: &mut impl GuestMemory) -> Effect {
        let mut effect = Effect::default();
        if size != 4 || offset >= 0x100 {
            return effect;
        }
        let v = value as u32;
        let lo = |old: u64, v: u32| (old & !0xffff_ffff) | v as u64;
        let hi = |old: u64, v: u32| (old & 0xffff_ffff) | ((v as u64) << 32);
        let q0 = self.queue_sel == 0;
        match offset {
            0x014 => self.device_features_sel = v,
            0x020 => match self.driver_features_sel {
                0 => self.driver_features = lo(self.driver_features, v),
                1 => self.driver_features = hi(self.driver_features, v),
                _ => {}
            },
            0x024 => self.driver_features_sel = v,
            0x030 => self.queue_sel = v,
            0x038 if q0 && !self.queue.ready => {
                self.queue.num = if (1..=QUEUE_MAX as u32).contains(&v) && v.is_power_of_two() { v as u16 } else { 0 }
            }
            0x044 if q0 => self.queue.ready = v & 1 != 0 && self.queue.num != 0,
            0x050 if v == 0 => effect = self.notify(mem),
            0x064 => self.interrupt_status &= !v,
            0x070 => {
                if v == 0 {
                    self.reset();
                } else {
                    let mut v = v;
                    // FEATURES_OK only if the driver took nothing we do not offer, and
                    // VERSION_1 (we are a modern-only device).
                    if v & STATUS_FEATURES_OK != 0
                        && (self.driver_features & !FEATURES != 0 || self.driver_features & F_VERSION_1 == 0)
                    {
                        v &= !STATUS_FEATURES_OK;
                    }
                    self.status = v | (self.status & STATUS_NEEDS_RESET);
                }
            }
            0x080 if q0 && !self.queue.ready => self.queue.desc = lo(self.queue.desc, v),
            0x084 if q0 && !self.queue.ready => self.queue.desc = hi(self.queue.desc, v),
            0x090 if q0 && !self.queue.ready => self.queue.avail = lo(self.queue.avail, v),
            0x094 if q0 && !self.queue.ready => self.queue.avail = hi(self.queue.avail, v),
            0x0a0 if q0 && !self.queue.ready => self.queue.used = lo(self.queue.used, v),
            0x0a4 if q0 && !self.queue.ready => self.queue.used = hi(self.queue.used, v),
            _ => {}
        }
        effect
    }

    fn fail(&mut self) -> Effect {
        self.errors += 1;
        self.status |= STATUS_NEEDS_RESET;
        // Configuration-change interrupt tells the driver to look at the status.
        self.interrupt_status |= 2;
        Effect { interrupt: true }
    }

    /// QueueNotify: completes every request the driver made available.
    fn notify(&mut self, mem: &mut impl GuestMemory) -> Effect {
        let q = self.queue;
        if !q.ready || self.status & STATUS_DRIVER_OK == 0 || self.status & STATUS_NEEDS_RESET != 0 {
            return Effect::default();
        }
        let mut idx = [0u8; 2];
        if mem.read(q.avail + 2, &mut idx).is_err() {
            return self.fail();
        }
        let avail_idx = u16::from_le_bytes(idx);
        // More new entries than the ring holds is a driver bug: reject.
        if avail_idx.wrapping_sub(q.last_avail) > q.num {
            return self.fail();
        }
        let mut completed = false;
        while self.queue.last_avail != avail_idx {
            let slot = (self.queue.last_avail % q.num) as u64;
            let mut head = [0u8; 2];
            if mem.read(q.avail + 4 + 2 * slot, &mut head).is_err() {
                return self.fail();
            }
            let head = u16::from_le_bytes(head);
            let Some(written) = self.request(mem, head) else { return self.fail() };
            // Used ring element: id, len; then the used index.
            let used_slot = (self.queue.last_avail % q.num) as u64;
            let mut elem = [0u8; 8];
            elem[0..4].copy_from_slice(&(head as u32).to_le_bytes());
            elem[4..8].copy_from_slice(&written.to_le_bytes());
            if mem.write(q.used + 4 + 8 * used_slot, &elem).is_err() {
                return self.fail();
            }
            self.queue.last_avail = self.queue.last_avail.wrapping_add(1);
            if mem.write(q.used + 2, &self.queue.last_avail.to_le_bytes()).is_err() {
                return self.fail();
            }
            completed = true;
        }
        if completed {
            self.interrupt_status |= 1;
        }
        Effect { interrupt: completed }
    }

    fn desc(&self, mem: &impl GuestMemory, i: u16) -> Option<Desc> {
        if i >= self.queue.num {
            return None;
        }
        let mut b = [0u8; 16];
        mem.read(self.queue.desc + 16 * i as u64, &mut b).ok()?;
        Some(Desc {
            addr: u64::from_le_bytes(b[0..8].try_into().ok()?),
            len: u32::from_le_bytes(b[8..12].try_into().ok()?),
            flags: u16::from_le_bytes(b[12..14].try_into().ok()?),
            next: u16::from_le_bytes(b[14..16].try_into().ok()?),
        })
    }

    /// One request starting at descriptor `head`. `Some(bytes written to the driver)` when
    /// it completed (OK or with an error status); `None` when the chain itself is broken.
    fn request(&mut self, mem: &mut impl GuestMemory, head: u16) -> Option<u32> {
        // Collect the chain, at most `num` descriptors (a loop cannot be longer).
        let mut chain = [Desc { addr: 0, len: 0, flags: 0, next: 0 }; QUEUE_MAX as usize];
        let mut n = 0;
        let mut i = head;
        loop {
            let d = self.desc(mem, i)?;
            if d.flags & DESC_F_INDIRECT != 0 || n >= self.queue.num as usize {
                return None;
            }
            chain[n] = d;
            n += 1;
            if d.flags & DESC_F_NEXT == 0 {
                break;
            }
            i = d.next;
        }
        let chain = &chain[..n];
        // Header (driver-readable, 16 bytes), data, status (device-writable, last, >= 1 byte).
        let (first, last) = (chain[0], chain[n - 1]);
        if n < 2 || first.flags & DESC_F_WRITE != 0 || first.len < 16 || last.flags & DESC_F_WRITE == 0 || last.len < 1
        {
            return None;
        }
        let status_addr = last.addr + last.len as u64 - 1;
        let mut hdr = [0u8; 16];
        mem.read(first.addr, &mut hdr).ok()?;
        let kind = u32::from_le_bytes(hdr[0..4].try_into().ok()?);
        let sector = u64::from_le_bytes(hdr[8..16].try_into().ok()?);
        let data = &chain[1..n - 1];
        let mut status = S_OK;
        let mut written = 0u32;
        match kind {
            T_IN | T_OUT => {
                let write_to_guest = kind == T_IN;
                let mut pos = sector.checked_mul(SECTOR);
                for d in data {
                    let ok_dir = (d.flags & DESC_F_WRITE != 0) == write_to_guest;
                    let Some(p) = pos else {
                        status = S_IOERR;
                        break;
                    };
                    let end = p.checked_add(d.len as u64);
                    if !ok_dir || d.len > MAX_SEGMENT || end.is_none_or(|e| e > self.disk.len() as u64) {
                        status = S_IOERR;
                        break;
                    }
                    let range = p as usize..end.unwrap_or(p) as usize;
                    let r = if write_to_guest {
                        mem.write(d.addr, &self.disk[range])
                    } else {
                        mem.read(d.addr, &mut self.disk[range])
                    };
                    if r.is_err() {
                        status = S_IOERR;
                        break;
                    }
                    if write_to_guest {
                        written += d.len;
                    }
                    pos = end;
                }
            }
            T_FLUSH => {}
            T_GET_ID => match data.first() {
                Some(d) if d.flags & DESC_F_WRITE != 0 => {
                    let mut id = [0u8; 20];
                    id[..14].copy_from_slice(b"armvisor-disk0");
                    let len = (d.len as usize).min(20);
                    if mem.write(d.addr, &id[..len]).is_err() {
                        status = S_IOERR;
                    } else {
                        written += len as u32;
                    }
                }
                _ => status = S_IOERR,
            },
            _ => status = S_UNSUPP,
        }
        if status != S_OK {
            self.errors += 1;
        }
        mem.write(status_addr, &[status]).ok()?;
        Some(written + 1)
    }
}

/// Whether `offset` is a register of the transport (4.2.2) or in the configuration space.
fn is_register(offset: u64) -> bool {
    matches!(
        offset,
        0x000
            | 0x004
            | 0x008
            | 0x00c
            | 0x010
            | 0x014
            | 0x020
            | 0x024
            | 0x030
            | 0x034
            | 0x038
            | 0x044
            | 0x050
            | 0x060
            | 0x064
            | 0x070
            | 0x080
            | 0x084
            | 0x090
            | 0x094
            | 0x0a0
            | 0x0a4
            | 0x0fc
    ) || (0x100..SIZE).contains(&offset)
}

impl super::Mmio for VirtioBlk<'_> {
    fn read(&mut self, offset: u64, size: u8, _: &mut super::Ctx<'_>) -> super::Effects {
        super::Effects {
            value: VirtioBlk::read(self, offset, size),
            unknown: !is_register(offset),
            ..Default::default()
        }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64, ctx: &mut super::Ctx<'_>) -> super::Effects {
        let interrupt = VirtioBlk::write(self, offset, size, value, &mut ctx.mem).interrupt;
        let line = interrupt.then_some(super::Signal::Edge);
        super::Effects { line, unknown: !is_register(offset), ..Default::default() }
    }
}

#[cfg(test)]
mod tests;
