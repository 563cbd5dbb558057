//! ckpt freezes a runc container's v1 freezer cgroup itself before CRIU (container/freezer.rs)
//! and promises to thaw it "when criu is done, on every path" (docs/containers.md, "Speed").
//! A container left frozen by a failed checkpoint is a lost workload for a runtime: each test
//! here makes the dump fail after ckpt froze the cgroup (CRIU refusing late, the timeout, a
//! cancellation) and checks the container is THAWED and counting; a paused container stays
//! paused. Real runc, real CRIU; needs root.

mod common;

use ckpt::container;
use ckpt::error::Code;
use common::containers::{advancing, kill_and_reap, runc_at, runc_v1_freezer_ready, wait_gone};
use common::unfreezable::Unfreezable;
use common::{not_exercised, options, serial};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::containers::Counting as Ctr;

impl Ctr {
    fn advancing(&self) -> bool {
        advancing(&self.bundle)
    }

    fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// The workload after a failed checkpoint: not frozen, counting, and nothing of it
    /// stopped or traced.
    fn assert_running(&self, what: &str) {
        assert_eq!(self.freezer(), "THAWED", "{what}: the freezer cgroup");
        assert!(self.alive(), "{what}: the container's init is gone");
        assert!(self.advancing(), "{what}: the container does not count");
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        assert!(
            status.contains("TracerPid:\t0"),
            "{what}: the init is still traced"
        );
    }

    /// A checkpoint under a token triggered before the call fails at once and touches
    /// nothing: no image directory, the container running.
    fn assert_cancelled_before(&self, tag: &str) {
        let before = ckpt::Cancel::new().unwrap();
        before.trigger();
        let images = self.work.join(format!("images-{tag}"));
        let mut o = options(&images);
        o.set_cancel(Some(&before));
        let e = container::checkpoint(&mut o, &self.bundle, self.pid, false).unwrap_err();
        assert_eq!(e.code, Code::Cancelled, "{e:?}");
        assert!(
            !images.exists(),
            "a cancelled checkpoint created its image directory"
        );
        self.assert_running(&format!("cancelled before the call ({tag})"));
    }

    /// A leave-running checkpoint into `images` whose token another thread triggers `after`
    /// the start: its result, when the trigger came and when the call returned.
    fn checkpoint_cancelled_after(
        &self,
        images: &Path,
        after: Duration,
    ) -> (
        ckpt::Result<(container::plan::Plan, ckpt::Stats)>,
        Instant,
        Instant,
    ) {
        let cancel = ckpt::Cancel::new().unwrap();
        let mut o = options(images);
        o.set_leave_running(true);
        o.set_cancel(Some(&cancel));
        std::thread::scope(|s| {
            let t = s.spawn(|| {
                std::thread::sleep(after);
                cancel.trigger();
                Instant::now()
            });
            let r = container::checkpoint(&mut o, &self.bundle, self.pid, false);
            (r, t.join().unwrap(), Instant::now())
        })
    }
}

/// CRIU fails late, after it seized and dumped the tasks: cgroup.img, written after them, is
/// a directory. With and without leave-running, the container must be left THAWED and running.
#[test]
fn a_dump_criu_refuses_late_leaves_the_container_thawed() {
    if !runc_v1_freezer_ready() {
        return;
    }
    let _g = serial();
    let b = Ctr::start("review", "late");
    for leave in [true, false] {
        let images = b.work.join(format!("images-late-{leave}"));
        std::fs::create_dir_all(images.join("cgroup.img")).unwrap();
        let mut o = options(&images);
        o.set_leave_running(leave);
        let e = container::checkpoint(&mut o, &b.bundle, b.pid, false)
            .expect_err("cgroup.img is a directory");
        assert_ne!(e.code, Code::Cancelled, "{e:?}");
        eprintln!("late refusal (leave_running {leave}): {e}");
        b.assert_running(&format!("CRIU refused late (leave_running {leave}): {e}"));
    }
}

/// The timeout kills criu at different points of the dump (before, while and after it seizes
/// the tree): the container is thawed and runs on every time.
#[test]
fn a_dump_past_its_timeout_leaves_the_container_thawed() {
    if !runc_v1_freezer_ready() {
        return;
    }
    let _g = serial();
    let mut b = Ctr::start("review", "timeout");
    let mut seen = vec![];
    for ms in [20u64, 60, 120, 200, 300] {
        let images = b.work.join(format!("images-{ms}"));
        let mut o = options(&images);
        o.set_leave_running(true);
        o.set_timeout(Some(Duration::from_millis(ms)));
        match container::checkpoint(&mut o, &b.bundle, b.pid, false) {
            Ok(_) => seen.push(format!("{ms} ms: done")),
            Err(e) => {
                assert_eq!(e.code, Code::Timeout, "{ms} ms: {e:?}");
                seen.push(format!("{ms} ms: timeout, outcome {:?}", e.outcome));
                // The cut killed the init with criu (its parasite ran there), and the error
                // says so (core/tests/container_faults_dump.rs): a new container goes on.
                if e.message.contains("the container is gone") {
                    b = Ctr::start("review", &format!("timeout-{ms}"));
                    continue;
                }
            }
        }
        b.assert_running(&format!("timeout {ms} ms"));
    }
    eprintln!("timeouts: {seen:?}");
}

/// A token triggered from another thread at different points of the dump: the container is
/// thawed and runs on every time; a token triggered before the call touches nothing.
#[test]
fn a_cancelled_dump_leaves_the_container_thawed() {
    if !runc_v1_freezer_ready() {
        return;
    }
    let _g = serial();
    let mut b = Ctr::start("review", "cancel");
    b.assert_cancelled_before("before");
    let mut seen = vec![];
    for ms in [0u64, 30, 80, 150, 250] {
        let images = b.work.join(format!("images-{ms}"));
        let (r, _, _) = b.checkpoint_cancelled_after(&images, Duration::from_millis(ms));
        match r {
            Ok(_) => seen.push(format!("{ms} ms: done")),
            Err(e) => {
                assert_eq!(e.code, Code::Cancelled, "{ms} ms: {e:?}");
                seen.push(format!("{ms} ms: cancelled, outcome {:?}", e.outcome));
                // As above: the init died with criu, and the error says so.
                if e.message.contains("the container is gone") {
                    b = Ctr::start("review", &format!("cancel-{ms}"));
                    continue;
                }
            }
        }
        b.assert_running(&format!("cancelled at {ms} ms"));
    }
    eprintln!("cancels: {seen:?}");
}

/// ckpt's own wait for the freezer cgroup to read FROZEN (up to 1 s) ends at once when the
/// token is triggered or the deadline passes: a task that cannot freeze (common/unfreezable.rs)
/// keeps the cgroup FREEZING. The call fails as if stopped before criu started (outcome 0,
/// none of ckpt's files left), the cgroup is THAWED when it returns and the container counts.
#[test]
fn a_freeze_that_never_finishes_ends_at_the_token_or_the_deadline() {
    if !runc_v1_freezer_ready() {
        return;
    }
    let _g = serial();
    let b = Ctr::start("review", "stuck");
    let Some(mut stuck) = Unfreezable::start() else {
        return;
    };
    stuck.join(&b.freezer_dir());
    let check = |e: &ckpt::Error, images: &Path, what: &str| {
        assert_eq!(e.outcome, 0, "{what}: {e:?}");
        assert!(e.message.contains("freezer cgroup"), "{what}: {e:?}");
        for f in ["descriptors.json", "ckpt-container.json"] {
            assert!(!images.join(f).exists(), "{what}: {f} left behind");
        }
        b.assert_running(what);
    };

    b.assert_cancelled_before("stuck-before");

    let images = b.work.join("images-stuck-cancel");
    let (r, triggered, returned) =
        b.checkpoint_cancelled_after(&images, Duration::from_millis(200));
    let e = r.expect_err("a checkpoint cancelled while its freezer cannot freeze");
    let late = returned.saturating_duration_since(triggered);
    eprintln!("cancelled during the freeze wait: returned {late:?} after the trigger: {e}");
    assert_eq!(e.code, Code::Cancelled, "{e:?}");
    assert!(
        late < Duration::from_millis(200),
        "the call returned {late:?} after the trigger"
    );
    check(&e, &images, "cancelled during the freeze wait");

    let images = b.work.join("images-stuck-timeout");
    let mut o = options(&images);
    o.set_leave_running(true);
    let timeout = Duration::from_millis(300);
    o.set_timeout(Some(timeout));
    let start = Instant::now();
    let e = container::checkpoint(&mut o, &b.bundle, b.pid, false)
        .expect_err("a checkpoint whose freezer cannot freeze, under a 300 ms timeout");
    let took = start.elapsed();
    eprintln!("timed out during the freeze wait after {took:?}: {e}");
    assert_eq!(e.code, Code::Timeout, "{e:?}");
    assert!(
        took < timeout + Duration::from_millis(200),
        "a 300 ms timeout took {took:?}"
    );
    check(&e, &images, "timed out during the freeze wait");
}

/// A paused container whose dump fails stays paused: ckpt did not freeze it, so it must not
/// thaw it either.
#[test]
fn a_failed_dump_of_a_paused_container_leaves_it_paused() {
    if !runc_v1_freezer_ready() {
        return;
    }
    let _g = serial();
    let b = Ctr::start("review", "paused");
    assert!(runc_at(&b.state, &["pause", &b.id]));
    let images = b.work.join("images-paused");
    std::fs::create_dir_all(images.join("cgroup.img")).unwrap();
    let mut o = options(&images);
    o.set_leave_running(true);
    let r = container::checkpoint(&mut o, &b.bundle, b.pid, false);
    let state = b.freezer();
    // Timeouts that kill criu before, while and after it seizes the paused tree.
    let mut timed = vec![];
    for ms in [20u64, 80, 120, 150, 200, 250] {
        let mut o = options(&b.work.join(format!("images-paused-{ms}")));
        o.set_leave_running(true);
        o.set_timeout(Some(Duration::from_millis(ms)));
        let r = container::checkpoint(&mut o, &b.bundle, b.pid, false);
        timed.push((
            ms,
            r.map(|_| ()).map_err(|e| (e.code, e.message)),
            b.freezer(),
        ));
    }
    eprintln!(
        "paused, with timeouts: {timed:?}; init alive: {}",
        b.alive()
    );
    assert!(runc_at(&b.state, &["resume", &b.id]));
    for (ms, _, state) in &timed {
        assert_eq!(
            state, "FROZEN",
            "a paused container was thawed by a dump cut at {ms} ms"
        );
    }
    assert!(r.is_err(), "cgroup.img is a directory");
    assert_eq!(
        state, "FROZEN",
        "a paused container was thawed by a failed dump"
    );
    // A cut that catches CRIU's parasite code running in the init (about one cut in ten) kills
    // the init and the container with it: that is CRIU's doing, and the error must say so.
    if b.advancing() {
        b.assert_running("resumed after the failed dump");
    } else {
        assert!(
            timed
                .iter()
                .any(|(_, r, _)| r.as_ref().is_err_and(|(_, m)| {
                    m.contains("the container is gone")
                        || m.contains("once the container is resumed")
                })),
            "the container stopped, and no error said it would: {timed:?}"
        );
    }
}

/// The processes in the container's v1 freezer cgroup.
fn procs_in(id: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/freezer/{id}/cgroup.procs")).unwrap_or_default()
}

/// A container restore cancelled from its own hook (the runtime's hooks run from CRIU's
/// `setup-namespaces` and `post-restore`): `Cancelled`, the restored tree killed and reaped
/// (its pid reported), nothing left running in the container's cgroup, CRIU's root unbound;
/// the images are intact, and a restore with a new token brings the container back.
#[test]
fn a_container_restore_cancelled_from_its_hook_leaves_nothing_running() {
    if !runc_v1_freezer_ready() {
        return;
    }
    let _g = serial();
    let b = Ctr::start("review", "rcancel");
    let images = b.work.join("images");
    let mut o = options(&images);
    container::checkpoint(&mut o, &b.bundle, b.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    wait_gone(b.pid, Duration::from_secs(5));
    runc_at(&b.state, &["delete", "-f", &b.id]);
    let me = format!("ckpt-criu-root-{}-", std::process::id());
    for script in ["setup-namespaces", "post-restore"] {
        let cancel = ckpt::Cancel::new().unwrap();
        let mut o = options(&images);
        o.set_cancel(Some(&cancel));
        let trigger = cancel.clone();
        let at = script.to_string();
        let hooks: std::sync::Arc<container::HookFn> =
            std::sync::Arc::new(move |s: &str, _pid: i32| {
                if s == at {
                    trigger.trigger();
                }
                Ok(())
            });
        let r = container::restore(
            &mut o,
            container::RestoreRequest {
                bundle: b.bundle.clone(),
                hooks: Some(hooks),
                ..Default::default()
            },
        );
        let e = match r {
            Ok((_, r)) => {
                kill_and_reap(r.pid);
                panic!("a restore cancelled at {script} succeeded");
            }
            Err(e) => e,
        };
        eprintln!(
            "cancelled at {script}: outcome {} pid {}: {}",
            e.outcome, e.pid, e.message
        );
        assert_eq!(e.code, Code::Cancelled, "{script}: {e:?}");
        if e.pid > 0 {
            assert!(
                e.outcome & ckpt::error::outcome::RESTORED_KILLED != 0,
                "{script}: {e:?}"
            );
            assert!(
                !Path::new(&format!("/proc/{}", e.pid)).exists(),
                "{script}: the restored root {} is still there (unreaped?)",
                e.pid
            );
        }
        let end = Instant::now() + Duration::from_secs(3);
        while !procs_in(&b.id).trim().is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            procs_in(&b.id).trim(),
            "",
            "{script}: processes left in the cgroup"
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&me),
            "{script}: CRIU's root is still bound"
        );
    }
    let mut o = options(&images);
    let (_, r) = container::restore(
        &mut o,
        container::RestoreRequest {
            bundle: b.bundle.clone(),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("restore after the cancelled ones: {e:?}"));
    let counting = b.advancing();
    let frozen = b.freezer();
    kill_and_reap(r.pid);
    assert!(
        counting,
        "the container restored after the cancelled restores does not count"
    );
    assert_eq!(frozen, "THAWED");
}

/// The dump succeeded and CRIU killed the container, but ckpt cannot set the FROZEN it left in
/// cgroup.img back to THAWED (the image is made immutable at `post-dump`, after CRIU wrote
/// it). The error must say the tree was killed (`TREE_KILLED`: never reported as untouched)
/// and keep the images whole, descriptors.json and ckpt-container.json included: they are the
/// only copy of the workload left.
#[test]
fn a_killed_container_whose_image_cannot_be_thawed_is_reported_killed_and_its_images_kept() {
    if !runc_v1_freezer_ready() {
        return;
    }
    if Command::new("chattr")
        .arg("--help")
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        not_exercised("no chattr to make cgroup.img immutable");
        return;
    }
    let _g = serial();
    let b = Ctr::start("review", "nothaw");
    let images = b.work.join("images");
    let img = images.join("cgroup.img");
    let mut o = options(&images);
    let at = img.clone();
    o.set_notify(Some(std::sync::Arc::new(move |n: &ckpt::Notification| {
        if n.script == "post-dump" {
            let ok = Command::new("chattr").arg("+i").arg(&at).status();
            if !ok.is_ok_and(|s| s.success()) {
                return Err("chattr +i cgroup.img failed".into());
            }
        }
        Ok(())
    })));
    let r = container::checkpoint(&mut o, &b.bundle, b.pid, false);
    let _ = Command::new("chattr").arg("-i").arg(&img).status();
    let e = match r {
        Ok(_) => {
            not_exercised("the rewrite of an immutable cgroup.img succeeded");
            return;
        }
        Err(e) => e,
    };
    eprintln!("outcome {}: {}", e.outcome, e.message);
    assert!(e.message.contains("the dump succeeded"), "{e:?}");
    assert!(
        e.outcome & ckpt::error::outcome::TREE_KILLED != 0,
        "the container was killed by the dump, the error does not say so: {e:?}"
    );
    for f in ["descriptors.json", "ckpt-container.json", "inventory.img"] {
        assert!(images.join(f).exists(), "{f} was removed");
    }
}
