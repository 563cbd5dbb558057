//! The container C API from several threads at once, one options handle and one container
//! handle each, on real runc containers: leave-running checkpoints, checkpoints that stop the
//! containers, and restores all succeed; each call's statistics and errors are its own (a
//! failing call beside them names its own bundle only). Needs root, runc and criu.

#[path = "../core/tests/common/mod.rs"]
mod common;

use ckpt_ffi::container::*;
use ckpt_ffi::error::{ckpt_error, ckpt_error_code, ckpt_error_free, ckpt_error_message};
use ckpt_ffi::opts::{
    ckpt_opts, ckpt_opts_free, ckpt_opts_new, ckpt_opts_set_image_path,
    ckpt_opts_set_leave_running, ckpt_opts_set_timeout_ms,
};
use ckpt_ffi::stats::{ckpt_stats, ckpt_stats_free, ckpt_stats_outcome};
use ckpt_ffi::*;
use common::containers::{Counting, advancing, count, runc_ready};
use std::ffi::{CStr, CString};
use std::path::Path;

fn c(p: &Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

/// The status, and the error's status and message when there is one (the error freed).
unsafe fn outcome(st: ckpt_status, err: *mut ckpt_error) -> Result<(), (ckpt_status, String)> {
    if st == CKPT_OK {
        assert!(err.is_null());
        return Ok(());
    }
    // SAFETY: a live error from ckpt; its message lives as long as it, and it is freed once.
    unsafe {
        let m = CStr::from_ptr(ckpt_error_message(err))
            .to_string_lossy()
            .into_owned();
        assert_eq!(ckpt_error_code(err), st);
        ckpt_error_free(err);
        Err((st, m))
    }
}

/// One thread's work on its container through the C API; the restored init's pid.
fn round(ctr: &Counting) -> Result<i32, String> {
    // SAFETY: every handle is made here, used by this thread alone and freed once.
    unsafe {
        let o: *mut ckpt_opts = ckpt_opts_new();
        let h = ckpt_container_new();
        assert_eq!(
            ckpt_container_set_bundle(h, c(&ctr.bundle).as_ptr()),
            CKPT_OK
        );
        assert_eq!(ckpt_container_set_pid(h, ctr.pid), CKPT_OK);
        assert_eq!(ckpt_opts_set_timeout_ms(o, 60_000), CKPT_OK);
        let run = |images: &Path, leave: bool| -> Result<(), String> {
            assert_eq!(ckpt_opts_set_image_path(o, c(images).as_ptr()), CKPT_OK);
            assert_eq!(ckpt_opts_set_leave_running(o, leave), CKPT_OK);
            let mut st: *mut ckpt_stats = std::ptr::null_mut();
            let mut err = std::ptr::null_mut();
            let r = ckpt_container_checkpoint(h, o, &mut st, &mut err);
            let r = outcome(r, err).map_err(|e| format!("{}: checkpoint: {e:?}", ctr.id));
            if r.is_ok() {
                let want = if leave { 0 } else { CKPT_OUTCOME_TREE_KILLED };
                assert_eq!(ckpt_stats_outcome(st), want, "{}", ctr.id);
            }
            ckpt_stats_free(st);
            r
        };
        // A failing call beside the others, on a handle of its own: its error names its own
        // bundle.
        let bad = ckpt_container_new();
        let missing = ctr.work.join("no-such-bundle");
        assert_eq!(
            ckpt_container_set_bundle(bad, c(&missing).as_ptr()),
            CKPT_OK
        );
        assert_eq!(ckpt_container_set_pid(bad, ctr.pid), CKPT_OK);
        let mut err = std::ptr::null_mut();
        let r = ckpt_container_checkpoint(bad, o, std::ptr::null_mut(), &mut err);
        ckpt_container_free(bad);
        match outcome(r, err) {
            Err((_, m)) if m.contains(&ctr.id) => {}
            other => return Err(format!("{}: the bad call said {other:?}", ctr.id)),
        }
        let result = (|| {
            run(&ctr.work.join("lr"), true)?;
            let images = ctr.work.join("stop");
            run(&images, false)?;
            let at_dump = count(&ctr.bundle);
            ctr.remove_dumped();
            assert_eq!(ckpt_opts_set_image_path(o, c(&images).as_ptr()), CKPT_OK);
            let mut pid = 0;
            let mut err = std::ptr::null_mut();
            let r = ckpt_container_restore(h, o, &mut pid, std::ptr::null_mut(), &mut err);
            outcome(r, err).map_err(|e| format!("{}: restore: {e:?}", ctr.id))?;
            if !advancing(&ctr.bundle) || count(&ctr.bundle) < at_dump {
                ctr.remove_restored(pid);
                return Err(format!("{}: does not count on after restore", ctr.id));
            }
            Ok(pid)
        })();
        ckpt_container_free(h);
        ckpt_opts_free(o);
        result
    }
}

#[test]
fn three_threads_three_containers_through_the_c_api() {
    if !runc_ready() {
        return;
    }
    let cs: Vec<Counting> = (0..3)
        .map(|i| Counting::start("probe-soak", &format!("capi{i}")))
        .collect();
    let rs: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = cs.iter().map(|c| s.spawn(move || round(c))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut errors = vec![];
    for (c, r) in cs.iter().zip(rs) {
        match r {
            Ok(pid) => c.remove_restored(pid),
            Err(e) => errors.push(e),
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
}
