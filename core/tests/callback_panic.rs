//! A Rust caller's notification callback that panics: the operation ends as for a failing
//! callback (CRIU told to abort, criu reaped, a restored tree killed), and then the panic goes
//! on in the caller, who may catch it. Nothing is left that the caller was not told about: no
//! restored tree stopped before it resumed, no dumped tree frozen. Needs root and criu.

mod common;

use ckpt::{Code, ops};
use common::*;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

/// Runs `f`, catching its panic without printing it (the panics here are expected).
fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    r
}

fn panicking_at(at: &'static str) -> Option<Arc<ckpt::options::NotifyFn>> {
    Some(Arc::new(move |n: &ckpt::Notification| {
        if n.script == at {
            panic!("the caller's callback panics at {at}");
        }
        Ok(())
    }))
}

#[test]
fn a_restore_whose_callback_panics_leaves_no_tree_behind() {
    if !criu_allowed("a_restore_whose_callback_panics_leaves_no_tree_behind") {
        return;
    }
    let _s = serial();
    let d = dumped_counter("cb-panic");
    for at in [
        ckpt::notify::PRE_RESTORE,
        ckpt::notify::POST_RESTORE,
        ckpt::notify::PRE_RESUME,
    ] {
        let mut o = options(&d.images());
        o.set_notify(panicking_at(at));
        let before = read_counter(&d.counter);
        let r = quietly(|| ops::restore(&o));
        let payload = r.expect_err("the callback's panic reaches the caller");
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some(format!("the caller's callback panics at {at}").as_str())
        );
        // The tree CRIU made is gone (reaped, or a zombie of ours reaped here), not stopped
        // before its resume where nobody knows of it.
        assert!(
            reap_session(d.pid, WAIT),
            "{at}: the restored tree is left: {:?}",
            proc_state(d.pid)
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(read_counter(&d.counter), before, "{at}: the tree counts on");
    }
    // The images restore once the callback behaves.
    let r = ops::restore(&options(&d.images())).expect("restore");
    let mut p = Proc::adopt(r.pid);
    assert_counter_continues(&d.counter, d.at_dump);
    p.kill();
}

#[test]
fn a_dump_whose_callback_panics_leaves_the_tree_running() {
    if !criu_allowed("a_dump_whose_callback_panics_leaves_the_tree_running") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("cb-panic-dump");
    let counter = dir.join("counter");
    let _w = Proc::spawn(&mut counter_loop(&counter));
    wait_counter(&counter, 3);
    for at in [ckpt::notify::PRE_DUMP, ckpt::notify::POST_DUMP] {
        let mut o = options(&dir.join("img"));
        o.set_leave_running(true);
        o.set_notify(panicking_at(at));
        let r = quietly(|| ops::checkpoint(&o, _w.pid));
        assert!(r.is_err(), "{at}: the callback's panic reaches the caller");
        let now = read_counter(&counter).unwrap();
        wait_counter(&counter, now + 3);
    }
    // Once it returned, the callback's failure is what a plain Err gives.
    let mut o = options(&dir.join("img"));
    o.set_notify(Some(Arc::new(|_: &ckpt::Notification| Err("no".into()))));
    let e = ops::checkpoint(&o, _w.pid).expect_err("the callback fails");
    assert_eq!(e.code, Code::Callback);
}
