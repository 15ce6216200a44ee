//! The console (PL011 at 0x09000000, transmit only) and the protocol the runner parses.
//!
//! Every protocol line starts with `@conf ` and ends with ` ;` (a line a hypervisor log line
//! broke in two is joined again by the runner up to that end mark):
//!
//! ```text
//! @conf start groups=N cpus=4 ... args=...
//! @conf plan GROUP ROW ROW ...       every group and its rows, before any runs
//! @conf begin GROUP ROW ROW ...      a group starts
//! @conf row ROW pass NOTES           or: fail FAILS | NOTES, or: host KEY=VALUE (for the
//!                                    runner to decide)
//! @conf note TEXT                    a worker CPU stopped (the runner shows it)
//! @conf end GROUP
//! @conf done PASSED FAILED           then PSCI SYSTEM_OFF
//! @conf fatal TEXT                   the boot CPU cannot go on (then SYSTEM_OFF)
//! ```
//!
//! Only the boot CPU prints.

use core::fmt::{self, Write};

const UART: usize = 0x0900_0000;
const UART_DR: usize = 0x00;
const UART_FR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;

fn putc(b: u8) {
    // Bounded: a UART that says it is full for ever cannot hang the guest.
    for _ in 0..1_000_000 {
        if crate::sys::read32(UART + UART_FR) & FR_TXFF == 0 {
            break;
        }
    }
    crate::sys::write32(UART + UART_DR, b as u32);
}

pub fn puts(s: &str) {
    for b in s.bytes() {
        if b == b'\n' {
            putc(b'\r');
        }
        putc(b);
    }
}

/// A line formatted into a buffer, then written in one go.
pub struct Line {
    buf: [u8; 480],
    len: usize,
}

impl Line {
    pub const fn new() -> Self {
        Self { buf: [0; 480], len: 0 }
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            // Keep the protocol one line per record.
            let b = if b == b'\n' || b == b'\r' { b' ' } else { b };
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// One protocol line: `@conf ` + args + ` ;`.
pub fn record_line(args: fmt::Arguments<'_>) {
    let mut l = Line::new();
    let _ = l.write_fmt(args);
    puts("@conf ");
    puts(l.as_str());
    puts(" ;\n");
}

macro_rules! record {
    ($($a:tt)*) => { $crate::report::record_line(format_args!($($a)*)) };
}
pub(crate) use record;

/// A row's verdict as a check builds it: what was wrong (`fails`) and what was seen
/// (`notes`), each a ", "-separated list.
pub struct Verdict {
    pub ok: bool,
    pub fails: Line,
    pub notes: Line,
}

/// Writes into a Line without the protocol's separators: '|' (between fails and notes)
/// becomes '+', ';' (the end mark) ','.
struct Clean<'a>(&'a mut Line);

impl Write for Clean<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let c = match c {
                '|' => '+',
                ';' => ',',
                c => c,
            };
            self.0.write_char(c)?;
        }
        Ok(())
    }
}

fn add(l: &mut Line, args: fmt::Arguments<'_>) {
    if l.len > 0 {
        let _ = l.write_str(", ");
    }
    let _ = Clean(l).write_fmt(args);
}

impl Verdict {
    pub fn new() -> Self {
        Self { ok: true, fails: Line::new(), notes: Line::new() }
    }

    /// Adds a fact seen.
    pub fn note(&mut self, args: fmt::Arguments<'_>) {
        add(&mut self.notes, args);
    }

    /// A requirement: if `cond` is false the row fails, and `args` says what was wrong.
    pub fn expect(&mut self, cond: bool, args: fmt::Arguments<'_>) {
        if !cond {
            self.ok = false;
            add(&mut self.fails, args);
        }
    }

    pub fn fail(&mut self, args: fmt::Arguments<'_>) {
        self.expect(false, args);
    }
}

macro_rules! want {
    ($v:expr, $cond:expr, $($a:tt)*) => { $v.expect($cond, format_args!($($a)*)) };
}
macro_rules! note {
    ($v:expr, $($a:tt)*) => { $v.note(format_args!($($a)*)) };
}
pub(crate) use {note, want};
