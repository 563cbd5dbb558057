//! A terminal container's restore whose console socket misbehaves: the peer accepts and closes
//! at once, nobody listens, the listener never accepts (its backlog full). The caller must
//! live (no SIGPIPE), get an error whose pid is a tree that is gone (or the restored container
//! with its pid), and nothing may be left: no process, cgroup, CRIU root, child or criu.
//! Real runc and CRIU; needs root.

mod common;
mod faultkit;
#[path = "container_faults/leftovers.rs"]
mod leftovers;

use ckpt::{Code, container};
use common::containers::{
    advancing, busybox_rootfs, console_listener, kill_and_reap, read_pid, remove_cgroups,
    remove_work, runc_at, runc_ready, wait_gone,
};
use common::options;
use faultkit::Snapshot;
use leftovers::{cgroups_named, leftovers};
use serde_json::json;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A checkpointed terminal container (deleted since), removed on drop.
struct Dumped {
    id: String,
    work: PathBuf,
    bundle: PathBuf,
    images: PathBuf,
}

impl Drop for Dumped {
    fn drop(&mut self) {
        runc_at(&self.work.join("state"), &["delete", "-f", &self.id]);
        remove_cgroups(&self.id);
        remove_work(&self.work);
    }
}

fn dumped_terminal_container() -> Dumped {
    let id = format!("ckpt-probefaults-{}-8", std::process::id());
    let work = std::env::temp_dir().join(&id);
    let _ = std::fs::remove_dir_all(&work);
    let bundle = work.join("bundle");
    busybox_rootfs(
        &bundle.join("rootfs"),
        &["bin", "proc", "sys", "dev", "tmp"],
        &["sh", "sleep"],
    );
    let mut spec = common::containers::script_spec(
        "runc",
        &bundle,
        "i=0; while :; do i=$((i+1)); printf '%8d\\n' $i 1<> /counter; echo $i; sleep 0.05; done",
        &id,
    );
    spec["process"]["terminal"] = json!(true);
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let d = Dumped {
        images: work.join("images"),
        id,
        work,
        bundle,
    };
    let sock = d.work.join("run.sock");
    let first = console_listener(&sock);
    let pidfile = d.work.join("init.pid");
    let ok = runc_at(
        &d.work.join("state"),
        &[
            "run",
            "-d",
            "--console-socket",
            sock.to_str().unwrap(),
            "--pid-file",
            pidfile.to_str().unwrap(),
            "--bundle",
            d.bundle.to_str().unwrap(),
            &d.id,
        ],
    );
    assert!(ok, "runc run {}", d.id);
    let _master = first
        .join()
        .unwrap()
        .expect("runc sent the terminal master");
    let pid = read_pid(&pidfile);
    assert!(advancing(&d.bundle), "the container does not count");
    let mut o = options(&d.images);
    container::checkpoint(&mut o, &d.bundle, pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    wait_gone(pid, Duration::from_secs(5));
    runc_at(&d.work.join("state"), &["delete", "-f", &d.id]);
    for c in cgroups_named(&d.id) {
        common::containers::remove_cgroup_tree(&c);
    }
    d
}

/// Restores `d` with the console socket `sock` and the timeout; checks what is left when it
/// fails, and kills the container when it succeeds. Returns the problems.
fn restore_with(
    d: &Dumped,
    sock: &Path,
    timeout: Duration,
    what: &str,
) -> (Option<Code>, Vec<String>) {
    let mut o = options(&d.images);
    o.set_timeout(Some(timeout));
    o.set_console_socket(sock).unwrap();
    let snap = Snapshot::take();
    let t0 = Instant::now();
    let r = container::restore(
        &mut o,
        container::RestoreRequest {
            bundle: d.bundle.clone(),
            ..Default::default()
        },
    );
    let took = t0.elapsed();
    match r {
        Ok((_, r)) => {
            eprintln!("{what}: restored, pid {} after {took:?}", r.pid);
            kill_and_reap(r.pid);
            wait_gone(r.pid, Duration::from_secs(2));
            for c in cgroups_named(&d.id) {
                common::containers::remove_cgroup_tree(&c);
            }
            (None, vec![])
        }
        Err(e) => {
            eprintln!(
                "{what}: {:?} pid {} outcome {} after {took:?}: {}",
                e.code, e.pid, e.outcome, e.message
            );
            let mut bad = leftovers(&d.id, &e, &snap, what);
            if took > timeout + Duration::from_secs(2) {
                bad.push(format!(
                    "{what}: took {took:?} with a timeout of {timeout:?}"
                ));
            }
            (Some(e.code), bad)
        }
    }
}

#[test]
fn terminal_container_restores_with_a_misbehaving_console_socket_leave_nothing() {
    if !runc_ready()
        || !common::criu_allowed(
            "terminal_container_restores_with_a_misbehaving_console_socket_leave_nothing",
        )
    {
        return;
    }
    let _g = common::serial();
    let d = dumped_terminal_container();
    let mut bad = vec![];
    // The peer accepts and closes at once.
    for i in 0..2 {
        let sock = d.work.join(format!("close-{i}.sock"));
        let l = UnixListener::bind(&sock).unwrap();
        let t = std::thread::spawn(move || {
            if let Ok((s, _)) = l.accept() {
                drop(s);
            }
        });
        let (_, b) = restore_with(&d, &sock, Duration::from_secs(20), "peer closing at once");
        bad.extend(b);
        t.join().unwrap();
    }
    // Nobody listens: the socket file is there, its listener gone.
    let sock = d.work.join("gone.sock");
    drop(UnixListener::bind(&sock).unwrap());
    let (code, b) = restore_with(&d, &sock, Duration::from_secs(20), "no listener");
    bad.extend(b);
    if code != Some(Code::Io) {
        bad.push(format!("no listener: {code:?}, not Io"));
    }
    // The listener never accepts and its backlog is full: bounded by the timeout.
    let sock = d.work.join("full.sock");
    let l = listener_with_backlog_0(&sock);
    let mut fill = vec![];
    while let Ok(s) = socket_nonblocking_connect(&sock) {
        fill.push(s);
        assert!(fill.len() < 64, "the backlog does not fill");
    }
    let (code, b) = restore_with(&d, &sock, Duration::from_millis(1500), "backlog full");
    bad.extend(b);
    if code != Some(Code::Timeout) {
        bad.push(format!("backlog full: {code:?}, not Timeout"));
    }
    drop(fill);
    drop(l);
    // A well-behaved console socket still gets the master: the images are whole.
    let sock = d.work.join("ok.sock");
    let t = console_listener(&sock);
    let (code, b) = restore_with(&d, &sock, Duration::from_secs(20), "good console socket");
    bad.extend(b);
    assert!(
        t.join().unwrap().is_some(),
        "no master reached the good console socket"
    );
    assert_eq!(code, None, "the restore with a good console socket failed");
    assert!(bad.is_empty(), "{bad:#?}");
}

/// A listening socket at `sock` with a backlog of 0 (one pending connection fills it).
fn listener_with_backlog_0(sock: &Path) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    let fd = nix::sys::socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    nix::sys::socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &UnixAddr::new(sock).unwrap(),
    )
    .unwrap();
    nix::sys::socket::listen(&fd, Backlog::new(0).unwrap()).unwrap();
    fd
}

/// A connection to `sock` that does not wait when the backlog is full (then an error).
fn socket_nonblocking_connect(sock: &Path) -> std::io::Result<UnixStream> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let fd = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::SOCK_NONBLOCK | nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let addr = nix::sys::socket::UnixAddr::new(sock)?;
    nix::sys::socket::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)?;
    let _: &OwnedFd = &fd;
    // SAFETY: the descriptor is taken over from the OwnedFd, which forgets it.
    Ok(unsafe { UnixStream::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) })
}
