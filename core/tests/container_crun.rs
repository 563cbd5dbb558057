//! The container layer against real crun 1.21 containers (found through crun's own state, as
//! `--runtime crun ID` does): ckpt checkpoints and restores them and they carry on as before;
//! `crun restore` accepts the images ckpt wrote and ckpt restores the images `crun checkpoint`
//! wrote. Every test leaves no container, cgroup, mount or directory behind. Needs root, crun
//! 1.21 in /opt/ckpt-deps/crun, its libcriu 4.1.1 and criu.
//!
//! crun refuses cgroup hybrid mode: each crun call runs in a mount namespace without the
//! cgroup2 mount, so crun's containers sit in cgroup2's root cgroup here.

mod common;

use ckpt::container::{self, RestoreRequest};
use common::containers::{
    CRUN, advancing, busybox_rootfs, count, crun_command, crun_installed, kill_and_reap, read_pid,
    remove_cgroup_tree, remove_work, root, script_spec, wait_gone,
};
use common::{not_exercised, options, serial};
use serde_json::json;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LIBCRIU: &str = "/opt/ckpt-deps/libcriu/usr/lib/x86_64-linux-gnu";

/// Runs crun (in a mount namespace without cgroup2) with the real libcriu on its library
/// path. `stdio` is what a `run` hands the container; every other call gets /dev/null.
fn crun(state: &Path, args: &[&str], stdio: Option<[Stdio; 3]>) -> (bool, String) {
    std::fs::create_dir_all(state).unwrap();
    let log = state.join(format!("out-{}", args[0]));
    let [i, o, e] = stdio.unwrap_or_else(|| {
        // A detached container keeps crun's stderr as its own, which CRIU must reopen.
        let err = if args[0] == "run" || args[0] == "restore" {
            Stdio::null()
        } else {
            Stdio::from(std::fs::File::create(&log).unwrap())
        };
        [Stdio::null(), Stdio::null(), err]
    });
    let libdir = std::env::var("CKPT_LIBCRIU_DIR").unwrap_or(LIBCRIU.into());
    let ok = crun_command()
        .arg("--root")
        .arg(state)
        .args(args)
        .env("LD_LIBRARY_PATH", libdir)
        .stdin(i)
        .stdout(o)
        .stderr(e)
        .status()
        .expect("running crun")
        .success();
    (ok, std::fs::read_to_string(&log).unwrap_or_default())
}

struct Ctr {
    id: String,
    work: PathBuf,
    bundle: PathBuf,
    state: PathBuf,
    pid: i32,
    restored: Vec<i32>,
    /// The container's stdin (write end) and stdout (read end) when they are pipes.
    pipes: Option<(OwnedFd, OwnedFd)>,
}

/// The container's script: a file in its tmpfs, a second process, a counter in /counter and
/// on stdout.
const SCRIPT: &str = "echo kept > /scratch/x; sleep 1000 & \
    i=0; while :; do i=$((i+1)); printf '%8d\\n' $i 1<> /counter; echo $i; sleep 0.1; done";

impl Ctr {
    /// A busybox container started by crun: bind mounts of a file and a directory, a tmpfs, a
    /// bound device, crun's default masked paths plus (`own_masks`) a masked file and directory
    /// of its rootfs, two processes, and (`pipes`) stdin and stdout on pipes.
    fn start(name: &str, own_masks: bool, pipes: bool) -> Ctr {
        Ctr::start_with(name, own_masks, pipes, false)
    }

    /// As `start`; with `nested`, a second bind mount inside the first one's destination.
    fn start_with(name: &str, own_masks: bool, pipes: bool, nested: bool) -> Ctr {
        Ctr::start_full(name, own_masks, pipes, nested, &|_, _| {})
    }

    /// As `start_with`, with `edit` given the spec and the bundle before the container starts.
    fn start_full(
        name: &str,
        own_masks: bool,
        pipes: bool,
        nested: bool,
        edit: &dyn Fn(&mut serde_json::Value, &Path),
    ) -> Ctr {
        let id = format!("ckpt-crun-{}-{name}", std::process::id());
        let work = std::env::temp_dir().join(&id);
        let _ = std::fs::remove_dir_all(&work);
        let bundle = work.join("bundle");
        let r = bundle.join("rootfs");
        busybox_rootfs(
            &r,
            &["bin", "proc", "sys", "dev", "tmp", "etc/secret.d"],
            &["sh", "sleep", "echo", "cat"],
        );
        std::fs::write(r.join("etc/secret"), "s3cret\n").unwrap();
        std::fs::write(r.join("etc/secret.d/key"), "k\n").unwrap();
        std::fs::create_dir_all(bundle.join("host-dir")).unwrap();
        std::fs::write(bundle.join("host-dir/in-dir"), "dir\n").unwrap();
        std::fs::write(bundle.join("host-file"), "data\n").unwrap();
        let state = work.join("crun-state");
        let mut spec = script_spec(CRUN, &bundle, SCRIPT, &id);
        let b = bundle.to_string_lossy().to_string();
        let mounts = spec["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/data/file", "type": "bind", "source": format!("{b}/host-file"), "options": ["bind", "ro"]}));
        mounts.push(json!({"destination": "/data/dir", "type": "bind", "source": format!("{b}/host-dir"), "options": ["rbind", "rw"]}));
        mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]}));
        mounts.push(json!({"destination": "/dev/net/tun", "type": "bind", "source": "/dev/net/tun", "options": ["bind"]}));
        if nested {
            std::fs::create_dir_all(bundle.join("host-inner")).unwrap();
            std::fs::write(bundle.join("host-inner/in-inner"), "inner\n").unwrap();
            mounts.push(json!({"destination": "/data/dir/inner", "type": "bind", "source": format!("{b}/host-inner"), "options": ["rbind", "rw"]}));
        }
        if own_masks {
            let m = spec["linux"]["maskedPaths"].as_array_mut().unwrap();
            m.push(json!("/etc/secret"));
            m.push(json!("/etc/secret.d"));
        }
        edit(&mut spec, &bundle);
        std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
        let mut c = Ctr {
            id,
            work,
            bundle,
            state,
            pid: 0,
            restored: vec![],
            pipes: None,
        };
        let pidfile = c.work.join("init.pid");
        let stdio = pipes.then(|| {
            let (in_r, in_w) = nix::unistd::pipe().unwrap();
            let (out_r, out_w) = nix::unistd::pipe().unwrap();
            c.pipes = Some((in_w, out_r));
            [Stdio::from(in_r), Stdio::from(out_w), Stdio::null()]
        });
        let args = [
            "run",
            "-d",
            "--pid-file",
            pidfile.to_str().unwrap(),
            "--bundle",
            &b,
            &c.id,
        ];
        let out = crun(&c.state, &args, stdio);
        assert!(out.0, "crun run: {}", out.1);
        c.pid = read_pid(&pidfile);
        assert!(c.advancing(), "the container does not count");
        c
    }

    fn count(&self) -> u64 {
        count(&self.bundle)
    }

    fn advancing(&self) -> bool {
        advancing(&self.bundle)
    }

    fn wait_count(&self, n: u64) {
        let end = Instant::now() + Duration::from_secs(10);
        while self.count() < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// ckpt restores `images` into the container's bundle (`req` gives the rest), the restored
    /// init recorded for cleanup; a failure panics with `what` and CRIU's errors. Returns the
    /// plan and the restored init's pid.
    fn ckpt_restore(
        &mut self,
        images: &Path,
        req: RestoreRequest,
        what: &str,
    ) -> (container::plan::Plan, i32) {
        let mut o = options(images);
        let req = RestoreRequest {
            bundle: self.bundle.clone(),
            ..req
        };
        let (plan, r) = container::restore(&mut o, req)
            .unwrap_or_else(|e| panic!("{what}: {e:?}\n{}", restore_log_errors(images)));
        self.restored.push(r.pid);
        (plan, r.pid)
    }

    /// ckpt checkpoints the container into `work/images`, crun kills it, ckpt restores it
    /// into its bundle and its counter goes on; returns the restored init's pid.
    fn checkpoint_kill_restore(&mut self) -> i32 {
        let images = self.work.join("images");
        let mut o = options(&images);
        container::checkpoint_for(&mut o, &self.bundle, self.pid, false, Some("crun"))
            .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
        let at_dump = self.count();
        self.kill();
        let (_, pid) = self.ckpt_restore(&images, RestoreRequest::default(), "restore");
        self.assert_counts_on(at_dump, "");
        pid
    }

    /// After a restore: the counter went past `at_dump` and goes on.
    fn assert_counts_on(&self, at_dump: u64, what: &str) {
        std::thread::sleep(Duration::from_millis(800));
        assert!(
            self.count() > at_dump && self.advancing(),
            "counter {} {what}(dumped at {at_dump})",
            self.count()
        );
    }

    /// `crun restore` of `images` into the container's bundle, detached.
    fn crun_restore(&self, images: &Path) -> (bool, String) {
        let args = [
            "restore",
            "-d",
            "--image-path",
            images.to_str().unwrap(),
            "--bundle",
            self.bundle.to_str().unwrap(),
            &self.id,
        ];
        crun(&self.state, &args, None)
    }

    /// Stops the original container after a checkpoint that did not stop it already.
    fn kill(&self) {
        crun(&self.state, &["kill", &self.id, "KILL"], None);
        wait_gone(self.pid, Duration::from_secs(5));
        crun(&self.state, &["delete", "-f", &self.id], None);
    }

    /// Kills what runs, deletes the container, removes its cgroups (with anything CRIU nested
    /// in them) and returns the cgroup directories that could not be removed.
    fn clean(&mut self) -> Vec<PathBuf> {
        for p in self.restored.drain(..) {
            kill_and_reap(p);
        }
        crun(&self.state, &["delete", "-f", &self.id], None);
        // What a restored init leaves: its children outlive it when the pid namespace is
        // another container's (that namespace's init inherits them).
        let procs = format!("/sys/fs/cgroup/freezer/{}/cgroup.procs", self.id);
        for p in std::fs::read_to_string(procs).unwrap_or_default().lines() {
            if let Ok(p) = p.trim().parse() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let mut left = vec![];
        for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let d = h.path().join(&self.id);
            if d.exists() && !remove_cgroup_tree(&d) {
                left.push(d);
            }
        }
        left
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        self.clean();
        remove_work(&self.work);
    }
}

fn ready() -> bool {
    root("crun container tests need root") && crun_installed()
}

/// The mountpoints of a process, sorted (their ids change across a restore).
fn mountpoints(pid: i32) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect();
    v.sort();
    v
}

/// Which namespaces of `pid` are its own (not the host's, as this test process sees them).
fn own_namespaces(pid: i32) -> Vec<(&'static str, bool)> {
    ["ipc", "mnt", "net", "pid", "uts", "cgroup", "user"]
        .into_iter()
        .map(|n| {
            let a = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
            let b = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
            (n, a != b)
        })
        .collect()
}

/// The pids of the container's processes running `sleep 1000`, from its freezer cgroup.
fn sleepers(id: &str) -> Vec<i32> {
    std::fs::read_to_string(format!("/sys/fs/cgroup/freezer/{id}/cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|p: &i32| {
            std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default() == b"sleep\x001000\x00"
        })
        .collect()
}

/// Everything under the cgroup2 hierarchy whose name holds `tag`.
fn in_cgroup2(tag: &str) -> Vec<PathBuf> {
    fn walk(d: &Path, tag: &str, depth: u32, out: &mut Vec<PathBuf>) {
        if depth == 0 {
            return;
        }
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if e.file_name().to_string_lossy().contains(tag) {
                    out.push(e.path());
                }
                walk(&e.path(), tag, depth - 1, out);
            }
        }
    }
    let mut out = vec![];
    walk(Path::new("/sys/fs/cgroup/unified"), tag, 4, &mut out);
    out
}

#[test]
fn ckpt_checkpoints_and_restores_a_crun_container_found_through_crun_state() {
    if !ready() {
        return;
    }
    let _g = serial();
    let mut c = Ctr::start("own", true, true);
    let l = container::runtime::locate("crun", Some(&c.state), &c.id).unwrap();
    assert_eq!((l.bundle.as_path(), l.pid), (c.bundle.as_path(), c.pid));
    c.wait_count(15);

    // What the container is before: its mounts, cgroups, namespaces, second process, masks.
    let mounts = mountpoints(c.pid);
    let cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid)).unwrap();
    let ns = own_namespaces(c.pid);
    assert_eq!(sleepers(&c.id).len(), 1, "the second process runs");
    let root = format!("/proc/{}/root", c.pid);
    assert_eq!(
        std::fs::read_to_string(format!("{root}/etc/secret")).unwrap(),
        ""
    );
    for mp in [
        "/data/file",
        "/data/dir",
        "/scratch",
        "/dev/net/tun",
        "/etc/secret",
    ] {
        assert!(mounts.iter().any(|m| m == mp), "{mp} is not mounted");
    }

    let images = c.work.join("images");
    let mut o = options(&images);
    let (plan, _) = container::checkpoint_for(&mut o, &l.bundle, l.pid, false, Some("crun"))
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    // Only the container's own cgroups: cgroup2's root (where crun left the init) is not dumped.
    let dumped: Vec<_> = plan
        .criu
        .iter()
        .filter_map(|s| match &s.what {
            container::plan::Criu::CgroupDumpController(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert!(
        !dumped.is_empty() && !dumped.iter().any(|d| d.is_empty()),
        "{dumped:?}"
    );
    let desc = std::fs::read_to_string(images.join("descriptors.json")).unwrap();
    assert!(desc.starts_with("[\"pipe:["), "{desc}");
    let at_dump = c.count();
    c.kill();

    // Restore with new pipes for the container's stdin and stdout.
    let (in_r, in_w) = nix::unistd::pipe().unwrap();
    let (out_r, out_w) = nix::unistd::pipe().unwrap();
    let req = RestoreRequest {
        stdio: [Some(in_r), Some(out_w), None],
        ..Default::default()
    };
    let (_, pid) = c.ckpt_restore(&images, req, "restore");
    std::thread::sleep(Duration::from_millis(800));
    let now = c.count();
    assert!(
        now > at_dump && now < at_dump + 40 && c.advancing(),
        "counter {now}, dumped at {at_dump}"
    );
    // Its stdout is the new pipe: the counter goes on there too.
    nix::fcntl::fcntl(
        &out_r,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = std::fs::File::from(out_r).read(&mut buf).unwrap_or(0);
    let last: u64 = String::from_utf8_lossy(&buf[..n])
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .max()
        .unwrap_or(0);
    assert!(last > at_dump, "stdout after restore: {:?}", &buf[..n]);
    drop(in_w);

    assert_eq!(mountpoints(pid), mounts, "the restored container's mounts");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{}/cgroup", pid)).unwrap(),
        cgroups,
        "the restored container's cgroups"
    );
    assert_eq!(
        own_namespaces(pid),
        ns,
        "the restored container's namespaces"
    );
    let s = sleepers(&c.id);
    assert_eq!(s.len(), 1, "the second process is restored");
    let child = s[0];
    for n in ["mnt", "pid", "net", "ipc", "uts"] {
        assert_eq!(
            std::fs::read_link(format!("/proc/{child}/ns/{n}")).unwrap(),
            std::fs::read_link(format!("/proc/{}/ns/{n}", pid)).unwrap(),
            "the second process shares the init's {n} namespace"
        );
    }
    let root = format!("/proc/{}/root", pid);
    assert_eq!(
        std::fs::read_to_string(format!("{root}/etc/secret")).unwrap(),
        ""
    );
    assert_eq!(
        std::fs::read_dir(format!("{root}/etc/secret.d"))
            .unwrap()
            .count(),
        0,
        "the masked directory is empty"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{root}/data/file")).unwrap(),
        "data\n"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{root}/data/dir/in-dir")).unwrap(),
        "dir\n"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{root}/scratch/x")).unwrap(),
        "kept\n"
    );

    let left = c.clean();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    assert!(in_cgroup2(&c.id).is_empty(), "{:?}", in_cgroup2(&c.id));
}

fn restore_log_errors(images: &Path) -> String {
    std::fs::read_to_string(images.join("restore.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Error"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn crun_restores_ckpt_images_of_a_crun_container() {
    if !ready() {
        return;
    }
    let _g = serial();
    let mut c = Ctr::start("tocrun", false, false);
    c.wait_count(15);
    let images = c.work.join("ckpt-images");
    let mut o = options(&images);
    container::checkpoint_for(&mut o, &c.bundle, c.pid, false, Some("crun"))
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    let at_dump = c.count();
    c.kill();
    let out = c.crun_restore(&images);
    assert!(
        out.0,
        "crun restore of ckpt's images: {}\n{}",
        out.1,
        restore_log_errors(&images)
    );
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        c.count() > at_dump && c.advancing(),
        "counter {} after crun restored ckpt's images (dumped at {at_dump})",
        c.count()
    );
    let left = c.clean();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    assert!(in_cgroup2(&c.id).is_empty(), "{:?}", in_cgroup2(&c.id));
}

#[test]
fn ckpt_restores_the_images_crun_checkpoint_wrote() {
    if !ready() {
        return;
    }
    let _g = serial();
    let mut c = Ctr::start("fromcrun", false, false);
    c.wait_count(15);
    let mounts = mountpoints(c.pid);
    let cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid)).unwrap();
    let images = c.work.join("crun-images");
    let out = crun(
        &c.state,
        &[
            "checkpoint",
            "--image-path",
            images.to_str().unwrap(),
            &c.id,
        ],
        None,
    );
    assert!(out.0, "crun checkpoint: {}", out.1);
    let at_dump = c.count();
    crun(&c.state, &["delete", "-f", &c.id], None);
    let (_, pid) = c.ckpt_restore(
        &images,
        RestoreRequest::default(),
        "ckpt restore of crun's images",
    );
    c.assert_counts_on(at_dump, "after ckpt restored crun's images ");
    assert_eq!(mountpoints(pid), mounts, "the restored container's mounts");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{}/cgroup", pid)).unwrap(),
        cgroups,
        "the restored container's cgroups"
    );
    let left = c.clean();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    assert!(in_cgroup2(&c.id).is_empty(), "{:?}", in_cgroup2(&c.id));
}

#[test]
fn a_bind_mount_inside_another_is_restored_when_its_mountpoint_is_gone() {
    if !ready() {
        return;
    }
    let _g = serial();
    let mut c = Ctr::start_with("nested", false, false, true);
    // crun made /data/dir/inner's mountpoint in host-dir, the outer bind's source.
    let inner_mp = c.bundle.join("host-dir/inner");
    assert!(inner_mp.is_dir());
    c.wait_count(15);
    let mounts = mountpoints(c.pid);
    let images = c.work.join("images");
    let mut o = options(&images);
    container::checkpoint_for(&mut o, &c.bundle, c.pid, false, Some("crun"))
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    let at_dump = c.count();
    c.kill();
    // The outer bind's source lost the mountpoint (a fresh copy of it on another host).
    std::fs::remove_dir(&inner_mp).unwrap();
    let (plan, pid) = c.ckpt_restore(&images, RestoreRequest::default(), "restore");
    assert!(
        plan.actions
            .iter()
            .any(|a| a.reason.contains("under bind mount /data/dir")),
        "{}",
        plan.to_json()
    );
    c.assert_counts_on(at_dump, "");
    assert_eq!(mountpoints(pid), mounts, "the restored container's mounts");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{}/root/data/dir/inner/in-inner", pid)).unwrap(),
        "inner\n"
    );
    assert!(
        inner_mp.is_dir(),
        "the mountpoint was made again in host-dir"
    );
    assert!(
        !c.bundle.join("rootfs/data/dir/inner").exists(),
        "nothing was made in the rootfs under the outer bind"
    );
    let left = c.clean();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

/// The mount options of `pid`'s root mount.
fn root_mount_options(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .and_then(|l| l.split(' ').nth(5).map(str::to_string))
        .unwrap()
}

#[test]
fn a_readonly_rootfs_is_restored_readonly() {
    if !ready() {
        return;
    }
    let _g = serial();
    // The counter file is bound on itself, so the container can still write it.
    let mut c = Ctr::start_full("ro", false, false, false, &|spec, bundle| {
        std::fs::write(bundle.join("rootfs/counter"), "").unwrap();
        let src = bundle.join("rootfs/counter");
        spec["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/counter", "type": "bind", "source": src, "options": ["bind", "rw"]}),
        );
        spec["root"]["readonly"] = json!(true);
    });
    assert!(
        root_mount_options(c.pid).starts_with("ro,"),
        "crun made / read-only"
    );
    c.wait_count(5);
    let pid = c.checkpoint_kill_restore();
    assert!(
        root_mount_options(pid).starts_with("ro,"),
        "the restored container's / is {}",
        root_mount_options(pid)
    );
    let left = c.clean();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

#[test]
fn a_bind_mount_whose_source_is_a_symlink_is_restored() {
    if !ready() {
        return;
    }
    let _g = serial();
    let mut c = Ctr::start_full("symsrc", false, false, false, &|spec, bundle| {
        std::os::unix::fs::symlink("host-dir", bundle.join("link-dir")).unwrap();
        let src = bundle.join("link-dir");
        spec["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/linked", "type": "bind", "source": src, "options": ["rbind", "rw"]}),
        );
    });
    c.wait_count(5);
    let mounts = mountpoints(c.pid);
    let pid = c.checkpoint_kill_restore();
    assert_eq!(mountpoints(pid), mounts, "the restored container's mounts");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/root/linked/in-dir")).unwrap(),
        "dir\n"
    );
    let left = c.clean();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

#[test]
fn a_container_in_another_containers_pid_namespace_is_checkpointed_and_restored() {
    if !ready() {
        return;
    }
    let _g = serial();
    let a = Ctr::start("pidns-a", false, false);
    let shared = format!("/proc/{}/ns/pid", a.pid);
    let mut c = Ctr::start_full("pidns-b", false, false, false, &|spec, _| {
        for n in spec["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "pid" {
                n["path"] = json!(shared);
            }
        }
    });
    let ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_eq!(ns(c.pid), ns(a.pid));
    // A process of the container that is not its init is still refused, before CRIU.
    let sleeper = sleepers(&c.id)[0];
    let images = c.work.join("images");
    let mut o = options(&images);
    let e = container::checkpoint_for(&mut o, &c.bundle, sleeper, false, Some("crun")).unwrap_err();
    assert_eq!(e.code, ckpt::Code::InvalidState, "{e:?}");
    assert!(e.to_string().contains("not the container's init"), "{e}");
    assert!(
        c.advancing(),
        "the refused checkpoint stopped the container"
    );
    container::checkpoint_for(&mut o, &c.bundle, c.pid, false, Some("crun"))
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    let at_dump = c.count();
    c.kill();
    let (_, pid) = c.ckpt_restore(&images, RestoreRequest::default(), "restore");
    c.assert_counts_on(at_dump, "");
    assert_eq!(
        ns(pid),
        ns(a.pid),
        "the restored init is in the shared pid namespace"
    );
    assert!(a.advancing(), "the other container runs on");
    let left = c.clean();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

/// Deletes a host network interface when dropped (one the test made).
struct HostLink(String);
impl Drop for HostLink {
    fn drop(&mut self) {
        if Path::new("/sys/class/net").join(&self.0).exists() {
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
}

#[test]
fn a_veth_pair_is_recreated_when_the_network_namespace_is_kept() {
    if !ready() {
        return;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        not_exercised("veth pairs: ip (iproute2) is not installed");
        return;
    }
    let _g = serial();
    let mut c = Ctr::start("veth", false, false);
    let outside = format!("ckv{}", std::process::id());
    let _link = HostLink(outside.clone());
    let made = Command::new("ip")
        .args([
            "link", "add", &outside, "type", "veth", "peer", "name", "eth1", "netns",
        ])
        .arg(c.pid.to_string())
        .status()
        .unwrap();
    assert!(made.success(), "ip link add");
    c.wait_count(15);
    let images = c.work.join("images");
    let mut o = options(&images);
    let (plan, _) = container::checkpoint_for(&mut o, &c.bundle, c.pid, true, Some("crun"))
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    let rec = plan.record.as_ref().unwrap();
    assert_eq!(
        rec.veths,
        vec![container::veth::Veth {
            inside: "eth1".into(),
            outside: outside.clone(),
            bridge: None
        }],
        "{}",
        plan.to_json()
    );
    let at_dump = c.count();
    c.kill();
    // The container's network namespace went, and both ends with it.
    let end = Instant::now() + Duration::from_secs(5);
    while Path::new("/sys/class/net").join(&outside).exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!Path::new("/sys/class/net").join(&outside).exists());
    let req = RestoreRequest {
        keep_network: true,
        ..Default::default()
    };
    let (plan, pid) = c.ckpt_restore(&images, req, "restore");
    assert!(plan.criu.iter().any(
        |s| matches!(&s.what, container::plan::Criu::VethPair { inside, .. } if inside == "eth1")
    ));
    c.assert_counts_on(at_dump, "");
    let dev = std::fs::read_to_string(format!("/proc/{}/net/dev", pid)).unwrap();
    assert!(dev.contains("eth1:"), "{dev}");
    assert!(
        Path::new("/sys/class/net").join(&outside).exists(),
        "the host end {outside} is back"
    );
    let left = c.clean();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

/// The freezer line of /proc/PID/cgroup, read as that cgroup's freezer.state.
fn freezer_state(pid: i32) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let path = cg
        .lines()
        .find_map(|l| l.split_once(":freezer:").map(|(_, p)| p.to_string()))
        .unwrap_or_default();
    std::fs::read_to_string(format!("/sys/fs/cgroup/freezer{path}/freezer.state"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// docs/containers.md, "Interop": images of a crun container checkpointed with runc's keys (no
/// runtime named) are refused by `crun restore` with CRIU's "No mapping for ...", and ckpt,
/// which maps both keys, restores them. Also: ckpt's own freezing of the crun container leaves
/// its freezer THAWED and its cgroup.img saying so.
#[test]
fn crun_refuses_runc_keyed_images_of_a_crun_container_and_ckpt_restores_them() {
    if !ready() {
        return;
    }
    let _g = serial();
    let mut c = Ctr::start("runckeys", false, false);
    c.wait_count(15);
    let images = c.work.join("runc-keyed");
    let mut o = options(&images);
    o.set_leave_running(true);
    let (plan, _) = container::checkpoint_for(&mut o, &c.bundle, c.pid, false, None)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    if plan
        .actions
        .iter()
        .any(|a| matches!(a.what, container::plan::Action::FreezeFirst { .. }))
    {
        assert_eq!(freezer_state(c.pid), "THAWED", "ckpt thawed what it froze");
        let img = String::from_utf8_lossy(&std::fs::read(images.join("cgroup.img")).unwrap())
            .into_owned();
        assert!(
            img.contains("THAWED") && !img.contains("FROZEN"),
            "cgroup.img"
        );
    } else {
        not_exercised("ckpt's own freezing: no v1 freezer cgroup for the crun container");
    }
    let at_dump = c.count();
    c.kill();
    let out = c.crun_restore(&images);
    let log = std::fs::read_to_string(images.join("restore.log")).unwrap_or_default();
    crun(&c.state, &["delete", "-f", &c.id], None);
    assert!(!out.0, "crun restored images keyed as runc's");
    assert!(
        log.contains("No mapping for"),
        "crun's refusal is not the one documented:\n{}",
        restore_log_errors(&images)
    );
    let _ = std::fs::remove_file(images.join("restore.log"));
    let (_, pid) = c.ckpt_restore(
        &images,
        RestoreRequest::default(),
        "ckpt restore of runc-keyed images",
    );
    c.assert_counts_on(at_dump, "after ckpt restored ");
    assert_ne!(
        freezer_state(pid),
        "FROZEN",
        "the restored container is frozen"
    );
    let left = c.clean();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    assert!(in_cgroup2(&c.id).is_empty(), "{:?}", in_cgroup2(&c.id));
}
