//! A runc container checkpoint into an image directory that fills up (a small tmpfs), and one
//! whose runtime deletes the container in the middle (`runc delete -f` from the callback at
//! `pre-dump` and `post-dump`). The full directory: CRIU's `No space left on device` (or
//! ckpt's own, when its files do not fit), the container THAWED and counting, no staged file
//! left. The deleted container: the call returns, criu is reaped and nothing of the
//! checkpoint is left; the container is gone by the runtime's hand. Real runc and CRIU; needs
//! root.

mod common;
mod faultkit;

use ckpt::{Code, container};
use common::containers::{Counting, advancing, runc_at, runc_ready};
use common::options;
use faultkit::Snapshot;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A tmpfs of `size` mounted on `dir`, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs on {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn a_container_checkpoint_into_a_full_image_directory_leaves_it_running() {
    if !runc_ready()
        || !common::criu_allowed(
            "a_container_checkpoint_into_a_full_image_directory_leaves_it_running",
        )
    {
        return;
    }
    let _g = common::serial();
    let c = Counting::start("ckpt-probefaults", "14");
    for (size, leave) in [("2k", true), ("64k", true), ("200k", false)] {
        let what = format!("{size} tmpfs, leave-running {leave}");
        let dir = c.work.join(format!("small-{size}-{leave}"));
        let _t = Tmpfs::mount(&dir, size);
        let mut o = options(&dir);
        o.set_leave_running(leave);
        let snap = Snapshot::take();
        let e = container::checkpoint(&mut o, &c.bundle, c.pid, false)
            .expect_err("the image directory is too small");
        eprintln!("{what}: {:?} outcome {}: {}", e.code, e.outcome, e.message);
        snap.assert_clean(&what);
        assert!(
            matches!(e.code, Code::Criu | Code::Io) && e.message.contains("No space left"),
            "{what}: {e:?}"
        );
        assert_eq!(e.outcome, 0, "{what}: {e:?}");
        let left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".ckpt-") || n.ends_with(".json"))
            .collect();
        assert!(left.is_empty(), "{what}: ckpt's files left: {left:?}");
        assert_eq!(c.freezer(), "THAWED", "{what}");
        assert!(advancing(&c.bundle), "{what}: the container does not count");
    }
}

#[test]
fn a_container_its_runtime_deletes_mid_checkpoint_ends_the_call_cleanly() {
    if !runc_ready()
        || !common::criu_allowed(
            "a_container_its_runtime_deletes_mid_checkpoint_ends_the_call_cleanly",
        )
    {
        return;
    }
    let _g = common::serial();
    for (i, at) in ["pre-dump", "post-dump"].into_iter().enumerate() {
        let c = Counting::start("ckpt-probefaults", &format!("15{i}"));
        let images = c.work.join("images");
        let mut o = options(&images);
        o.set_leave_running(true);
        o.set_timeout(Some(Duration::from_secs(10)));
        let (state, id, a) = (c.state.clone(), c.id.clone(), at.to_string());
        let deleter: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<bool>>>> = Arc::default();
        let d = deleter.clone();
        o.set_notify(Some(Arc::new(move |n: &ckpt::Notification| {
            if n.script == a {
                let (st, id) = (state.clone(), id.clone());
                *d.lock().unwrap() = Some(std::thread::spawn(move || {
                    runc_at(&st, &["delete", "-f", &id])
                }));
                // The runtime's delete runs while CRIU holds the container.
                std::thread::sleep(Duration::from_millis(300));
            }
            Ok(())
        })));
        let snap = Snapshot::take();
        let t0 = Instant::now();
        let r = container::checkpoint(&mut o, &c.bundle, c.pid, false);
        let took = t0.elapsed();
        let deleted = deleter.lock().unwrap().take().map(|t| t.join().unwrap());
        match &r {
            Ok((_, s)) => eprintln!(
                "deleted at {at}: succeeded, outcome {} after {took:?}",
                s.outcome
            ),
            Err(e) => eprintln!(
                "deleted at {at}: {:?} outcome {} after {took:?}: {}",
                e.code, e.outcome, e.message
            ),
        }
        snap.assert_clean(at);
        assert_eq!(
            deleted,
            Some(true),
            "deleted at {at}: runc delete -f failed"
        );
        assert!(
            took < Duration::from_secs(8),
            "deleted at {at}: took {took:?}"
        );
        let staged: Vec<String> = std::fs::read_dir(&images)
            .map(|rd| {
                rd.flatten()
                    .map(|d| d.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(".ckpt-"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            staged.is_empty(),
            "deleted at {at}: staged files left: {staged:?}"
        );
        common::containers::wait_gone(c.pid, Duration::from_secs(5));
        assert!(
            !Path::new(&format!("/proc/{}", c.pid)).exists(),
            "deleted at {at}: the container runs on after runc delete -f"
        );
    }
}
