//! A cancellation token: another thread (a Go context, a runtime's signal handler) asks a
//! running operation to stop, and the operation stops the way its timeout stops it.
//!
//! The token is an eventfd and a flag shared by its clones. Triggering sets the flag and
//! makes the eventfd readable, which wakes the poll that waits for CRIU; the eventfd is never
//! read, so a trigger is never lost and a token stays triggered for good.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Code, Error, Result};

struct Inner {
    fired: AtomicBool,
    wake: OwnedFd,
}

/// A cancellation token. Clones share one state: a trigger through any clone is seen by
/// every operation whose options hold another (`Options::set_cancel`).
#[derive(Clone)]
pub struct Cancel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

impl Cancel {
    /// A token not yet triggered. Fails only when no descriptor is left for its eventfd.
    pub fn new() -> Result<Cancel> {
        // SAFETY: eventfd takes an initial count and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::io(
                "creating a cancellation token (eventfd)",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Cancel {
            inner: Arc::new(Inner {
                fired: AtomicBool::new(false),
                // SAFETY: eventfd returned a fresh descriptor nobody else owns.
                wake: unsafe { OwnedFd::from_raw_fd(fd) },
            }),
        })
    }

    /// Asks every operation holding this token to stop. Callable from any thread, any number
    /// of times; it only stores a flag and writes 8 bytes to an eventfd (async-signal-safe).
    pub fn trigger(&self) {
        self.inner.fired.store(true, Ordering::SeqCst);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to the eventfd this token owns. EAGAIN (the
        // counter is full after 2^64-2 triggers) still leaves the eventfd readable.
        unsafe {
            libc::write(
                self.inner.wake.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Whether the token was triggered.
    pub fn is_triggered(&self) -> bool {
        self.inner.fired.load(Ordering::SeqCst)
    }

    /// The descriptor that turns readable once the token is triggered, for poll.
    pub(crate) fn wake_fd(&self) -> BorrowedFd<'_> {
        self.inner.wake.as_fd()
    }

    /// Fails with [`Code::Cancelled`] when the token was triggered: an operation checks this
    /// before it starts anything.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_triggered() {
            return Err(Error::new(
                Code::Cancelled,
                "the operation was cancelled before criu started",
            ));
        }
        Ok(())
    }
}
