//! A crun container's checkpoint and restore under faults (criu killed by an action script,
//! callbacks failing, timeouts): a failed leave-running checkpoint leaves the container THAWED,
//! counting and unlocked; a failed restore leaves no process, cgroup, CRIU root, child or
//! criu. Real crun 1.21 and CRIU; needs root.

mod common;
#[path = "container_faults/failing.rs"]
mod failing;
mod faultkit;
#[path = "container_faults/leftovers.rs"]
mod leftovers;

use ckpt::{Code, container};
use common::containers::{
    CRUN, Counting, advancing, crun_command, crun_installed, root, run_quiet,
};
use common::options;
use failing::{killing_config, refusing_at};
use faultkit::Snapshot;
use leftovers::leftovers;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// crun 1.21's libcriu (crun dlopens it), as scripts/setup.sh installs it.
const LIBCRIU: &str = "/opt/ckpt-deps/libcriu/usr/lib/x86_64-linux-gnu";

/// crun with `--root state`, outside the cgroup2 mount it refuses in hybrid mode.
fn crun(state: &Path, args: &[&str]) -> bool {
    run_quiet(crun_command().env("LD_LIBRARY_PATH", LIBCRIU), state, args)
}

fn locked(pid: i32) -> bool {
    Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "iptables", "-w", "-S"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("CRIU"))
}

#[test]
fn crun_container_checkpoints_and_restores_under_faults_leave_nothing() {
    if !root("crun container tests need root")
        || !crun_installed()
        || !common::criu_allowed(
            "crun_container_checkpoints_and_restores_under_faults_leave_nothing",
        )
    {
        return;
    }
    let _g = common::serial();
    let mut c = Counting::start_with("ckpt-probefaults", "9", CRUN, crun);
    // Checkpoints, leave-running, with CRIU's iptables lock: criu killed at a notification,
    // or cut by a timeout.
    let cases: [(&str, u64); 4] = [("pre-dump", 0), ("post-dump", 0), ("", 90), ("", 150)];
    for (n, (at, ms)) in cases.into_iter().enumerate() {
        let mut o = options(&c.work.join(format!("images-{n}")));
        let what = if ms == 0 {
            o.set_config_file(killing_config(&c.work, at)).unwrap();
            format!("criu killed at {at}")
        } else {
            o.set_timeout(Some(Duration::from_millis(ms)));
            format!("timeout of {ms} ms")
        };
        o.set_leave_running(true);
        o.set_network_lock("iptables").unwrap();
        let snap = Snapshot::take();
        let r = container::checkpoint_for(&mut o, &c.bundle, c.pid, false, Some("crun"));
        snap.assert_clean(&what);
        match &r {
            Ok(_) => eprintln!("checkpoint, {what}: succeeded"),
            Err(e) => eprintln!(
                "checkpoint, {what}: {:?} outcome {}: {}",
                e.code, e.outcome, e.message
            ),
        }
        if matches!(&r, Err(e) if e.message.contains("the container is gone")) {
            // criu was cut while its parasite code ran in the init: the container died with
            // it, and the error says so. A new one goes on.
            c = Counting::start_with("ckpt-probefaults", &format!("9-{n}"), CRUN, crun);
            continue;
        }
        assert_eq!(c.freezer(), "THAWED", "checkpoint, {what}");
        assert!(
            !locked(c.pid),
            "checkpoint, {what}: the network is left locked"
        );
        assert!(
            advancing(&c.bundle),
            "checkpoint, {what}: the container does not count"
        );
    }
    // Kill-mode checkpoint, then restores under faults.
    let images = c.work.join("images");
    let mut o = options(&images);
    container::checkpoint_for(&mut o, &c.bundle, c.pid, false, Some("crun"))
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    c.remove_dumped();
    let mut bad = vec![];
    let mut restores: Vec<(String, ckpt::Options, Code)> = vec![];
    for at in ["setup-namespaces", "post-restore", "post-resume"] {
        let mut o = options(&images);
        o.set_config_file(killing_config(&c.work, at)).unwrap();
        restores.push((format!("criu killed at {at}"), o, Code::CriuDied));
        let mut o = options(&images);
        o.set_notify(Some(refusing_at(at)));
        restores.push((format!("callback failing at {at}"), o, Code::Callback));
    }
    for ms in [50, 100, 150] {
        let mut o = options(&images);
        o.set_timeout(Some(Duration::from_millis(ms)));
        restores.push((format!("timeout of {ms} ms"), o, Code::Timeout));
    }
    for (what, mut o, want) in restores {
        let snap = Snapshot::take();
        let r = container::restore(
            &mut o,
            container::RestoreRequest {
                bundle: c.bundle.clone(),
                ..Default::default()
            },
        );
        match r {
            Ok((_, r)) => {
                eprintln!("restore, {what}: restored, pid {}", r.pid);
                c.remove_restored(r.pid);
                if want != Code::Timeout {
                    bad.push(format!("restore, {what}: succeeded"));
                }
            }
            Err(e) => {
                eprintln!(
                    "restore, {what}: {:?} pid {} outcome {}: {}",
                    e.code, e.pid, e.outcome, e.message
                );
                if e.code != want {
                    bad.push(format!("restore, {what}: {:?}, not {want:?}", e.code));
                }
                bad.extend(leftovers(&c.id, &e, &snap, &what));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}
