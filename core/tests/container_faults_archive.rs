//! An import-and-restore of a runc container's archive under faults: a cancellation while the
//! archive is unpacked, a callback failing after CRIU made the tree, a short timeout. The
//! caller gets the error (with the killed tree's pid where there was one); the bundle
//! directory is removed, the overlay unmounted, and no process, cgroup or CRIU root is left.
//! Before, a cancellation during the unpacking was noticed only once the whole archive was
//! unpacked and the overlay mounted. Real runc and CRIU; needs root.

mod common;
#[path = "container_faults/failing.rs"]
mod failing;
mod faultkit;
#[path = "container_faults/leftovers.rs"]
mod leftovers;

use ckpt::archive::{self, ExportRequest, ImportRestore, Limits, NewRootfs};
use ckpt::{Cancel, Code, container};
use common::containers::{Counting, kill_and_reap, runc_ready};
use common::options;
use failing::refusing_at;
use faultkit::Snapshot;
use leftovers::leftovers;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Extra files of 8 MiB each in the archive, so that unpacking it takes a while.
const BIG: usize = 16;

fn request(bundle: &Path, lower: &Path, id: String) -> ImportRestore {
    ImportRestore {
        bundle: bundle.to_path_buf(),
        rootfs: NewRootfs::Overlay {
            lower: lower.to_path_buf(),
        },
        name: None,
        id: Some(id),
        namespaces: vec![],
        limits: Limits::default(),
        keep_network: false,
        stdio: [None, None, None],
        hooks: None,
    }
}

/// What an import-and-restore that failed may not leave.
fn assert_undone(bundle: &Path, id: &str, e: &ckpt::Error, snap: &Snapshot, what: &str) {
    let bad = leftovers(id, e, snap, what);
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(!bundle.exists(), "{what}: the bundle is left");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&bundle.to_string_lossy().into_owned()),
        "{what}: the overlay is still mounted"
    );
}

#[test]
fn container_archive_restores_under_faults_leave_nothing() {
    if !runc_ready()
        || !common::criu_allowed("container_archive_restores_under_faults_leave_nothing")
    {
        return;
    }
    let _g = common::serial();
    let c = Counting::start("ckpt-probefaults", "16");
    let images = c.work.join("images");
    let mut o = options(&images);
    let (_, stats) = container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    c.remove_dumped();
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.bundle.join("config.json")).unwrap())
            .unwrap();
    let mut extra: Vec<(String, PathBuf)> = vec![];
    for i in 0..BIG {
        let p = c.work.join(format!("big-{i}"));
        std::fs::write(&p, vec![i as u8; 8 << 20]).unwrap();
        extra.push((format!("big-{i}"), p));
    }
    let out = c.work.join("a.tar.zst");
    let req = ExportRequest {
        images_dir: images.clone(),
        spec,
        stats: Some(stats),
        extra_files: extra,
        no_sync: true,
        ..Default::default()
    };
    archive::export(&req, &out).unwrap_or_else(|e| panic!("export: {e:?}"));
    let lower = c.bundle.join("rootfs");

    // Cancelled before the call: nothing is unpacked.
    let bundle = c.work.join("imp-before");
    let cancel = Cancel::new().unwrap();
    cancel.trigger();
    let mut o = options(&c.work.join("unused"));
    o.set_cancel(Some(&cancel));
    let e = archive::restore::restore(&mut o, &out, request(&bundle, &lower, c.id.clone()))
        .expect_err("cancelled before the call");
    assert_eq!(e.code, Code::Cancelled, "{e:?}");
    assert!(!bundle.exists(), "a cancelled import created its bundle");

    // Cancelled once the first big file is unpacked: the import stops at the next entry.
    let bundle = c.work.join("imp-during");
    let cancel = Cancel::new().unwrap();
    let mut o = options(&c.work.join("unused"));
    o.set_cancel(Some(&cancel));
    let seen = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (seen, done, bundle, cancel) =
            (seen.clone(), done.clone(), bundle.clone(), cancel.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let n = (0..BIG)
                    .filter(|i| bundle.join(format!("big-{i}")).exists())
                    .count();
                seen.fetch_max(n, Ordering::Relaxed);
                if n > 0 {
                    cancel.trigger();
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let snap = Snapshot::take();
    let e = archive::restore::restore(&mut o, &out, request(&bundle, &lower, c.id.clone()))
        .expect_err("cancelled while unpacking");
    done.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let n = seen.load(Ordering::Relaxed);
    eprintln!(
        "cancelled while unpacking: {} big files seen: {}",
        n, e.message
    );
    assert_eq!(e.code, Code::Cancelled, "{e:?}");
    assert!(
        n < BIG / 2,
        "the import went on after the cancellation: {n} of {BIG} big files"
    );
    assert_undone(&bundle, &c.id, &e, &snap, "cancelled while unpacking");

    // A callback failing after CRIU made the tree, and a short timeout.
    for case in ["post-restore", "timeout"] {
        let bundle = c.work.join(format!("imp-{case}"));
        let mut o = options(&c.work.join("unused"));
        if case == "timeout" {
            o.set_timeout(Some(Duration::from_millis(60)));
        } else {
            o.set_notify(Some(refusing_at("post-restore")));
        }
        let snap = Snapshot::take();
        match archive::restore::restore(&mut o, &out, request(&bundle, &lower, c.id.clone())) {
            Ok(r) => {
                kill_and_reap(r.restored.pid);
                panic!("{case}: the restore succeeded");
            }
            Err(e) => {
                eprintln!(
                    "{case}: {:?} pid {} outcome {}: {}",
                    e.code, e.pid, e.outcome, e.message
                );
                let want = if case == "timeout" {
                    Code::Timeout
                } else {
                    Code::Callback
                };
                assert_eq!(e.code, want, "{e:?}");
                assert_undone(&bundle, &c.id, &e, &snap, case);
            }
        }
    }
}
