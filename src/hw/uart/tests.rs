//! The console drivers against register-level fakes: each fake models the status bits, the
//! FIFOs and the quirks the driver must respect, records every access and refuses the ones
//! the hardware would not take (wrong width, offsets off the register stride), so a driver
//! that broke a rule fails here instead of on a board.

use super::*;
use std::collections::{BTreeSet, VecDeque};

/// Accesses after which a fake calls the driver stuck: a hang becomes a failure.
const ACCESS_LIMIT: u64 = 5_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Read,
    Write(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Access {
    op: Op,
    offset: usize,
    width: Width,
}

/// A transmitter: a FIFO of `capacity` entries feeding a shift register that sends one byte
/// every `ticks_per_byte` register accesses (the fakes' clock).
struct Tx {
    fifo: VecDeque<u8>,
    capacity: usize,
    shifting: Option<(u8, u32)>,
    ticks_per_byte: u32,
    /// Bytes go straight out: the FIFO always looks empty and idle.
    instant: bool,
    /// The transmitter runs (the Cadence UART's TX_EN / TX_DIS).
    running: bool,
    /// Never sends: a wedged UART.
    wedged: bool,
    sent: Vec<u8>,
    /// Bytes written while the FIFO was full: the hardware drops them.
    lost: usize,
}

impl Tx {
    fn new(capacity: usize, ticks_per_byte: u32) -> Self {
        Self {
            fifo: VecDeque::new(),
            capacity,
            shifting: None,
            ticks_per_byte,
            instant: false,
            running: true,
            wedged: false,
            sent: Vec::new(),
            lost: 0,
        }
    }

    fn tick(&mut self) {
        if self.wedged || !self.running {
            return;
        }
        if let Some((b, left)) = self.shifting {
            self.shifting = if left <= 1 {
                self.sent.push(b);
                None
            } else {
                Some((b, left - 1))
            };
        }
        if self.shifting.is_none()
            && let Some(b) = self.fifo.pop_front()
        {
            self.shifting = Some((b, self.ticks_per_byte));
        }
    }

    fn push(&mut self, b: u8) {
        if self.instant {
            self.sent.push(b);
        } else if self.full() {
            self.lost += 1;
        } else {
            self.fifo.push_back(b);
        }
    }

    fn full(&self) -> bool {
        self.fifo.len() >= self.capacity
    }

    fn empty(&self) -> bool {
        self.fifo.is_empty()
    }

    fn idle(&self) -> bool {
        self.fifo.is_empty() && self.shifting.is_none()
    }
}

// ---------------------------------------------------------------------------------------
// The 16550 family.

/// A 16550A (or, with `dw`, a DesignWare APB UART) at one register shape. Registers 0 and
/// 1 are the divisor while LCR.DLAB is set; a DesignWare part ignores LCR writes while busy
/// and raises busy detect, which only a USR read clears.
struct Fake16550 {
    shift: u8,
    width: Width,
    dw: bool,
    /// FIFO depth when FCR.FIFOE is set; 0 for a part built without FIFOs.
    fifo_depth: usize,
    /// OUT2 gates the interrupt line, as on PC-style boards.
    out2_gates: bool,
    now: u64,
    log: Vec<Access>,
    lcr: u8,
    ier: u8,
    mcr: u8,
    fifos: bool,
    divisor_accesses: usize,
    tx: Tx,
    rx: VecDeque<u8>,
    empty_rbr_reads: usize,
    busy_detect: bool,
    /// DesignWare's character timeout with nothing to read: cleared by a read of RBR.
    stuck_timeout: bool,
    always_busy: bool,
}

impl Fake16550 {
    /// FIFOs off (as after reset), 8N1, transmitter sending a byte per 8 accesses.
    fn new(shift: u8, width: Width, dw: bool) -> Self {
        Self {
            shift,
            width,
            dw,
            fifo_depth: 16,
            out2_gates: false,
            now: 0,
            log: Vec::new(),
            lcr: 0x03,
            ier: 0,
            mcr: 0,
            fifos: false,
            divisor_accesses: 0,
            tx: Tx::new(1, 8),
            rx: VecDeque::new(),
            empty_rbr_reads: 0,
            busy_detect: false,
            stuck_timeout: false,
            always_busy: false,
        }
    }

    /// FIFOs already on, as U-Boot and TF-A leave them.
    fn with_fifos_on(mut self) -> Self {
        self.fifos = true;
        self.tx.capacity = self.fifo_depth;
        self
    }

    fn reg(&self, offset: usize, width: Width) -> usize {
        assert_eq!(width, self.width, "access at {offset:#x} with the wrong width");
        assert_eq!(offset % (1 << self.shift), 0, "offset {offset:#x} is off the register stride");
        let r = offset >> self.shift;
        assert!(r <= 7 || (self.dw && r == ns16550::reg::USR), "no register at {offset:#x}");
        r
    }

    fn step(&mut self, access: Access) {
        self.now += 1;
        assert!(self.now < ACCESS_LIMIT, "the driver never stops polling");
        self.log.push(access);
        self.tx.tick();
    }

    fn busy(&self) -> bool {
        self.always_busy || !self.tx.idle() || !self.rx.is_empty()
    }

    fn dlab(&self) -> bool {
        self.lcr & 0x80 != 0
    }

    fn irq(&self) -> bool {
        let line = (self.dw && self.busy_detect) || self.stuck_timeout || (self.ier & 1 != 0 && !self.rx.is_empty());
        line && (!self.out2_gates || self.mcr & 0x08 != 0)
    }

    fn iir(&self) -> u8 {
        let id = if self.dw && self.busy_detect {
            0x07
        } else if self.stuck_timeout {
            0x0c
        } else if self.ier & 1 != 0 && !self.rx.is_empty() {
            0x04
        } else {
            0x01
        };
        id | if self.fifos { 0xc0 } else { 0 }
    }

    fn offsets(&self) -> BTreeSet<usize> {
        self.log.iter().map(|a| a.offset).collect()
    }

    fn writes_to(&self, r: usize) -> usize {
        self.log.iter().filter(|a| a.offset == r << self.shift && matches!(a.op, Op::Write(_))).count()
    }
}

impl Clock for Fake16550 {
    fn now(&self) -> u64 {
        self.now
    }
    fn ticks_from_us(&self, us: u64) -> u64 {
        us
    }
}

impl Io for Fake16550 {
    fn read(&mut self, offset: usize, width: Width) -> u32 {
        self.step(Access { op: Op::Read, offset, width });
        let v = match self.reg(offset, width) {
            0 | 1 if self.dlab() => {
                self.divisor_accesses += 1;
                0
            }
            0 => {
                self.stuck_timeout = false;
                self.rx.pop_front().unwrap_or_else(|| {
                    self.empty_rbr_reads += 1;
                    0
                })
            }
            1 => self.ier,
            2 => self.iir(),
            3 => self.lcr,
            4 => self.mcr,
            5 => (!self.rx.is_empty() as u8) | ((self.tx.empty() as u8) << 5) | ((self.tx.idle() as u8) << 6),
            ns16550::reg::USR => {
                self.busy_detect = false;
                self.busy() as u8
            }
            _ => 0,
        };
        v as u32
    }

    fn write(&mut self, offset: usize, width: Width, value: u32) {
        self.step(Access { op: Op::Write(value), offset, width });
        assert!(value <= 0xff, "{value:#x} written to an 8-bit register");
        let v = value as u8;
        match self.reg(offset, width) {
            0 | 1 if self.dlab() => self.divisor_accesses += 1,
            0 => self.tx.push(v),
            1 => self.ier = v,
            2 => {
                let on = self.fifo_depth > 0 && v & 1 != 0;
                if on != self.fifos || v & 2 != 0 {
                    self.rx.clear();
                }
                if on != self.fifos || v & 4 != 0 {
                    self.tx.fifo.clear();
                }
                self.fifos = on;
                self.tx.capacity = if on { self.fifo_depth } else { 1 };
            }
            3 if self.dw && self.busy() => self.busy_detect = true,
            3 => self.lcr = v,
            4 => self.mcr = v,
            _ => {}
        }
    }
}

fn dw(shift: u8, width: Width) -> Kind {
    Kind::Ns16550 { variant: ns16550::Variant::DesignWare, reg_shift: shift, io_width: width }
}

fn ns16550a() -> Kind {
    Kind::Ns16550 { variant: ns16550::Variant::Fifo, reg_shift: 0, io_width: Width::U8 }
}

/// What the IRQ handler does (`irq.rs`): acknowledge, then read until empty, while the
/// line is up. A line that stays up would be taken again forever: a failure here.
fn service<I: Io>(port: &mut Port<I>, line: impl Fn(&I) -> bool) -> Vec<u8> {
    let mut got = Vec::new();
    for _ in 0..4 {
        if !line(port.io()) {
            return got;
        }
        port.ack_receive_interrupt();
        while let Some(b) = port.get() {
            got.push(b);
        }
    }
    panic!("the interrupt line stayed up after the handler ran: it would run forever");
}

fn text(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn ns16550_writes_thr_only_when_thre_says_there_is_room() {
    for (fifo_depth, want_depth) in [(16, 16), (0, 1)] {
        let mut fake = Fake16550::new(0, Width::U8, false);
        fake.fifo_depth = fifo_depth;
        fake.tx.ticks_per_byte = 40;
        let mut port = Port::new(ns16550a(), fake);
        port.init();
        let bytes = text(100);
        for &b in &bytes {
            port.put(b);
        }
        assert!(port.wait_idle());
        let fake = port.io();
        assert_eq!(fake.tx.lost, 0, "THR written while the FIFO was full (FIFO depth {fifo_depth})");
        assert_eq!(fake.tx.sent, bytes, "FIFO depth {fifo_depth}");
        assert!(fake.tx.fifo.len() <= want_depth);
    }
}

#[test]
fn ns16550_fills_the_fifo_per_thre_instead_of_polling_each_byte() {
    let mut fake = Fake16550::new(0, Width::U8, false);
    fake.tx.instant = true;
    let mut port = Port::new(ns16550a(), fake);
    port.init();
    let before = port.io().log.len();
    for &b in &text(32) {
        port.put(b);
    }
    let lsr_reads = port.io().log[before..].iter().filter(|a| a.offset == 5 && a.op == Op::Read).count();
    assert_eq!(lsr_reads, 2, "one LSR read per 16 bytes with the FIFOs on");
}

/// The whole driver on one fake: init (with the divisor latch left open and a byte
/// waiting, so LCR meets a busy DesignWare part), transmit, receive, the interrupt.
fn exercise(shift: u8, width: Width) -> Fake16550 {
    let mut fake = Fake16550::new(shift, width, true).with_fifos_on();
    fake.lcr = 0x83;
    fake.rx.push_back(b'!');
    let mut port = Port::new(dw(shift, width), fake);
    port.init();
    for &b in b"out" {
        port.put(b);
    }
    assert!(port.wait_idle());
    port.enable_receive_interrupt();
    let Port::Ns16550(p) = &mut port else { unreachable!() };
    p.io.rx.extend(b"in");
    p.io.busy_detect = true;
    assert_eq!(service(&mut port, Fake16550::irq), b"in");
    let fake = match port {
        Port::Ns16550(p) => p.io,
        _ => unreachable!(),
    };
    assert_eq!(fake.lcr, 0x03, "divisor latch closed, line settings kept");
    assert_eq!(fake.tx.sent, b"out");
    assert!(fake.writes_to(ns16550::reg::LCR) >= 2, "LCR met a busy part and was retried");
    assert_eq!(fake.divisor_accesses, 0);
    fake
}

#[test]
fn reg_shift_2_io_width_4_reaches_each_register_at_its_word() {
    let fake = exercise(2, Width::U32);
    assert_eq!(fake.offsets(), BTreeSet::from([0x00, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x7c]));
    assert!(fake.log.iter().all(|a| a.width == Width::U32));
}

#[test]
fn a_byte_wide_part_is_never_accessed_with_words() {
    for shift in [0, 2] {
        let fake = exercise(shift, Width::U8);
        assert!(fake.log.iter().all(|a| a.width == Width::U8), "reg-shift {shift}");
        let want: BTreeSet<usize> = [0, 1, 2, 3, 4, 5, 0x1f].iter().map(|r| r << shift).collect();
        assert_eq!(fake.offsets(), want, "reg-shift {shift}");
    }
}

#[test]
fn rx_reads_rbr_until_lsr_dr_says_empty_and_never_past_it() {
    let mut fake = Fake16550::new(2, Width::U32, true);
    fake.rx.extend(b"hello");
    let mut port = Port::new(dw(2, Width::U32), fake);
    let mut got = Vec::new();
    while let Some(b) = port.get() {
        got.push(b);
    }
    assert_eq!(got, b"hello");
    assert_eq!(port.get(), None);
    assert!(port.io().rx.is_empty());
    assert_eq!(port.io().empty_rbr_reads, 0, "RBR read with LSR.DR clear");
}

#[test]
fn rx_interrupt_is_enabled_and_raises_the_line_for_input() {
    let mut fake = Fake16550::new(0, Width::U8, false);
    fake.out2_gates = true;
    fake.ier = 0x02;
    let mut port = Port::new(ns16550a(), fake);
    port.init();
    port.enable_receive_interrupt();
    let Port::Ns16550(p) = &mut port else { unreachable!() };
    assert_eq!(p.io.ier, 0x01, "IER.ERBFI alone (the bootloader's ETBEI is gone)");
    assert_ne!(p.io.mcr & 0x08, 0, "MCR.OUT2");
    assert!(!p.io.irq());
    p.io.rx.push_back(b'x');
    assert!(p.io.irq(), "a received byte raises the interrupt");
    assert_eq!(service(&mut port, Fake16550::irq), b"x");
}

#[test]
fn dw_busy_detect_is_cleared_through_usr() {
    let mut fake = Fake16550::new(2, Width::U32, true);
    // LCR written while busy (by the bootloader): busy detect raised, IIR bit 0 set.
    fake.rx.push_back(b'k');
    let mut port = Port::new(dw(2, Width::U32), fake);
    port.enable_receive_interrupt();
    let Port::Ns16550(p) = &mut port else { unreachable!() };
    p.io.write(3 << 2, Width::U32, 0x03);
    assert!(p.io.busy_detect && p.io.irq());
    assert_eq!(service(&mut port, Fake16550::irq), b"k");
    assert!(port.io().log.iter().any(|a| a.offset == 0x7c), "USR read");
}

#[test]
fn dw_rx_timeout_with_an_empty_fifo_is_ended_by_one_read() {
    let mut fake = Fake16550::new(2, Width::U32, true);
    fake.stuck_timeout = true;
    let mut port = Port::new(dw(2, Width::U32), fake);
    port.enable_receive_interrupt();
    assert_eq!(service(&mut port, Fake16550::irq), b"");
    assert_eq!(port.io().empty_rbr_reads, 1);
}

#[test]
fn dw_lcr_write_ignored_while_busy_is_retried_after_emptying_the_fifos() {
    let mut fake = Fake16550::new(2, Width::U32, true).with_fifos_on();
    fake.lcr = 0x83;
    fake.rx.extend(b"typed early");
    let mut port = Port::new(dw(2, Width::U32), fake);
    port.init();
    let fake = port.io();
    assert_eq!(fake.lcr, 0x03);
    assert!(fake.writes_to(ns16550::reg::LCR) >= 2, "the first write was ignored and retried");
    assert_eq!(fake.empty_rbr_reads, 0, "RBR read with the FIFOs on and LSR.DR clear");
}

#[test]
fn dw_forever_busy_gives_up_on_lcr_and_leaves_the_divisor_alone() {
    let mut fake = Fake16550::new(2, Width::U32, true);
    fake.lcr = 0x83;
    fake.always_busy = true;
    let mut port = Port::new(dw(2, Width::U32), fake);
    port.init();
    port.put(b'x');
    port.enable_receive_interrupt();
    assert_eq!(port.get(), None);
    let fake = port.io();
    assert_eq!(fake.writes_to(ns16550::reg::LCR), 1001, "one write and 1000 retries, then stop");
    assert_eq!(fake.divisor_accesses, 0, "registers 0 and 1 are the divisor: untouched");
}

#[test]
fn no_fifo_members_are_not_given_fifos() {
    let mut fake = Fake16550::new(0, Width::U8, false);
    fake.tx.ticks_per_byte = 10;
    let kind = Kind::Ns16550 { variant: ns16550::Variant::NoFifo, reg_shift: 0, io_width: Width::U8 };
    let mut port = Port::new(kind, fake);
    port.init();
    for &b in &text(20) {
        port.put(b);
    }
    assert!(port.wait_idle());
    assert_eq!(port.io().writes_to(ns16550::reg::FCR), 0);
    assert_eq!(port.io().tx.sent, text(20));
    assert_eq!(port.io().writes_to(ns16550::reg::LCR), 0, "LCR left alone with the latch closed");
}

#[test]
fn a_wedged_transmitter_costs_a_bounded_wait_per_byte_not_a_hang() {
    let mut fake = Fake16550::new(0, Width::U8, false);
    fake.tx.wedged = true;
    fake.tx.fifo.push_back(b'?');
    let mut port = Port::new(ns16550a(), fake);
    port.put(b'x');
    let fake = port.io();
    assert!(fake.now > WAIT_US && fake.now < WAIT_US + 10, "waited {} ticks", fake.now);
    assert_eq!(fake.writes_to(ns16550::reg::THR), 0, "dropped, not written into a full FIFO");
}

// ---------------------------------------------------------------------------------------
// The Cadence UART.

/// A Cadence UART: 64-byte FIFOs, CR's enable and disable bits, IER/IDR setting and
/// clearing IMR, ISR written 1 to clear, RXTRIG at RXWM bytes.
struct FakeCadence {
    now: u64,
    log: Vec<Access>,
    cr: u32,
    imr: u32,
    isr: u32,
    rxwm: u32,
    rxtout: u32,
    /// Writes to MR, BAUDGEN or BAUDDIV: the bootloader's line settings.
    line_writes: usize,
    tx: Tx,
    rx: VecDeque<u8>,
    empty_fifo_reads: usize,
    /// SR reads that showed TXFULL.
    full_polls: usize,
}

const CR_TX_EN: u32 = 1 << 4;
const CR_TX_DIS: u32 = 1 << 5;
const CR_RX_EN: u32 = 1 << 2;
const CR_RX_DIS: u32 = 1 << 3;

impl FakeCadence {
    /// Enabled as a bootloader leaves it; reset values elsewhere (RXWM 0x20, RXTOUT 0).
    fn new() -> Self {
        Self {
            now: 0,
            log: Vec::new(),
            cr: CR_TX_EN | CR_RX_EN | (1 << 8),
            imr: 0,
            isr: 0,
            rxwm: 0x20,
            rxtout: 0,
            line_writes: 0,
            tx: Tx::new(64, 8),
            rx: VecDeque::new(),
            empty_fifo_reads: 0,
            full_polls: 0,
        }
    }

    fn tx_on(&self) -> bool {
        self.cr & CR_TX_EN != 0 && self.cr & CR_TX_DIS == 0
    }

    fn rx_on(&self) -> bool {
        self.cr & CR_RX_EN != 0 && self.cr & CR_RX_DIS == 0
    }

    fn step(&mut self, access: Access) {
        self.now += 1;
        assert!(self.now < ACCESS_LIMIT, "the driver never stops polling");
        assert_eq!(access.width, Width::U32, "the Cadence UART's registers are 32-bit");
        assert!(access.offset.is_multiple_of(4) && access.offset <= 0x44, "no register at {:#x}", access.offset);
        self.log.push(access);
        self.tx.running = self.tx_on();
        let was_empty = self.tx.empty();
        self.tx.tick();
        if !was_empty && self.tx.empty() {
            self.isr |= 1 << 3;
        }
    }

    /// Bytes arriving on the line (lost while the receiver is off).
    fn type_bytes(&mut self, bytes: &[u8]) {
        if !self.rx_on() {
            return;
        }
        self.rx.extend(bytes);
        if self.rx.len() as u32 >= self.rxwm {
            self.isr |= 1;
        } else if self.rxtout != 0 {
            self.isr |= 1 << 8;
        }
    }

    fn irq(&self) -> bool {
        self.isr & self.imr != 0
    }
}

impl Clock for FakeCadence {
    fn now(&self) -> u64 {
        self.now
    }
    fn ticks_from_us(&self, us: u64) -> u64 {
        us
    }
}

impl Io for FakeCadence {
    fn read(&mut self, offset: usize, width: Width) -> u32 {
        self.step(Access { op: Op::Read, offset, width });
        use cadence::offset::*;
        match offset {
            CR => self.cr,
            IMR => self.imr,
            ISR => self.isr,
            RXWM => self.rxwm,
            RXTOUT => self.rxtout,
            SR => {
                if self.tx.full() {
                    self.full_polls += 1;
                }
                ((self.rx.len() as u32 >= self.rxwm) as u32)
                    | ((self.rx.is_empty() as u32) << 1)
                    | ((self.tx.empty() as u32) << 3)
                    | ((self.tx.full() as u32) << 4)
                    | ((self.tx.shifting.is_some() as u32) << 11)
            }
            FIFO => self.rx.pop_front().map_or_else(
                || {
                    self.empty_fifo_reads += 1;
                    0
                },
                u32::from,
            ),
            _ => 0,
        }
    }

    fn write(&mut self, offset: usize, width: Width, value: u32) {
        self.step(Access { op: Op::Write(value), offset, width });
        use cadence::offset::*;
        match offset {
            CR => self.cr = value & !0x43,
            MR | BAUDGEN | BAUDDIV => self.line_writes += 1,
            IER => self.imr |= value,
            IDR => self.imr &= !value,
            ISR => self.isr &= !value,
            RXWM => self.rxwm = value,
            RXTOUT => self.rxtout = value,
            FIFO => self.tx.push(value as u8),
            _ => {}
        }
    }
}

fn cadence_port(fake: FakeCadence) -> Port<FakeCadence> {
    Port::new(Kind::Cadence, fake)
}

#[test]
fn cadence_full_tx_fifo_is_waited_for_not_overrun() {
    let mut fake = FakeCadence::new();
    let boot = text(64);
    fake.tx.fifo.extend(&boot);
    fake.tx.ticks_per_byte = 30;
    let mut port = cadence_port(fake);
    let bytes = text(200);
    for &b in &bytes {
        port.put(b);
    }
    assert!(port.wait_idle());
    let fake = port.io();
    assert_eq!(fake.tx.lost, 0, "FIFO written while SR.TXFULL");
    assert!(fake.full_polls > 0, "the driver polled SR while the FIFO was full");
    assert_eq!(fake.tx.sent, [boot, bytes].concat(), "nothing dropped");
}

#[test]
fn cadence_init_enables_tx_and_rx_and_keeps_the_baud_rate() {
    let mut fake = FakeCadence::new();
    fake.cr = CR_TX_DIS | CR_RX_DIS | (1 << 8);
    let mut port = cadence_port(fake);
    port.init();
    let Port::Cadence(p) = &mut port else { unreachable!() };
    assert!(p.io.tx_on() && p.io.rx_on(), "CR {:#x}", p.io.cr);
    assert_eq!(p.io.cr & (1 << 8), 1 << 8, "other CR bits as they were");
    assert_eq!(p.io.line_writes, 0, "MR, BAUDGEN and BAUDDIV untouched");
    p.io.log.clear();
    port.init();
    assert!(port.io().log.iter().all(|a| a.op == Op::Read), "already enabled: CR not written again");
    port.put(b'z');
    assert!(port.wait_idle());
    assert_eq!(port.io().tx.sent, b"z");
}

#[test]
fn cadence_rx_reads_the_fifo_until_sr_rxempty() {
    let mut fake = FakeCadence::new();
    fake.type_bytes(b"zynq");
    let mut port = cadence_port(fake);
    let mut got = Vec::new();
    while let Some(b) = port.get() {
        got.push(b);
    }
    assert_eq!(got, b"zynq");
    assert_eq!(port.io().empty_fifo_reads, 0, "FIFO read with SR.RXEMPTY set");
}

#[test]
fn cadence_rx_interrupt_per_byte_and_cleared_by_the_handler() {
    let mut fake = FakeCadence::new();
    // The bootloader's TX-empty interrupt, enabled and pending.
    fake.imr = 1 << 3;
    fake.isr = 1 << 3;
    let mut port = cadence_port(fake);
    port.init();
    port.enable_receive_interrupt();
    let Port::Cadence(p) = &mut port else { unreachable!() };
    assert_eq!(p.io.imr, (1 << 0) | (1 << 8), "RXTRIG and TIMEOUT only");
    assert_eq!(p.io.rxwm, 1, "trigger at one byte");
    assert_ne!(p.io.rxtout, 0, "timeout on");
    assert!(!p.io.irq(), "stale status masked and cleared");
    p.io.type_bytes(b"a");
    assert!(p.io.irq(), "one byte raises the interrupt");
    assert_eq!(service(&mut port, FakeCadence::irq), b"a");
    let Port::Cadence(p) = &mut port else { unreachable!() };
    p.io.type_bytes(b"bc");
    assert_eq!(service(&mut port, FakeCadence::irq), b"bc");
}

#[test]
fn cadence_wedged_transmitter_drops_the_byte_after_the_bounded_wait() {
    let mut fake = FakeCadence::new();
    fake.tx.wedged = true;
    fake.tx.fifo.extend(text(64));
    let mut port = cadence_port(fake);
    port.put(b'x');
    let fake = port.io();
    assert!(fake.now > WAIT_US && fake.now < WAIT_US + 10, "waited {} ticks", fake.now);
    assert_eq!(fake.tx.lost, 0);
}

// ---------------------------------------------------------------------------------------
// The PL011: the register accesses the driver made before it became portable.

/// A PL011 with a 16-entry transmit FIFO when LCR_H.FEN is set (one entry without).
struct FakePl011 {
    now: u64,
    log: Vec<(Op, u64)>,
    lcr_h: u32,
    cr: u32,
    tx: Tx,
    rx: VecDeque<u8>,
}

impl FakePl011 {
    fn new(lcr_h: u32, tx: Tx) -> Self {
        let mut fake = Self { now: 0, log: Vec::new(), lcr_h, cr: 0x301, tx, rx: VecDeque::new() };
        fake.tx.capacity = if lcr_h & 0x10 != 0 { 16 } else { 1 };
        fake
    }

    fn step(&mut self, op: Op, offset: usize, width: Width) {
        assert_eq!(width, Width::U32);
        self.now += 1;
        assert!(self.now < ACCESS_LIMIT, "the driver never stops polling");
        self.log.push((op, offset as u64));
        self.tx.tick();
    }
}

impl Clock for FakePl011 {
    fn now(&self) -> u64 {
        self.now
    }
    fn ticks_from_us(&self, us: u64) -> u64 {
        us
    }
}

impl Io for FakePl011 {
    fn read(&mut self, offset: usize, width: Width) -> u32 {
        self.step(Op::Read, offset, width);
        use crate::hw::pl011::offset::*;
        match offset as u64 {
            FR => {
                ((!self.tx.idle() as u32) << 3)
                    | ((self.rx.is_empty() as u32) << 4)
                    | ((self.tx.full() as u32) << 5)
                    | ((self.tx.empty() as u32) << 7)
            }
            LCR_H => self.lcr_h,
            CR => self.cr,
            DR => self.rx.pop_front().unwrap_or(0) as u32,
            _ => 0,
        }
    }

    fn write(&mut self, offset: usize, width: Width, value: u32) {
        self.step(Op::Write(value), offset, width);
        use crate::hw::pl011::offset::*;
        match offset as u64 {
            DR => self.tx.push(value as u8),
            LCR_H => {
                self.lcr_h = value;
                self.tx.capacity = if value & 0x10 != 0 { 16 } else { 1 };
            }
            CR => self.cr = value,
            _ => {}
        }
    }
}

fn instant() -> Tx {
    let mut tx = Tx::new(1, 1);
    tx.instant = true;
    tx
}

#[test]
fn pl011_register_accesses_are_the_ones_it_always_made() {
    use crate::hw::pl011::offset::*;
    let r = |o| (Op::Read, o);
    let w = |o, v| (Op::Write(v), o);
    let mut port = Port::new(Kind::Pl011, FakePl011::new(0x60, instant()));
    port.init();
    for &b in &text(20) {
        port.put(b);
    }
    assert_eq!(port.get(), None);
    let Port::Pl011(p) = &mut port else { unreachable!() };
    p.io.rx.push_back(b'q');
    assert_eq!(port.get(), Some(b'q'));
    port.enable_receive_interrupt();
    port.ack_receive_interrupt();
    assert!(port.wait_idle());
    let mut want = vec![
        r(LCR_H), // new: FIFOs off
        r(FR),    // init: idle
        r(CR),    // the UART disabled for the LCR_H write
        w(CR, 0x300),
        r(LCR_H),
        w(LCR_H, 0x70), // FEN
        w(CR, 0x301),   // enabled again as it was
    ];
    for chunk in text(20).chunks(16) {
        want.push(r(FR)); // TXFE: 16 credits
        want.extend(chunk.iter().map(|&b| w(DR, b as u32)));
    }
    want.extend([r(FR), r(FR), r(DR), w(ICR, 0x7ff), w(IMSC, 0x50), r(FR)]);
    assert_eq!(port.io().log, want);
    assert_eq!(port.io().tx.sent, text(20));

    // The unlocked fallback: FR before every byte; FIFOs already on, so init does nothing.
    let mut port = Port::new(Kind::Pl011, FakePl011::new(0x70, instant()));
    port.init();
    let mut shared = port.shared_with_others();
    shared.put(b'a');
    shared.put(b'b');
    assert_eq!(shared.io().log, [r(LCR_H), r(FR), w(DR, 0x61), r(FR), w(DR, 0x62)]);
}

#[test]
fn pl011_credits_never_overrun_its_fifo() {
    for lcr_h in [0x60, 0x70] {
        let mut port = Port::new(Kind::Pl011, FakePl011::new(lcr_h, Tx::new(1, 25)));
        let bytes = text(100);
        for &b in &bytes {
            port.put(b);
        }
        assert!(port.wait_idle());
        assert_eq!(port.io().tx.lost, 0, "DR written with the FIFO full (LCR_H {lcr_h:#x})");
        assert_eq!(port.io().tx.sent, bytes);
    }
}

#[test]
fn text_goes_out_with_crlf_line_ends() {
    let mut fake = Fake16550::new(0, Width::U8, false);
    fake.tx.instant = true;
    let mut port = Port::new(ns16550a(), fake);
    core::fmt::Write::write_str(&mut port, "a\nb").unwrap();
    assert_eq!(port.io().tx.sent, b"a\r\nb");
}

#[test]
fn kinds_name_themselves_and_their_register_span() {
    assert_eq!(Kind::Pl011.to_string(), "pl011");
    assert_eq!(Kind::Cadence.to_string(), "cadence");
    assert_eq!(dw(2, Width::U32).to_string(), "ns16550 (DesignWare APB, reg-shift 2, reg-io-width 4)");
    assert_eq!(Kind::Pl011.span(), 0x4c);
    assert_eq!(Kind::Cadence.span(), 0x34);
    assert_eq!(dw(2, Width::U32).span(), 0x80, "USR at 0x7c, four bytes");
    assert_eq!(dw(0, Width::U8).span(), 0x20);
    assert_eq!(ns16550a().span(), 6, "up to LSR");
    assert_eq!(cadence::offset::TXWM, 0x44);
    assert_eq!((cadence::offset::SR, cadence::offset::FIFO, cadence::offset::BAUDDIV), (0x2c, 0x30, 0x34));
}
