//! Someone else's freezing of a runc container's v1 freezer cgroup around a leave-running
//! checkpoint (container/freezer.rs). CRIU 4.1.1 reads the cgroup's state once when it starts
//! and takes FREEZING for FROZEN (criu/seize.c `freeze_processes`): a container it finds so is
//! a paused one to it, which it records FROZEN in cgroup.img and freezes again at the end of a
//! leave-running dump. A container the checkpoint found running must come out of it running,
//! THAWED and recorded THAWED: a container left frozen after a successful checkpoint is a lost
//! workload (the `runc exec` soak in container_soak.rs saw one, cause not found). The
//! interleavings are made exact with a task the freezer cannot freeze (common/unfreezable.rs),
//! which holds the cgroup FREEZING for as long as the test wants. Real runc, real CRIU; root.

mod common;

use ckpt::container;
use ckpt::error::Code;
use common::containers::{Counting, advancing, runc_v1_freezer_ready};
use common::unfreezable::Unfreezable;
use common::{not_exercised, options, serial};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn state_file(c: &Counting) -> PathBuf {
    c.freezer_dir().join("freezer.state")
}

fn traced(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("TracerPid:") && l.trim_end() != "TracerPid:\t0")
    })
}

/// Whether cgroup.img in `images` records a FROZEN freezer state anywhere.
fn image_frozen(images: &Path) -> bool {
    std::fs::read(images.join("cgroup.img"))
        .unwrap_or_default()
        .windows(6)
        .any(|w| w == b"FROZEN")
}

fn kill(pid: i32) {
    // SAFETY: signals the test's own child, which the Unfreezable guard reaps.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Moves `pid` into the freezer hierarchy's root cgroup, which is never frozen (killing it would
/// not do: a task killed in a freezing cgroup freezes instead of dying, and CRIU, having seized
/// it, then waits for it until its timeout).
fn out_of_the_container(pid: i32) {
    std::fs::write("/sys/fs/cgroup/freezer/cgroup.procs", pid.to_string()).unwrap();
}

/// A container whose freezer cgroup reads FREEZING when the checkpoint starts (someone wrote
/// FROZEN and one task has not frozen yet) is neither running nor paused. ckpt left it to CRIU,
/// which took it for paused: once that task could freeze (here: killed as soon as CRIU seized
/// it), the checkpoint succeeded, recorded FROZEN and left the container FROZEN. Now ckpt waits
/// up to a second for the state to settle and, as it stays FREEZING, refuses the checkpoint
/// before CRIU (`InvalidState`) without touching the cgroup.
#[test]
fn a_checkpoint_that_finds_the_container_freezing_touches_nothing() {
    if !runc_v1_freezer_ready() {
        return;
    }
    let _g = serial();
    let c = Counting::start("frozenrace", "freezing");
    let Some(mut stuck) = Unfreezable::start() else {
        return;
    };
    stuck.join(&c.freezer_dir());
    std::fs::write(state_file(&c), "FROZEN").unwrap();
    assert_eq!(c.freezer(), "FREEZING");

    let images = c.work.join("images-freezing");
    let done = AtomicBool::new(false);
    let (r, seized) = std::thread::scope(|s| {
        // Lets the stuck task freeze, by killing it, once CRIU has seized it: CRIU has then read
        // the state, and the container freezes whole.
        let t = s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if traced(stuck.pid) {
                    kill(stuck.pid);
                    return true;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            false
        });
        let mut o = options(&images);
        o.set_leave_running(true);
        o.set_timeout(Some(Duration::from_secs(10)));
        let start = Instant::now();
        let r = container::checkpoint(&mut o, &c.bundle, c.pid, false);
        eprintln!(
            "checkpoint of a FREEZING container: {:?} after {:?}",
            r.as_ref().map(|_| ()),
            start.elapsed()
        );
        done.store(true, Ordering::Relaxed);
        (r, t.join().unwrap())
    });
    let after = c.freezer();
    let recorded = image_frozen(&images);
    // The test's own freeze, let finish, then undone: the container must count again.
    kill(stuck.pid);
    std::fs::write(state_file(&c), "THAWED").unwrap();
    assert!(
        !seized,
        "CRIU seized the tasks of a FREEZING container (checkpoint {:?}, left {after}, image FROZEN: {recorded})",
        r.as_ref().map(|_| ())
    );
    let e = r.expect_err("a checkpoint of a container stuck FREEZING");
    assert_eq!(e.code, Code::InvalidState, "{e:?}");
    assert!(e.message.contains("FREEZING"), "{e:?}");
    assert_eq!(e.outcome, 0, "{e:?}");
    assert_eq!(
        after, "FREEZING",
        "the checkpoint changed someone else's freezing"
    );
    assert!(
        advancing(&c.bundle),
        "the container does not count once thawed"
    );
}

/// The container is THAWED when the checkpoint starts, ckpt's own freezing does not finish
/// within its second (a task that cannot freeze) and is undone, and someone writes FROZEN to
/// the cgroup at once, before CRIU reads it (here: as soon as ckpt's thaw is seen; the stuck
/// task is moved out of the container then, so the cgroup freezes whole, and killed). ckpt then took the container for a paused
/// one, or CRIU did: the checkpoint succeeded, recorded FROZEN and left it FROZEN. Now a
/// container found THAWED ends THAWED, and its images say THAWED.
#[test]
fn a_container_found_running_is_left_running_whoever_froze_it_meanwhile() {
    if !runc_v1_freezer_ready() {
        return;
    }
    let _g = serial();
    let c = Counting::start("frozenrace", "refrozen");
    let Some(mut stuck) = Unfreezable::start() else {
        return;
    };
    stuck.join(&c.freezer_dir());
    assert_eq!(c.freezer(), "THAWED");

    let images = c.work.join("images-refrozen");
    let done = AtomicBool::new(false);
    let sf = state_file(&c);
    let (r, froze_at) = std::thread::scope(|s| {
        let t = s.spawn(|| {
            let read = || std::fs::read_to_string(&sf).unwrap_or_default();
            // ckpt's freezing (FREEZING), then its giving up (THAWED).
            let mut seen_freezing = false;
            while !done.load(Ordering::Relaxed) {
                let st = read();
                if st.trim() == "FREEZING" {
                    seen_freezing = true;
                } else if seen_freezing && st.trim() == "THAWED" {
                    std::fs::write(&sf, "FROZEN").unwrap();
                    // Moving it out is slow (tens of ms: a cgroup migration waits for RCU);
                    // if CRIU seized it meanwhile, its death (it can die once out) ends CRIU's
                    // wait for it.
                    out_of_the_container(stuck.pid);
                    kill(stuck.pid);
                    return Some(Instant::now());
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            None
        });
        let mut o = options(&images);
        o.set_leave_running(true);
        o.set_timeout(Some(Duration::from_secs(5)));
        let r = container::checkpoint(&mut o, &c.bundle, c.pid, false);
        done.store(true, Ordering::Relaxed);
        (r, t.join().unwrap())
    });
    let after = c.freezer();
    let recorded = image_frozen(&images);
    eprintln!(
        "found THAWED, frozen by another after ckpt's thaw ({}): checkpoint {:?}, left {after}, image FROZEN: {recorded}",
        if froze_at.is_some() {
            "done"
        } else {
            "not done"
        },
        r.as_ref().map(|_| ())
    );
    let _ = std::fs::write(&sf, "THAWED");
    assert!(
        froze_at.is_some(),
        "ckpt's freezing was never seen to give up"
    );
    assert_eq!(after, "THAWED", "a container found running was left frozen");
    assert!(advancing(&c.bundle), "the container does not count");
    match r {
        Ok(_) => assert!(!recorded, "a container found running was recorded FROZEN"),
        // When CRIU read the state before the stuck task was out, it seized that task too and
        // (once in a few runs here) waited for it past the timeout: the container must still
        // be left running.
        Err(e) => {
            assert_eq!(e.code, Code::Timeout, "{e:?}");
            not_exercised(
                "CRIU seized the stuck task and waited for it until the timeout: the images were not checked",
            );
        }
    }
}
