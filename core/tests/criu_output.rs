//! What CRIU says reaches the caller, whole and in the right words: its standard error (large,
//! late, or the log itself with log-to-stderr), its log read through the directory ckpt holds
//! open, and the excerpt that explains a failure. Real CRIU throughout; a shell wrapper around
//! it where CRIU must be made to misbehave.

mod faultkit;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ckpt::{Code, Options};
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
    let o = {
        let mut o = Options::new();
        o.set_criu_path(wrapper).unwrap();
        o.set_timeout(Some(Duration::from_secs(30)));
        o
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

fn real_opts(img: &Path) -> Options {
    {
        let mut o = Options::new();
        o.set_image_path(img).unwrap();
        o.set_timeout(Some(Duration::from_secs(60)));
        o
    }
}

/// A mount this test made, lazily unmounted on every path.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, tag: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", tag])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs at {}", at.display());
        Mount(at.to_path_buf())
    }

    fn remount_read_only(&self) {
        let st = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success(), "remount {} read-only", self.0.display());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// An image directory on a read-only file system: CRIU cannot create its log there and says
/// so on its standard error just after its reply. ckpt reads stderr to its end before it
/// writes the message, every time (10 dumps).
#[test]
fn image_directory_on_a_read_only_file_system() {
    let _g = serial();
    let dir = TempDir::new("faultsb-ro");
    let img = dir.join("img");
    let m = Mount::tmpfs(&img, &format!("ckpt-faults-b-ro-{}", std::process::id()));
    m.remount_read_only();
    let c = faultkit::Counter::start(dir.join("counter"));
    let o = real_opts(&img);
    for round in 0..10 {
        let snap = Snapshot::take();
        let e = ckpt::ops::checkpoint(&o, c.pid()).unwrap_err();
        snap.assert_clean("read-only image dir");
        if round == 0 {
            println!(
                "read-only image dir: {:?}: {}\nexcerpt: {:?}",
                e.code, e.message, e.log_excerpt
            );
        }
        assert_eq!(e.code, Code::Criu, "round {round}: {e}");
        assert!(
            e.message.contains("Can't create log file")
                && e.message.contains("Read-only file system"),
            "round {round}: {e}"
        );
        assert!(
            e.log_excerpt
                .as_deref()
                .is_some_and(|x| x.contains("Read-only file system")),
            "round {round}: the excerpt quotes criu's stderr: {:?}",
            e.log_excerpt
        );
    }
    c.assert_alive("after 10 refused dumps");
}

/// log-to-stderr: CRIU writes its log to its standard error instead of a file; ckpt keeps
/// it and quotes it when CRIU fails. No log file is written.
#[test]
fn log_to_stderr_reaches_the_error() {
    let _g = serial();
    let dir = TempDir::new("faultsb-l2s");
    let c = faultkit::Counter::start(dir.join("counter"));
    let img = dir.join("img");
    let mut o = real_opts(&img);
    o.set_log_to_stderr(true);
    o.set_leave_running(true);
    let snap = Snapshot::take();
    let st = ckpt::ops::checkpoint(&o, c.pid()).expect("a dump logging to stderr");
    snap.assert_clean("log-to-stderr dump");
    assert!(st.get(ckpt::StatKey::PagesWritten).is_some_and(|p| p > 0));
    let logs: Vec<_> = std::fs::read_dir(&img)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    assert!(logs.is_empty(), "log files written: {logs:?}");

    // A failing dump: a pid nobody has.
    let gone = {
        let mut ch = std::process::Command::new("true").spawn().unwrap();
        let pid = ch.id() as i32;
        ch.wait().unwrap();
        pid
    };
    let snap = Snapshot::take();
    let e = ckpt::ops::checkpoint(&o, gone).unwrap_err();
    snap.assert_clean("failing log-to-stderr dump");
    println!(
        "log-to-stderr, failing dump: {:?}: {}\nexcerpt:\n{}",
        e.code,
        e.message,
        e.log_excerpt.as_deref().unwrap_or("(none)")
    );
    assert_eq!(e.code, Code::Criu, "{e}");
    assert!(e.log_path.is_none(), "no log file: {:?}", e.log_path);
    let x = e.log_excerpt.as_deref().unwrap_or("");
    assert!(
        x.contains("Error (criu/") && x.contains(&gone.to_string()),
        "the excerpt comes from CRIU's log on stderr: {x:?}"
    );
    assert!(!img.join("dump.log").exists(), "no dump.log");
}

/// A directory under `base` whose absolute path is exactly `len` bytes (components of at
/// most 200 bytes), created.
fn path_of_length(base: &Path, len: usize) -> PathBuf {
    let mut p = base.to_path_buf();
    loop {
        let have = p.as_os_str().len();
        if have >= len {
            break;
        }
        let want = (len - have - 1).min(200);
        // Never leave a remainder too short for a component after the separator.
        let want = if len - have - 1 - want == 1 {
            want - 2
        } else {
            want
        };
        p.push("d".repeat(want.max(1)));
    }
    assert_eq!(p.as_os_str().len(), len, "{}", p.display());
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// The sizes of the regular files in `dir` but those named in `not`, and of all of them.
fn file_bytes(dir: &Path, not: &dyn Fn(&str) -> bool) -> (u64, u64) {
    let (mut some, mut all) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        if !m.is_file() {
            continue;
        }
        all += m.len();
        if !not(&e.file_name().to_string_lossy()) {
            some += m.len();
        }
    }
    (some, all)
}

/// An image path of 4090 bytes, next to PATH_MAX (4096): the log and the statistics are read,
/// and the directory measured, through the descriptor ckpt holds, since the path of any file
/// in it is longer than the kernel accepts.
#[test]
fn image_path_near_path_max() {
    let _g = serial();
    let dir = TempDir::new("faultsb-long");
    let img = path_of_length(dir.path(), 4090);
    let c = faultkit::Counter::start(dir.join("counter"));
    let mut o = real_opts(&img);
    o.set_leave_running(true);
    let snap = Snapshot::take();
    let st = ckpt::ops::checkpoint(&o, c.pid()).expect("a dump into a 4090-byte path");
    snap.assert_clean("long path dump");
    let bytes = st.get(ckpt::StatKey::ImageBytes).unwrap_or(0);
    let pages = st.get(ckpt::StatKey::PagesWritten).unwrap_or(0);
    println!("dump into a 4090-byte image path: {pages} pages written, {bytes} image bytes");
    assert!(pages > 0, "statistics read: {st:?}");
    assert!(bytes > 4096 * pages, "image bytes measured: {st:?}");

    // A failing dump there: the log is read through the descriptor too.
    let gone = {
        let mut ch = std::process::Command::new("true").spawn().unwrap();
        let pid = ch.id() as i32;
        ch.wait().unwrap();
        pid
    };
    let e = ckpt::ops::checkpoint(&o, gone).unwrap_err();
    println!("failing dump there: {}", e.message);
    assert_eq!(e.code, Code::Criu, "{e}");
    assert!(!e.message.contains("could not be read"), "{e}");
    assert!(
        e.log_excerpt
            .as_deref()
            .is_some_and(|x| x.contains("Error (")),
        "the excerpt is read: {e}"
    );
    c.assert_alive("after the dumps");
}

/// `image_bytes` counts the images alone: not the log ckpt named (here without `.log`), nor
/// CRIU's other logs.
#[test]
fn image_bytes_leave_the_logs_out() {
    let _g = serial();
    let dir = TempDir::new("faultsb-bytes");
    let img = dir.join("img");
    let c = faultkit::Counter::start(dir.join("counter"));
    let mut o = real_opts(&img);
    o.set_leave_running(true);
    o.set_log_file("criu-says").unwrap();
    let st = ckpt::ops::checkpoint(&o, c.pid()).expect("dump");
    let bytes = st.get(ckpt::StatKey::ImageBytes).unwrap();
    let (images, all) = file_bytes(&img, &|n| n == "criu-says" || n.ends_with(".log"));
    println!("image_bytes {bytes}; the images are {images} bytes; with the logs {all}");
    assert_eq!(bytes, images);
    assert!(all > images, "the log has a size: {all}");
    c.assert_alive("after the dump");
}

/// A port on 127.0.0.1 nobody listens on (free a moment ago).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A dump to a page server that does not listen: CRIU's cause ("Can't connect to server") is
/// not an `Error` line of its log, yet the excerpt and the message carry it; the harmless
/// rlimit line is left out of the excerpt.
#[test]
fn page_server_not_listening() {
    let _g = serial();
    let dir = TempDir::new("faultsb-nops");
    let img = dir.join("img");
    let c = faultkit::Counter::start(dir.join("counter"));
    let mut o = real_opts(&img);
    o.set_leave_running(true);
    o.set_page_server(&format!("127.0.0.1:{}", free_port()))
        .unwrap();
    let snap = Snapshot::take();
    let e = ckpt::ops::checkpoint(&o, c.pid()).unwrap_err();
    snap.assert_clean("dump to a page server nobody listens on");
    let x = e.log_excerpt.as_deref().unwrap_or("");
    println!(
        "page server not listening: {:?}: {}\nexcerpt:\n{x}",
        e.code, e.message
    );
    assert_eq!(e.code, Code::Criu, "{e}");
    assert!(
        x.contains("Can't connect to server"),
        "the excerpt carries the cause: {x}"
    );
    assert!(
        e.message.contains("Can't connect to server"),
        "the message names the cause: {e}"
    );
    assert!(
        !x.contains("RLIMIT_NOFILE for self: Operation not permitted"),
        "harmless lines left out: {x}"
    );
    assert!(
        e.log_path.is_some(),
        "the full log's path stays in the error"
    );
    c.assert_alive("after the failed dump");
}
