//! A Rust runtime may catch a panic of its own notification callback or restore hook (a
//! request handler, an async task) and go on with the same options. The container layer then
//! leaves nothing behind: the options are as the caller set them, the container runs on
//! thawed, no staged file stays in the image directory, and no bind mount or directory of
//! CRIU's root stays on the host. Needs root, runc and criu.

mod common;

use ckpt::container::{self, HookFn, RestoreRequest};
use common::containers::{Counting, advancing, restore_bundle, runc_ready};
use common::{options, serial};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// Runs `f`, catching its panic without printing it (the panics here are expected).
fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    r
}

fn mounted(path: &std::path::Path) -> bool {
    let needle = format!(" {} ", path.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(&needle))
}

#[test]
fn a_panicking_callback_or_hook_leaves_the_options_and_the_host_as_they_were() {
    if !runc_ready() {
        return;
    }
    let _g = serial();
    let c = Counting::start("ckpt-unwind", "c");

    // A leave-running checkpoint whose callback panics at pre-dump, with the container frozen
    // by ckpt and criu running.
    let images = c.work.join("images-panic");
    let mut o = options(&images);
    o.set_leave_running(true);
    o.set_notify(Some(Arc::new(|n: &ckpt::Notification| {
        if n.script == ckpt::notify::PRE_DUMP {
            panic!("the runtime's callback panics");
        }
        Ok(())
    })));
    let r = quietly(|| container::checkpoint(&mut o, &c.bundle, c.pid, false));
    assert!(r.is_err(), "the callback's panic reaches the caller");
    assert_eq!(
        o.ext_mount_count(),
        0,
        "the plan's external mounts stay on the options"
    );
    assert_eq!(o.root(), None, "the plan's root stays on the options");
    assert_eq!(c.freezer(), "THAWED");
    assert!(advancing(&c.bundle), "the container runs on");
    let staged: Vec<_> = std::fs::read_dir(&images)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".ckpt-"))
        .collect();
    assert!(staged.is_empty(), "staged files left: {staged:?}");

    // A plain checkpoint, then a restore whose hook panics at setup-namespaces.
    let images = c.work.join("images");
    let mut o = options(&images);
    container::checkpoint(&mut o, &c.bundle, c.pid, false).expect("checkpoint");
    c.remove_dumped();
    let criu_root = c.work.join("criu-root");
    let hooks: Arc<HookFn> = Arc::new(|at: &str, _pid: i32| {
        if at == ckpt::notify::SETUP_NAMESPACES {
            panic!("the runtime's hook panics");
        }
        Ok(())
    });
    let req = RestoreRequest {
        bundle: c.bundle.clone(),
        hooks: Some(hooks),
        criu_root: Some(criu_root.clone()),
        ..Default::default()
    };
    let mut o = options(&images);
    let r = quietly(|| container::restore(&mut o, req));
    if let Ok(Ok((_, restored))) = &r {
        c.remove_restored(restored.pid);
    }
    assert!(r.is_err(), "the hook's panic reaches the caller");
    assert!(!o.has_notify(), "the hook's wrapper stays on the options");
    assert_eq!(
        o.ext_mount_count(),
        0,
        "the plan's external mounts stay on the options"
    );
    assert_eq!(o.root(), None, "the plan's root stays on the options");
    assert!(
        !mounted(&criu_root),
        "the rootfs stays bound on CRIU's root"
    );
    assert!(!criu_root.exists(), "CRIU's root directory stays");

    // The same panic in an archive's import-and-restore: the bundle it unpacked is removed.
    let mut req = ckpt::archive::ExportRequest {
        images_dir: images.clone(),
        ..Default::default()
    };
    ckpt::archive::container_export::fill_from_bundle(&mut req, &c.bundle).expect("spec");
    let archive = c.work.join("ckpt.tar.zst");
    ckpt::archive::export(&req, &archive).expect("export");
    let imported = c.work.join("imported");
    let hooks: Arc<HookFn> = Arc::new(|at: &str, _pid: i32| {
        if at == ckpt::notify::POST_RESTORE {
            panic!("the runtime's hook panics");
        }
        Ok(())
    });
    let ir = ckpt::archive::ImportRestore {
        bundle: imported.clone(),
        rootfs: ckpt::archive::NewRootfs::Dir(c.bundle.join("rootfs")),
        name: None,
        id: None,
        namespaces: vec![],
        limits: Default::default(),
        keep_network: false,
        stdio: [None, None, None],
        hooks: Some(hooks),
    };
    let mut ao = options(&images);
    let r = quietly(|| ckpt::archive::restore::restore(&mut ao, &archive, ir));
    if let Ok(Ok(ri)) = &r {
        c.remove_restored(ri.restored.pid);
    }
    assert!(r.is_err(), "the hook's panic reaches the caller");
    assert!(!imported.exists(), "the unpacked bundle stays");

    // The same options restore the container.
    let (_, restored) = restore_bundle(&mut o, &c.bundle)
        .unwrap_or_else(|e| panic!("restore with the same options: {e:?}"));
    let counting = advancing(&c.bundle);
    c.remove_restored(restored.pid);
    assert!(counting, "the restored container counts");
}
