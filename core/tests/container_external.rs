//! The container layer on containers holding resources that reach outside the container, as
//! runc users meet them: a unix socket connected to a listener on the host through a
//! bind-mounted socket file (like /dev/log), a datagram socket sending to one, a bind-mounted
//! host file the container writes, a tmpfs config.json mounts, a file open in a masked path, a
//! working directory in a bind mount, a terminal container checkpointed twice and one whose
//! terminal was hung up, and two
//! leave-running checkpoints in a row (the second on a parent). Each is compared with what
//! `runc checkpoint` / `runc restore` do with the same flags. The workloads are modes of
//! `data/workloads/wl.c` (built with `gcc -static`). Needs root, runc, gcc with a static libc
//! and criu; skipped, said so, without them.

mod common;

use ckpt::container;
use ckpt::error::Code;
use common::containers::{
    console_listener, kill_and_reap, read_pid, remove_cgroups, remove_work, runc_ready, runtime,
    script_spec, wait_gone,
};
use common::{not_exercised, options, serial};
use serde_json::json;
use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

fn workload_binary() -> Option<PathBuf> {
    common::wl::binary("container-external-wl")
}

fn ready() -> bool {
    runc_ready() && workload_binary().is_some()
}

/// A runc container running `wl MODE`, with the bind mounts and tmpfs mounts its case needs;
/// everything it made (the restored trees, the container, its cgroups, its directory, the
/// host peers' threads) is gone after drop.
struct Ext {
    id: String,
    work: PathBuf,
    bundle: PathBuf,
    state: PathBuf,
    pid: i32,
    restored: Vec<i32>,
    stop: Arc<AtomicBool>,
}

impl Ext {
    /// The container's scratch directory, made empty, with `host/` for what it shares with
    /// the host.
    fn prepare(case: &str) -> (String, PathBuf) {
        let id = format!("ckpt-pext-{}-{case}", std::process::id());
        let work = std::env::temp_dir().join(&id);
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("host")).unwrap();
        (id, work)
    }

    /// Starts the container of `id` in `work` running `wl MODE`, `mounts` added to its spec.
    fn start(id: String, work: PathBuf, mode: &str, mounts: &[serde_json::Value]) -> Ext {
        Ext::start_with(id, work, mode, mounts, &|_| {}, &[])
    }

    /// As `start`, with `edit` changing the spec last.
    fn start_with(
        id: String,
        work: PathBuf,
        mode: &str,
        mounts: &[serde_json::Value],
        edit: &dyn Fn(&mut serde_json::Value),
        run_args: &[&str],
    ) -> Ext {
        let bundle = work.join("bundle");
        let rootfs = bundle.join("rootfs");
        common::wl::rootfs(&rootfs, &workload_binary().unwrap());
        let mut spec = script_spec("runc", &bundle, "", &id);
        spec["process"]["args"] = json!(["/bin/wl", mode]);
        for m in mounts {
            spec["mounts"].as_array_mut().unwrap().push(m.clone());
        }
        edit(&mut spec);
        std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
        let mut e = Ext {
            state: work.join("runc-state"),
            id,
            work,
            bundle,
            pid: 0,
            restored: vec![],
            stop: Arc::new(AtomicBool::new(false)),
        };
        let pidfile = e.work.join("init.pid");
        let b = e.bundle.to_string_lossy().to_string();
        let mut args = vec!["run", "-d", "--pid-file", pidfile.to_str().unwrap()];
        args.extend_from_slice(run_args);
        args.extend_from_slice(&["--bundle", &b, &e.id]);
        let out = runtime("runc", &e.state, &args);
        assert!(out.0, "runc run: {}", out.1);
        e.pid = read_pid(&pidfile);
        e.wait_round(3, "the workload to start");
        e
    }

    /// A terminal container of `case` whose shell counts in /counter and runs `echo` (its
    /// output on the terminal) each round, the runtime given a console socket: the container,
    /// the socket's path and the thread that receives the first master.
    fn terminal(
        case: &str,
        echo: &str,
    ) -> (
        Ext,
        PathBuf,
        std::thread::JoinHandle<Option<std::os::fd::OwnedFd>>,
    ) {
        let (id, work) = Ext::prepare(case);
        let sock = work.join("console.sock");
        let first = console_listener(&sock);
        let console = sock.to_string_lossy().to_string();
        let script = format!(
            "i=0; while :; do i=$((i+1)); printf '%8d    0\\n' $i 1<> /counter; {echo}; sleep 0.05; done"
        );
        let e = Ext::start_with(
            id,
            work,
            "-",
            &[],
            &|s| {
                s["process"]["terminal"] = json!(true);
                s["process"]["args"] = json!(["sh", "-c", script]);
            },
            &["--console-socket", &console],
        );
        (e, sock, first)
    }

    /// The round the workload last reported and the first fault it saw.
    fn round(&self) -> (u64, i32) {
        common::wl::round(&self.bundle)
    }

    /// Waits (up to 10 s) for round `n`, asserting no fault was seen.
    fn wait_round(&self, n: u64, what: &str) {
        common::wl::wait_round(&self.bundle, n, what)
    }

    /// The container runs on: its round grows by 3 without a fault.
    fn runs_on(&self, what: &str) {
        let (r, _) = self.round();
        self.wait_round(r + 3, what);
    }

    fn checkpoint(&self, o: &mut ckpt::Options) -> ckpt::Result<ckpt::Stats> {
        container::checkpoint(o, &self.bundle, self.pid, false).map(|(_, s)| s)
    }

    /// After a checkpoint that killed it: deletes the container and removes its cgroups.
    fn remove_dumped(&self) {
        wait_gone(self.pid, Duration::from_secs(5));
        runtime("runc", &self.state, &["delete", "-f", &self.id]);
        remove_cgroups(&self.id);
    }

    fn restore(&mut self, o: &mut ckpt::Options) -> ckpt::Result<i32> {
        let (_, r) = common::containers::restore_bundle(o, &self.bundle)?;
        self.restored.push(r.pid);
        Ok(r.pid)
    }
}

/// A host thread echoing what each connection to a listener at `path` sends.
fn echo_listener(path: &Path, stop: &Arc<AtomicBool>) {
    let l = UnixListener::bind(path).unwrap();
    l.set_nonblocking(true).unwrap();
    let stop = stop.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        s.set_read_timeout(Some(Duration::from_millis(100)))
                            .unwrap();
                        let mut b = [0u8; 8];
                        while !stop.load(Ordering::Relaxed) {
                            match s.read_exact(&mut b) {
                                Ok(()) => {
                                    if s.write_all(&b).is_err() {
                                        return;
                                    }
                                }
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                                Err(_) => return,
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
}

/// A host datagram socket at `path`, read until `stop`; the latest number received.
fn dgram_sink(path: &Path, stop: &Arc<AtomicBool>) -> Arc<AtomicI64> {
    let s = UnixDatagram::bind(path).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let last = Arc::new(AtomicI64::new(-1));
    let (stop, l) = (stop.clone(), last.clone());
    std::thread::spawn(move || {
        let mut b = [0u8; 8];
        while !stop.load(Ordering::Relaxed) {
            if let Ok(8) = s.recv(&mut b) {
                l.store(i64::from_ne_bytes(b), Ordering::Relaxed);
            }
        }
    });
    last
}

impl Drop for Ext {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for &p in &self.restored {
            kill_and_reap(p);
            wait_gone(p, Duration::from_secs(2));
        }
        runtime("runc", &self.state, &["delete", "-f", &self.id]);
        remove_cgroups(&self.id);
        remove_work(&self.work);
    }
}

fn bind(source: &Path, destination: &str) -> serde_json::Value {
    json!({"destination": destination, "type": "bind", "source": source, "options": ["rbind", "rw"]})
}

/// runc checkpoints the container of `e` with `flags`; (succeeded, what runc and CRIU's log
/// said on failure).
fn runc_checkpoint(e: &Ext, images: &Path, flags: &[&str]) -> (bool, String) {
    let img = images.to_str().unwrap();
    let mut args = vec!["checkpoint", "--image-path", img];
    args.extend_from_slice(flags);
    args.push(&e.id);
    let (ok, out) = runtime("runc", &e.state, &args);
    (
        ok,
        format!("{out}{}", common::wl::log_errors(images, "dump")),
    )
}

/// Case 1: a unix stream socket connected to a listener on the host, through a socket file
/// bind-mounted into the container. Without ext_unix_sk CRIU asks for it ("External socket is
/// used"), with it it refuses the stream ("Can't dump half of stream unix connection"), for
/// runc as for ckpt, leave-running or not, the container running on untouched; ckpt's error
/// says what that means and names the way that works: the socket named by inode
/// (`add_unix_sk_ino`, which runc lacks), dumped, and restored with a new connection to the
/// host's listener inherited as `socket:[INODE]` (without it, the restore's error says so).
#[test]
fn a_stream_socket_to_the_host_is_refused_clearly_and_restored_by_inode() {
    if !ready() {
        return;
    }
    let _g = serial();
    let (id, work) = Ext::prepare("ustream");
    let sock = work.join("host/stream.sock");
    let stop = Arc::new(AtomicBool::new(false));
    echo_listener(&sock, &stop);
    let mut e = Ext::start(id, work, "ustream", &[bind(&sock, "/ext/stream.sock")]);
    e.stop = stop;

    let images = e.work.join("img-noext");
    let err = e
        .checkpoint(&mut options(&images))
        .expect_err("a socket connected outside, without ext_unix_sk");
    println!("stream, without ext_unix_sk: {}", err.message);
    assert_eq!(err.code, Code::Criu, "{err:?}");
    assert!(
        err.message.contains("External socket is used")
            && err
                .message
                .contains("set ext_unix_sk (Options::set_ext_unix_sk"),
        "{err:?}"
    );
    e.runs_on("the container to run on after the refused checkpoint");
    let (ok, said) = runc_checkpoint(&e, &e.work.join("runc-noext"), &["--leave-running"]);
    assert!(
        !ok && said.contains("External socket is used"),
        "runc: {said}"
    );

    for leave_running in [true, false] {
        let images = e.work.join(format!("img-ext-{leave_running}"));
        let mut o = options(&images);
        o.set_ext_unix_sk(true).set_leave_running(leave_running);
        let err = e
            .checkpoint(&mut o)
            .expect_err("a stream socket connected outside, with ext_unix_sk");
        println!(
            "stream, ext_unix_sk, leave_running {leave_running}: {}",
            err.message
        );
        assert_eq!((err.code, err.outcome), (Code::Criu, 0), "{err:?}");
        assert!(
            err.message
                .contains("Can't dump half of stream unix connection")
                && err
                    .message
                    .contains("close the connection before the checkpoint"),
            "{err:?}"
        );
        e.runs_on("the container to run on after the refused checkpoint");
    }
    let (ok, said) = runc_checkpoint(
        &e,
        &e.work.join("runc-ext"),
        &["--leave-running", "--ext-unix-sk"],
    );
    assert!(
        !ok && said.contains("Can't dump half of stream unix connection"),
        "runc: {said}"
    );
    e.runs_on("the container to run on after runc's refused checkpoint");

    // Named by inode (Options::add_unix_sk_ino; runc 1.1.5 has no such flag) it is dumped,
    // ext_unix_sk left unset (CRIU reads the inodes only when ext_unix_sk is sent: ckpt sends
    // it for them, as libcriu does). The restore needs a new connection to the host's
    // listener as an inherited descriptor; without it, ckpt says so.
    let ino = socket_inode(e.pid, 3);
    // The hints name the inode for each setter, the command's flags too.
    let hint = format!("inherited descriptor socket:[{ino}]");
    let flags = format!("--ext-unix-sk-ino {ino})");
    let inherit = format!("--inherit-fd fd[N]:socket:[{ino}]");
    assert!(
        err_hint_names(&e, &[&hint, &flags, &inherit]),
        "the refusals name the socket's inode"
    );
    let images = e.work.join("img-ino");
    let mut o = options(&images);
    o.add_unix_sk_ino(ino as u32);
    e.checkpoint(&mut o)
        .expect("a checkpoint of the stream socket named by inode");
    let (at_dump, _) = e.round();
    e.remove_dumped();
    let err = e
        .restore(&mut options(&images))
        .expect_err("a restore with no descriptor for the socket");
    println!("stream restore, no inherited descriptor: {}", err.message);
    assert!(
        err.message.contains("External socket found in image")
            && err.message.contains(&hint)
            && err.message.contains(&inherit),
        "{err:?}"
    );
    let mut o = options(&images);
    let c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    o.add_inherit_fd(&format!("socket:[{ino}]"), c.into())
        .unwrap();
    e.restore(&mut o).expect("restore with a new connection");
    // The workload checks every round that the host echoes what it sent.
    e.wait_round(at_dump + 10, "the restored workload to talk on");
}

/// Whether a checkpoint without ext_unix_sk and one with it both name every one of `hints`
/// (the container socket's inode and the descriptor its restore needs); the container runs on.
fn err_hint_names(e: &Ext, hints: &[&str]) -> bool {
    [false, true].into_iter().all(|ext| {
        let mut o = options(&e.work.join(format!("img-hint-{ext}")));
        o.set_ext_unix_sk(ext).set_leave_running(true);
        let err = e.checkpoint(&mut o).expect_err("refused");
        e.runs_on("the container to run on after the refused checkpoint");
        hints.iter().all(|hint| {
            err.message.contains(hint) || {
                println!("ext_unix_sk {ext}: no {hint:?} in {}", err.message);
                false
            }
        })
    })
}

/// The inode of the socket `pid` holds as descriptor `fd`.
fn socket_inode(pid: i32, fd: i32) -> u64 {
    let l = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
    let l = l.to_string_lossy();
    l.trim_start_matches("socket:[")
        .trim_end_matches(']')
        .parse()
        .unwrap_or_else(|_| panic!("fd {fd} of {pid} is {l}"))
}

/// Case 2: a unix datagram socket sending to a host socket. In the container's own network
/// namespace CRIU does not find its peer ("Unix socket A without peer B"), ext_unix_sk or not,
/// for runc as for ckpt, and ckpt names the host socket. In the host's network namespace
/// (the socket also bound at its host path, as /dev/log is) it is dumped with ext_unix_sk
/// and restored, connected again, the restore needing no ext_unix_sk; with the host socket
/// gone at the restore, ckpt says what CRIU needs.
#[test]
fn a_datagram_socket_sending_to_the_host() {
    if !ready() {
        return;
    }
    let _g = serial();
    let (id, work) = Ext::prepare("udgram");
    let sock = work.join("host/dgram.sock");
    let stop = Arc::new(AtomicBool::new(false));
    dgram_sink(&sock, &stop);
    let mut e = Ext::start(id, work, "udgram", &[bind(&sock, "/ext/dgram.sock")]);
    e.stop = stop;
    for ext in [false, true] {
        let images = e.work.join(format!("img-{ext}"));
        let mut o = options(&images);
        o.set_ext_unix_sk(ext);
        let err = e
            .checkpoint(&mut o)
            .expect_err("a datagram socket whose peer is in another network namespace");
        println!("dgram, own netns, ext_unix_sk {ext}: {}", err.message);
        assert!(
            err.message.contains("without peer")
                && err.message.contains(&format!(
                    "({} in ckpt's network namespace), which is not in the container's network namespace",
                    sock.display()
                )),
            "{err:?}"
        );
        e.runs_on("the container to run on after the refused checkpoint");
    }
    let (ok, said) = runc_checkpoint(
        &e,
        &e.work.join("runc-ext"),
        &["--leave-running", "--ext-unix-sk"],
    );
    assert!(!ok && said.contains("without peer"), "runc: {said}");
    drop(e);

    let (id, work) = Ext::prepare("udgram-hostnet");
    let sock = work.join("host/dgram.sock");
    let stop = Arc::new(AtomicBool::new(false));
    let last = dgram_sink(&sock, &stop);
    let both = [
        bind(&sock, "/ext/dgram.sock"),
        bind(&sock, sock.to_str().unwrap()),
    ];
    let mut e = Ext::start_with(
        id,
        work,
        "udgram",
        &both,
        &|s| {
            let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "network");
        },
        &[],
    );
    e.stop = stop;
    let err = e
        .checkpoint(&mut options(&e.work.join("img-noext")))
        .expect_err("without ext_unix_sk");
    assert!(
        err.message.contains("External socket is used")
            && err.message.contains("ckpt_opts_set_ext_unix_sk"),
        "{err:?}"
    );
    e.runs_on("the container to run on after the refused checkpoint");
    let images = e.work.join("img");
    let mut o = options(&images);
    o.set_ext_unix_sk(true);
    e.checkpoint(&mut o).expect("a checkpoint with ext_unix_sk");
    let (at_dump, _) = e.round();
    e.remove_dumped();
    // The host socket closed, its file left: CRIU cannot connect it again.
    e.stop.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    let err = e
        .restore(&mut options(&images))
        .expect_err("a restore whose host socket is closed");
    println!("dgram restore, host socket closed: {}", err.message);
    assert!(
        err.message.contains("Can't connect")
            && err.message.contains("must be bound again under that name"),
        "{err:?}"
    );
    std::fs::remove_file(&sock).unwrap();
    e.stop = Arc::new(AtomicBool::new(false));
    let last2 = dgram_sink(&sock, &e.stop);
    // Restored without ext_unix_sk: CRIU connects it again all the same.
    e.restore(&mut options(&images)).expect("restore");
    e.wait_round(at_dump + 5, "the restored workload to carry on");
    let got = last2.load(Ordering::Relaxed);
    assert!(
        got > at_dump as i64,
        "the host got {got} after the restore (dumped at {at_dump}; before it, {})",
        last.load(Ordering::Relaxed)
    );
}

/// Case 3: a bind-mounted host file the container writes (not O_APPEND), grown by the host
/// between dump and restore. CRIU refuses the restore ("File ext/log has bad size"), as for
/// `runc restore`; ckpt names the host file, both sizes and what to do, and once the file is
/// back to its size the restore succeeds.
#[test]
fn a_host_file_that_changed_size_is_named() {
    if !ready() {
        return;
    }
    let _g = serial();
    let (id, work) = Ext::prepare("hostfile");
    let log = work.join("host/log");
    std::fs::write(&log, "").unwrap();
    let mut e = Ext::start(id, work, "hostfile", &[bind(&log, "/ext/log")]);
    let images = e.work.join("img");
    e.checkpoint(&mut options(&images)).expect("checkpoint");
    let (at_dump, _) = e.round();
    e.remove_dumped();
    let size = std::fs::metadata(&log).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"host\n").unwrap();
    let err = e
        .restore(&mut options(&images))
        .expect_err("a restore of a grown host file");
    println!("restore of a grown host file: {}", err.message);
    assert!(
        err.message.contains(&format!(
            "The file /ext/log in the container, host file {} (a bind mount), is {} bytes now and was {size} bytes at the checkpoint",
            log.display(),
            size + 5
        )),
        "{err:?}"
    );
    f.set_len(size).unwrap();
    e.restore(&mut options(&images)).expect("restore");
    e.wait_round(at_dump + 5, "the restored workload to carry on");
    assert!(std::fs::metadata(&log).unwrap().len() > size);
    drop(e);

    // runc's restore of its own checkpoint meets the same refusal, with CRIU's line alone.
    let (id, work) = Ext::prepare("hostfile-runc");
    let log = work.join("host/log");
    std::fs::write(&log, "").unwrap();
    let e = Ext::start(id, work, "hostfile", &[bind(&log, "/ext/log")]);
    let images = e.work.join("runc-img");
    let (ok, said) = runc_checkpoint(&e, &images, &[]);
    assert!(ok, "{said}");
    e.remove_dumped();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"host\n").unwrap();
    let b = e.bundle.to_string_lossy().to_string();
    let img = images.to_string_lossy().to_string();
    let (ok, _) = runtime(
        "runc",
        &e.state,
        &["restore", "-d", "--image-path", &img, "--bundle", &b, &e.id],
    );
    assert!(
        !ok && common::wl::log_errors(&images, "restore").contains("has bad size"),
        "runc restore: {}",
        common::wl::log_errors(&images, "restore")
    );
}

/// Case 4: a tmpfs config.json mounts, with a file written and closed and one held open:
/// both are there after the restore (CRIU tars the tmpfs), the held one still the same file.
#[test]
fn a_tmpfs_with_content_and_a_file_open_on_it() {
    if !ready() {
        return;
    }
    let _g = serial();
    let (id, work) = Ext::prepare("tmpfs");
    let tmpfs = json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "mode=755", "size=1m"]});
    let mut e = Ext::start(id, work, "tmpfs", &[tmpfs]);
    let images = e.work.join("img");
    e.checkpoint(&mut options(&images)).expect("checkpoint");
    let (at_dump, _) = e.round();
    e.remove_dumped();
    let pid = e.restore(&mut options(&images)).expect("restore");
    e.wait_round(at_dump + 5, "the restored workload to carry on");
    let root = format!("/proc/{pid}/root/data");
    assert_eq!(
        std::fs::read_to_string(format!("{root}/seed")).unwrap(),
        "seed"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{root}/held")).unwrap(),
        "held"
    );
}

/// Case 5: a file open in a masked path (/proc/keys, /dev/null bound over it) and a working
/// directory in a bind mount: both are as before after the restore.
#[test]
fn a_masked_file_open_and_a_cwd_in_a_bind_mount() {
    if !ready() {
        return;
    }
    let _g = serial();
    let (id, work) = Ext::prepare("masked");
    let dir = work.join("host/dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("in-dir"), "").unwrap();
    let mut e = Ext::start(id, work, "masked", &[bind(&dir, "/ext/dir")]);
    let images = e.work.join("img");
    e.checkpoint(&mut options(&images)).expect("checkpoint");
    let (at_dump, _) = e.round();
    e.remove_dumped();
    let pid = e.restore(&mut options(&images)).expect("restore");
    e.wait_round(at_dump + 5, "the restored workload to carry on");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        Path::new("/ext/dir")
    );
}

/// The largest number among the lines read from a terminal master for up to `wait`.
fn last_number_on(master: &std::os::fd::OwnedFd, wait: Duration) -> u64 {
    use std::os::fd::AsFd;
    let mut seen = String::new();
    let end = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        let mut pfd = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16)).unwrap_or(0) == 0 {
            continue;
        }
        match nix::unistd::read(master.as_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    seen.lines()
        .filter_map(|l| l.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// Case 6: a terminal container (runc's console socket) checkpointed and restored twice in a
/// row: the second checkpoint is of the tree ckpt restored, whose terminal master ckpt sent
/// to the console socket; after each restore the counter the container writes to its
/// terminal arrives on the new master.
#[test]
fn a_terminal_container_is_checkpointed_and_restored_twice() {
    if !ready() {
        return;
    }
    let _g = serial();
    let (mut e, sock, first) = Ext::terminal("tty", "echo $i");
    // Every master is kept open: closing it hangs the terminal up and removes its pts node,
    // which the next checkpoint then finds deleted.
    let mut masters = vec![
        first
            .join()
            .unwrap()
            .expect("runc sent the terminal master"),
    ];
    for n in 0..2 {
        let images = e.work.join(format!("img-{n}"));
        let mut o = options(&images);
        e.checkpoint(&mut o)
            .unwrap_or_else(|err| panic!("checkpoint {n}: {err:?}"));
        let (at_dump, _) = e.round();
        if n == 0 {
            e.remove_dumped();
        } else {
            // ckpt's own restored tree: reaped here, its cgroups removed.
            let p = e.restored.pop().unwrap();
            kill_and_reap(p);
            remove_cgroups(&e.id);
        }
        let _ = std::fs::remove_file(&sock);
        let next = console_listener(&sock);
        let mut o = options(&images);
        o.set_console_socket(&sock).unwrap();
        let pid = e
            .restore(&mut o)
            .unwrap_or_else(|err| panic!("restore {n}: {err:?}"));
        e.pid = pid;
        let master = next
            .join()
            .unwrap()
            .expect("the new terminal master reached the console socket");
        let last = last_number_on(&master, Duration::from_millis(800));
        assert!(
            last > at_dump,
            "restore {n}: read {last} from the new master, dumped at {at_dump}"
        );
        masters.push(master);
    }
}

/// Case 7: two leave-running checkpoints in a row into two image directories, the second on
/// the first (parent path) with auto_dedup, as `runc checkpoint --leave-running --parent-path
/// --auto-dedup` makes them; the container runs on after each and restores from the second.
/// A container pre-dump needs memory tracking: where the kernel lacks it, the refusal names
/// it.
#[test]
fn two_leave_running_checkpoints_the_second_on_the_first() {
    if !ready() {
        return;
    }
    let _g = serial();
    let (id, work) = Ext::prepare("parent");
    let mut e = Ext::start(id, work, "threads", &[]);

    let mut o = options(&e.work.join("pre"));
    o.set_pre_dump(true);
    match e.checkpoint(&mut o) {
        Err(err) => {
            assert_eq!(err.code, Code::Unsupported, "{err:?}");
            assert!(err.message.contains("memory change tracking"), "{err:?}");
            not_exercised(&format!("container pre-dump: {}", err.message));
        }
        Ok(_) => println!("pre-dump works on this kernel"),
    }
    e.runs_on("the container to run on after the pre-dump");

    // The parent inside the second's image directory, as ckpt keeps it (docs/containers.md,
    // "Not done yet": the sibling `../img-1` layout is refused, said so).
    let two = e.work.join("img");
    let one = two.join("first");
    let mut o = options(&one);
    o.set_leave_running(true);
    e.checkpoint(&mut o).expect("the first checkpoint");
    e.runs_on("the container to run on after the first checkpoint");
    let mut o = options(&two);
    o.set_leave_running(true).set_auto_dedup(true);
    o.set_parent_path("../img-1").unwrap();
    let err = e
        .checkpoint(&mut o)
        .expect_err("a parent outside the image directory");
    assert_eq!(err.code, Code::InvalidArgument, "{err:?}");
    assert!(err.message.contains("must not contain '..'"), "{err:?}");
    o.set_parent_path("first").unwrap();
    let (ok, runc_said) = runc_checkpoint(
        &e,
        &e.work.join("runc-img"),
        &[
            "--leave-running",
            "--parent-path",
            "../img/first",
            "--auto-dedup",
        ],
    );
    match e.checkpoint(&mut o) {
        Err(err) => {
            println!("second checkpoint on a parent: {}", err.message);
            assert_eq!(err.code, Code::Unsupported, "{err:?}");
            assert!(err.message.contains("memory change tracking"), "{err:?}");
            assert!(
                !ok && runc_said.contains("Tracking memory is not available"),
                "runc: {runc_said}"
            );
            not_exercised(&format!("a checkpoint on a parent: {}", err.message));
            e.runs_on("the container to run on after the refused second checkpoint");
            // The second checkpoint without a parent, with auto_dedup: restored from.
            o = options(&two);
            o.set_leave_running(true).set_auto_dedup(true);
            e.checkpoint(&mut o)
                .expect("the second checkpoint, auto_dedup");
        }
        Ok(st) => println!("second checkpoint on a parent: {st:?}"),
    }
    e.runs_on("the container to run on after the second checkpoint");
    runtime("runc", &e.state, &["kill", &e.id, "KILL"]);
    e.remove_dumped();
    let (at_dump, _) = e.round();
    e.restore(&mut options(&two))
        .expect("restore of the second checkpoint");
    e.wait_round(at_dump + 5, "the restored workload to carry on");
}

/// A terminal container whose master was closed (the console socket's receiver gone): devpts
/// removed its pts node and /dev/console is bound from a deleted file. `runc checkpoint`
/// dumps it, killing the container, and `runc restore` fails ("Can't re-create deleted
/// file"): the container is lost. ckpt refuses the checkpoint before CRIU, the container
/// running on.
#[test]
fn a_hung_up_terminal_container_is_refused_before_criu() {
    if !ready() {
        return;
    }
    let _g = serial();
    let (e, sock, first) = Ext::terminal("hup", "echo $i 2>/dev/null");
    drop(
        first
            .join()
            .unwrap()
            .expect("runc sent the terminal master"),
    );
    let fd0 = format!("/proc/{}/fd/0", e.pid);
    common::wait_for("the pts to go", common::WAIT, || {
        std::fs::read_link(&fd0)
            .is_ok_and(|l| l.to_string_lossy().ends_with("(deleted)"))
            .then_some(())
    });
    let images = e.work.join("img");
    let err = e
        .checkpoint(&mut options(&images))
        .expect_err("a checkpoint of a hung-up terminal container");
    println!("hung-up terminal: {}", err.message);
    assert_eq!((err.code, err.outcome), (Code::InvalidState, 0), "{err:?}");
    assert!(
        err.message.contains("/dev/console of the container is bound from its terminal's pts /0, which no longer exists")
            && err.message.contains("keep the terminal master open"),
        "{err:?}"
    );
    assert!(!images.join("dump.log").exists(), "refused before CRIU");
    e.runs_on("the container to run on after the refused checkpoint");

    let images = e.work.join("runc-img");
    let (ok, said) = runc_checkpoint(&e, &images, &[]);
    assert!(ok, "runc checkpoint: {said}");
    e.remove_dumped();
    let next = console_listener(&sock.with_extension("2"));
    let b = e.bundle.to_string_lossy().to_string();
    let img = images.to_string_lossy().to_string();
    let console2 = sock.with_extension("2").to_string_lossy().to_string();
    let (ok, _) = runtime(
        "runc",
        &e.state,
        &[
            "restore",
            "-d",
            "--console-socket",
            &console2,
            "--image-path",
            &img,
            "--bundle",
            &b,
            &e.id,
        ],
    );
    assert!(
        !ok && common::wl::log_errors(&images, "restore").contains("Can't re-create deleted file"),
        "runc restore: {}",
        common::wl::log_errors(&images, "restore")
    );
    // Nothing connected: the listener's thread is left waiting on a socket removed with the
    // work directory; a connection wakes it.
    let _ = std::os::unix::net::UnixStream::connect(sock.with_extension("2"));
    let _ = next.join();
}
