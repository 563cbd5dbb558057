//! A container created but not started is refused by one check with one message, whichever
//! condition gives it away: its init holds the runtime's `exec.fifo` open, or runs the
//! runtime's binary (runc's memfd clone). Each condition is shown alone, with a real process
//! that has only that one, named by bundle and pid; the refusal comes before CRIU runs. (A
//! real runc container created but not started, which has both, is go/created_test.go's.)
//! Needs root.

mod common;

use ckpt::container;
use ckpt::error::Code;
use common::containers::{remove_work, root};
use common::options;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A child killed and reaped on drop, also when an assertion fails.
struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn work(name: &str) -> PathBuf {
    let w = std::env::temp_dir().join(format!("leftovers-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&w);
    std::fs::create_dir_all(w.join("bundle/rootfs")).unwrap();
    std::fs::write(
        w.join("bundle/config.json"),
        r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"},"linux":{}}"#,
    )
    .unwrap();
    w
}

/// Waits until `pid` has exec'd `what` (its /proc/PID/exe link contains it).
fn wait_exe(pid: i32, what: &str) {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|e| e.to_string_lossy().contains(what))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("process {pid} did not exec {what}");
}

/// A process that runs what runc 1.1.5's init runs until `start`, its own binary copied into
/// a memfd named `runc_cloned:...` (here busybox as `arg0` with `args`, to have something
/// that waits), and its pid, once it runs from there.
fn runc_cloned(arg0: &str, args: &[&str], stdin: Stdio) -> (Killed, i32) {
    let fd = nix::sys::memfd::memfd_create(
        c"runc_cloned:/usr/sbin/runc",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )
    .unwrap();
    let mut f = std::fs::File::from(fd);
    std::io::copy(&mut std::fs::File::open("/bin/busybox").unwrap(), &mut f).unwrap();
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f));
    let child = Killed(
        Command::new(&path)
            .arg0(arg0)
            .args(args)
            .stdin(stdin)
            .spawn()
            .unwrap(),
    );
    drop(f);
    let pid = child.0.id() as i32;
    wait_exe(pid, "runc_cloned");
    (child, pid)
}

/// The error of a leave-running checkpoint of `pid` as the container of `w`'s bundle, into
/// `w`'s images, which must fail.
fn checkpoint_error(w: &Path, pid: i32) -> ckpt::Error {
    let mut o = options(&w.join("images"));
    o.set_leave_running(true);
    container::checkpoint(&mut o, &w.join("bundle"), pid, false)
        .map(|_| ())
        .unwrap_err()
}

fn refused(w: &Path, pid: i32) -> String {
    let images = w.join("images");
    let e = checkpoint_error(w, pid);
    assert_eq!(e.code, Code::InvalidState, "{e:?}");
    assert!(
        e.message
            .starts_with("the container is created but not started (")
            && e.message
                .ends_with("): only a running container can be checkpointed; start it first"),
        "{}",
        e.message
    );
    assert!(!images.join("dump.log").exists(), "CRIU ran");
    e.message
}

#[test]
fn a_process_holding_an_exec_fifo_is_refused() {
    if !root("checkpoint of a process holding exec.fifo needs root") {
        return;
    }
    let w = work("fifo");
    let fifo = w.join("exec.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // Opening a fifo read-write does not wait for a peer.
    let child = Killed(
        Command::new("sh")
            .args(["-c", &format!("exec sleep 100 3<>{}", fifo.display())])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id() as i32;
    wait_exe(pid, "sleep");
    let m = refused(&w, pid);
    drop(child);
    assert!(
        m.contains(&format!("process {pid} holds {}", fifo.display())),
        "{m}"
    );
    remove_work(&w);
}

#[test]
fn a_process_running_the_runtimes_cloned_binary_is_refused() {
    if !root("checkpoint of a process running a runc_cloned memfd needs root") {
        return;
    }
    let w = work("exe");
    let (child, pid) = runc_cloned("sleep", &["100"], Stdio::null());
    let m = refused(&w, pid);
    drop(child);
    assert!(
        m.contains(&format!(
            "process {pid} runs the runtime's binary (/memfd:runc_cloned"
        )),
        "{m}"
    );
    remove_work(&w);
}

/// Right after `runc run -d` (or `start`) returns, the init has left the fifo but may not have
/// exec'd the container's program yet: for that moment it still runs the runtime's binary. A
/// checkpoint then was refused as "created but not started ... start it first", though the
/// container had been started (seen here about once in six checkpoints made at once after
/// `runc run -d` through the C API). ckpt now waits a moment for that exec. Here the init runs
/// the cloned binary for 200 ms, then execs a program: the checkpoint goes past the check (and
/// is refused later, since this process is in no container).
#[test]
fn a_started_init_about_to_exec_is_waited_for() {
    if !root("checkpoint of a process running a runc_cloned memfd needs root") {
        return;
    }
    let w = work("starting");
    let (child, pid) = runc_cloned(
        "sh",
        &["-c", "read -t 0.2 x; exec /bin/sleep 100"],
        Stdio::piped(),
    );
    let e = checkpoint_error(&w, pid);
    drop(child);
    assert!(
        !e.message.contains("created but not started"),
        "a started init was refused as a created container: {}",
        e.message
    );
    remove_work(&w);
}
