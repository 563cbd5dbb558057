//! The fate of a service fd (`criu_set_service_fd`) an operation was handed. libcriu's
//! operations connect first and judge later: every operation that gets as far as connecting
//! writes its request to the fd and closes it, whatever CRIU then answers; only libcriu's own
//! argument checks (`criu_dump_iters` without a callback or pid, `criu_feature_check` with
//! NULL or a size too large) come before, and leave the fd for the next operation. This
//! library refuses some requests before connecting (a refused option, a pid that is no
//! process): the fd must then be closed all the same, or the caller's criu at its other end
//! waits for ever; and on libcriu's own argument checks it must stay.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::opts::{LibOpts, Service, fd_is_open};

/// What the operation did with the fd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum FdClaim {
    /// Nothing: it failed before connecting, where libcriu would have connected.
    #[default]
    Untouched,
    /// It connected through the fd (which the connection closes).
    Used,
    /// It failed one of libcriu's own argument checks: the fd stays for the next operation.
    Kept,
}

/// Where an operation records its `FdClaim`: one per operation (`LibOpts::for_operation`
/// makes a new one), shared by the clones the operation makes of its options, so a claim
/// made through any of them counts.
#[derive(Clone, Debug, Default)]
pub struct Claim(Arc<AtomicU8>);

impl Claim {
    pub fn get(&self) -> FdClaim {
        match self.0.load(Ordering::Relaxed) {
            1 => FdClaim::Used,
            2 => FdClaim::Kept,
            _ => FdClaim::Untouched,
        }
    }

    pub fn set(&self, c: FdClaim) {
        self.0.store(c as u8, Ordering::Relaxed);
    }
}

/// After an operation that uses the service fd: closes an fd the operation was handed but did
/// not use, as libcriu's connect-then-fail would have; returns one to hand back to the options
/// (`LibOpts::hand_back_service_fd`).
pub fn settle(op: &LibOpts) -> Option<RawFd> {
    let Service::Fd(Some(fd)) = op.service else {
        return None;
    };
    match op.fd_claim.get() {
        FdClaim::Used => None,
        FdClaim::Kept => Some(fd),
        FdClaim::Untouched => {
            if fd_is_open(fd) {
                // SAFETY: the caller handed this open descriptor over with
                // criu_set_service_fd for the next operation to use and close, as libcriu
                // does; this operation was that one, and no later one will touch the number
                // (the options hold `Service::FdUsed`).
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_the_operation_s_and_its_clones() {
        let mut o = LibOpts::new();
        o.set_service_fd(-1);
        let op = o.for_operation(true);
        let clone = op.clone();
        clone.fd_claim.set(FdClaim::Used);
        assert_eq!(op.fd_claim.get(), FdClaim::Used);
        assert_eq!(o.fd_claim.get(), FdClaim::Untouched);
        assert_eq!(o.for_operation(true).fd_claim.get(), FdClaim::Untouched);
    }

    #[test]
    fn a_kept_fd_goes_back_unless_replaced() {
        let mut o = LibOpts::new();
        o.set_service_fd(1_000_000);
        let op = o.for_operation(true);
        op.keep_service_fd();
        assert_eq!(settle(&op), Some(1_000_000));
        o.hand_back_service_fd(1_000_000);
        assert_eq!(o.service, Service::Fd(Some(1_000_000)));
        let _ = o.for_operation(true);
        o.set_service_address(None).unwrap();
        o.hand_back_service_fd(1_000_000);
        assert!(matches!(o.service, Service::Socket(_)));
    }
}
