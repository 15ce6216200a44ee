//! The one lock type: [`IrqLock`], a test-and-test-and-set spinlock
//! (`spin::mutex::SpinMutex`) that also masks IRQs on this pCPU while held, so an interrupt
//! handler that takes the same lock cannot deadlock against the code it interrupted. Part of
//! the arch interface because masking IRQs is; `crate::sync` documents the locks and their
//! order.
//!
//! Why not a ticket lock: a ticket lock hands the lock to the next waiter in FIFO order,
//! and if that waiter's CPU is not running (QEMU TCG runs 4 or 8 pCPUs on 2 host cores) every
//! other CPU spins until the host schedules it. Measured: 3 pCPUs x 100,000 contended
//! increments took 50 s with `spin::mutex::TicketMutex` under TCG on 2 cores. A
//! test-and-set lock goes to whichever CPU is running. It is not FIFO-fair; that is
//! acceptable because every critical section is short.
#![forbid(unsafe_code)]

use core::ops::{Deref, DerefMut};
use spin::mutex::{SpinMutex, SpinMutexGuard};

/// A test-and-test-and-set spinlock that masks IRQs while held.
pub struct IrqLock<T> {
    inner: SpinMutex<T>,
}

/// The lock, held: IRQs stay masked on this pCPU until it is dropped (unless they were
/// masked before).
pub struct IrqGuard<'a, T> {
    guard: Option<SpinMutexGuard<'a, T>>,
    irqs_were_enabled: bool,
}

impl<T> IrqLock<T> {
    pub const fn new(value: T) -> Self {
        Self { inner: SpinMutex::new(value) }
    }

    /// The value, the lock being no longer needed.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }

    pub fn lock(&self) -> IrqGuard<'_, T> {
        let irqs_were_enabled = super::irq_save();
        IrqGuard { guard: Some(self.inner.lock()), irqs_were_enabled }
    }

    /// The lock if it can be had within `spins` attempts (for the panic path, where the
    /// holder may be the pCPU that panicked).
    pub fn try_lock_for(&self, spins: u32) -> Option<IrqGuard<'_, T>> {
        let irqs_were_enabled = super::irq_save();
        for _ in 0..spins {
            if let Some(guard) = self.inner.try_lock() {
                return Some(IrqGuard { guard: Some(guard), irqs_were_enabled });
            }
            core::hint::spin_loop();
        }
        super::irq_restore(irqs_were_enabled);
        None
    }
}

impl<T> Deref for IrqGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard present until drop")
    }
}

impl<T> DerefMut for IrqGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("guard present until drop")
    }
}

impl<T> Drop for IrqGuard<'_, T> {
    fn drop(&mut self) {
        // Release the lock before unmasking IRQs.
        self.guard.take();
        super::irq_restore(self.irqs_were_enabled);
    }
}
