//! A runc container restore under faults at each of its phases: the runtime's callback
//! failing, sleeping past the timeout or cancelling, criu killed (SIGKILL, by an action
//! script) at each notification, and timeouts at fixed points. After each failed restore the
//! caller must have an error whose pid (when given) is a tree that is gone, and nothing may be
//! left: no process of the container, none of the cgroups CRIU made for it, CRIU's root
//! neither bound nor on disk, no child, no criu. Real runc and CRIU; needs root.

mod common;
mod faultkit;
#[path = "container_faults/leftovers.rs"]
mod leftovers;

use ckpt::container;
use ckpt::{Cancel, Code, Options};
use common::containers::{Counting, advancing, kill_and_reap, runc_at, runc_ready, wait_gone};
use common::options;
use faultkit::Snapshot;
use leftovers::{cgroups_named, leftovers};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The restore notifications CRIU sends for a runc container, in order.
const POINTS: [&str; 6] = [
    "pre-restore",
    "setup-namespaces",
    "post-setup-namespaces",
    "post-restore",
    "pre-resume",
    "post-resume",
];

/// Restores `c`'s images with `o`; the error, or the pid of a restore that succeeded (killed
/// at once and reported as a problem).
fn restore_err(
    c: &Counting,
    o: &mut Options,
    hooks: Option<Arc<container::HookFn>>,
    what: &str,
    bad: &mut Vec<String>,
) -> Option<ckpt::Error> {
    let r = container::restore(
        o,
        container::RestoreRequest {
            bundle: c.bundle.clone(),
            hooks,
            ..Default::default()
        },
    );
    match r {
        Ok((_, r)) => {
            kill_and_reap(r.pid);
            wait_gone(r.pid, Duration::from_secs(2));
            for d in cgroups_named(&c.id) {
                common::containers::remove_cgroup_tree(&d);
            }
            bad.push(format!("{what}: the restore succeeded (pid {})", r.pid));
            None
        }
        Err(e) => Some(e),
    }
}

fn checked(c: &Counting, o: &mut Options, what: &str, want: &[Code], bad: &mut Vec<String>) {
    checked_with(c, o, None, what, want, bad)
}

fn checked_with(
    c: &Counting,
    o: &mut Options,
    hooks: Option<Arc<container::HookFn>>,
    what: &str,
    want: &[Code],
    bad: &mut Vec<String>,
) {
    let snap = Snapshot::take();
    let t0 = Instant::now();
    let Some(e) = restore_err(c, o, hooks, what, bad) else {
        return;
    };
    eprintln!(
        "{what}: {:?} pid={} outcome={} after {:?}: {}",
        e.code,
        e.pid,
        e.outcome,
        t0.elapsed(),
        e.message
    );
    if !want.contains(&e.code) {
        bad.push(format!("{what}: {:?}, not {want:?}: {}", e.code, e.message));
    }
    bad.extend(leftovers(&c.id, &e, &snap, what));
}

/// A CRIU configuration file whose action script SIGKILLs criu at `action`.
fn killing_config(dir: &Path, action: &str) -> PathBuf {
    let script = dir.join(format!("kill-{action}.sh"));
    std::fs::write(
        &script,
        format!("#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = {action} ] || exit 0\nkill -9 $PPID\nsleep 1\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = dir.join(format!("kill-{action}.conf"));
    std::fs::write(&conf, format!("action-script {}\n", script.display())).unwrap();
    conf
}

#[test]
fn container_restores_failing_at_every_phase_leave_nothing() {
    if !runc_ready()
        || !common::criu_allowed("container_restores_failing_at_every_phase_leave_nothing")
    {
        return;
    }
    let _g = common::serial();
    let c = Counting::start("ckpt-probefaults", "1");
    let images = c.work.join("images");
    let mut o = options(&images);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    wait_gone(c.pid, Duration::from_secs(5));
    runc_at(&c.state, &["delete", "-f", &c.id]);
    for d in cgroups_named(&c.id) {
        common::containers::remove_cgroup_tree(&d);
    }
    let mut bad = vec![];
    for at in POINTS {
        // The callback fails.
        let mut o = options(&images);
        let a = at.to_string();
        o.set_notify(Some(Arc::new(move |n: &ckpt::Notification| {
            if n.script == a {
                Err("refusing".into())
            } else {
                Ok(())
            }
        })));
        checked(
            &c,
            &mut o,
            &format!("callback failing at {at}"),
            &[Code::Callback],
            &mut bad,
        );
        // The callback sleeps past the timeout at the last point (it costs the timeout; the
        // runtime hook below sleeps at post-restore).
        if at == "post-resume" {
            let mut o = options(&images);
            o.set_timeout(Some(Duration::from_millis(1000)));
            let a = at.to_string();
            o.set_notify(Some(Arc::new(move |n: &ckpt::Notification| {
                if n.script == a {
                    std::thread::sleep(Duration::from_millis(1200));
                }
                Ok(())
            })));
            checked(
                &c,
                &mut o,
                &format!("callback sleeping past the timeout at {at}"),
                &[Code::Timeout],
                &mut bad,
            );
        }
        // The callback cancels.
        let mut o = options(&images);
        let cancel = Cancel::new().unwrap();
        o.set_cancel(Some(&cancel));
        let a = at.to_string();
        o.set_notify(Some(Arc::new(move |n: &ckpt::Notification| {
            if n.script == a {
                cancel.trigger();
            }
            Ok(())
        })));
        checked(
            &c,
            &mut o,
            &format!("cancelled at {at}"),
            &[Code::Cancelled],
            &mut bad,
        );
        // criu killed.
        let mut o = options(&images);
        o.set_config_file(killing_config(&c.work, at)).unwrap();
        checked(
            &c,
            &mut o,
            &format!("criu killed at {at}"),
            &[Code::CriuDied],
            &mut bad,
        );
    }
    // The runtime's hooks (setup-namespaces, post-restore) failing, and sleeping past the
    // timeout.
    for at in ["setup-namespaces", "post-restore"] {
        let a = at.to_string();
        let hooks: Arc<container::HookFn> = Arc::new(move |s: &str, _pid: i32| {
            if s == a {
                Err("hook refused".into())
            } else {
                Ok(())
            }
        });
        let mut o = options(&images);
        let what = format!("hook failing at {at}");
        checked_with(&c, &mut o, Some(hooks), &what, &[Code::Callback], &mut bad);
    }
    let hooks: Arc<container::HookFn> = Arc::new(|s: &str, _pid: i32| {
        if s == "post-restore" {
            std::thread::sleep(Duration::from_millis(1200));
        }
        Ok(())
    });
    let mut o = options(&images);
    o.set_timeout(Some(Duration::from_millis(1000)));
    let what = "hook sleeping past the timeout at post-restore";
    checked_with(&c, &mut o, Some(hooks), what, &[Code::Timeout], &mut bad);
    for ms in [40, 100, 150, 220] {
        let mut o = options(&images);
        o.set_timeout(Some(Duration::from_millis(ms)));
        let snap = Snapshot::take();
        let what = format!("timeout of {ms} ms");
        match container::restore(
            &mut o,
            container::RestoreRequest {
                bundle: c.bundle.clone(),
                ..Default::default()
            },
        ) {
            Ok((_, r)) => {
                eprintln!("{what}: restored");
                kill_and_reap(r.pid);
                wait_gone(r.pid, Duration::from_secs(2));
                for d in cgroups_named(&c.id) {
                    common::containers::remove_cgroup_tree(&d);
                }
            }
            Err(e) => {
                eprintln!(
                    "{what}: {:?} pid={} outcome={}: {}",
                    e.code, e.pid, e.outcome, e.message
                );
                if e.code != Code::Timeout {
                    bad.push(format!("{what}: {:?}: {}", e.code, e.message));
                }
                bad.extend(leftovers(&c.id, &e, &snap, &what));
            }
        }
    }
    // The images are whole: a plain restore brings the container back.
    let mut o = options(&images);
    let (_, r) = container::restore(
        &mut o,
        container::RestoreRequest {
            bundle: c.bundle.clone(),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("restore after the faults: {e:?}"));
    let counting = advancing(&c.bundle);
    kill_and_reap(r.pid);
    wait_gone(r.pid, Duration::from_secs(2));
    assert!(counting, "the restored container does not count");
    assert!(bad.is_empty(), "{bad:#?}");
}
