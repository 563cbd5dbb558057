//! A runtime's node under load: several runc containers checkpointed and restored by one
//! process at once, and the conflicts a node sees. Real runc and CRIU; needs root. The long
//! soak (100+ checkpoints, 30+ cycles, resource figures) is `bench/soak.rs`, not a test.

mod common;

use ckpt::container;
use common::containers::{Counting, runc_ready};
use common::options;
use std::sync::Arc;
use std::time::Duration;

/// Forks a child that holds a copy of every descriptor of this process for `hold`, then exits
/// without exec, as a runtime's other threads do when they fork helpers (a fork before exec, or
/// Go's fork-exec). Returns its pid.
fn fork_holding(hold: Duration) -> i32 {
    let ts = libc::timespec {
        tv_sec: hold.as_secs() as libc::time_t,
        tv_nsec: hold.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the child calls only nanosleep and _exit, both async-signal-safe.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            libc::nanosleep(&ts, std::ptr::null_mut());
            libc::_exit(0);
        }
    }
    pid
}

/// A checkpoint's locks (the container's freezer cgroup, the image directory) end with the
/// checkpoint, also when a child the caller forked meanwhile still holds a copy of their
/// descriptors. flock belongs to the open file: closing ckpt's descriptor did not release it
/// while the child lived, and the next checkpoint of the container was refused ("is being
/// checkpointed by another operation"); in bench/soak.rs, with only one thread per container,
/// two of 160 leave-running checkpoints were refused so.
#[test]
fn a_forked_child_does_not_keep_a_checkpoints_locks() {
    if !runc_ready() {
        return;
    }
    let c = Counting::start("probe-soak", "forked");
    let images = c.work.join("images");
    let forked = Arc::new(std::sync::Mutex::new(vec![]));
    let f2 = forked.clone();
    let mut o = options(&images);
    o.set_leave_running(true);
    o.set_notify(Some(Arc::new(move |n: &ckpt::notify::Notification| {
        if n.script == ckpt::notify::PRE_DUMP {
            f2.lock()
                .unwrap()
                .push(fork_holding(Duration::from_secs(3)));
        }
        Ok(())
    })));
    let first = container::checkpoint(&mut o, &c.bundle, c.pid, false);
    let mut o = options(&images);
    o.set_leave_running(true);
    let second = container::checkpoint(&mut o, &c.bundle, c.pid, false);
    for p in forked.lock().unwrap().drain(..) {
        // SAFETY: kill and reap the child forked above.
        unsafe {
            libc::kill(p, libc::SIGKILL);
            libc::waitpid(p, std::ptr::null_mut(), 0);
        }
    }
    first.unwrap_or_else(|e| panic!("first checkpoint: {e:?}"));
    second.unwrap_or_else(|e| panic!("second checkpoint, right after: {e:?}"));
    assert_eq!(c.freezer(), "THAWED");
    assert!(common::containers::advancing(&c.bundle));
}
