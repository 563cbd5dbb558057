//! What CRIU says reaches the caller, whole and in the right words: its standard error (large,
//! late, or the log itself with log-to-stderr), its log read through the directory ckpt holds
//! open, and the excerpt that explains a failure. Real CRIU throughout; a shell wrapper around
//! it where CRIU must be made to misbehave.

mod faultkit;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ckpt::Options;
use faultkit::{Snapshot, TempDir, serial};

/// An executable shell script at `path`.
fn script(path: &Path, body: &str) -> PathBuf {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

/// criu's standard error is a pipe ckpt reads. A wrapper writes 200 KB to it (three times
/// what a pipe holds) before it runs the real criu: a write end left non-blocking makes that
/// write fail with EAGAIN, and the wrapper exits 97 instead of starting criu.
#[test]
fn criu_writing_more_than_a_pipe_holds_to_stderr() {
    let _g = serial();
    let dir = TempDir::new("faultsb-loud");
    let big = dir.join("big");
    std::fs::write(&big, vec![b'x'; 200_000]).unwrap();
    let criu = which_criu();
    let wrapper = script(
        &dir.join("criu-loud"),
        &format!(
            "cat {} >&2 || exit 97\necho 'wrapper: done writing' >&2\nexec {} \"$@\"",
            big.display(),
            criu.display()
        ),
    );
    let o = Options {
        criu_path: Some(wrapper),
        op_timeout: Some(Duration::from_secs(30)),
        ..Options::new()
    };
    let snap = Snapshot::take();
    let r = ckpt::ops::version(&o);
    snap.assert_clean("loud criu");
    let v = r.unwrap_or_else(|e| panic!("version through a wrapper writing 200 KB to stderr: {e}"));
    println!(
        "200 KB on criu's stderr, then criu answered VERSION {}",
        v.number()
    );
}

/// The real criu binary, as PATH finds it.
fn which_criu() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("criu"))
                .find(|c| c.is_file())
        })
        .expect("criu on PATH")
}
