//! The container C API's contract on bad input: NULL handles, out-of-range numbers, closed
//! descriptors, missing bundle or pid: an error status and message, never a crash, and the
//! handle unchanged.

use ckpt_ffi::container::*;
use ckpt_ffi::error::{ckpt_error, ckpt_error_free, ckpt_error_message};
use ckpt_ffi::opts::{ckpt_opts_free, ckpt_opts_new};
use ckpt_ffi::*;
use std::ffi::CStr;

fn message(e: *mut ckpt_error) -> String {
    // SAFETY: a live error from ckpt; its message lives as long as it.
    unsafe { CStr::from_ptr(ckpt_error_message(e)) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn bad_input_gets_a_status_and_a_message() {
    // SAFETY: every pointer below is NULL or a live handle made here.
    unsafe {
        assert_eq!(
            ckpt_container_set_bundle(std::ptr::null_mut(), c"/x".as_ptr()),
            CKPT_ERR_NULL_ARGUMENT
        );
        ckpt_container_free(std::ptr::null_mut());
        ckpt_string_free(std::ptr::null_mut());
        let c = ckpt_container_new();
        assert_eq!(
            ckpt_container_set_bundle(c, std::ptr::null()),
            CKPT_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            ckpt_container_set_bundle(c, c"".as_ptr()),
            CKPT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            ckpt_container_set_bundle(c, c"\xff".as_ptr()),
            CKPT_ERR_INVALID_UTF8
        );
        assert_eq!(ckpt_container_set_pid(c, 0), CKPT_ERR_INVALID_ARGUMENT);
        assert_eq!(ckpt_container_set_pid(c, -5), CKPT_ERR_INVALID_ARGUMENT);
        assert_eq!(
            ckpt_container_set_stdio_fd(c, 3, 1),
            CKPT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(ckpt_container_set_stdio_fd(c, 0, -1), CKPT_ERR_BAD_FD);
        assert_eq!(ckpt_container_set_stdio_fd(c, 0, 987_654), CKPT_ERR_BAD_FD);
        assert_eq!(
            ckpt_container_set_runtime(c, c"docker".as_ptr(), std::ptr::null(), c"x".as_ptr()),
            CKPT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            ckpt_container_set_runtime(
                c,
                c"runc".as_ptr(),
                c"/nonexistent-ckpt".as_ptr(),
                c"x".as_ptr()
            ),
            CKPT_ERR_NOT_FOUND
        );
        let o = ckpt_opts_new();
        let mut err: *mut ckpt_error = std::ptr::null_mut();
        assert_eq!(
            ckpt_container_checkpoint(c, o, std::ptr::null_mut(), &mut err),
            CKPT_ERR_INVALID_ARGUMENT
        );
        assert!(message(err).contains("no bundle"), "{}", message(err));
        ckpt_error_free(err);
        assert_eq!(
            ckpt_container_set_bundle(c, c"/nonexistent-ckpt-bundle".as_ptr()),
            CKPT_OK
        );
        assert_eq!(
            ckpt_container_checkpoint(c, o, std::ptr::null_mut(), &mut err),
            CKPT_ERR_INVALID_ARGUMENT
        );
        assert!(message(err).contains("no init pid"), "{}", message(err));
        ckpt_error_free(err);
        assert_eq!(ckpt_container_set_pid(c, 1), CKPT_OK);
        let mut json: *mut std::ffi::c_char = std::ptr::null_mut();
        assert_eq!(
            ckpt_container_explain(c, o, false, &mut json, &mut err),
            CKPT_ERR_NOT_FOUND
        );
        assert!(json.is_null());
        assert!(
            message(err).contains("is not a directory"),
            "{}",
            message(err)
        );
        ckpt_error_free(err);
        let mut pid = 7;
        assert_eq!(
            ckpt_container_restore(c, o, &mut pid, std::ptr::null_mut(), &mut err),
            CKPT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(pid, 0);
        assert!(
            message(err).contains("image path is not set"),
            "{}",
            message(err)
        );
        ckpt_error_free(err);
        // A restore that could not hand over the restored init's pid is never started.
        assert_eq!(
            ckpt_container_restore(c, o, std::ptr::null_mut(), std::ptr::null_mut(), &mut err),
            CKPT_ERR_NULL_ARGUMENT
        );
        assert!(
            message(err).contains("pid output pointer is NULL"),
            "{}",
            message(err)
        );
        ckpt_error_free(err);
        assert_eq!(
            ckpt_container_checkpoint(std::ptr::null_mut(), o, std::ptr::null_mut(), &mut err),
            CKPT_ERR_NULL_ARGUMENT
        );
        ckpt_error_free(err);
        ckpt_opts_free(o);
        ckpt_container_free(c);
    }
}

#[test]
fn a_failed_setter_says_why() {
    // SAFETY: a live handle made here; strings are literals.
    unsafe {
        let c = ckpt_container_new();
        assert!(ckpt_container_last_error(c).is_null());
        assert_eq!(
            ckpt_container_set_runtime(
                c,
                c"runc".as_ptr(),
                c"/nonexistent-ckpt".as_ptr(),
                c"x".as_ptr()
            ),
            CKPT_ERR_NOT_FOUND
        );
        let m = CStr::from_ptr(ckpt_container_last_error(c))
            .to_string_lossy()
            .into_owned();
        assert!(
            m.contains("runc container x") && m.contains("/nonexistent-ckpt/x/state.json"),
            "{m}"
        );
        assert_eq!(ckpt_container_set_pid(c, 3), CKPT_OK);
        assert!(ckpt_container_last_error(c).is_null());
        assert!(ckpt_container_last_error(std::ptr::null()).is_null());
        ckpt_container_free(c);
    }
}

/// An empty state root names no directory: it is refused, not read as the current directory
/// (`<cwd>/ID/state.json`), and the handle keeps what it had.
#[test]
fn an_empty_runtime_state_root_is_refused() {
    // SAFETY: a live handle made here; strings are literals.
    unsafe {
        let c = ckpt_container_new();
        assert_eq!(ckpt_container_set_pid(c, 3), CKPT_OK);
        for rt in [c"runc", c"crun"] {
            assert_eq!(
                ckpt_container_set_runtime(c, rt.as_ptr(), c"".as_ptr(), c"x".as_ptr()),
                CKPT_ERR_INVALID_ARGUMENT
            );
            let m = CStr::from_ptr(ckpt_container_last_error(c))
                .to_string_lossy()
                .into_owned();
            assert!(m.contains("state root") && m.contains("empty"), "{m}");
        }
        ckpt_container_free(c);
    }
}

/// `ckpt_container_restore` consumes the handle's stdio descriptors on every call on a handle
/// with a bundle, as its comment says, also one refused for a NULL options handle: they stayed
/// on the handle then, holding the caller's pipe open (no end of file for its reader) until
/// the handle was freed, while every other refusal closed them.
#[test]
fn a_restore_with_null_options_consumes_the_stdio_descriptors() {
    use std::os::fd::AsRawFd;
    // SAFETY: a live handle made here, NUL-terminated strings, out-pointers to locals.
    unsafe {
        let c = ckpt_container_new();
        assert_eq!(
            ckpt_container_set_bundle(c, c"/nonexistent-bundle".as_ptr()),
            0
        );
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK).unwrap();
        assert_eq!(ckpt_container_set_stdio_fd(c, 1, w.as_raw_fd()), 0);
        drop(w);
        let mut pid = 0i32;
        let mut err: *mut ckpt_error = std::ptr::null_mut();
        assert_eq!(
            ckpt_container_restore(
                c,
                std::ptr::null_mut(),
                &mut pid,
                std::ptr::null_mut(),
                &mut err
            ),
            CKPT_ERR_NULL_ARGUMENT
        );
        ckpt_error_free(err);
        let mut buf = [0u8; 1];
        assert_eq!(
            nix::unistd::read(&r, &mut buf),
            Ok(0),
            "the stdio descriptor stayed on the handle"
        );
        ckpt_container_free(c);
    }
}
