//! A process-level dump of a tree with its own network namespace, whose criu dies (SIGKILL from
//! an action script) after it took its iptables network lock (CRIU's default method): the lock
//! is removed and the error says so, as for a container. Before, the tree ran on with every
//! packet of its namespace dropped by CRIU's `CRIU` chain. Real CRIU and iptables; needs root.

mod common;
#[path = "container_faults/failing.rs"]
mod failing;

use ckpt::Code;
use ckpt::error::outcome;
use common::netlock::criu_rules;
use common::{Proc, TempDir, counter_loop, criu_allowed, not_exercised, options, wait_counter};
use failing::killing_config;
use std::process::Command;

#[test]
fn a_process_tree_whose_criu_dies_while_its_network_is_locked_is_unlocked() {
    if !criu_allowed("a_process_tree_whose_criu_dies_while_its_network_is_locked_is_unlocked") {
        return;
    }
    if let Some(t) = ["nsenter", "iptables", "iptables-restore", "unshare"]
        .iter()
        .find(|t| Command::new(t).arg("--version").output().is_err())
    {
        not_exercised(&format!(
            "{t} is not installed: CRIU's iptables lock is not tried"
        ));
        return;
    }
    let _g = common::serial();
    let dir = TempDir::new("leftovers-netlock");
    let counter = dir.join("counter");
    // The counter loop in a network namespace of its own (unshare execs it there).
    let loop_cmd = counter_loop(&counter);
    let mut cmd = Command::new("unshare");
    cmd.arg("-n")
        .arg(loop_cmd.get_program())
        .args(loop_cmd.get_args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let w = Proc::spawn(&mut cmd);
    wait_counter(&counter, 2);
    assert_ne!(
        common::netns_of(w.pid),
        common::netns_of(std::process::id() as i32),
        "the tree has a network namespace of its own"
    );
    for (n, (at, leave)) in [("post-dump", true), ("network-unlock", true)]
        .into_iter()
        .enumerate()
    {
        let what = format!("criu killed at {at}, leave-running {leave}");
        let mut o = options(&dir.join(format!("images-{n}")));
        o.set_leave_running(leave);
        o.set_config_file(killing_config(&dir.path, at)).unwrap();
        let e = ckpt::ops::checkpoint(&o, w.pid).expect_err("criu was killed");
        eprintln!("{what}: {:?} outcome {}: {}", e.code, e.outcome, e.message);
        assert_eq!(e.code, Code::CriuDied, "{what}: {e:?}");
        assert!(
            e.outcome & outcome::TREE_STATE_UNKNOWN != 0,
            "{what}: {e:?}"
        );
        assert!(w.alive(), "{what}: the tree is gone");
        let rules = criu_rules(w.pid);
        assert!(
            rules.is_none(),
            "{what}: the tree's network is left locked: {rules:?}"
        );
        assert!(
            e.message.contains(
                "the network lock (iptables) criu left in the tree's network namespace was removed"
            ),
            "{what}: {e:?}"
        );
        let now = common::read_counter(&counter).unwrap_or(0);
        wait_counter(&counter, now + 2);
    }
}
