//! The PL011 UART as the hypervisor's console (ARM DDI 0183): transmit with the FIFO,
//! receive, the receive interrupt, and an unlocked writer for early and panic messages.

use super::{cpu, mmio};
use crate::hw::pl011::{CR, FR, INT, LCR_H, Registers};
use crate::platform::Region;
use core::fmt::{self, Write};
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

/// Last-resort UART for messages before (or without) a usable DTB: QEMU virt's PL011. Used
/// only to say why the hypervisor cannot start.
pub const FALLBACK_UART: Region = Region { base: 0x0900_0000, size: 0x1000 };

/// Transmit FIFO depth of every PL011 revision (r1p5 has 32 entries; 16 is safe for all).
const TX_FIFO_DEPTH: u8 = 16;

pub struct Uart {
    regs: mmio::Mmio<Registers>,
    /// Bytes that may be written without looking at FR: the free FIFO entries the last FR
    /// read showed, less those written since. Under TCG a FR read per byte cost about
    /// 0.5 us, 15 ms of a Linux boot's 15,000 console bytes. Exact only while this port is
    /// the UART's one writer, as `CONSOLE` is; see [`Pl011::shared_with_others`].
    credits: u8,
    /// Free entries an empty transmit FIFO has: 1 with the FIFOs off.
    depth: u8,
}

impl Uart {
    /// # Safety
    /// `region` must be a PL011 from the DTB (or the fallback), reachable as device memory.
    pub unsafe fn new(region: Region) -> Self {
        // SAFETY: forwarded from the caller.
        let regs: mmio::Mmio<Registers> = unsafe { mmio::block(region) };
        let depth = if regs.lcr_h.is_set(LCR_H::FEN) { TX_FIFO_DEPTH } else { 1 };
        Self { regs, credits: 0, depth }
    }

    /// For a port that another writer may share (the panic path's fallback): look at FR
    /// before every byte, as a FIFO someone else is filling has fewer free entries than
    /// this port counted.
    pub fn shared_with_others(mut self) -> Self {
        self.depth = 1;
        self
    }

    /// Turns on the FIFOs if the bootloader left them off (U-Boot turns them on; QEMU's
    /// reset state has them off). The PL011 TRM (DDI 0183, 3.3.8) forbids changing LCR_H
    /// while the UART is enabled, so: wait until the transmitter is idle, disable the UART,
    /// set FEN, enable it again as it was. Left alone if the UART stays busy. Bytes waiting
    /// in the receive FIFO (typed before the hypervisor started) may be lost.
    pub fn enable_fifos(&mut self) {
        if self.depth > 1 {
            return;
        }
        if !self.wait_idle() {
            return;
        }
        let cr = self.regs.cr.get();
        self.regs.cr.set(cr & !CR::UARTEN::SET.value);
        self.regs.lcr_h.modify(LCR_H::FEN::SET);
        self.regs.cr.set(cr);
        self.depth = TX_FIFO_DEPTH;
    }

    /// Waits (bounded: 100 ms; a full FIFO drains in under 3 ms at 115200 baud) until
    /// everything written has left the UART. False if it did not.
    pub fn wait_idle(&self) -> bool {
        let deadline = cpu::counter() + cpu::ticks_from_us(100_000);
        loop {
            let fr = self.regs.fr.extract();
            if fr.is_set(FR::TXFE) && !fr.is_set(FR::BUSY) {
                return true;
            }
            if cpu::counter() > deadline {
                return false;
            }
        }
    }

    pub fn put(&mut self, b: u8) {
        if self.credits == 0 {
            // Bounded wait: a wedged UART must not hang the hypervisor (a full FIFO
            // drains in under 3 ms at 115200 baud; we give it far more before dropping
            // the byte).
            let deadline = cpu::counter() + cpu::ticks_from_us(100_000);
            loop {
                let fr = self.regs.fr.extract();
                if fr.is_set(FR::TXFE) {
                    self.credits = self.depth;
                    break;
                }
                if !fr.is_set(FR::TXFF) {
                    self.credits = 1;
                    break;
                }
                if cpu::counter() > deadline {
                    return;
                }
            }
        }
        self.regs.dr.set(b as u32);
        self.credits -= 1;
    }
}

impl Uart {
    /// A received byte, if the FIFO holds one.
    pub fn get(&mut self) -> Option<u8> {
        if self.regs.fr.is_set(FR::RXFE) { None } else { Some(self.regs.dr.get() as u8) }
    }
}

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
        Ok(())
    }
}

impl Uart {
    /// Turns on the receive interrupts (RX and RX timeout).
    pub fn enable_receive_interrupt(&mut self) {
        self.regs.icr.write(INT::ALL::SET);
        self.regs.imsc.write(INT::RX::SET + INT::RT::SET);
    }
}

/// Prints without locks: for errors before the MMU is on, when locks cannot be trusted yet,
/// and for the panic path when the console's holder never lets go. `region` is the DTB's
/// stdout UART, or QEMU virt's PL011 when there is none.
pub fn early_print(region: Option<Region>, args: fmt::Arguments<'_>) {
    let region = region.unwrap_or(FALLBACK_UART);
    // SAFETY: the region is the DTB's stdout PL011 or QEMU's; with the MMU off every access
    // is a device access, with it on the EL2 map has the console as device memory.
    let mut port = unsafe { Uart::new(region) }.shared_with_others();
    let _ = port.write_fmt(args);
}
