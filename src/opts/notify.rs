//! Notifications: the callback and what it sees.

use super::*;

/// A notification as a callback sees it. Valid only during the callback.
pub struct ckpt_notification {
    script: CString,
    pid: i32,
    fd: c_int,
    error: std::cell::RefCell<Option<String>>,
}

/// Called for each notification CRIU sends (pre-dump, post-dump, network-lock,
/// network-unlock, setup-namespaces, post-restore, orphan-pts-master, status-ready, ...).
/// Return 0 to let CRIU go on; anything else aborts the operation, which then fails with
/// `CKPT_ERR_CALLBACK`. `userdata` is the pointer given to `ckpt_opts_set_notify`, untouched.
///
/// The callback runs with cancellation disabled (see `ckpt_checkpoint`). It may end its
/// thread with `pthread_exit` (or enable cancellation and be cancelled): ckpt then aborts
/// the operation as for a failing callback (criu told to abort and reaped, a restored tree
/// killed, every descriptor closed) and the thread's exit goes on from the operation's call,
/// with the value given to `pthread_exit`; the operation does not return. It must not leave
/// by `longjmp`/`siglongjmp` (or a C++ exception): that skips ckpt's frames, leaving criu
/// unreaped, descriptors open and the workload stopped under ptrace.
pub type ckpt_notify_fn = Option<
    unsafe extern "C" fn(userdata: *mut c_void, notification: *const ckpt_notification) -> c_int,
>;

type NotifyCb = unsafe extern "C-unwind" fn(*mut c_void, *const ckpt_notification) -> c_int;

/// One callback call, for the thread-exit guard.
struct NotifyCall {
    cb: NotifyCb,
    userdata: *mut c_void,
    note: *const ckpt_notification,
}

/// Calls the callback in `ctx` (a NotifyCall). Holds nothing to drop: a thread exit in the
/// callback unwinds through this frame to the guard.
unsafe extern "C-unwind" fn notify_trampoline(ctx: *mut c_void) -> c_int {
    // SAFETY: `ctx` is the NotifyCall `CNotify::call` passed, live for this call.
    let c = unsafe { &*(ctx as *const NotifyCall) };
    // SAFETY: the caller registered the callback and its userdata for exactly this call.
    unsafe { (c.cb)(c.userdata, c.note) }
}

struct CNotify {
    cb: unsafe extern "C" fn(*mut c_void, *const ckpt_notification) -> c_int,
    userdata: *mut c_void,
}

// SAFETY: ckpt never dereferences `userdata`; the caller promises in `ckpt_opts_set_notify`
// that the callback may be called from the threads that run operations with this handle.
unsafe impl Send for CNotify {}
// SAFETY: as above; ckpt only passes the pointer back.
unsafe impl Sync for CNotify {}

impl CNotify {
    fn call(&self, n: &Notification) -> std::result::Result<(), String> {
        let note = ckpt_notification {
            script: CString::new(n.script).unwrap_or_default(),
            pid: n.pid,
            fd: n.fd.map_or(-1, |f| std::os::fd::AsRawFd::as_raw_fd(&f)),
            error: std::cell::RefCell::new(None),
        };
        let mut call = NotifyCall {
            // SAFETY: the same function, called with the same C ABI; a thread exit inside it
            // is stopped at the guard before it reaches a Rust frame.
            cb: unsafe {
                std::mem::transmute::<
                    unsafe extern "C" fn(*mut c_void, *const ckpt_notification) -> c_int,
                    NotifyCb,
                >(self.cb)
            },
            userdata: self.userdata,
            note: &note,
        };
        // SAFETY: `notify_trampoline` takes exactly this NotifyCall, live for the call; the
        // caller registered the callback and its userdata for exactly this.
        let rc = unsafe {
            ckpt::thread_exit::call(notify_trampoline, (&mut call as *mut NotifyCall).cast())
        };
        let Some(rc) = rc else {
            return Err(
                "the callback ended its thread (pthread_exit or cancellation); \
                        the operation was aborted and the thread's exit resumed"
                    .into(),
            );
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(note
                .error
                .take()
                .unwrap_or_else(|| format!("the callback returned {rc}")))
        }
    }
}

/// Registers a notification callback with `userdata` passed back on every call (see
/// `ckpt_notify_fn` for what it may and may not do); NULL `cb` removes it. ckpt never reads `userdata`. The callback runs on the thread that called the
/// operation, and may run on several threads at once when the handle is shared.
/// `cb` must be safe to call with `userdata`, from any thread that runs an operation with this
/// handle, for as long as the handle is used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_notify(
    opts: *mut ckpt_opts,
    cb: ckpt_notify_fn,
    userdata: *mut c_void,
) -> ckpt_status {
    boundary! {
        apply(opts, |o| {
            o.set_notify(cb.map(|cb| {
                let c = CNotify { cb, userdata };
                Arc::new(move |n: &Notification| c.call(n)) as Arc<ckpt::options::NotifyFn>
            }));
            Ok::<(), Failure>(())
        })
    }
}

/// The notification's name, e.g. "post-dump". Owned by the notification.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_notification_script(n: *const ckpt_notification) -> *const c_char {
    boundary! {
        // SAFETY: NULL or live for the callback's duration, per the contract.
        unsafe { n.as_ref() }.map_or(std::ptr::null(), |n| n.script.as_ptr())
    }
}

/// The pid CRIU attached to the notification (the restored root on post-restore), else 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_notification_pid(n: *const ckpt_notification) -> i32 {
    boundary! {
        // SAFETY: NULL or live for the callback's duration, per the contract.
        unsafe { n.as_ref() }.map_or(0, |n| n.pid)
    }
}

/// The descriptor that came with the notification (the pty master on orphan-pts-master), or
/// -1. Owned by ckpt and closed after the callback returns: `dup` it to keep it. Do not close
/// it; if the callback does anyway, ckpt closes the number afterwards only while it still
/// names the same file (device and inode), so a file that reused the number is left alone.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_notification_fd(n: *const ckpt_notification) -> c_int {
    boundary! { or -1 =>
        // SAFETY: NULL or live for the callback's duration, per the contract.
        unsafe { n.as_ref() }.map_or(-1, |n| n.fd)
    }
}

/// Sets the message the operation's error will carry when this callback returns non-zero.
/// The string is copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_notification_set_error(
    n: *const ckpt_notification,
    message: *const c_char,
) -> ckpt_status {
    boundary! {
        // SAFETY: NULL or live for the callback's duration, per the contract.
        let Some(n) = (unsafe { n.as_ref() }) else {
            return CKPT_ERR_NULL_ARGUMENT;
        };
        // SAFETY: NULL or NUL-terminated, per the contract.
        match unsafe { text(message, "message") } {
            Ok(m) => {
                *n.error.borrow_mut() = Some(m.to_string());
                CKPT_OK
            }
            Err(e) => e.status,
        }
    }
}
