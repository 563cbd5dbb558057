//! A panic in the caller's notification callback (a Rust closure; a C callback cannot unwind
//! into ckpt) is caught where ckpt calls it, so the operation fails and cleans up as for a
//! failing callback: CRIU is told to abort, criu is reaped, a restored tree is killed, a
//! container is thawed. The panic is resumed in the caller's thread once the operation has
//! returned, so the caller still sees it, with nothing left behind.

use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

type Payload = Box<dyn Any + Send>;

thread_local! {
    // A raw pointer, so the slot needs no destructor: nothing is registered for thread exit,
    // which would pin libckpt.so.0 against dlclose.
    static CAUGHT: Cell<*mut Payload> = const { Cell::new(std::ptr::null_mut()) };
}

/// Calls the caller's callback `f`; a panic becomes an `Err` naming it, and is kept (the
/// first of an operation) for `resumed_after`.
pub(crate) fn call(
    f: impl FnOnce() -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            CAUGHT.with(|c| {
                if c.get().is_null() {
                    c.set(Box::into_raw(Box::new(p)));
                }
            });
            Err(format!("it panicked ({what})"))
        }
    }
}

fn take() -> Option<Payload> {
    let p = CAUGHT.with(|c| c.replace(std::ptr::null_mut()));
    // SAFETY: a non-null slot holds a pointer from Box::into_raw in `call`, owned by the slot,
    // which was just emptied.
    (!p.is_null()).then(|| *unsafe { Box::from_raw(p) })
}

/// Runs the operation `f`; a callback panic caught during it is resumed once `f` returned.
pub(crate) fn resumed_after<T>(f: impl FnOnce() -> T) -> T {
    // One left by an operation that did not come through here is not this one's.
    drop(take());
    let r = f();
    if let Some(p) = take() {
        drop(r);
        resume_unwind(p);
    }
    r
}
