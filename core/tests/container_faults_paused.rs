//! A restore that fails after CRIU put the restored tree into a FROZEN v1 freezer cgroup. A
//! paused container's checkpoint records FROZEN, which CRIU writes back before `pre-resume`;
//! and a restore can land in a cgroup that is frozen already. Tasks of a frozen v1 cgroup do
//! not act on SIGKILL until it thaws: before, ckpt's kill of the failed restore's tree waited
//! to reap its root until someone thawed the cgroup (a 20 s watchdog here), past the timeout.
//! Now the tree dies at once, alone (the cgroup's other tasks stay frozen), and nothing is
//! left. Real runc and CRIU; needs root.

mod common;
#[path = "container_faults/failing.rs"]
mod failing;
mod faultkit;
#[path = "container_faults/leftovers.rs"]
mod leftovers;

use ckpt::{Code, container};
use common::containers::{Counting, runc_at, runc_v1_freezer_ready};
use common::options;
use failing::refusing_at;
use faultkit::Snapshot;
use leftovers::leftovers;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Thaws `cgroup` after 20 s unless dropped first, so a test of a hang ends.
struct Watchdog(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Watchdog {
    fn arm(cgroup: PathBuf) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let t = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(20);
            while Instant::now() < end {
                if d.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = std::fs::write(cgroup.join("freezer.state"), "THAWED");
        });
        Watchdog(done, Some(t))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

/// Restores `c`'s images with `o`; the restore must fail with `want` within `bound`, its tree
/// killed and reported, and nothing left.
fn fails_at_once(c: &Counting, o: &mut ckpt::Options, want: Code, bound: Duration, what: &str) {
    let fz = c.freezer_dir();
    let dog = Watchdog::arm(fz.clone());
    let snap = Snapshot::take();
    let t0 = Instant::now();
    let r = container::restore(
        o,
        container::RestoreRequest {
            bundle: c.bundle.clone(),
            ..Default::default()
        },
    );
    let took = t0.elapsed();
    drop(dog);
    let e = match r {
        Ok((_, r)) => {
            let _ = std::fs::write(fz.join("freezer.state"), "THAWED");
            common::containers::kill_and_reap(r.pid);
            panic!("{what}: the restore succeeded");
        }
        Err(e) => e,
    };
    eprintln!(
        "{what}: {:?} pid {} outcome {} after {took:?}: {}",
        e.code, e.pid, e.outcome, e.message
    );
    assert!(took < bound, "{what}: the failed restore took {took:?}");
    assert_eq!(e.code, want, "{what}: {e:?}");
    assert!(e.pid > 0, "{what}: no restored tree reported: {e:?}");
    let bad = leftovers(&c.id, &e, &snap, what);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn a_paused_containers_restore_failing_after_criu_froze_it_kills_the_tree_at_once() {
    if !runc_v1_freezer_ready()
        || !common::criu_allowed(
            "a_paused_containers_restore_failing_after_criu_froze_it_kills_the_tree_at_once",
        )
    {
        return;
    }
    let _g = common::serial();
    let c = Counting::start("ckpt-probefaults", "12");
    assert!(runc_at(&c.state, &["pause", &c.id]), "runc pause");
    let images = c.work.join("images");
    let mut o = options(&images);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    let fz = c.freezer_dir();
    let _ = std::fs::write(fz.join("freezer.state"), "THAWED");
    c.remove_dumped();
    for at in ["pre-resume", "post-resume"] {
        let mut o = options(&images);
        o.set_notify(Some(refusing_at(at)));
        fails_at_once(
            &c,
            &mut o,
            Code::Callback,
            Duration::from_secs(8),
            &format!("callback failing at {at}"),
        );
    }
}

/// A restore into a freezer cgroup that is FROZEN already (another task keeps it, and must
/// stay frozen): the restored tasks would freeze there, so it is refused before CRIU starts
/// (it used to run until the timeout), and the cgroup stays with its own task frozen in it.
#[test]
fn a_restore_into_a_frozen_cgroup_is_refused_before_criu() {
    if !runc_v1_freezer_ready()
        || !common::criu_allowed("a_restore_into_a_frozen_cgroup_is_refused_before_criu")
    {
        return;
    }
    let _g = common::serial();
    let c = Counting::start("ckpt-probefaults", "11");
    let images = c.work.join("images");
    let mut o = options(&images);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    c.remove_dumped();
    let fz = c.freezer_dir();
    std::fs::create_dir(&fz).unwrap();
    let mut other = common::Proc::spawn(std::process::Command::new("sleep").arg("1000"));
    std::fs::write(fz.join("cgroup.procs"), other.pid.to_string()).unwrap();
    std::fs::write(fz.join("freezer.state"), "FROZEN").unwrap();
    let mut o = options(&images);
    o.set_timeout(Some(Duration::from_secs(2)));
    let dog = Watchdog::arm(fz.clone());
    let snap = Snapshot::take();
    let t0 = Instant::now();
    let r = container::restore(
        &mut o,
        container::RestoreRequest {
            bundle: c.bundle.clone(),
            ..Default::default()
        },
    );
    let took = t0.elapsed();
    drop(dog);
    let state = std::fs::read_to_string(fz.join("freezer.state")).unwrap_or_default();
    let procs = std::fs::read_to_string(fz.join("cgroup.procs")).unwrap_or_default();
    let _ = std::fs::write(fz.join("freezer.state"), "THAWED");
    let e = match r {
        Ok((_, r)) => {
            common::containers::kill_and_reap(r.pid);
            panic!("the restore into a frozen cgroup succeeded");
        }
        Err(e) => e,
    };
    eprintln!(
        "frozen cgroup: {:?} pid {} outcome {} after {took:?}: {}",
        e.code, e.pid, e.outcome, e.message
    );
    assert!(took < Duration::from_secs(2), "the restore took {took:?}");
    assert_eq!(e.code, Code::InvalidState, "{e:?}");
    assert!(e.message.contains("FROZEN"), "{e:?}");
    assert!(
        !images.join("restore.log").exists(),
        "refused before CRIU started"
    );
    assert_eq!(state.trim(), "FROZEN", "the cgroup was thawed");
    assert_eq!(
        procs.split_whitespace().collect::<Vec<_>>(),
        [other.pid.to_string()],
        "the frozen cgroup's own task was moved or others left there"
    );
    other.kill();
    snap.assert_clean("frozen cgroup");
}
