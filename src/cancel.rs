//! `ckpt_cancel`: stops a running operation from another thread (a Go context, a runtime's
//! signal handler, a supervisor thread).

use super::opts::ckpt_opts;
use super::{CKPT_ERR_NULL_ARGUMENT, CKPT_OK, Failure, ckpt_status, set_on};
use ckpt::Cancel;

/// A cancellation token. Create with `ckpt_cancel_new`, free with `ckpt_cancel_free`; attach
/// to an options handle with `ckpt_opts_set_cancel`. Once triggered it stays triggered: use
/// a new one for the next operation.
pub struct ckpt_cancel {
    inner: Cancel,
}

/// A new cancellation token, not triggered. NULL when no descriptor or memory is left (it
/// holds one close-on-exec eventfd). The caller owns it and frees it with `ckpt_cancel_free`.
#[unsafe(no_mangle)]
pub extern "C" fn ckpt_cancel_new() -> *mut ckpt_cancel {
    boundary! {
        match Cancel::new() {
            Ok(inner) => Box::into_raw(Box::new(ckpt_cancel { inner })),
            Err(_) => std::ptr::null_mut(),
        }
    }
}

/// Frees the handle. Options it was attached to keep their own reference to the token
/// (still triggered if it was); `ckpt_cancel_trigger` needs this handle, so free it only once
/// no thread will trigger it. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_cancel_free(cancel: *mut ckpt_cancel) {
    boundary! {
        // SAFETY: per the contract, `cancel` came from ckpt_cancel_new and is freed once.
        unsafe { super::take(cancel) }
    }
}

/// Asks every operation whose options hold `cancel` to stop. An operation not yet started
/// fails at once with `CKPT_ERR_CANCELLED`; a running one stops criu as its timeout
/// (`ckpt_opts_set_timeout_ms`) would, with the same outcome bits and guarantees
/// (docs/guarantees.md), and returns `CKPT_ERR_CANCELLED`; past a dump's point of no return it
/// only marks the result with `CKPT_OUTCOME_DEADLINE_PASSED`, except in a lazy-pages dump
/// waiting for its pages to be fetched, which it still stops. Callable from any thread, at
/// any time while `cancel` is alive, any number of times. Async-signal-safe: it does one
/// atomic store and one write(2) to an eventfd, so a signal handler may call it.
/// `CKPT_ERR_NULL_ARGUMENT` for NULL, else `CKPT_OK`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_cancel_trigger(cancel: *const ckpt_cancel) -> ckpt_status {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        match unsafe { cancel.as_ref() } {
            Some(c) => {
                c.inner.trigger();
                CKPT_OK
            }
            None => CKPT_ERR_NULL_ARGUMENT,
        }
    }
}

/// Whether `cancel` was triggered; false for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_cancel_is_triggered(cancel: *const ckpt_cancel) -> bool {
    boundary! { or false =>
        // SAFETY: NULL or live, per the contract.
        unsafe { cancel.as_ref() }.is_some_and(|c| c.inner.is_triggered())
    }
}

/// Attaches `cancel` to the options: every operation run with them (`ckpt_checkpoint`,
/// `ckpt_checkpoint_iterative`, `ckpt_restore`, `ckpt_container_checkpoint`,
/// `ckpt_container_restore`, the queries) can be stopped with `ckpt_cancel_trigger`. The
/// options keep their own reference, so `cancel` may be freed before them. NULL detaches.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_cancel(
    opts: *mut ckpt_opts,
    cancel: *const ckpt_cancel,
) -> ckpt_status {
    boundary! {
        set_on(opts, |h: &mut ckpt_opts| {
            // SAFETY: NULL or live, per the contract.
            let c = unsafe { cancel.as_ref() };
            h.inner.set_cancel(c.map(|c| &c.inner));
            Ok::<(), Failure>(())
        })
    }
}
