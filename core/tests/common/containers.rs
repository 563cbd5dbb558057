//! Helpers shared by the tests that run real runc and crun containers: readiness checks, a
//! busybox bundle counting into /counter, and the pieces of their cleanup (killing restored
//! trees, removing cgroups and scratch directories).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::not_exercised;

/// crun 1.21 as scripts/setup.sh installs it.
pub const CRUN: &str = "/opt/ckpt-deps/crun/usr/bin/crun";

/// True when the test runs as root; otherwise says `what` was not exercised.
pub fn root(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        not_exercised(what);
        return false;
    }
    true
}

/// Root and runc: what every runc container test needs.
pub fn runc_ready() -> bool {
    if !root("container tests need root") {
        return false;
    }
    if Command::new("runc").arg("--version").output().is_err() {
        not_exercised("runc is not installed");
        return false;
    }
    true
}

/// Root, runc and a v1 freezer hierarchy: what the tests of ckpt's own freezing need (on
/// cgroup v2 ckpt leaves the freezing to CRIU).
pub fn runc_v1_freezer_ready() -> bool {
    if !runc_ready() {
        return false;
    }
    if !Path::new("/sys/fs/cgroup/freezer").exists() {
        not_exercised("no v1 freezer hierarchy");
        return false;
    }
    true
}

/// True when crun 1.21 is installed; otherwise says so.
pub fn crun_installed() -> bool {
    if !Path::new(CRUN).exists() {
        not_exercised("crun 1.21 is not installed in /opt/ckpt-deps/crun");
        return false;
    }
    true
}

/// Makes `dirs` under `rootfs` and puts busybox in its bin/ with `applets` linked to it.
pub fn busybox_rootfs(rootfs: &Path, dirs: &[&str], applets: &[&str]) {
    for d in dirs {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in applets {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
}

/// The default spec `runtime spec` writes in `bundle`, changed to run `script` under `sh -c`
/// without a terminal, on a writable root, in the cgroup `/<cgroup>`.
pub fn script_spec(runtime: &str, bundle: &Path, script: &str, cgroup: &str) -> Value {
    assert!(
        Command::new(runtime)
            .arg("spec")
            .current_dir(bundle)
            .status()
            .unwrap()
            .success()
    );
    let mut spec: Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap())
            .unwrap();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["sh", "-c", script]);
    spec["root"]["readonly"] = json!(false);
    spec["linux"]["cgroupsPath"] = json!(format!("/{cgroup}"));
    spec
}

/// The pid a runtime wrote to `pidfile`.
pub fn read_pid(pidfile: &Path) -> i32 {
    std::fs::read_to_string(pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The number the container of `bundle` last wrote to its /counter (0 before the first).
pub fn count(bundle: &Path) -> u64 {
    super::rewritten::read_number(&bundle.join("rootfs/counter")).unwrap_or(0)
}

/// Whether the counter of `bundle`'s container goes up within 3 seconds.
pub fn advancing(bundle: &Path) -> bool {
    let c0 = count(bundle);
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        if count(bundle) > c0 {
            return true;
        }
    }
    false
}

/// Waits up to `wait` for `pid` to leave /proc.
pub fn wait_gone(pid: i32, wait: Duration) {
    let end = Instant::now() + wait;
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills a restored init (the test's child) and reaps it.
pub fn kill_and_reap(p: i32) {
    let pid = nix::unistd::Pid::from_raw(p);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}

/// Removes one cgroup directory, retrying for 5 seconds while its killed tasks leave; true
/// when it is gone.
pub fn remove_cgroup_dir(d: &Path) -> bool {
    for _ in 0..50 {
        if !d.exists() || std::fs::remove_dir(d).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Removes the cgroup directory `name` from every hierarchy under /sys/fs/cgroup, with any
/// cgroup below it (a restore in soft mode may leave CRIU's nested ones; one left in the
/// unified hierarchy kept the directory there after a run).
pub fn remove_cgroups(name: &str) {
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        remove_cgroup_tree(&h.path().join(name));
    }
}

/// Removes a cgroup directory and every one below it, deepest first, retrying while the
/// killed tasks leave.
pub fn remove_cgroup_tree(d: &Path) -> bool {
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    remove_cgroup_dir(d)
}

/// Removes a test's scratch directory unless CKPT_KEEP_TEST_DIRS is set.
pub fn remove_work(work: &Path) {
    if std::env::var_os("CKPT_KEEP_TEST_DIRS").is_none() {
        let _ = std::fs::remove_dir_all(work);
    }
}

/// A busybox container counting into /counter, named PREFIX-<pid>-NAME, with a runtime state
/// root of its own (runc's, unless started with `start_with`); thawed, deleted and removed with
/// its cgroups on drop.
pub struct Counting {
    pub id: String,
    pub work: std::path::PathBuf,
    pub bundle: std::path::PathBuf,
    pub state: std::path::PathBuf,
    pub pid: i32,
    /// Runs the container's runtime with `--root state`: `runc_at`, or a test's own crun.
    pub runtime: fn(&Path, &[&str]) -> bool,
}

/// runc with `--root state`, its output dropped; whether it succeeded.
pub fn runc_at(state: &Path, args: &[&str]) -> bool {
    run_quiet(&mut Command::new("runc"), state, args)
}

/// crun with `--root state`, its output dropped; whether it succeeded.
pub fn crun_at(state: &Path, args: &[&str]) -> bool {
    run_quiet(&mut crun_command(), state, args)
}

/// A runtime's command `cmd` with `--root state` and `args`, its stdio /dev/null; whether it
/// succeeded.
pub fn run_quiet(cmd: &mut Command, state: &Path, args: &[&str]) -> bool {
    cmd.arg("--root")
        .arg(state)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// crun, to be given its arguments: crun refuses cgroup hybrid mode, so it runs in a mount
/// namespace without the cgroup2 mount.
pub fn crun_command() -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "-m",
        "sh",
        "-c",
        "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\" \"$@\"",
        CRUN,
    ]);
    c
}

impl Counting {
    pub fn start(prefix: &str, name: &str) -> Counting {
        Counting::start_with(prefix, name, "runc", runc_at)
    }

    /// A container of the runtime `bin` (the spec's runtime; its file name names the state
    /// root), which `runtime` runs.
    pub fn start_with(
        prefix: &str,
        name: &str,
        bin: &str,
        runtime: fn(&Path, &[&str]) -> bool,
    ) -> Counting {
        Counting::start_full(prefix, name, bin, runtime, None)
    }

    /// A runc container whose process runs as `uid` (and the same gid).
    pub fn start_as(prefix: &str, name: &str, uid: u32) -> Counting {
        Counting::start_full(prefix, name, "runc", runc_at, Some(uid))
    }

    fn start_full(
        prefix: &str,
        name: &str,
        bin: &str,
        runtime: fn(&Path, &[&str]) -> bool,
        uid: Option<u32>,
    ) -> Counting {
        let rt = Path::new(bin).file_name().unwrap().to_str().unwrap();
        let id = format!("{prefix}-{}-{name}", std::process::id());
        let work = std::env::temp_dir().join(&id);
        let _ = std::fs::remove_dir_all(&work);
        let bundle = work.join("bundle");
        busybox_rootfs(
            &bundle.join("rootfs"),
            &["bin", "proc", "sys", "dev", "tmp"],
            &["sh", "sleep", "echo"],
        );
        // The counter is rewritten in place, at a fixed width (`1<>` does not truncate): CRIU
        // records the size of a file open at the dump and refuses to restore it once that
        // differs, and `echo $i > /counter` caught between truncating and writing recorded 0,
        // which no later restore of the same images could match once a restored tree counted.
        let spec = script_spec(
            bin,
            &bundle,
            "i=0; while :; do i=$((i+1)); printf '%8d\\n' $i 1<> /counter; sleep 0.05; done",
            &id,
        );
        let mut spec = spec;
        if let Some(uid) = uid {
            spec["process"]["user"] = json!({"uid": uid, "gid": uid});
            // The counter must be writable by that user.
            let counter = bundle.join("rootfs/counter");
            std::fs::write(&counter, "").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&counter, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
        let pidfile = work.join("init.pid");
        let mut c = Counting {
            state: work.join(format!("{rt}-state")),
            id,
            work,
            bundle,
            pid: 0,
            runtime,
        };
        let ok = runtime(
            &c.state,
            &[
                "run",
                "-d",
                "--pid-file",
                pidfile.to_str().unwrap(),
                "--bundle",
                c.bundle.to_str().unwrap(),
                &c.id,
            ],
        );
        assert!(ok, "{rt} run {}", c.id);
        c.pid = read_pid(&pidfile);
        assert!(advancing(&c.bundle), "the container does not count");
        c
    }

    /// After a kill-mode checkpoint: waits for the init to go, deletes the container from its
    /// runtime and removes its cgroups (with any below them), so the images can be restored.
    pub fn remove_dumped(&self) {
        wait_gone(self.pid, Duration::from_secs(5));
        (self.runtime)(&self.state, &["delete", "-f", &self.id]);
        self.remove_cgroup_trees();
    }

    /// Kills and reaps a tree restored from the container's images, and removes its cgroups.
    pub fn remove_restored(&self, pid: i32) {
        kill_and_reap(pid);
        wait_gone(pid, Duration::from_secs(2));
        self.remove_cgroup_trees();
    }

    fn remove_cgroup_trees(&self) {
        for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let d = h.path().join(&self.id);
            if d.exists() {
                remove_cgroup_tree(&d);
            }
        }
    }

    /// The state of the container's v1 freezer cgroup ("" when there is none).
    /// The container's cgroup in the v1 freezer hierarchy.
    pub fn freezer_dir(&self) -> PathBuf {
        PathBuf::from(format!("/sys/fs/cgroup/freezer/{}", self.id))
    }

    pub fn freezer(&self) -> String {
        std::fs::read_to_string(self.freezer_dir().join("freezer.state"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        // A container left frozen cannot be killed until thawed.
        let _ = std::fs::write(self.freezer_dir().join("freezer.state"), "THAWED");
        (self.runtime)(&self.state, &["delete", "-f", &self.id]);
        remove_cgroups(&self.id);
        remove_work(&self.work);
    }
}

/// Receives one descriptor on a unix socket, as a runtime's console socket does.
pub fn console_listener(path: &Path) -> std::thread::JoinHandle<Option<std::os::fd::OwnedFd>> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let l = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (s, _) = l.accept().ok()?;
        let mut buf = [0u8; 256];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            s.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            nix::sys::socket::MsgFlags::empty(),
        )
        .ok()?;
        for c in msg.cmsgs().ok()? {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: SCM_RIGHTS handed this process a new descriptor it now owns.
                return fds
                    .first()
                    .map(|&fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
            }
        }
        None
    })
}

/// Runs runc with its standard error in a file (none for `run` and `restore`): a detached
/// container inherits runc's stdio, and a pipe would stay open as long as it runs.
pub fn runc(state: &Path, args: &[&str]) -> (bool, String) {
    runtime("runc", state, args)
}

/// `rt run -d` of container `id` from `bundle`, asserting it started: the init's pid, read
/// from `pidfile`.
pub fn run_detached(rt: &str, state: &Path, bundle: &Path, id: &str, pidfile: &Path) -> i32 {
    let (b, p) = (bundle.to_str().unwrap(), pidfile.to_str().unwrap());
    let out = runtime(
        rt,
        state,
        &["run", "-d", "--pid-file", p, "--bundle", b, id],
    );
    assert!(out.0, "{rt} run: {}", out.1);
    read_pid(pidfile)
}

/// crun refuses cgroup hybrid mode: each call runs in a mount namespace without cgroup2.
pub fn runtime(rt: &str, state: &Path, args: &[&str]) -> (bool, String) {
    std::fs::create_dir_all(state).unwrap();
    let log = state.join(format!("out-{}", args[0]));
    let f = std::fs::File::create(&log).unwrap();
    // A detached container keeps runc's stderr as its own, which CRIU must be able to
    // reopen: /dev/null for `run`.
    let err = if args[0] == "run" || args.contains(&"restore") {
        std::process::Stdio::null()
    } else {
        std::process::Stdio::from(f)
    };
    let mut cmd = if rt == "crun" {
        crun_command()
    } else {
        Command::new("runc")
    };
    let ok = cmd
        .arg("--root")
        .arg(state)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err)
        .status()
        .expect("running runc")
        .success();
    (ok, std::fs::read_to_string(&log).unwrap_or_default())
}

/// ckpt's container restore of `bundle` with every other field of the request left default.
pub fn restore_bundle(
    o: &mut ckpt::Options,
    bundle: &Path,
) -> ckpt::Result<(ckpt::container::Plan, ckpt::Restored)> {
    ckpt::container::restore(
        o,
        ckpt::container::RestoreRequest {
            bundle: bundle.to_path_buf(),
            ..Default::default()
        },
    )
}

/// The cgroup names starting with `prefix` (a test run's) that an image directory's
/// cgroup.img holds.
pub fn cgroups_in_images(images: &Path, prefix: &str) -> Vec<String> {
    let img = std::fs::read(images.join("cgroup.img")).unwrap_or_default();
    let text = String::from_utf8_lossy(&img);
    let mut v: Vec<String> = text
        .match_indices(prefix)
        .map(|(i, _)| {
            text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect()
        })
        .collect();
    v.sort();
    v.dedup();
    v
}
