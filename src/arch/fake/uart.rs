//! The fake console UART: what is written collects in a buffer, input comes from one.

use super::lock;
use crate::platform;
use std::collections::VecDeque;
use std::sync::Mutex;

static OUTPUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INPUT: Mutex<VecDeque<u8>> = Mutex::new(VecDeque::new());

/// Everything written to the console so far.
pub fn output() -> Vec<u8> {
    lock(&OUTPUT).clone()
}

/// Bytes "typed" on the console.
pub fn type_input(bytes: &[u8]) {
    lock(&INPUT).extend(bytes);
}

pub struct Uart;

impl Uart {
    pub fn new() -> Self {
        Uart
    }
    pub fn init(&mut self) {}
    pub fn enable_receive_interrupt(&mut self) {}
    pub fn ack_receive_interrupt(&mut self) {}
    pub fn wait_idle(&mut self) -> bool {
        true
    }
    pub fn put(&mut self, b: u8) {
        lock(&OUTPUT).push(b);
    }
    /// A PL011's FIFO depth, always free (the fake transmits at once).
    pub fn tx_room(&mut self) -> usize {
        32
    }
    pub fn get(&mut self) -> Option<u8> {
        lock(&INPUT).pop_front()
    }
}

impl Default for Uart {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        lock(&OUTPUT).extend_from_slice(s.as_bytes());
        Ok(())
    }
}

pub fn early_print(_: Option<platform::Uart>, args: core::fmt::Arguments<'_>) {
    let _ = core::fmt::Write::write_fmt(&mut Uart, args);
}
