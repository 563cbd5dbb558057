//! CRIU's version and feature answers are asked once per handle (the options) and criu binary:
//! the real criu runs behind a wrapper that counts how often it was started.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ckpt::{Code, ops};
use common::*;

fn real_criu() -> PathBuf {
    std::env::var_os("CKPT_CRIU")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/local/sbin/criu".into())
}

/// A criu that appends a line to `count` each time it starts, then is the real one.
fn counting_criu(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let count = dir.join(format!("{name}.count"));
    let wrapper = dir.join(name);
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >>'{}'\nexec '{}' \"$@\"\n",
            count.display(),
            real_criu().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (wrapper, count)
}

fn starts(count: &Path) -> usize {
    std::fs::read_to_string(count)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn version_is_asked_once_per_handle_and_criu_binary() {
    if !criu_allowed("version_is_asked_once_per_handle_and_criu_binary") {
        return;
    }
    let d = TempDir::new("answers-version");
    let (a, count_a) = counting_criu(&d.path, "criu-a");
    let (b, count_b) = counting_criu(&d.path, "criu-b");
    let mut o = options(&d.sub("images"));
    o.set_criu_path(&a).unwrap();
    let v1 = ops::version(&o).expect("version");
    let v2 = ops::version(&o).expect("version again");
    assert_eq!(v1, v2);
    assert!(v1.number() >= 30000, "{v1:?}");
    assert_eq!(
        starts(&count_a),
        1,
        "the second answer comes from the handle"
    );
    // Another criu binary is asked again.
    o.set_criu_path(&b).unwrap();
    assert_eq!(ops::version(&o).expect("version of b"), v1);
    assert_eq!(starts(&count_b), 1);
    // A new handle asks again.
    let mut o2 = options(&d.sub("images2"));
    o2.set_criu_path(&a).unwrap();
    ops::version(&o2).expect("version, new handle");
    assert_eq!(starts(&count_a), 2);
}

#[test]
fn the_feature_check_before_a_pre_dump_runs_once_per_handle() {
    if !criu_allowed("the_feature_check_before_a_pre_dump_runs_once_per_handle") {
        return;
    }
    let _s = serial();
    let d = TempDir::new("answers-features");
    let (criu, count) = counting_criu(&d.path, "criu");
    let mut p = Proc::spawn(Command::new("sleep").arg("100"));
    let mut dumped = 0;
    let mut o = options(&d.sub("unused"));
    o.set_criu_path(&criu).unwrap();
    o.set_pre_dump(true);
    o.set_leave_running(true);
    for i in 0..2 {
        o.set_image_path(d.sub(&format!("pre{i}"))).unwrap();
        match ops::checkpoint(&o, p.pid) {
            Ok(_) => dumped += 1,
            Err(e) => {
                assert_eq!(e.code, Code::Unsupported, "{e:?}");
                assert!(e.message.contains("memory change tracking"), "{e:?}");
            }
        }
    }
    if dumped == 0 {
        not_exercised(
            "pre-dump itself (this kernel has no memory change tracking): only its refusal, twice",
        );
    }
    // One feature check for both pre-dumps, plus one criu per pre-dump that ran.
    assert_eq!(
        starts(&count),
        1 + dumped,
        "criu starts: {:?}",
        std::fs::read_to_string(&count)
    );
    // An explicit feature check always asks, and agrees with what the handle remembered.
    let f = ops::feature_check(&o).expect("feature check");
    assert_eq!(f.mem_track == Some(true), dumped == 2);
    assert_eq!(starts(&count), 2 + dumped);
    p.kill();
}

/// The answer is cached, but a triggered token still stops the query: an operation whose
/// options hold a triggered token fails with `Cancelled` (docs/guarantees.md, "Cancellation"),
/// whether or not criu would have been asked.
#[test]
fn a_cached_version_does_not_bypass_a_triggered_token() {
    if !criu_allowed("a_cached_version_does_not_bypass_a_triggered_token") {
        return;
    }
    let d = TempDir::new("answers-cancel");
    let (a, count_a) = counting_criu(&d.path, "criu-a");
    let mut o = options(&d.sub("images"));
    o.set_criu_path(&a).unwrap();
    ops::version(&o).expect("version");
    let cancel = ckpt::Cancel::new().unwrap();
    o.set_cancel(Some(&cancel));
    cancel.trigger();
    let e = ops::version(&o).expect_err("a triggered token stops a cached version query");
    assert_eq!(e.code, Code::Cancelled, "{e:?}");
    assert_eq!(starts(&count_a), 1);
    // Detached, the cached answer serves again, criu not started.
    o.set_cancel(None);
    ops::version(&o).expect("version after detaching the token");
    assert_eq!(starts(&count_a), 1);
}

/// One handle shared by threads asks criu once: the answers are kept under the handle's lock.
#[test]
fn threads_sharing_a_handle_ask_for_the_version_once() {
    if !criu_allowed("threads_sharing_a_handle_ask_for_the_version_once") {
        return;
    }
    let d = TempDir::new("answers-threads");
    let (a, count_a) = counting_criu(&d.path, "criu-a");
    let mut o = options(&d.sub("images"));
    o.set_criu_path(&a).unwrap();
    let o = &o;
    let versions: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(move || ops::version(o))).collect();
        hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    assert!(versions.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(starts(&count_a), 1);
}
