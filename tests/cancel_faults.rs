//! Cancellation where only the scripted fake criu can put CRIU: a trigger past the point of no
//! return (the dump is CRIU's to finish: success, marked), and a criu that never answers (it is
//! killed and reaped at once, without waiting for any timeout).

#[path = "../core/tests/faultkit/mod.rs"]
mod faultkit;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ckpt::{Cancel, Code, Options};
use faultkit::{Snapshot, TempDir, assert_done_past_no_return, fake_options, scenario, serial};

fn fake_opts(dir: &Path, cancel: &Cancel) -> Options {
    // A timeout far away: it is the cancel, not the deadline, that acts here.
    let mut o = fake_options(dir, Duration::from_secs(60));
    o.set_cancel(Some(cancel));
    o
}

/// Triggers `cancel` 200 ms after CRIU's `post-dump` notification, from another thread, so
/// the acknowledgement is on its way first.
fn trigger_after_post_dump(o: &mut Options, cancel: &Cancel) {
    let c = cancel.clone();
    o.set_notify(Some(Arc::new(move |n: &ckpt::Notification| {
        if n.script == "post-dump" {
            let c = c.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                c.trigger();
            });
        }
        Ok(())
    })));
}

/// Triggered once `post-dump` was acknowledged: CRIU is past its point of no return, so ckpt
/// waits for its answer; the dump succeeds, killed the tree, and says it was cancelled late.
#[test]
fn cancel_after_post_dump_waits_for_criu_and_says_so() {
    let _g = serial();
    let dir = TempDir::new("cancel-no-return");
    let cancel = Cancel::new().unwrap();
    let mut o = fake_opts(dir.path(), &cancel);
    trigger_after_post_dump(&mut o, &cancel);
    assert_done_past_no_return(&o, 1000, "cancel after post-dump");
    assert!(cancel.is_triggered());
}

/// A lazy dump serves its pages after `post-dump`, until a restore has fetched them all, for
/// ever if none comes: a trigger there still stops criu (the seized tree runs on once criu is
/// gone) and says the tree may have been killed. It used to be ignored as past the point of no
/// return, and `ckpt checkpoint --lazy-pages` ignored Ctrl-C while it waited.
#[test]
fn cancel_while_a_lazy_dump_serves_stops_criu() {
    let _g = serial();
    scenario("lazy-serving");
    let dir = TempDir::new("cancel-lazy");
    let cancel = Cancel::new().unwrap();
    let mut o = fake_opts(dir.path(), &cancel);
    o.set_lazy_pages(true);
    o.set_page_server("127.0.0.1:27277").unwrap();
    trigger_after_post_dump(&mut o, &cancel);
    let snap = Snapshot::take();
    let t0 = Instant::now();
    let e = ckpt::ops::checkpoint(&o, std::process::id() as i32).unwrap_err();
    let took = t0.elapsed();
    snap.assert_clean("cancel of a lazy dump serving its pages");
    println!("{:?} after {took:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::Cancelled, "{e}");
    assert!(e.message.contains("post-dump acknowledged"), "{e}");
    assert_ne!(
        e.outcome & ckpt::error::outcome::TREE_STATE_UNKNOWN,
        0,
        "{e}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// A criu that never answers: the trigger wakes ckpt at once; criu is killed and reaped.
#[test]
fn cancel_of_a_silent_criu_kills_and_reaps_it_at_once() {
    let _g = serial();
    scenario("never-reply");
    let dir = TempDir::new("cancel-silent");
    let cancel = Cancel::new().unwrap();
    let o = fake_opts(dir.path(), &cancel);
    let c = cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        c.trigger();
    });
    let snap = Snapshot::take();
    let t0 = Instant::now();
    let e = ckpt::ops::checkpoint(&o, std::process::id() as i32).unwrap_err();
    let took = t0.elapsed();
    t.join().unwrap();
    snap.assert_clean("cancel of a silent criu");
    println!("{:?} after {took:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::Cancelled, "{e}");
    assert!(e.message.contains("was killed"), "{e}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}
