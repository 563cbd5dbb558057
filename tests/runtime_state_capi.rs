//! `ckpt_container_set_runtime` on a runtime state file that is a FIFO or huge: an error
//! status at once (the call used to block for ever on the FIFO), the reason in
//! `ckpt_container_last_error`, and the handle unchanged (a later checkpoint still says it has
//! no bundle). Needs no root.

use ckpt_ffi::container::*;
use ckpt_ffi::error::{ckpt_error, ckpt_error_free, ckpt_error_message};
use ckpt_ffi::opts::{ckpt_opts_free, ckpt_opts_new};
use ckpt_ffi::*;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// `ckpt_container_set_runtime(runc, root, "c1")` on a fresh handle, in a thread, so that a
/// call that blocks fails the test (the FIFO is then opened for writing to let it go). The
/// status, the handle's last error, and the error of a checkpoint with the handle afterwards.
fn set_runtime(root: &Path, fifo: Option<&Path>) -> (ckpt_status, String, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    let r = CString::new(root.as_os_str().as_bytes()).unwrap();
    std::thread::spawn(move || {
        // SAFETY: live handles made and freed here; strings NUL-terminated.
        unsafe {
            let c = ckpt_container_new();
            let st = ckpt_container_set_runtime(c, c"runc".as_ptr(), r.as_ptr(), c"c1".as_ptr());
            let why = CStr::from_ptr(ckpt_container_last_error(c))
                .to_string_lossy()
                .into_owned();
            let o = ckpt_opts_new();
            let mut e: *mut ckpt_error = std::ptr::null_mut();
            ckpt_container_checkpoint(c, o, std::ptr::null_mut(), &mut e);
            let after = CStr::from_ptr(ckpt_error_message(e))
                .to_string_lossy()
                .into_owned();
            ckpt_error_free(e);
            ckpt_opts_free(o);
            ckpt_container_free(c);
            let _ = tx.send((st, why, after));
        }
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(r) => r,
        Err(_) => {
            if let Some(f) = fifo {
                let _ = std::fs::OpenOptions::new().write(true).open(f);
            }
            panic!("ckpt_container_set_runtime blocked for 5 s");
        }
    }
}

#[test]
fn a_fifo_or_huge_state_file_is_refused_at_once() {
    let root = std::env::temp_dir().join(format!("leftovers-{}-state-capi", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("c1");
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");

    nix::unistd::mkfifo(&state, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let (st, why, after) = set_runtime(&root, Some(&state));
    assert_eq!(st, CKPT_ERR_INVALID_ARGUMENT, "{why}");
    assert_eq!(
        why,
        format!(
            "runc container c1: {} is a FIFO, not a regular file",
            state.display()
        )
    );
    assert!(after.contains("no bundle"), "the handle changed: {after}");
    std::fs::remove_file(&state).unwrap();

    let f = std::fs::File::create(&state).unwrap();
    f.set_len(ckpt::container::statefile::MAX_BYTES + 1)
        .unwrap();
    let (st, why, after) = set_runtime(&root, None);
    assert_eq!(st, CKPT_ERR_INVALID_ARGUMENT, "{why}");
    assert!(why.contains("is larger than 4194304 bytes"), "{why}");
    assert!(after.contains("no bundle"), "the handle changed: {after}");
    std::fs::remove_dir_all(&root).unwrap();
}
