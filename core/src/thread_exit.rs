//! Threads that end inside ckpt's C entry points (libckpt's and libcriu's). Cancellation is deferred for the length of every operation
//! (`NoCancel`): a `pthread_cancel` of a thread inside ckpt acts at the thread's first
//! cancellation point after the call returned. A C callback that ends its own thread
//! (`pthread_exit`, or a cancellation it enabled) is stopped at its caller by
//! `src/thread_exit.c`; ckpt then ends the operation as for a failing callback and resumes the
//! thread's exit once criu is reaped and every descriptor closed (`resume_pending_exit`).

use std::cell::Cell;
use std::ffi::{c_int, c_void};

/// A C-ABI function that may end its thread: what `ckpt_thread_exit_guard` runs.
pub type Guarded = unsafe extern "C-unwind" fn(ctx: *mut c_void) -> c_int;

unsafe extern "C" {
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
}

unsafe extern "C-unwind" {
    fn ckpt_thread_exit_guard(f: Guarded, ctx: *mut c_void, exited: *mut c_int) -> c_int;
    fn ckpt_thread_exit_resume();
}

/// glibc's and musl's value.
const PTHREAD_CANCEL_DISABLE: c_int = 1;

thread_local! {
    // A plain flag without a destructor: nothing is left behind at thread exit or dlclose.
    static EXIT_PENDING: Cell<bool> = const { Cell::new(false) };
}

/// Cancellation disabled while it lives; the caller's state is restored on drop.
pub struct NoCancel(c_int);

impl NoCancel {
    // No Default: making one changes the thread's state, which a default value should not.
    #[allow(clippy::new_without_default)]
    pub fn new() -> NoCancel {
        let mut old: c_int = 0;
        // SAFETY: pthread_setcancelstate writes the previous state into `old`.
        unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut old) };
        NoCancel(old)
    }
}

impl Drop for NoCancel {
    fn drop(&mut self) {
        // SAFETY: restores the state saved by `new`; the old-state pointer may be NULL.
        unsafe { pthread_setcancelstate(self.0, std::ptr::null_mut()) };
    }
}

/// Runs `f(ctx)`; `None` when it ended its thread, whose exit is then pending until
/// `resume_pending_exit`. `f` must hold nothing that needs dropping across its callback.
///
/// # Safety
/// `f` is safe to call with `ctx`.
pub unsafe fn call(f: Guarded, ctx: *mut c_void) -> Option<c_int> {
    let mut exited: c_int = 0;
    // SAFETY: the shim calls `f(ctx)` (the caller vouches for it) and writes `exited`.
    let rc = unsafe { ckpt_thread_exit_guard(f, ctx, &mut exited) };
    if exited != 0 {
        EXIT_PENDING.with(|p| p.set(true));
        return None;
    }
    Some(rc)
}

/// Whether a callback of the running operation ended its thread.
pub fn exit_pending() -> bool {
    EXIT_PENDING.with(|p| p.get())
}

/// Ends the thread, as its callback asked, when it did. Call it last in an entry point
/// declared `extern "C-unwind"`, with nothing left to drop: the exit unwinds from here
/// through the caller's frames to the thread's start.
pub fn resume_pending_exit() {
    if EXIT_PENDING.with(|p| p.replace(false)) {
        // SAFETY: the exit was suspended by `ckpt_thread_exit_guard` on this thread; the
        // frames it unwinds (this entry point's and the caller's) hold nothing to drop.
        unsafe { ckpt_thread_exit_resume() };
    }
}
