//! The container layer against real runc 1.1.5 containers: ckpt checkpoints and restores them
//! and they count on; runc restores what ckpt wrote and ckpt restores what runc wrote; bad
//! input is refused before CRIU starts, the container untouched. The round trip, the network
//! namespace given by path and the terminal container run with crun 1.21 too (skipped, said so,
//! without it). Needs root, runc and criu.

mod common;

use ckpt::container::{self, RestoreRequest};
use ckpt::error::Code;
use common::containers::{
    advancing, busybox_rootfs, console_listener, count, crun_installed, kill_and_reap,
    remove_cgroups, remove_work, restore_bundle, run_detached, runc, runc_ready, runtime,
    script_spec, wait_gone,
};
use common::{not_exercised, options, serial};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Container {
    runtime: &'static str,
    netns: Option<String>,
    id: String,
    work: PathBuf,
    bundle: PathBuf,
    state: PathBuf,
    pid: i32,
    restored: Vec<i32>,
    tag: String,
}

impl Container {
    /// A busybox container counting into /counter, with a bind-mounted file and directory, a
    /// tmpfs, a bind-mounted device, the default masked paths and, with `hook`, a bind mount a
    /// createContainer hook adds (not in config.json's mounts).
    fn start(name: &str, hook: bool) -> Container {
        Container::start_with("runc", name, hook, false)
    }

    fn start_with(rt: &'static str, name: &str, hook: bool, with_netns: bool) -> Container {
        let tag = format!("ckpt-containers-{}-{name}", std::process::id());
        let work = std::env::temp_dir().join(&tag);
        let _ = std::fs::remove_dir_all(&work);
        let bundle = work.join("bundle");
        busybox_rootfs(
            &bundle.join("rootfs"),
            &["bin", "proc", "sys", "dev", "tmp", "etc", "hooked"],
            &["sh", "sleep", "echo", "cat"],
        );
        std::fs::create_dir_all(bundle.join("host-dir")).unwrap();
        std::fs::create_dir_all(bundle.join("hook-src")).unwrap();
        std::fs::write(bundle.join("host-file"), "data\n").unwrap();
        let mut spec = script_spec(
            "runc",
            &bundle,
            "i=0; while :; do i=$((i+1)); printf '%8d\\n' $i 1<> /counter; sleep 0.1; done",
            &tag,
        );
        let b = bundle.to_string_lossy().to_string();
        let mounts = spec["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/data/file", "type": "bind", "source": format!("{b}/host-file"), "options": ["bind", "ro"]}));
        mounts.push(json!({"destination": "/data/dir", "type": "none", "source": format!("{b}/host-dir"), "options": ["rbind", "rw"]}));
        mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]}));
        mounts.push(json!({"destination": "/dev/net/tun", "type": "bind", "source": "/dev/net/tun", "options": ["bind"]}));
        if hook {
            spec["hooks"] = json!({"createContainer": [{"path": "/bin/mount",
                "args": ["mount", "--bind", format!("{b}/hook-src"), format!("{b}/rootfs/hooked")]}]});
        }
        let mut netns = None;
        if with_netns {
            let n = format!("{tag}-net");
            assert!(
                Command::new("ip")
                    .args(["netns", "add", &n])
                    .status()
                    .unwrap()
                    .success()
            );
            for ns in spec["linux"]["namespaces"].as_array_mut().unwrap() {
                if ns["type"] == "network" {
                    ns["path"] = json!(format!("/var/run/netns/{n}"));
                }
            }
            netns = Some(n);
        }
        std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
        let state = work.join("runc-state");
        let pidfile = work.join("init.pid");
        let mut c = Container {
            runtime: rt,
            netns,
            id: tag.clone(),
            work,
            bundle,
            state,
            pid: 0,
            restored: vec![],
            tag,
        };
        c.pid = run_detached(rt, &c.state, &c.bundle, &c.id, &pidfile);
        assert!(c.advancing(), "the container does not count");
        c
    }

    fn count(&self) -> u64 {
        count(&self.bundle)
    }

    fn advancing(&self) -> bool {
        advancing(&self.bundle)
    }

    fn kill(&self) {
        runtime(self.runtime, &self.state, &["kill", &self.id, "KILL"]);
        wait_gone(self.pid, Duration::from_secs(5));
        runtime(self.runtime, &self.state, &["delete", "-f", &self.id]);
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // A restored tree left paused cannot die until thawed.
        let _ = std::fs::write(
            format!("/sys/fs/cgroup/freezer/{}/freezer.state", self.tag),
            "THAWED",
        );
        for &p in &self.restored {
            kill_and_reap(p);
        }
        runtime(self.runtime, &self.state, &["delete", "-f", &self.id]);
        runtime(
            self.runtime,
            &self.state,
            &["delete", "-f", &format!("{}-r", self.id)],
        );
        remove_cgroups(&self.tag);
        if let Some(n) = &self.netns {
            let _ = Command::new("ip").args(["netns", "delete", n]).status();
        }
        remove_work(&self.work);
    }
}

fn ready() -> bool {
    runc_ready()
}

fn mounts_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default()
}

#[test]
fn ckpt_checkpoints_and_restores_a_runc_container() {
    if !ready() {
        return;
    }
    let _g = serial();
    let mut c = Container::start("own", true);
    let images = c.work.join("images");
    let mut o = options(&images);
    o.set_leave_running(true);
    let (plan, _stats) = container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    assert!(
        o.ext_mount_count() == 0 && o.root().is_none(),
        "the caller's options are put back"
    );
    assert!(
        plan.criu
            .iter()
            .any(|s| s.reason.contains("added by a hook"))
    );
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(images.join("ckpt-container.json")).unwrap())
            .unwrap();
    assert!(
        rec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountpoint"] == "/hooked" && m["kind"] == "dir")
    );
    let desc = std::fs::read_to_string(images.join("descriptors.json")).unwrap();
    assert_eq!(desc, r#"["/dev/null","/dev/null","/dev/null"]"#);
    assert!(
        c.advancing(),
        "the container runs on after a leave-running checkpoint"
    );
    // ckpt froze the v1 freezer cgroup itself before CRIU: it is thawed again, and the images
    // record the state the container was in (THAWED), not the one ckpt put it in.
    let freezer = format!("/sys/fs/cgroup/freezer/{}/freezer.state", c.tag);
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a.what, container::plan::Action::FreezeFirst { .. }))
    );
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "THAWED");
    let states = |dir: &Path| {
        let img = std::fs::read(dir.join("cgroup.img")).unwrap();
        let s = String::from_utf8_lossy(&img).into_owned();
        (s.matches("THAWED").count(), s.matches("FROZEN").count())
    };
    assert_eq!(states(&images), (1, 0));
    // A paused container is left to CRIU: it stays paused and its images say FROZEN.
    assert!(runc(&c.state, &["pause", &c.id]).0);
    let paused = c.work.join("images-paused");
    let mut o = options(&paused);
    o.set_leave_running(true);
    let r = container::checkpoint(&mut o, &c.bundle, c.pid, false);
    let still = std::fs::read_to_string(&freezer).unwrap();
    assert!(runc(&c.state, &["resume", &c.id]).0);
    r.unwrap_or_else(|e| panic!("checkpoint of a paused container: {e:?}"));
    assert_eq!(still.trim(), "FROZEN");
    assert_eq!(states(&paused), (0, 1));
    assert!(c.advancing(), "the container runs on after resume");

    // A plain checkpoint (the container stops), then ckpt restores it.
    let images2 = c.work.join("images2");
    let mut o = options(&images2);
    while c.count() < 20 {
        std::thread::sleep(Duration::from_millis(50));
    }
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    let at_dump = c.count();
    c.kill();
    // Restored as a process tree, the container's checkpoint is refused before CRIU starts,
    // naming an external mount CRIU would find no mapping for.
    let e = ckpt::ops::restore(&options(&images2))
        .expect_err("a process restore of a container's checkpoint");
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
    assert!(
        e.message.contains("holds a container's checkpoint")
            && e.message.contains("external mount, key")
            && e.log_path.is_none(),
        "{e:?}"
    );
    // The hook's mountpoint is gone from the rootfs: the restore makes it again, as a directory.
    std::fs::remove_dir(c.bundle.join("rootfs/hooked")).unwrap();
    let stages = Arc::new(Mutex::new(vec![]));
    let s2 = stages.clone();
    let req = RestoreRequest {
        bundle: c.bundle.clone(),
        hooks: Some(Arc::new(move |at: &str, pid: i32| {
            s2.lock().unwrap().push((at.to_string(), pid));
            Ok(())
        })),
        ..Default::default()
    };
    let mut o = options(&images2);
    o.set_pid_file(c.work.join("restored.pid")).unwrap();
    let own_cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let (plan, restored) =
        container::restore(&mut o, req).unwrap_or_else(|e| panic!("restore: {e:?}"));
    c.restored.push(restored.pid);
    assert!(
        plan.actions
            .iter()
            .any(|a| a.reason.contains("mountpoint /hooked is missing"))
    );
    std::thread::sleep(Duration::from_millis(800));
    let now = c.count();
    assert!(
        now > at_dump && now < at_dump + 40 && c.advancing(),
        "counter {now}, dumped at {at_dump}"
    );
    let mi = mounts_of(restored.pid);
    for mp in [
        " /hooked ",
        " /data/file ",
        " /data/dir ",
        " /scratch ",
        " /sys/fs/cgroup/freezer ",
        " /proc/keys ",
    ] {
        assert!(
            mi.contains(mp),
            "restored container lacks mount {mp}:\n{mi}"
        );
    }
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", restored.pid)).unwrap();
    assert!(cg.contains(&format!("freezer:/{}", c.tag)), "{cg}");
    // The host's /sys/fs/cgroup is laid out as CRIU's cgroup yard: CRIU used its mounts
    // instead of mounting every hierarchy again.
    let yard = plan.criu.iter().find_map(|s| match &s.what {
        container::plan::Criu::CgroupYard(y) => Some(y.clone()),
        _ => None,
    });
    if let Some(y) = yard {
        let log = std::fs::read_to_string(images2.join("restore.log")).unwrap();
        assert!(log.contains(&format!("Opening {y} as cg yard")), "{y}");
        // With the host's yard ckpt kept the cgroup migration lock warm with moves of
        // nothing (container::cgroup_warm): the restored init is in the container's cgroup
        // in every v1 hierarchy all the same, and this process stayed where it was.
        assert!(
            plan.actions
                .iter()
                .any(|a| a.what == container::plan::Action::WarmCgroupLock)
        );
        for l in cg.lines().filter(|l| !l.starts_with("0::")) {
            assert!(l.ends_with(&format!(":/{}", c.tag)), "{l} in\n{cg}");
        }
    }
    assert_eq!(
        std::fs::read_to_string("/proc/self/cgroup").unwrap(),
        own_cgroups
    );
    let st = stages.lock().unwrap().clone();
    assert_eq!(
        st.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        ["setup-namespaces", "post-restore"]
    );
    // CRIU's root was unbound and removed.
    let root = plan.actions.iter().find_map(|a| match &a.what {
        container::plan::Action::BindRootfs { target, .. } => Some(target.clone()),
        _ => None,
    });
    assert!(!root.unwrap().exists());
}

#[test]
fn bad_input_is_refused_before_criu_and_the_container_runs_on() {
    if !ready() {
        return;
    }
    let _g = serial();
    let c = Container::start("bad", false);
    let images = c.work.join("bad-images");
    let mut o = options(&images);
    // A pid that is not the container's init: a shell inside it.
    let e = container::checkpoint(&mut o, &c.bundle, std::process::id() as i32, false).unwrap_err();
    assert_eq!(e.code, Code::InvalidState, "{e:?}");
    let other = c.work.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let e = container::checkpoint(&mut o, &other, c.pid, false).unwrap_err();
    assert!(
        e.message.contains("config.json does not exist"),
        "{}",
        e.message
    );
    std::fs::write(other.join("config.json"), "{ not json").unwrap();
    let e = container::checkpoint(&mut o, &other, c.pid, false).unwrap_err();
    assert!(
        e.message.contains("not a valid OCI runtime spec"),
        "{}",
        e.message
    );
    assert!(!images.join("dump.log").exists(), "criu never ran");
    // A container pre-dump needs memory tracking, which this kernel lacks: refused clearly.
    let mut o = options(&c.work.join("pre"));
    o.set_pre_dump(true);
    match container::checkpoint(&mut o, &c.bundle, c.pid, false) {
        Err(e) if e.code == Code::Unsupported => {
            assert!(o.ext_mount_count() == 0, "options put back");
            not_exercised(&format!("container pre-dump: {}", e.message));
        }
        Err(e) => panic!("pre-dump: {e:?}"),
        Ok(_) => eprintln!("container pre-dump works on this kernel"),
    }
    // runc's own state names the same bundle and init.
    let l = container::runtime::locate("runc", Some(&c.state), &c.id).unwrap();
    assert_eq!((l.bundle.as_path(), l.pid), (c.bundle.as_path(), c.pid));
    assert!(c.advancing(), "the container is untouched");
}

#[test]
fn runc_and_ckpt_restore_each_others_checkpoints() {
    if !ready() {
        return;
    }
    let _g = serial();
    let criu = "/usr/local/sbin/criu";
    // runc checkpoint, ckpt restore.
    let mut c = Container::start("interop", false);
    let images = c.work.join("runc-images");
    while c.count() < 20 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = runc(
        &c.state,
        &[
            "--criu",
            criu,
            "checkpoint",
            "--image-path",
            images.to_str().unwrap(),
            &c.id,
        ],
    );
    assert!(out.0, "runc checkpoint: {}", out.1);
    let at_dump = c.count();
    runc(&c.state, &["delete", "-f", &c.id]);
    let mut o = options(&images);
    let (_, restored) = restore_bundle(&mut o, &c.bundle)
        .unwrap_or_else(|e| panic!("ckpt restore of runc's images: {e:?}"));
    c.restored.push(restored.pid);
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        c.count() > at_dump && c.advancing(),
        "counter {} after ckpt restored runc's images (dumped at {at_dump})",
        c.count()
    );
    kill_and_reap(restored.pid);
    c.restored.clear();

    // ckpt checkpoint, runc restore.
    let c2 = Container::start("interop2", false);
    let images = c2.work.join("ckpt-images");
    while c2.count() < 20 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut o = options(&images);
    container::checkpoint(&mut o, &c2.bundle, c2.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    let at_dump = c2.count();
    c2.kill();
    let rid = format!("{}-r", c2.id);
    let out = runc(
        &c2.state,
        &[
            "--criu",
            criu,
            "restore",
            "-d",
            "--image-path",
            images.to_str().unwrap(),
            "--bundle",
            c2.bundle.to_str().unwrap(),
            &rid,
        ],
    );
    assert!(
        out.0,
        "runc restore of ckpt's images: {}\n{}",
        out.1,
        std::fs::read_to_string(images.join("restore.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("Error"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        c2.count() > at_dump && c2.advancing(),
        "counter {} after runc restored ckpt's images (dumped at {at_dump})",
        c2.count()
    );
}

/// Checkpoint by ckpt, kill, restore by ckpt; the counter goes on. Returns the restored pid.
fn round_trip(c: &mut Container) -> i32 {
    let images = c.work.join("rt-images");
    while c.count() < 20 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut o = options(&images);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("{} checkpoint: {e:?}", c.runtime));
    let at_dump = c.count();
    c.kill();
    let mut o = options(&images);
    let (_, r) = restore_bundle(&mut o, &c.bundle)
        .unwrap_or_else(|e| panic!("{} restore: {e:?}", c.runtime));
    c.restored.push(r.pid);
    std::thread::sleep(Duration::from_millis(800));
    let now = c.count();
    assert!(
        now > at_dump && now < at_dump + 40 && c.advancing(),
        "counter {now}, dumped at {at_dump}"
    );
    r.pid
}

#[test]
fn ckpt_checkpoints_and_restores_a_crun_container() {
    if !ready() {
        return;
    }
    if !crun_installed() {
        return;
    }
    let _g = serial();
    let mut c = Container::start_with("crun", "crun", true, false);
    // crun leaves the init in cgroup2's root here: the plan keeps CRIU to the v1 hierarchies.
    let plan =
        container::plan_checkpoint(&options(&c.work.join("x")), &c.bundle, c.pid, false).unwrap();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("cgroup2") && n.contains("root cgroup")),
        "{:?}",
        plan.notes
    );
    let before = std::fs::read_dir("/sys/fs/cgroup/unified").unwrap().count();
    let pid = round_trip(&mut c);
    let mi = mounts_of(pid);
    for mp in [" /hooked ", " /data/file ", " /sys/fs/cgroup/freezer "] {
        assert!(mi.contains(mp), "restored crun container lacks {mp}:\n{mi}");
    }
    let after = std::fs::read_dir("/sys/fs/cgroup/unified").unwrap().count();
    assert_eq!(
        before, after,
        "the cgroup2 hierarchy gained directories from the restore"
    );
}

#[test]
fn a_network_namespace_given_by_path_is_rejoined() {
    if !ready() {
        return;
    }
    let _g = serial();
    left_behind(&netns_rejoined("runc"));
}

#[test]
fn a_network_namespace_given_by_path_is_rejoined_by_a_crun_container() {
    if !ready() {
        return;
    }
    if !crun_installed() {
        return;
    }
    let _g = serial();
    left_behind(&netns_rejoined("crun"));
}

/// A container of `rt` joins a network namespace made by `ip netns add` (named with the test's
/// pid) by its path; after ckpt's checkpoint and restore it is in that namespace again and
/// counts on. The namespace goes with the container (its Drop). Returns the container's tag
/// and the namespace's name, for `left_behind`.
fn netns_rejoined(rt: &'static str) -> [String; 2] {
    let mut c = Container::start_with(rt, &format!("netns-{rt}"), false, true);
    let path = format!("/var/run/netns/{}", c.netns.clone().unwrap());
    let want = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(format!("/proc/{}/ns/net", c.pid))
            .unwrap()
            .ino(),
        want.ino(),
        "{rt} did not put the container in {path}"
    );
    let pid = round_trip(&mut c);
    let got = std::fs::metadata(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(
        got.ino(),
        want.ino(),
        "the restored {rt} container is not in the named network namespace"
    );
    [c.tag.clone(), c.netns.clone().unwrap()]
}

/// Asserts that no cgroup directory, network namespace or runtime state named `names`
/// outlived the container (dropped by then).
fn left_behind(names: &[String]) {
    let mut left = vec![];
    for n in names {
        for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            if h.path().join(n).exists() {
                left.push(h.path().join(n));
            }
        }
        for p in [
            Path::new("/var/run/netns").join(n),
            std::env::temp_dir().join(n),
        ] {
            if p.exists() && std::env::var_os("CKPT_KEEP_TEST_DIRS").is_none() {
                left.push(p);
            }
        }
    }
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_terminal_container_gets_its_new_terminal_through_the_console_socket() {
    if !ready() {
        return;
    }
    let _g = serial();
    left_behind(&[terminal_round_trip("runc", true)]);
}

#[test]
fn a_crun_terminal_container_gets_its_new_terminal_through_the_console_socket() {
    if !ready() {
        return;
    }
    if !crun_installed() {
        return;
    }
    let _g = serial();
    left_behind(&[terminal_round_trip("crun", true)]);
}

#[test]
fn a_terminal_container_restore_without_a_console_socket_is_refused() {
    if !ready() {
        return;
    }
    let _g = serial();
    left_behind(&[terminal_round_trip("runc", false)]);
}

/// A console socket given for a container without a terminal would never be connected to (CRIU
/// has no terminal master to send): the restore is refused before CRIU, as runc refuses it.
#[test]
fn a_console_socket_for_a_container_without_a_terminal_is_refused() {
    if !ready() {
        return;
    }
    let _g = serial();
    let c = Container::start("nottysock", false);
    let images = c.work.join("images");
    let mut o = options(&images);
    o.set_leave_running(true);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    let mut o = options(&images);
    o.set_console_socket(c.work.join("console.sock")).unwrap();
    let e = restore_bundle(&mut o, &c.bundle)
        .map(|(_, r)| kill_and_reap(r.pid))
        .expect_err("a console socket for a container without a terminal");
    assert_eq!(e.code, Code::InvalidArgument, "{e:?}");
    assert!(
        e.message.contains("console socket") && e.message.contains("no terminal"),
        "{e:?}"
    );
    assert!(
        !images.join("restore.log").exists(),
        "refused before CRIU started"
    );
    assert!(c.advancing(), "the container runs on");
    let tag = c.tag.clone();
    drop(c);
    left_behind(&[tag]);
}

/// Reads what arrives on a terminal master for up to `wait`, and returns the largest number
/// among its lines.
fn last_number_on(master: &std::os::fd::OwnedFd, wait: Duration) -> (u64, String) {
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
    let last = seen
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .max()
        .unwrap_or(0);
    (last, seen)
}

/// A terminal container of `rt` started with a console socket; ckpt checkpoints it, restores
/// it with a console socket of its own, and the new terminal master arrives there: the
/// container's counter, written to its terminal, is read from that master after the restore.
/// Returns the container's tag, for `left_behind`. Without `socket`, the restore is given no
/// console socket and must be refused before CRIU, as `runc restore --detach` refuses it.
fn terminal_round_trip(rt: &'static str, socket: bool) -> String {
    let tag = format!(
        "ckpt-containers-{}-tty-{rt}{}",
        std::process::id(),
        if socket { "" } else { "-nosock" }
    );
    let work = std::env::temp_dir().join(&tag);
    let _ = std::fs::remove_dir_all(&work);
    let bundle = work.join("bundle");
    let r = bundle.join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", r.join("bin/busybox")).unwrap();
    for a in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", r.join("bin").join(a)).unwrap();
    }
    assert!(
        Command::new("runc")
            .arg("spec")
            .current_dir(&bundle)
            .status()
            .unwrap()
            .success()
    );
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap())
            .unwrap();
    spec["process"]["terminal"] = json!(true);
    spec["process"]["args"] = json!([
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); printf '%8d\\n' $i 1<> /counter; echo $i; sleep 0.1; done"
    ]);
    spec["root"]["readonly"] = json!(false);
    spec["linux"]["cgroupsPath"] = json!(format!("/{tag}"));
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let mut c = Container {
        runtime: rt,
        netns: None,
        id: tag.clone(),
        work: work.clone(),
        bundle: bundle.clone(),
        state: work.join("runc-state"),
        pid: 0,
        restored: vec![],
        tag,
    };
    let sock = work.join("console.sock");
    let first = console_listener(&sock);
    let pidfile = work.join("init.pid");
    let out = runtime(
        rt,
        &c.state,
        &[
            "run",
            "-d",
            "--console-socket",
            sock.to_str().unwrap(),
            "--pid-file",
            pidfile.to_str().unwrap(),
            "--bundle",
            bundle.to_str().unwrap(),
            &c.id,
        ],
    );
    assert!(out.0, "{rt} run: {}", out.1);
    let _master = first
        .join()
        .unwrap()
        .expect("the runtime sent the terminal master");
    c.pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(c.advancing());
    let images = work.join("images");
    let mut o = options(&images);
    let (plan, _) = container::checkpoint(&mut o, &bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    assert!(
        plan.criu
            .iter()
            .any(|s| s.what == container::plan::Criu::OrphanPtsMaster(true))
    );
    let at_dump = c.count();
    c.kill();
    std::fs::remove_file(&sock).unwrap();
    let mut o = options(&images);
    if !socket {
        // Nothing would receive the new terminal master: CRIU's fd is closed, the restored
        // container's terminal hangs up, and the runtime can never reach it.
        let e = restore_bundle(&mut o, &bundle)
            .map(|(_, r)| c.restored.push(r.pid))
            .expect_err("a terminal container restored with no console socket");
        assert_eq!(e.code, Code::InvalidArgument, "{e:?}");
        assert!(e.message.contains("console socket"), "{e:?}");
        assert!(
            !images.join("restore.log").exists(),
            "refused before CRIU started"
        );
        return c.tag.clone();
    }
    let second = console_listener(&sock);
    o.set_console_socket(&sock).unwrap();
    let (_, r) = restore_bundle(&mut o, &bundle).unwrap_or_else(|e| panic!("restore: {e:?}"));
    c.restored.push(r.pid);
    let master = second
        .join()
        .unwrap()
        .expect("the restored container's terminal master reached the console socket");
    // What the container writes to its terminal after the restore comes out of the new master.
    let (last, seen) = last_number_on(&master, Duration::from_millis(1500));
    assert!(
        last > at_dump,
        "read from the new terminal master after the restore (dumped at {at_dump}): {seen:?}"
    );
    assert!(
        c.count() > at_dump && c.advancing(),
        "counter {} after restore (dumped at {at_dump})",
        c.count()
    );
    c.tag.clone()
}

/// A container checkpoint that fails before CRIU dumps (the image directory held by another
/// checkpoint, a criu that cannot be started) leaves the descriptors.json and
/// ckpt-container.json of an earlier checkpoint in that directory as they were (it used to
/// write its own over them and then remove them), and the container running.
#[test]
fn a_failed_checkpoint_keeps_an_earlier_checkpoints_files() {
    if !ready() {
        return;
    }
    let _g = serial();
    let c = Container::start("keepfiles", false);
    let images = c.work.join("images");
    let mut o = options(&images);
    o.set_leave_running(true);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    let files =
        || ["descriptors.json", "ckpt-container.json"].map(|n| std::fs::read(images.join(n)).ok());
    let before = files();
    assert!(
        before.iter().all(Option::is_some),
        "the first checkpoint's files"
    );
    let hidden = || {
        std::fs::read_dir(&images)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .count()
    };

    // Another checkpoint holds the directory (its lock, as ckpt takes it).
    let lock = std::fs::File::open(&images).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&lock),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        },
        0
    );
    let e = container::checkpoint(&mut o, &c.bundle, c.pid, false).unwrap_err();
    assert_eq!(e.code, Code::InvalidState, "{e:?}");
    assert!(e.message.contains("in use by another checkpoint"), "{e:?}");
    let present = |f: &[Option<Vec<u8>>; 2]| f.clone().map(|x| x.is_some());
    assert!(
        files() == before,
        "the locked directory's files are kept: {:?}",
        present(&files())
    );
    drop(lock);

    // A criu that cannot be started.
    let mut o = options(&images);
    o.set_leave_running(true);
    o.set_criu_path("/nonexistent-ckpt-criu").unwrap();
    let e = container::checkpoint(&mut o, &c.bundle, c.pid, false).unwrap_err();
    assert_eq!(e.code, Code::Spawn, "{e:?}");
    assert!(
        files() == before,
        "the earlier checkpoint's files are kept: {:?}",
        present(&files())
    );
    assert_eq!(hidden(), 0, "no temporary file is left");
    let freezer = format!("/sys/fs/cgroup/freezer/{}/freezer.state", c.tag);
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "THAWED");
    assert!(c.advancing(), "the container runs on");

    // A checkpoint that succeeds replaces them, and leaves no temporary file either.
    let mut o = options(&images);
    o.set_leave_running(true);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    assert!(files().iter().all(Option::is_some));
    assert_eq!(hidden(), 0, "no temporary file is left");
}

/// A container restore that CRIU fails after it made the container's cgroups (here: the
/// rootfs lost the container's binary) removes those cgroups again: the caller may not know
/// their names (an archive import under a new id), and nobody else would. Cgroups that
/// existed before the restore are left alone.
#[test]
fn a_failed_restore_removes_the_cgroups_criu_made() {
    if !ready() {
        return;
    }
    let _g = serial();
    let mut c = Container::start("cgfail", false);
    let images = c.work.join("images");
    let mut o = options(&images);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    c.kill();
    remove_cgroups(&c.tag);
    let cgroups = || -> Vec<PathBuf> {
        std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|h| h.path().join(&c.tag))
            .filter(|d| d.exists())
            .collect()
    };
    assert_eq!(
        cgroups(),
        Vec::<PathBuf>::new(),
        "no cgroup before the restore"
    );
    let busybox = c.bundle.join("rootfs/bin/busybox");
    let aside = c.work.join("busybox");
    std::fs::rename(&busybox, &aside).unwrap();
    let r = restore_bundle(&mut o, &c.bundle);
    std::fs::rename(&aside, &busybox).unwrap();
    let e = match r {
        Ok((_, r)) => {
            c.restored.push(r.pid);
            panic!("restored without the container's binary")
        }
        Err(e) => e,
    };
    assert!(e.message.contains("bin/busybox"), "{e:?}");
    assert_eq!(
        cgroups(),
        Vec::<PathBuf>::new(),
        "cgroups left by the failed restore"
    );
    // With the binary back the same restore works, and keeps its cgroups.
    let (_, r) = restore_bundle(&mut o, &c.bundle).unwrap_or_else(|e| panic!("restore: {e:?}"));
    c.restored.push(r.pid);
    assert!(c.advancing(), "the restored container counts");
    assert!(!cgroups().is_empty(), "the restored container's cgroups");
}

/// Two leave-running checkpoints of one container at once: one runs, the other is refused
/// (InvalidState) before it freezes anything; the container is left THAWED and counting, and
/// the images of every checkpoint that succeeded say THAWED. Each used to freeze and thaw the
/// freezer cgroup around the other's dump: images recorded FROZEN (a restore would come back
/// paused), the container was left FROZEN, and a dump could wait for ever on its frozen
/// parasite.
#[test]
fn concurrent_checkpoints_of_one_container_leave_it_running() {
    if !ready() {
        return;
    }
    let _g = serial();
    let c = Container::start("twice", false);
    let freezer = format!("/sys/fs/cgroup/freezer/{}/freezer.state", c.tag);
    for round in 0..4 {
        let runs: Vec<_> = ["a", "b"]
            .map(|n| {
                let images = c.work.join(format!("images-{round}-{n}"));
                let bundle = c.bundle.clone();
                let pid = c.pid;
                std::thread::spawn(move || {
                    let mut o = options(&images);
                    o.set_leave_running(true);
                    o.set_timeout(Some(Duration::from_secs(10)));
                    (images, container::checkpoint(&mut o, &bundle, pid, false))
                })
            })
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let mut ok = 0;
        for (images, r) in runs {
            match r {
                Ok(_) => {
                    ok += 1;
                    let img = std::fs::read(images.join("cgroup.img")).unwrap();
                    let text = String::from_utf8_lossy(&img);
                    assert!(
                        text.contains("THAWED") && !text.contains("FROZEN"),
                        "round {round}: {} records FROZEN",
                        images.display()
                    );
                }
                Err(e) => {
                    assert_eq!(e.code, Code::InvalidState, "round {round}: {e:?}");
                    assert!(e.message.contains("another operation"), "{e:?}");
                }
            }
        }
        assert!(ok >= 1, "round {round}: neither checkpoint ran");
        assert_eq!(
            std::fs::read_to_string(&freezer).unwrap().trim(),
            "THAWED",
            "round {round}"
        );
        assert!(c.advancing(), "round {round}: the container runs on");
    }
}

/// A restore into the cgroups of a container that is paused (its v1 freezer cgroup FROZEN,
/// here the checkpointed container itself, paused meanwhile) is refused before CRIU, and the
/// paused container stays paused. CRIU used to move the restored tasks into the frozen cgroup,
/// where they froze: the restore could not finish, and at its timeout ckpt killed the tree
/// and waited for ever to reap a root that cannot die until the cgroup thaws (3 s timeout,
/// still blocked a minute later). Then the same container checkpointed while paused: see
/// below.
#[test]
fn a_restore_into_a_paused_containers_cgroup_is_refused() {
    if !ready() {
        return;
    }
    let _g = serial();
    let mut c = Container::start("frozentarget", false);
    let images = c.work.join("images");
    let mut o = options(&images);
    o.set_leave_running(true);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    let freezer = PathBuf::from(format!("/sys/fs/cgroup/freezer/{}/freezer.state", c.tag));
    let state = || {
        std::fs::read_to_string(&freezer)
            .unwrap()
            .trim()
            .to_string()
    };
    let paused = runc(&c.state, &["pause", &c.id]);
    assert!(paused.0, "runc pause: {}", paused.1);
    assert_eq!(state(), "FROZEN");
    o.set_timeout_ms(3000);
    let (tx, rx) = std::sync::mpsc::channel();
    let bundle = c.bundle.clone();
    std::thread::spawn(move || {
        let r = container::restore(
            &mut o,
            RestoreRequest {
                bundle,
                ..Default::default()
            },
        );
        let _ = tx.send(r.map(|(_, r)| r.pid));
    });
    let r = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(r) => r,
        Err(_) => {
            // Thawing lets the frozen restored tree die, so the stuck call returns.
            std::fs::write(&freezer, "THAWED").unwrap();
            let _ = rx.recv_timeout(Duration::from_secs(20));
            panic!("the restore into a FROZEN cgroup did not return within 20 s (3 s timeout)");
        }
    };
    let e = match r {
        Ok(pid) => {
            kill_and_reap(pid);
            panic!("restored into a FROZEN cgroup")
        }
        Err(e) => e,
    };
    assert_eq!(e.code, Code::InvalidState, "{e:?}");
    assert!(
        e.message.contains("FROZEN")
            && e.message.contains(&c.tag)
            && e.message.contains("a paused container's"),
        "{e:?}"
    );
    assert!(
        !images.join("restore.log").exists(),
        "refused before CRIU ran"
    );
    assert_eq!(state(), "FROZEN", "the paused container stays paused");
    let resumed = runc(&c.state, &["resume", &c.id]);
    assert!(resumed.0, "runc resume: {}", resumed.1);
    assert!(c.advancing(), "the container counts on after resume");

    // Checkpointed while paused (not leave-running), the container is killed; the empty
    // cgroup it leaves is thawed (it used to stay FROZEN, and a restore into it was refused,
    // "holds no task"), and the images record FROZEN.
    let paused = runc(&c.state, &["pause", &c.id]);
    assert!(paused.0, "runc pause: {}", paused.1);
    let mut o = options(&c.work.join("images-paused"));
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint while paused: {e:?}"));
    wait_gone(c.pid, Duration::from_secs(5));
    let procs = PathBuf::from(format!("/sys/fs/cgroup/freezer/{}/cgroup.procs", c.tag));
    assert_eq!(
        std::fs::read_to_string(&procs).unwrap().trim(),
        "",
        "tasks left"
    );
    assert_eq!(
        state(),
        "THAWED",
        "the emptied cgroup of the paused container"
    );
    let img = std::fs::read(c.work.join("images-paused/cgroup.img")).unwrap();
    assert!(
        String::from_utf8_lossy(&img).contains("FROZEN"),
        "the images record the container paused"
    );
    let req = || RestoreRequest {
        bundle: c.bundle.clone(),
        ..Default::default()
    };
    // Into that cgroup, kept (runc keeps it until `runc delete`): CRIU leaves the properties
    // of a cgroup that exists as they are (soft mode), freezer.state included, so the
    // container comes back running.
    let (_, r) = container::restore(&mut o, req()).unwrap_or_else(|e| panic!("restore: {e:?}"));
    c.restored.push(r.pid);
    assert_eq!(state(), "THAWED", "restored into the kept cgroup");
    assert!(c.advancing(), "the restored container counts");
    // Into cgroups CRIU makes (the runtime's delete removed the old ones, as runc's own
    // checkpoint does): CRIU restores freezer.state too, and the container comes back paused.
    kill_and_reap(r.pid);
    c.restored.clear();
    runc(&c.state, &["delete", "-f", &c.id]);
    wait_gone(r.pid, Duration::from_secs(2));
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        assert!(
            common::containers::remove_cgroup_dir(&h.path().join(&c.tag)),
            "removing {}",
            h.path().display()
        );
    }
    // An empty cgroup left FROZEN otherwise is still refused, saying so.
    std::fs::create_dir(freezer.parent().unwrap()).unwrap();
    std::fs::write(&freezer, "FROZEN").unwrap();
    match container::restore(&mut o, req()) {
        Ok((_, r)) => {
            std::fs::write(&freezer, "THAWED").unwrap();
            kill_and_reap(r.pid);
            panic!("restored into an empty FROZEN cgroup")
        }
        Err(e) => {
            assert_eq!(e.code, Code::InvalidState, "{e:?}");
            assert!(e.message.contains("holds no task"), "{e:?}");
        }
    }
    std::fs::remove_dir(freezer.parent().unwrap()).unwrap();
    let (_, r) = container::restore(&mut o, req()).unwrap_or_else(|e| panic!("restore: {e:?}"));
    c.restored.push(r.pid);
    assert_eq!(state(), "FROZEN", "restored paused, as checkpointed");
    assert!(!c.advancing(), "the restored container counts while paused");
    std::fs::write(&freezer, "THAWED").unwrap();
    assert!(c.advancing(), "the restored container counts once thawed");
}

/// A container restored into cgroups whose parents do not exist (a nested
/// `linux.cgroupsPath` on a host where nothing made them yet, as after a migration or once the
/// parents were removed): CRIU made the missing v1 cpuset parents with no CPUs and no memory
/// nodes, then failed to give the container's own cgroup its CPUs ("Failed writing 0-1 to
/// cpuset//.../cpuset.cpus: Permission denied"). runc creates the parents with their parent's
/// CPUs and memory nodes before CRIU runs; ckpt now does the same for the missing cpuset
/// parents, and the restore succeeds.
#[test]
fn a_restore_into_a_nested_cgroup_path_whose_parents_are_missing() {
    if !ready() {
        return;
    }
    let _g = serial();
    // Dropped after the container (and its restored tree): the nested cgroups go too.
    struct Nested(String);
    impl Drop for Nested {
        fn drop(&mut self) {
            for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
                common::containers::remove_cgroup_tree(&h.path().join(&self.0));
            }
        }
    }
    let sweep;
    let mut c = Container::start("nestcg", false);
    sweep = Nested(c.tag.clone());
    let images = c.work.join("images");
    let mut o = options(&images);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    c.kill();
    remove_cgroups(&c.tag);
    let cfg = c.bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    let nested = format!("/{}/nest/ctr", c.tag);
    spec["linux"]["cgroupsPath"] = json!(nested);
    std::fs::write(&cfg, spec.to_string()).unwrap();
    let (_, r) = restore_bundle(&mut o, &c.bundle).unwrap_or_else(|e| panic!("restore: {e:?}"));
    c.restored.push(r.pid);
    assert!(c.advancing(), "the restored container counts");
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", r.pid)).unwrap();
    assert!(cg.contains(&format!(":cpuset:{nested}\n")), "{cg}");
    let parent = format!("/sys/fs/cgroup/cpuset/{}/nest", c.tag);
    let cpus = std::fs::read_to_string(format!("{parent}/cpuset.cpus")).unwrap();
    assert_eq!(
        cpus,
        std::fs::read_to_string("/sys/fs/cgroup/cpuset/cpuset.cpus").unwrap(),
        "the made parent has its parent's CPUs"
    );
    for p in c.restored.drain(..) {
        kill_and_reap(p);
    }
    drop(sweep);
}

/// A restore into container cgroups that exist but are empty, as made beforehand with
/// `mkdir` (which `none` and `props` modes require): the new v1 cpuset cgroup has no CPUs
/// and no memory nodes, CRIU keeps an existing cgroup's properties in those modes and in
/// `soft`, and failed to move the restored init there ("Can't move 1 into cpuset//...:
/// No space left on device"). ckpt now fills it from its parent, as runc does, and the
/// restore succeeds in both modes.
#[test]
fn a_restore_into_existing_empty_cgroups_gets_the_parents_cpus() {
    if !ready() {
        return;
    }
    let _g = serial();
    let mut c = Container::start("emptycg", false);
    let images = c.work.join("images");
    let mut o = options(&images);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    c.kill();
    for mode in ["soft", "none"] {
        remove_cgroups(&c.tag);
        for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            if h.file_type().unwrap().is_dir() {
                std::fs::create_dir(h.path().join(&c.tag)).unwrap();
            }
        }
        let own = format!("/sys/fs/cgroup/cpuset/{}/cpuset.cpus", c.tag);
        assert_eq!(std::fs::read_to_string(&own).unwrap().trim(), "");
        let mut o = options(&images);
        o.set_manage_cgroups_mode(mode).unwrap();
        let (_, r) = restore_bundle(&mut o, &c.bundle)
            .unwrap_or_else(|e| panic!("restore in mode {mode}: {e:?}"));
        c.restored.push(r.pid);
        assert!(c.advancing(), "the restored container counts ({mode})");
        let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", r.pid)).unwrap();
        assert!(cg.contains(&format!(":cpuset:/{}\n", c.tag)), "{cg}");
        assert_eq!(
            std::fs::read_to_string(&own).unwrap(),
            std::fs::read_to_string("/sys/fs/cgroup/cpuset/cpuset.cpus").unwrap(),
            "the container's cgroup has its parent's CPUs ({mode})"
        );
        for p in c.restored.drain(..) {
            kill_and_reap(p);
            wait_gone(p, Duration::from_secs(2));
        }
    }
}

/// A lazy migration of a container, as runc does it (`checkpoint --lazy-pages --page-server
/// --status-fd`, then `restore --lazy-pages` with CRIU's lazy-pages daemon): CRIU's dump
/// answers only once the restored side has fetched every page, and that restore starts once
/// the dump reports status-ready. ckpt placed `ckpt-container.json` and `descriptors.json`,
/// and set the freezer state it recorded back to THAWED, only after the answer: the restore
/// found neither file and was refused ("holds a process tree's checkpoint, not a
/// container's"), and the dump waited for pages nobody fetched. ckpt now does both at
/// post-dump, which CRIU reports before status-ready: the container restored from the copied
/// images counts on, THAWED, in the cgroups of another bundle on the same host (the source
/// tree holds its own until the dump ends).
#[test]
fn a_lazy_migration_restores_the_container_running() {
    if !ready() {
        return;
    }
    let _g = serial();
    use std::os::fd::AsFd;
    let mut c = Container::start("lazy", false);
    let (src, dst) = (c.work.join("src"), c.work.join("dst"));
    let served = "127.0.0.1:27393";
    let moved = format!("{}-r", c.tag);
    struct Sweep(String);
    impl Drop for Sweep {
        fn drop(&mut self) {
            let _ = std::fs::write(
                format!("/sys/fs/cgroup/freezer/{}/freezer.state", self.0),
                "THAWED",
            );
            remove_cgroups(&self.0);
        }
    }
    let sweep = Sweep(moved.clone());
    let (ready_r, ready_w) = common::pipe();
    let mut o = options(&src);
    o.set_timeout(Some(Duration::from_secs(20)));
    o.set_lazy_pages(true);
    o.set_page_server(served).unwrap();
    o.set_status_fd(ready_w).unwrap();
    let (bundle, pid) = (c.bundle.clone(), c.pid);
    let dump = std::thread::spawn(move || container::checkpoint(&mut o, &bundle, pid, false));
    assert!(
        common::readable(ready_r.as_fd(), Duration::from_secs(20)),
        "the lazy dump never reported ready"
    );
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
    // The same rootfs, other cgroups.
    let other = c.work.join("bundle-r");
    std::fs::create_dir_all(&other).unwrap();
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.bundle.join("config.json")).unwrap()).unwrap();
    spec["root"]["path"] = json!(c.bundle.join("rootfs"));
    spec["linux"]["cgroupsPath"] = json!(format!("/{moved}"));
    std::fs::write(other.join("config.json"), spec.to_string()).unwrap();
    let (daemon_r, daemon_w) = common::pipe();
    let mut o = options(&dst);
    o.set_page_server(served).unwrap();
    o.set_status_fd(daemon_w).unwrap();
    let daemon = ckpt::ops::lazy_pages_daemon(&o).expect("lazy-pages daemon");
    assert!(common::readable(daemon_r.as_fd(), Duration::from_secs(20)));
    let mut o = options(&dst);
    o.set_lazy_pages(true);
    o.set_timeout(Some(Duration::from_secs(20)));
    let restored = restore_bundle(&mut o, &other);
    if let Ok((_, r)) = &restored {
        c.restored.push(r.pid);
    }
    let dumped = dump.join().unwrap();
    kill_and_reap(daemon);
    let (_, r) = restored.unwrap_or_else(|e| panic!("lazy restore: {e:?}"));
    dumped.unwrap_or_else(|e| panic!("lazy dump: {e:?}"));
    assert!(c.advancing(), "the restored container counts");
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", r.pid)).unwrap();
    assert!(cg.contains(&format!(":freezer:/{moved}\n")), "{cg}");
    assert_eq!(
        std::fs::read_to_string(format!("/sys/fs/cgroup/freezer/{moved}/freezer.state"))
            .unwrap()
            .trim(),
        "THAWED"
    );
    for p in c.restored.drain(..) {
        kill_and_reap(p);
        wait_gone(p, Duration::from_secs(2));
    }
    drop(sweep);
}
