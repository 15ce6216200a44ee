//! One physical console, many VMs: whose output goes out when, and where typed bytes go.
//!
//! The convention is Xen's (`xen/drivers/char/console.c`, `xen/arch/arm/vpl011.c`). Input
//! goes to one VM at a time, the *focus*; Ctrl-A typed three times moves it to the next VM
//! that takes console input (see [`Mux::feed`]). The focus's output goes out as it comes
//! (a shell prompt has no newline and must show at once); every other VM's comes out in
//! whole lines, as Xen's emulated PL011 does for a domU (`vpl011_write_data_xen`: the
//! domain with the input prints each byte, the others whole lines of at most 126 bytes).
//! Each such line is prefixed with `(name) `, as Xen's `guest_printk` prefixes a domU's
//! lines with `(d1) ` (what `guest_console_write` and `hvm_print_line` collect up to a
//! newline) and its own with `(XEN) `. We use the VM's name, not a number: names are
//! unique and are what the configuration and the logs call a VM. The hypervisor's own
//! lines keep their `[    1.234567] I cpu0: ` prefix, which no `(name) ` can be taken for;
//! and a line of the focus that starts like one (a guest forging the hypervisor's word) goes
//! out behind the focus's `(name) ` too. Such a line's first bytes are held until they tell
//! (Linux's own `[    0.000000] Booting` at its 16th byte, a prompt `[root@a ~]#` at its
//! second), at most the partial-line wait.
//!
//! While the focus is in the middle of a line it wrote less than the partial-line wait ago
//! (a command's output on its way), the other VMs' lines wait, so that they do not cut the
//! focus's line in two; a line left unfinished longer (a prompt) is ended with a line break
//! before they go out.
//!
//! Output never waits: a vCPU's byte goes into its VM's [`OutputBuffer`] (4 KiB) and the
//! buffers are drained into whatever room the UART's transmit FIFO has, one line (or
//! chunk of at most [`LINE_MAX`] bytes) per VM in turn, so a VM that floods the console
//! delays another's line by at most one line. What does not fit in a full buffer is
//! dropped and counted, and the count goes out where the loss began:
//! `(b) [armvisor: 1234 bytes of output lost]`.
//!
//! Guest bytes pass unchanged (escape sequences included: a background VM's colours are
//! harmless, and stripping ESC, as Xen's `guest_console_write` does, would leave `[0;32m`
//! on the screen). Line feeds the mux adds itself are sent as `\r\n`, as the console's own
//! lines are (`hw::uart::Port`'s `fmt::Write`); guests send their own `\r\n`.
//!
//! # How it is driven
//!
//! One [`Mux`] for the machine, in the console lock `console::CONSOLE`, next to the UART
//! port: one lock covers the port, the mux's idea of the console's last byte and the FIFO
//! room it is told about, and it stays a leaf. Every call below holds that lock.
//!
//! - `console::init`: `Mux::new(arch::ticks_from_us(100_000))` (a partial line of a VM
//!   without the focus waits at most 100 ms).
//! - Boot, while the VMs are built: [`Mux::add`]`(name, spec.console)` per VM, in
//!   configuration order; the index it returns goes into the `Vm`. Then, if
//!   [`Mux::start_notice`] gives a line, log it (`log::info!`).
//! - A guest's transmitted byte (`vm::bus`, where `Effects::tx` is handled today, after the
//!   device lock is dropped; the vCPU's own pCPU): [`Mux::push`]`(index, byte, counter)`,
//!   then [`Mux::drain`]`(counter, room, write)`, `room` being the free entries of the
//!   UART's transmit FIFO as its status register says (not waited for) and `write`
//!   putting raw bytes into the FIFO (no `\n` translation, no waiting).
//! - What is left goes out later, by `drain` again: from the UART's transmit interrupt
//!   (TX FIFO empty or below its trigger level), enabled while [`Mux::pending`] and
//!   disabled when not; and at [`Mux::deadline`], when a held partial line is due, by the
//!   EL2 timer of the pCPU that takes the UART's interrupt (a deadline next to the
//!   scheduler's).
//! - A byte typed on the console (the receive interrupt, `irq.rs`): [`Mux::feed`]. Deliver
//!   [`Route::Deliver`]'s bytes to that VM's PL011 after dropping the console lock (the
//!   `Vm::uart` lock comes before `console::CONSOLE`). On [`Route::Switched`], print
//!   [`Mux::switch_notice`] as a line of the hypervisor's own, without the log prefix.
//! - A line of the hypervisor's own (the logger, the notices):
//!   [`Mux::before_external_line`] with a raw writer that may wait (`Port::put` per byte),
//!   then the line through the port's `fmt::Write`, ending in `\n`.
#![forbid(unsafe_code)]

use crate::util::FixedVec;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// Most VMs one console serves.
pub const MAX_VMS: usize = 8;
/// Bytes of output each VM may have waiting.
pub const OUTPUT_CAPACITY: usize = 4096;
/// Longest chunk a VM writes in one turn: a longer line goes out in pieces.
pub const LINE_MAX: usize = 160;
/// Bytes of a VM's name used in its prefix and notices.
pub const NAME_MAX: usize = 32;
/// Ctrl-A, typed three times in a row to move the input (Xen's default `conswitch=a`).
pub const CTRL_A: u8 = 0x01;
/// Bytes a line break, a prefix or a loss report can take (2 + 35 + 11 + 20 + 22 + 2).
const STAGE: usize = 128;

/// A VM's waiting output: a ring of fixed capacity that never blocks its writer.
///
/// When it is full a byte is dropped and counted. What was pushed before the first drop
/// (the *gap*) goes out first, then the count (of every byte dropped until it goes out),
/// then what was pushed after.
pub struct OutputBuffer {
    bytes: Box<[u8]>,
    head: usize,
    len: usize,
    /// Line feeds among the `len` bytes.
    newlines: usize,
    /// Bytes dropped and not yet reported.
    lost: u64,
    /// With `lost > 0`: how many of the bytes waiting were pushed before the first loss.
    gap: usize,
}

impl OutputBuffer {
    /// An empty buffer of `capacity` (at least 1) bytes, allocated here.
    pub fn new(capacity: usize) -> Self {
        let bytes = alloc::vec![0; capacity.max(1)].into_boxed_slice();
        Self { bytes, head: 0, len: 0, newlines: 0, lost: 0, gap: 0 }
    }

    /// Appends `byte`; `false` if the buffer was full and it was dropped (and counted).
    pub fn push(&mut self, byte: u8) -> bool {
        if self.len == self.bytes.len() {
            if self.lost == 0 {
                self.gap = self.len;
            }
            self.lost = self.lost.saturating_add(1);
            return false;
        }
        self.bytes[(self.head + self.len) % self.bytes.len()] = byte;
        self.len += 1;
        self.newlines += usize::from(byte == b'\n');
        true
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes dropped since the last report.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Bytes that may go out before the loss report: all of them if nothing was lost.
    fn before_gap(&self) -> usize {
        if self.lost > 0 { self.gap } else { self.len }
    }

    /// The next chunk: up to and including the first line feed in the first `max` bytes
    /// before the gap, else all of those. Its length and whether it ends a line.
    fn chunk(&self, max: usize) -> (usize, bool) {
        let n = self.before_gap().min(max);
        if self.newlines == 0 {
            return (n, false);
        }
        let (a, b) = self.front(n);
        match a.iter().chain(b).position(|&c| c == b'\n') {
            Some(i) => (i + 1, true),
            None => (n, false),
        }
    }

    /// The first `n` bytes, in at most two pieces (the ring wraps).
    fn front(&self, n: usize) -> (&[u8], &[u8]) {
        let first = n.min(self.bytes.len() - self.head);
        (&self.bytes[self.head..self.head + first], &self.bytes[..n - first])
    }

    /// Forgets the first `n` bytes (sent), never past the gap.
    fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.before_gap());
        let (a, b) = self.front(n);
        self.newlines -= a.iter().chain(b).filter(|&&c| c == b'\n').count();
        self.head = (self.head + n) % self.bytes.len();
        self.len -= n;
        if self.lost > 0 {
            self.gap -= n;
        }
    }

    /// The bytes before the gap are out: the loss report is next.
    fn report_due(&self) -> bool {
        self.lost > 0 && self.gap == 0
    }
}

/// Where a typed byte goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Give VM `vm` these bytes, in order: Ctrl-As held back by a sequence the byte broke
    /// (at most two), then the byte.
    Deliver { vm: usize, bytes: FixedVec<u8, 3> },
    /// A first or second Ctrl-A, held back until the next byte says what it was.
    Held,
    /// The third Ctrl-A: input goes to VM `vm` now (print [`Mux::switch_notice`]).
    Switched { vm: usize },
    /// No VM takes console input: the byte goes nowhere.
    Dropped,
}

/// A line the caller prints as the hypervisor's own (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice<'a> {
    /// At start, with more than one VM: where input goes and how to move it.
    Start { focus: Option<&'a str>, inputs: usize },
    /// After a switch: where input goes now.
    Switched(&'a str),
}

impl fmt::Display for Notice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Start { focus: None, .. } => write!(f, "console: no VM takes console input"),
            Self::Start { focus: Some(vm), inputs: 1 } => {
                write!(f, "console: input goes to VM '{vm}', the only VM that takes it")
            }
            Self::Start { focus: Some(vm), .. } => {
                write!(f, "console: input goes to VM '{vm}'; type Ctrl-A three times to move it to the next VM")
            }
            Self::Switched(vm) => {
                write!(f, "[armvisor: console input to VM '{vm}'; type Ctrl-A three times to switch]")
            }
        }
    }
}

/// One VM as the console sees it.
struct Stream {
    /// At most [`NAME_MAX`] bytes of the VM's name.
    name: String,
    /// Takes part in console input.
    input: bool,
    out: OutputBuffer,
    /// When the first byte of the unfinished line at the end of `out` was pushed.
    partial_since: u64,
    /// The last byte pushed was a line feed (or none was pushed yet).
    line_start: bool,
    /// The last byte written out was a line feed (or none was written yet): the front of
    /// `out` starts a line.
    front_line_start: bool,
}

/// Whether a line's first bytes are (or may yet become) the header of a hypervisor log line
/// (`[    1.234567] I cpu0: `, `console::Logger`'s format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    /// Not a log header: the line goes out as it is.
    Not,
    /// Every byte so far fits one; more are needed to tell.
    Undecided,
    /// A log header: the line is a guest's, made to look like the hypervisor's.
    Forged,
}

/// Reads `bytes` (the front of a line) against the log header `[` spaces digits `.` six
/// digits `] ` level ` cpu`.
fn log_header(bytes: impl Iterator<Item = u8>) -> Header {
    let mut state = 0;
    let mut fraction = 0;
    for c in bytes {
        state = match (state, c) {
            (0, b'[') => 1,
            (1, b' ') => 1,
            (1 | 2, b'0'..=b'9') => 2,
            (2, b'.') => 3,
            (3, b'0'..=b'9') if fraction < 6 => {
                fraction += 1;
                3
            }
            (3, b']') if fraction == 6 => 4,
            (4, b' ') => 5,
            (5, b'E' | b'W' | b'I' | b'D' | b'T') => 6,
            (6, b' ') => 7,
            (7, b'c') => 8,
            (8, b'p') => 9,
            (9, b'u') => return Header::Forged,
            _ => return Header::Not,
        };
    }
    Header::Undecided
}

impl Stream {
    /// How the line at the front of `out` starts, when it does start a line.
    fn header(&self) -> Header {
        if !self.front_line_start {
            return Header::Not;
        }
        let (a, b) = self.out.front(self.out.before_gap().min(LINE_MAX));
        log_header(a.iter().chain(b).copied())
    }

    /// Whether the focus's line at the front is held: it may yet turn out to look like a
    /// hypervisor log line, and is younger than `flush_after`.
    fn header_held(&self, now: u64, flush_after: u64) -> bool {
        self.header() == Header::Undecided && now < self.partial_since.saturating_add(flush_after)
    }

    /// Whether the line at the front goes out behind the VM's prefix although the VM has
    /// the focus: it looks like a hypervisor log line (or still might, when its wait is
    /// over), and a guest's line must never pass for the hypervisor's.
    fn forged(&self) -> bool {
        self.header() != Header::Not
    }

    /// The length of the chunk this VM may write now, if any.
    fn due(&self, focused: bool, now: u64, flush_after: u64) -> Option<usize> {
        let (len, whole) = self.out.chunk(LINE_MAX);
        if focused && self.header_held(now, flush_after) && !whole && self.out.lost == 0 {
            return None;
        }
        let due = focused
            || whole
            || len == LINE_MAX
            || self.out.lost > 0
            || now >= self.partial_since.saturating_add(flush_after);
        (len > 0 && due).then_some(len)
    }
}

/// A VM's turn at the console: `left` more bytes of its buffer go out, behind a prefix
/// if `prefixed`.
#[derive(Debug, Clone, Copy)]
struct Turn {
    vm: usize,
    left: usize,
    prefixed: bool,
}

/// Bytes the mux writes before anything else (a line break, a prefix, a loss report), as
/// room allows.
struct Staged {
    bytes: [u8; STAGE],
    start: usize,
    end: usize,
}

impl Staged {
    /// Writes up to `room` of them; returns how many.
    fn send(&mut self, room: usize, out: &mut impl FnMut(&[u8])) -> usize {
        let n = room.min(self.end - self.start);
        if n > 0 {
            out(&self.bytes[self.start..self.start + n]);
            self.start += n;
        }
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        n
    }
}

impl Write for Staged {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let to = self.bytes.get_mut(self.end..self.end + s.len()).ok_or(fmt::Error)?;
        to.copy_from_slice(s.as_bytes());
        self.end += s.len();
        Ok(())
    }
}

/// The console's VMs, their output and who has the input.
pub struct Mux {
    streams: Vec<Stream>,
    focus: Option<usize>,
    /// Ctrl-As typed in a row and held back (0 to 2).
    ctrl_a: u8,
    /// Counter ticks a partial line of a VM without the focus waits for its end.
    flush_after: u64,
    /// The VM whose output the console is in the middle of a line of; `None` at a line
    /// start (the last byte written was a line feed).
    mid_line_of: Option<usize>,
    /// When the focus last wrote (the `now` of that drain): while its line is unfinished and
    /// this is less than `flush_after` ago, the other VMs' lines wait, so that a line the
    /// focus is still writing (a command's output) is not cut in two by them.
    focus_wrote: u64,
    staged: Staged,
    turn: Option<Turn>,
    /// Where the search for the next turn starts (round robin).
    next: usize,
}

impl Mux {
    /// No VMs yet; a partial line waits at most `flush_after` counter ticks (100 ms'
    /// worth is a good choice).
    pub const fn new(flush_after: u64) -> Self {
        Self {
            streams: Vec::new(),
            focus: None,
            ctrl_a: 0,
            flush_after,
            mid_line_of: None,
            focus_wrote: 0,
            staged: Staged { bytes: [0; STAGE], start: 0, end: 0 },
            turn: None,
            next: 0,
        }
    }

    /// Adds a VM (allocating its buffer); its index, or `None` past [`MAX_VMS`]. The first
    /// VM that takes input gets it.
    pub fn add(&mut self, name: &str, input: bool) -> Option<usize> {
        if self.streams.len() == MAX_VMS {
            return None;
        }
        let mut cut = name.len().min(NAME_MAX);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        let out = OutputBuffer::new(OUTPUT_CAPACITY);
        self.streams.push(Stream {
            name: name[..cut].into(),
            input,
            out,
            partial_since: 0,
            line_start: true,
            front_line_start: true,
        });
        let vm = self.streams.len() - 1;
        if input && self.focus.is_none() {
            self.focus = Some(vm);
        }
        Some(vm)
    }

    /// The VM that gets console input.
    pub fn focus(&self) -> Option<usize> {
        self.focus
    }

    /// VM `vm`'s name as the console shows it.
    pub fn name(&self, vm: usize) -> Option<&str> {
        self.streams.get(vm).map(|s| s.name.as_str())
    }

    /// The line to log at start: `None` with one VM (the console looks as it always did).
    pub fn start_notice(&self) -> Option<Notice<'_>> {
        let inputs = self.streams.iter().filter(|s| s.input).count();
        (self.streams.len() > 1).then(|| Notice::Start { focus: self.focus.and_then(|vm| self.name(vm)), inputs })
    }

    /// The line to print after [`Route::Switched`].
    pub fn switch_notice(&self) -> Option<Notice<'_>> {
        self.focus.and_then(|vm| self.name(vm)).map(Notice::Switched)
    }

    /// A byte VM `vm` transmitted at counter value `now`. Never waits; dropped (and
    /// counted) if the VM's buffer is full.
    pub fn push(&mut self, vm: usize, byte: u8, now: u64) {
        let Some(s) = self.streams.get_mut(vm) else { return };
        if s.out.push(byte) {
            if s.line_start {
                s.partial_since = now;
            }
            s.line_start = byte == b'\n';
        }
    }

    /// A byte typed on the console.
    ///
    /// As Xen's `serial_rx`: Ctrl-As are counted and held back; the third in a row switches
    /// the input and all three are swallowed; any other byte first releases the one or two
    /// held to the VM that has the input (so a guest still gets a single Ctrl-A, Emacs's
    /// and screen's prefix key), then itself. Xen's rotation (`console_switch_input`)
    /// includes Xen itself, whose debug keys take input, and skips domains without
    /// `input_allowed`; we have no debug keys, so the rotation is the VMs that take input,
    /// and with one such VM Ctrl-A three times lands on it again: still swallowed, still
    /// announced (Xen prints on every switch), so the user sees where input is.
    pub fn feed(&mut self, byte: u8) -> Route {
        let Some(vm) = self.focus else { return Route::Dropped };
        if byte == CTRL_A {
            self.ctrl_a += 1;
            if self.ctrl_a < 3 {
                return Route::Held;
            }
            self.ctrl_a = 0;
            let count = self.streams.len();
            let next = (1..=count).map(|k| (vm + k) % count).find(|&i| self.streams[i].input).unwrap_or(vm);
            self.focus = Some(next);
            return Route::Switched { vm: next };
        }
        let mut bytes = FixedVec::new();
        for _ in 0..core::mem::take(&mut self.ctrl_a) {
            let _ = bytes.push(CTRL_A);
        }
        let _ = bytes.push(byte);
        Route::Deliver { vm, bytes }
    }

    /// Writes at most `room` bytes of waiting output through `out`, at counter value `now`.
    pub fn drain(&mut self, now: u64, mut room: usize, out: &mut impl FnMut(&[u8])) {
        loop {
            room -= self.staged.send(room, out);
            if room == 0 {
                return;
            }
            let Some(t) = self.turn else {
                if self.start_turn(now) {
                    continue;
                }
                return;
            };
            if self.decorate(t) {
                continue;
            }
            if self.focus == Some(t.vm) {
                self.focus_wrote = now;
            }
            room -= self.write_turn(t, room, out);
        }
    }

    /// Whether [`Mux::drain`] would write something now, given room.
    pub fn pending(&self, now: u64) -> bool {
        self.turn.is_some()
            || self.staged.end > 0
            || self
                .streams
                .iter()
                .enumerate()
                .any(|(vm, s)| s.out.report_due() || s.due(self.focus == Some(vm), now, self.flush_after).is_some())
    }

    /// Nothing waits: no output, no loss to report.
    pub fn is_empty(&self) -> bool {
        self.turn.is_none() && self.staged.end == 0 && self.streams.iter().all(|s| s.out.is_empty() && s.out.lost == 0)
    }

    /// The earliest counter value at which a held partial line is due (drain then); it may
    /// have passed.
    pub fn deadline(&self) -> Option<u64> {
        let held = |(vm, s): &(usize, &Stream)| {
            let partial = s.out.lost == 0 && s.out.newlines == 0 && s.out.len > 0 && s.out.len < LINE_MAX;
            partial && (self.focus != Some(*vm) || s.header() == Header::Undecided)
        };
        let due = |(_, s): (usize, &Stream)| s.partial_since.saturating_add(self.flush_after);
        self.streams.iter().enumerate().filter(held).map(due).min()
    }

    /// Call before writing a line of the hypervisor's own, with a writer that may wait: it
    /// finishes the VM's turn under way (at most a prefix and [`LINE_MAX`] bytes: cut off,
    /// it would leave a line with only a prefix, or split a line that was whole) and ends
    /// a partial line, so the caller's line starts a line.
    pub fn before_external_line(&mut self, out: &mut impl FnMut(&[u8])) {
        self.staged.send(STAGE, out);
        if let Some(t) = self.turn {
            self.decorate(t);
            self.staged.send(STAGE, out);
            self.write_turn(t, t.left, out);
        }
        if self.mid_line_of.take().is_some() {
            out(b"\r\n");
        }
    }

    /// Picks the next VM with something due, round robin, and stages its loss report or
    /// makes it the turn. False if none has anything.
    fn start_turn(&mut self, now: u64) -> bool {
        let count = self.streams.len();
        let focus_mid_line = self.mid_line_of.is_some() && self.mid_line_of == self.focus;
        let hold_others = focus_mid_line && now < self.focus_wrote.saturating_add(self.flush_after);
        for vm in (0..count).map(|k| (self.next + k) % count) {
            let focused = self.focus == Some(vm);
            if hold_others && !focused {
                continue;
            }
            let s = &mut self.streams[vm];
            if s.out.report_due() {
                let lost = core::mem::take(&mut s.out.lost);
                if self.mid_line_of.take().is_some() {
                    let _ = self.staged.write_str("\r\n");
                }
                let _ = write!(self.staged, "({}) [armvisor: {lost} bytes of output lost]\r\n", s.name);
            } else if let Some(left) = s.due(focused, now, self.flush_after) {
                self.turn = Some(Turn { vm, left, prefixed: !focused || s.forged() });
            } else {
                continue;
            }
            self.next = vm + 1;
            return true;
        }
        false
    }

    /// Writes up to `room` (at least 1) bytes of turn `t`; returns how many.
    fn write_turn(&mut self, mut t: Turn, room: usize, out: &mut impl FnMut(&[u8])) -> usize {
        let s = &mut self.streams[t.vm];
        let n = room.min(t.left);
        let (a, b) = s.out.front(n);
        for piece in [a, b].into_iter().filter(|p| !p.is_empty()) {
            out(piece);
        }
        let ends_line = b.last().or(a.last()) == Some(&b'\n');
        s.out.consume(n);
        s.front_line_start = ends_line;
        self.mid_line_of = (!ends_line).then_some(t.vm);
        t.left -= n;
        self.turn = (t.left > 0).then_some(t);
        n
    }

    /// Stages what must go before turn `t`'s next bytes: a line break if the console is
    /// mid-line in another VM's output, a prefix if the turn starts a line and has one.
    fn decorate(&mut self, t: Turn) -> bool {
        if self.mid_line_of.is_some_and(|vm| vm != t.vm) {
            let _ = self.staged.write_str("\r\n");
            self.mid_line_of = None;
        }
        if self.mid_line_of.is_none() && t.prefixed {
            let _ = write!(self.staged, "({}) ", self.streams[t.vm].name);
            self.mid_line_of = Some(t.vm);
        }
        self.staged.end > 0
    }
}
