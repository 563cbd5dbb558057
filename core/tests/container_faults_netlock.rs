//! A container checkpoint with CRIU's iptables network lock whose criu dies (SIGKILL, from an
//! action script) after it locked the container's network namespace: CRIU removes its lock on
//! every path of its own, a dead criu on none. Before, the container ran on, THAWED and
//! counting, with every packet of its network namespace dropped by CRIU's `CRIU` chain: a
//! failed checkpoint that broke the workload. Real runc, CRIU and iptables; needs root.

mod common;
#[path = "container_faults/failing.rs"]
mod failing;
mod faultkit;

use ckpt::container;
use ckpt::error::outcome;
use ckpt::{Cancel, Code};
use common::containers::{Counting, advancing, runc_ready};
use common::netlock::criu_rules;
use common::{not_exercised, options};
use failing::killing_config;
use faultkit::Snapshot;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn ready() -> bool {
    if !runc_ready() {
        return false;
    }
    let tools = ["nsenter", "iptables", "iptables-restore"];
    if let Some(t) = tools
        .iter()
        .find(|t| Command::new(t).arg("--version").output().is_err())
    {
        not_exercised(&format!(
            "{t} is not installed: CRIU's iptables lock is not tried"
        ));
        return false;
    }
    true
}

/// criu killed at `post-dump` (the lock is in place) and at `network-unlock` (CRIU runs the
/// action scripts before it unlocks), in leave-running and kill mode, and criu killed by a
/// cancellation while a callback holds `post-dump`'s answer past the point of no return:
/// the error says the tree's state is unknown, and the container runs on unlocked; so does it
/// after timeouts at points through the dump.
#[test]
fn a_container_whose_criu_dies_while_its_network_is_locked_is_unlocked() {
    if !ready()
        || !common::criu_allowed(
            "a_container_whose_criu_dies_while_its_network_is_locked_is_unlocked",
        )
    {
        return;
    }
    let _g = common::serial();
    let mut c = Counting::start("ckpt-probefaults", "4");
    for (n, (at, leave)) in [
        ("post-dump", true),
        ("network-unlock", true),
        ("post-dump", false),
    ]
    .into_iter()
    .enumerate()
    {
        let what = format!("criu killed at {at}, leave-running {leave}");
        let mut o = options(&c.work.join(format!("images-{n}")));
        o.set_leave_running(leave);
        o.set_network_lock("iptables").unwrap();
        o.set_config_file(killing_config(&c.work, at)).unwrap();
        let snap = Snapshot::take();
        let e =
            container::checkpoint(&mut o, &c.bundle, c.pid, false).expect_err("criu was killed");
        eprintln!("{what}: {:?} outcome {}: {}", e.code, e.outcome, e.message);
        snap.assert_clean(&what);
        assert_eq!(e.code, Code::CriuDied, "{what}: {e:?}");
        assert!(
            e.outcome & outcome::TREE_STATE_UNKNOWN != 0,
            "{what}: {e:?}"
        );
        assert!(
            Path::new(&format!("/proc/{}", c.pid)).exists(),
            "{what}: the container's init is gone"
        );
        let rules = criu_rules(c.pid);
        assert!(
            rules.is_none(),
            "{what}: the container's network is left locked: {rules:?}"
        );
        assert!(e.message.contains("network lock"), "{what}: {e:?}");
        assert!(advancing(&c.bundle), "{what}: the container does not count");
    }
    // Cancelled while CRIU waits for post-dump's answer, which ckpt never gives: criu is
    // killed with the lock in place.
    let cancel = Cancel::new().unwrap();
    let mut o = options(&c.work.join("images-cancel"));
    o.set_leave_running(true);
    o.set_network_lock("iptables").unwrap();
    o.set_cancel(Some(&cancel));
    let t = cancel.clone();
    o.set_notify(Some(std::sync::Arc::new(move |n: &ckpt::Notification| {
        if n.script == "post-dump" {
            t.trigger();
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    })));
    let e = container::checkpoint(&mut o, &c.bundle, c.pid, false);
    eprintln!("cancelled at post-dump: {e:?}");
    assert!(
        criu_rules(c.pid).is_none(),
        "cancelled at post-dump: the network is left locked"
    );
    assert!(
        advancing(&c.bundle),
        "cancelled at post-dump: the container does not count"
    );
    // Timeouts at points through the dump, some between the lock and the unlock: whatever
    // the error, the container runs on unlocked.
    for ms in [100, 140, 180, 230] {
        let what = format!("timeout of {ms} ms");
        let mut o = options(&c.work.join(format!("images-t{ms}")));
        o.set_leave_running(true);
        o.set_network_lock("iptables").unwrap();
        o.set_timeout(Some(Duration::from_millis(ms)));
        let snap = Snapshot::take();
        let r = container::checkpoint(&mut o, &c.bundle, c.pid, false);
        snap.assert_clean(&what);
        match &r {
            Ok(_) => eprintln!("{what}: succeeded"),
            Err(e) => eprintln!("{what}: {:?} outcome {}: {}", e.code, e.outcome, e.message),
        }
        // A cut while CRIU's parasite code runs in the init kills the container (the error
        // says so): its network namespace is gone with it, and a new container goes on.
        if matches!(&r, Err(e) if e.message.contains("the container is gone")) {
            c = Counting::start("ckpt-probefaults", &format!("4-{ms}"));
            continue;
        }
        let rules = criu_rules(c.pid);
        assert!(
            rules.is_none(),
            "{what}: the container's network is left locked: {rules:?}"
        );
        assert!(advancing(&c.bundle), "{what}: the container does not count");
    }
}
