//! Hostile input to the container layer's restore, as a container (which owns its rootfs and
//! the sources of its writable bind mounts) or the author of a checkpoint archive (which
//! carries `ckpt-container.json` and the spec) can plant it. ckpt runs as root: nothing it
//! creates, changes or removes may land outside the rootfs, a bind's source or the host
//! paths the trusted caller named. Each test drives the real criu (the restores fail in CRIU,
//! for want of images, after ckpt prepared the host) and watches the places an attacker would
//! aim at.

mod common;

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use ckpt::container::{self, RestoreRequest, plan::Action};
use common::{TempDir, containers::root, options};
use serde_json::json;

/// Watches directories for entries created in them (inotify): what a failed restore removes
/// again is still seen.
struct Watch {
    fd: OwnedFd,
    dirs: Vec<(i32, PathBuf)>,
}

impl Watch {
    fn new(dirs: &[&Path]) -> Watch {
        // SAFETY: inotify_init1 returns a new descriptor or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut w = Watch { fd, dirs: vec![] };
        for d in dirs {
            let c = std::ffi::CString::new(d.to_str().unwrap()).unwrap();
            // SAFETY: a live inotify descriptor and a NUL-terminated path.
            let wd = unsafe {
                libc::inotify_add_watch(
                    w.fd.as_raw_fd(),
                    c.as_ptr(),
                    libc::IN_CREATE | libc::IN_ATTRIB | libc::IN_DELETE,
                )
            };
            assert!(wd >= 0, "inotify_add_watch {}", d.display());
            w.dirs.push((wd, d.to_path_buf()));
        }
        w
    }

    /// Every (directory, entry name, mask) seen since the watch began.
    fn events(&self) -> Vec<(PathBuf, String, u32)> {
        let mut out = vec![];
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reads into a live buffer of its length from a descriptor we own.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return out;
            }
            let mut at = 0;
            while at + 16 <= n as usize {
                let word =
                    |i: usize| u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap());
                let (wd, mask, len) = (word(0) as i32, word(4), word(12) as usize);
                let name = &buf[at + 16..at + 16 + len];
                let name = name.split(|b| *b == 0).next().unwrap_or_default();
                let dir = self
                    .dirs
                    .iter()
                    .find(|(w, _)| *w == wd)
                    .map(|(_, d)| d.clone())
                    .unwrap_or_default();
                out.push((dir, String::from_utf8_lossy(name).into_owned(), mask));
                at += 16 + len;
            }
        }
    }
}

/// A bundle (busybox-free: CRIU fails before it runs anything) whose config.json binds
/// `binds` (destination, source) and a checkpoint record naming `mounts` (mountpoint, source,
/// kind, origin), in `t`. Returns (bundle, images).
fn hostile_restore_input(
    t: &TempDir,
    binds: &[(&str, &Path)],
    mounts: &[(&str, &Path, &str, &str)],
    cgroups_path: Option<&str>,
) -> (PathBuf, PathBuf) {
    let bundle = t.sub("bundle");
    fs::create_dir_all(bundle.join("rootfs")).unwrap();
    let images = t.sub("images");
    let mut linux = json!({"namespaces": [{"type": "mount"}, {"type": "pid"}]});
    if let Some(c) = cgroups_path {
        linux["cgroupsPath"] = json!(c);
    }
    let spec = json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"cwd": "/", "args": ["/bin/sh"], "user": {"uid": 0, "gid": 0}},
        "mounts": binds.iter().map(|(d, s)| json!({
            "destination": d, "type": "bind", "source": s, "options": ["rbind", "rw"]
        })).collect::<Vec<_>>(),
        "linux": linux,
    });
    fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let record = json!({
        "version": 1,
        "mounts": mounts.iter().map(|(mp, src, kind, origin)| json!({
            "mountpoint": mp, "source": src, "kind": kind, "origin": origin
        })).collect::<Vec<_>>(),
        "cgroups": [],
        "skipped_cgroups": [],
        "network_lock": "skip",
        "stdio": ["/dev/null", "/dev/null", "/dev/null"],
    });
    fs::write(images.join("ckpt-container.json"), record.to_string()).unwrap();
    (bundle, images)
}

/// The missing mountpoints a restore creates are made inside the rootfs (or inside the source
/// of the bind that holds them), resolved as the container resolves them, never through a
/// symbolic link the container planted to a host directory, nor up a `..` of a hostile record:
/// before, root created `HOST/sub/x` through `rootfs/mnt -> HOST`, the record's
/// `/../../../../../..HOST/y` and a link planted in a bind's source.
#[test]
fn restore_creates_mountpoints_only_inside_the_rootfs() {
    if !root("restore of hostile bundles needs root") {
        return;
    }
    let t = TempDir::new("probe-sec");
    let host = t.sub("host");
    let src = t.sub("src");
    let vol = t.sub("vol");
    // The container's symlinks to a host directory: one in its rootfs, one in the source of
    // its writable bind mount /vol.
    let (bundle, images) = hostile_restore_input(
        &t,
        &[("/mnt/sub/x", &src), ("/vol", &vol)],
        &[
            ("/mnt/sub/x", &src, "dir", "spec"),
            ("/vol", &vol, "dir", "spec"),
            (
                &format!("/../../../../../../..{}/y", host.display()),
                &src,
                "file",
                "discovered",
            ),
            ("/vol/link/z", &src, "dir", "discovered"),
        ],
        None,
    );
    std::os::unix::fs::symlink(&host, bundle.join("rootfs/mnt")).unwrap();
    std::os::unix::fs::symlink(&host, vol.join("link")).unwrap();
    fs::create_dir(bundle.join("rootfs/vol")).unwrap();
    // A tmpfs of the spec whose mountpoint is missing is made too (as runc makes it): through
    // the same link.
    let config = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/mnt/scratch", "type": "tmpfs", "source": "tmpfs"}));
    fs::write(&config, spec.to_string()).unwrap();

    let mut o = options(&images);
    let req = || RestoreRequest {
        bundle: bundle.clone(),
        criu_root: Some(t.join("criu-root")),
        ..Default::default()
    };
    // What the plan says it creates stays inside the rootfs or the bind's source.
    let p = container::plan_restore(&o, &req()).unwrap();
    let rootfs = bundle.join("rootfs");
    let planned_outside: Vec<String> = p
        .actions
        .iter()
        .filter_map(|a| match &a.what {
            Action::CreateMountpoint { path, .. } => Some(path.to_string_lossy().into_owned()),
            _ => None,
        })
        .filter(|s| {
            s.contains("/../")
                || !(s.starts_with(rootfs.to_str().unwrap())
                    || s.starts_with(vol.to_str().unwrap()))
        })
        .collect();
    let w = Watch::new(&[&host, &t.path]);
    let r = container::restore(&mut o, req());
    assert!(r.is_err(), "the restore of no images must fail in CRIU");
    let outside: Vec<_> = w
        .events()
        .into_iter()
        .filter(|(d, name, _)| *d == host || (*d == t.path && name != "criu-root"))
        .collect();
    assert!(
        outside.is_empty(),
        "the restore created or changed entries outside the rootfs: {outside:?} ({})",
        r.err().unwrap()
    );
    assert_eq!(fs::read_dir(&host).unwrap().count(), 0);
    assert!(
        planned_outside.is_empty(),
        "the plan creates mountpoints outside the rootfs: {planned_outside:?}"
    );
}

/// A cgroup path with `..` (config.json's `linux.cgroupsPath`, or the checkpoint record's
/// cgroups, both of which an archive carries) is refused before anything is made: before,
/// ckpt created the missing "cpuset parents" of `/sys/fs/cgroup/cpuset/../../../..HOST/a/cg`,
/// that is `HOST/a` with `cpuset.cpus` and `cpuset.mems` written into it, and CRIU was given
/// the path as the container's cgroup root.
#[test]
fn restore_refuses_cgroup_paths_that_leave_the_hierarchy() {
    if !root("restore of hostile bundles needs root") {
        return;
    }
    if !Path::new("/sys/fs/cgroup/cpuset/cpuset.cpus").exists() {
        common::not_exercised("no v1 cpuset hierarchy at /sys/fs/cgroup/cpuset");
        return;
    }
    let up = "/../../../../../../../..";
    for (in_spec, recorded) in [(true, "/probe-sec"), (false, "HOST")] {
        let t = TempDir::new("probe-sec");
        let host = t.sub("host");
        let escape = format!("{up}{}/a/cg", host.display());
        let cg = in_spec.then_some(escape.as_str());
        let (bundle, images) = hostile_restore_input(&t, &[], &[], cg);
        let rec_path = images.join("ckpt-container.json");
        let mut rec: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&rec_path).unwrap()).unwrap();
        let recorded = recorded.replace("HOST", &escape);
        rec["cgroups"] = json!([["cpuset", recorded], ["memory", recorded]]);
        fs::write(&rec_path, rec.to_string()).unwrap();
        let mut o = options(&images);
        let w = Watch::new(&[&host]);
        let r = container::restore(
            &mut o,
            RestoreRequest {
                bundle: bundle.clone(),
                criu_root: Some(t.join("criu-root")),
                ..Default::default()
            },
        );
        let ev = w.events();
        let left: Vec<_> = fs::read_dir(&host)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        // What an unfixed ckpt left behind must not outlive the test.
        for d in &left {
            let _ = fs::remove_dir_all(d);
        }
        assert!(
            ev.is_empty() && left.is_empty(),
            "restore wrote outside the cgroup hierarchy: {ev:?}, left {left:?}"
        );
        let Err(e) = r else {
            panic!("the restore must fail")
        };
        assert_eq!(e.code, ckpt::Code::InvalidArgument, "{e}");
        assert!(e.message.contains("leaves the cgroup hierarchy"), "{e}");
    }
}

/// `/bin/sleep 60` of `rootfs` (a busybox rootfs), chrooted there before it is executed, so
/// its root is `rootfs` once this returns.
fn chrooted_sleep(rootfs: &Path) -> common::Proc {
    use std::os::unix::process::CommandExt;
    let root = std::ffi::CString::new(rootfs.to_str().unwrap()).unwrap();
    let mut cmd = std::process::Command::new("/bin/sleep");
    cmd.arg("60");
    // SAFETY: chroot and chdir are async-signal-safe; the CString outlives the spawn.
    unsafe {
        cmd.pre_exec(move || {
            if libc::chroot(root.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let p = common::Proc::spawn(&mut cmd);
    assert_eq!(
        fs::read_link(format!("/proc/{}/root", p.pid)).unwrap(),
        rootfs,
        "the chroot"
    );
    p
}

/// Runs `f` on a thread and gives its result, or None when it has not returned within `wait`
/// (the thread is then left blocked: the caller must unblock it).
fn within<T: Send + 'static>(
    wait: std::time::Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(wait).ok()
}

/// The runtime's state directory (`--runtime-root`) may belong to someone else: a rootless
/// runc or crun keeps it in its user's `$XDG_RUNTIME_DIR`. A FIFO, a device or a huge file
/// in place of `state.json` / `status`, or of a bundle's `config.json`, is refused at once:
/// before, ckpt blocked for ever opening the FIFO, and read a state file linked to
/// `/dev/zero` until memory ran out.
#[test]
fn runtime_state_and_bundle_files_that_are_not_small_regular_files_are_refused() {
    use ckpt::container::runtime::locate;
    use std::time::Duration;
    let t = TempDir::new("probe-sec");
    for (rt, file) in [("runc", "state.json"), ("crun", "status")] {
        let state = t.sub(&format!("{rt}-fifo/c1"));
        let fifo = state.join(file);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let root = t.join(format!("{rt}-fifo"));
        let r = within(Duration::from_secs(5), move || {
            locate(rt, Some(&root), "c1")
        });
        if r.is_none() {
            // Unblock the reader before failing, so no thread is left behind.
            let _ = fs::OpenOptions::new().write(true).open(&fifo);
        }
        let e = r
            .unwrap_or_else(|| panic!("{rt}: a FIFO as {file} blocked the lookup"))
            .unwrap_err();
        assert!(e.message.contains("not a regular file"), "{rt}: {e}");

        // A sparse file of 1 GiB: refused by its size, not read into memory.
        let state = t.sub(&format!("{rt}-big/c1"));
        let f = fs::File::create(state.join(file)).unwrap();
        f.set_len(1 << 30).unwrap();
        let e = locate(rt, Some(&t.join(format!("{rt}-big"))), "c1").unwrap_err();
        assert!(e.message.contains("larger than"), "{rt}: {e}");

        let state = t.sub(&format!("{rt}-dev/c1"));
        std::os::unix::fs::symlink("/dev/zero", state.join(file)).unwrap();
        let root = t.join(format!("{rt}-dev"));
        let e = within(Duration::from_secs(5), move || {
            locate(rt, Some(&root), "c1")
        })
        .unwrap_or_else(|| panic!("{rt}: /dev/zero as {file} was read for 5 s"))
        .unwrap_err();
        assert!(e.message.contains("not a regular file"), "{rt}: {e}");
    }
    // A bundle whose config.json is a FIFO.
    let bundle = t.sub("fifo-bundle");
    fs::create_dir(bundle.join("rootfs")).unwrap();
    let config = bundle.join("config.json");
    nix::unistd::mkfifo(&config, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let o = options(&t.sub("images"));
    let b = bundle.clone();
    let r = within(Duration::from_secs(5), move || {
        container::plan_checkpoint(&o, &b, 1, false).map(|_| ())
    });
    if r.is_none() {
        let _ = fs::OpenOptions::new().write(true).open(&config);
    }
    let e = r
        .expect("a FIFO as config.json blocked the checkpoint")
        .unwrap_err();
    assert!(e.message.contains("not a regular file"), "{e}");
}

/// config.json's `org.criu.config` annotation names a file CRIU reads with ckpt's privileges
/// and whose `action-script` lines it runs as shell commands. A bundle someone else owns (a
/// rootless container's, checkpointed by root through `--runtime-root`), or a configuration
/// file others may write, is refused; before, it reached CRIU and its scripts ran as root.
#[test]
fn a_criu_config_annotation_others_control_is_refused() {
    if !root("chown needs root") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new("probe-sec");
    let conf = t.join("criu.conf");
    fs::write(&conf, "action-script \"touch /probe-sec-pwned\"\n").unwrap();
    let (bundle, images) = hostile_restore_input(&t, &[], &[], None);
    let config = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    spec["annotations"] = json!({"org.criu.config": conf});
    fs::write(&config, spec.to_string()).unwrap();
    let o = options(&images);
    let plan = || {
        container::plan_restore(
            &o,
            &RestoreRequest {
                bundle: bundle.clone(),
                criu_root: Some(t.join("criu-root")),
                ..Default::default()
            },
        )
    };
    let nobody = Some(65534);
    let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    mode(&config, 0o644);
    mode(&conf, 0o644);
    // Root's own files: the annotation is honoured, as runc honours it.
    let p = plan().unwrap();
    assert!(p.to_json().contains("criu.conf"), "{}", p.to_json());
    for (what, file, owner, m) in [
        ("config.json of another user", &config, nobody, 0o644),
        ("config.json others may write", &config, None, 0o666),
        ("a configuration file of another user", &conf, nobody, 0o644),
        ("a configuration file others may write", &conf, None, 0o646),
    ] {
        std::os::unix::fs::chown(file, owner, None).unwrap();
        mode(file, m);
        match plan() {
            Ok(p) => panic!("{what}: the plan gives CRIU the file: {}", p.to_json()),
            Err(e) => assert!(
                e.code == ckpt::Code::InvalidArgument && e.message.contains("action scripts"),
                "{what}: {e}"
            ),
        }
        std::os::unix::fs::chown(file, Some(0), None).unwrap();
        mode(file, 0o644);
    }
}

/// A bundle (or a runtime state naming one, in a directory its user owns) can name any pid.
/// With `root.path` `/` and no pid namespace, every host process passed the checks meant to
/// prove the pid is the container's init, pid 1 and ckpt's own caller included, and a
/// checkpoint (which kills the tree unless told to leave it running) took down an unrelated
/// process; a process merely chrooted into the rootfs passed too. A process in ckpt's own
/// mount namespace, or a rootfs that is ckpt's own root, is refused before CRIU.
#[test]
fn a_checkpoint_of_a_process_that_is_no_containers_init_is_refused() {
    if !root("checkpoints of host processes need root") {
        return;
    }
    let t = TempDir::new("probe-sec");
    let hostroot = t.sub("hostroot");
    fs::write(
        hostroot.join("config.json"),
        json!({
            "ociVersion": "1.0.2",
            "root": {"path": "/"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}]},
        })
        .to_string(),
    )
    .unwrap();
    let o = options(&t.sub("images"));
    let victim = common::Proc::spawn(std::process::Command::new("sleep").arg("60"));
    // pid 1: refused in any case (on this machine its /proc root cannot even be read).
    assert!(container::plan_checkpoint(&o, &hostroot, 1, false).is_err());
    for pid in [victim.pid, std::process::id() as i32] {
        match container::plan_checkpoint(&o, &hostroot, pid, false) {
            Ok(_) => panic!("pid {pid} accepted as the init of a container whose rootfs is /"),
            Err(e) => assert!(
                e.code == ckpt::Code::InvalidState && e.message.contains("not a container"),
                "pid {pid}: {e}"
            ),
        }
    }
    // A process chrooted into a rootfs, in ckpt's mount namespace.
    let bundle = t.sub("chrooted");
    let rootfs = bundle.join("rootfs");
    common::containers::busybox_rootfs(&rootfs, &["bin"], &["sleep"]);
    fs::write(
        bundle.join("config.json"),
        json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sleep"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}]},
        })
        .to_string(),
    )
    .unwrap();
    let chrooted = chrooted_sleep(&rootfs);
    match container::plan_checkpoint(&o, &bundle, chrooted.pid, false) {
        Ok(_) => panic!("a process chrooted into the rootfs accepted as the container's init"),
        Err(e) => assert!(
            e.code == ckpt::Code::InvalidState && e.message.contains("not a container"),
            "{e}"
        ),
    }
    assert!(victim.alive() && chrooted.alive());
}

/// While a container restore runs, its rootfs is bound on CRIU's root, a directory ckpt makes
/// in the temp dir. The container's root may have left setuid-root programs in its rootfs;
/// another local user must not reach them through that path (its name is in every process's
/// view of the mount table). Before, the directory sat in /tmp with mode 0755, and user 65534
/// could stat (and run) the container's files through it during the restore.
#[test]
fn criu_root_keeps_the_rootfs_out_of_other_users_reach() {
    if !common::containers::runc_ready() {
        return;
    }
    let c = common::containers::Counting::start("ckpt-probe-sec", "criuroot");
    let images = c.work.join("images");
    let mut o = options(&images);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    c.remove_dumped();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let log = seen.clone();
    let me = format!("/ckpt-criu-root-{}-", std::process::id());
    let prefix = me[1..].to_string();
    let hooks: std::sync::Arc<container::HookFn> = std::sync::Arc::new(move |stage, _pid| {
        if stage != "setup-namespaces" {
            return Ok(());
        }
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for mp in mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|mp| mp.contains(&me))
        {
            let file = format!("{mp}/bin/busybox");
            let reached = std::process::Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "stat",
                    &file,
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            log.lock().unwrap().push(format!(
                "{file}: {}",
                if reached { "reached" } else { "denied" }
            ));
        }
        Ok(())
    });
    let r = container::restore(
        &mut o,
        RestoreRequest {
            bundle: c.bundle.clone(),
            hooks: Some(hooks),
            ..Default::default()
        },
    );
    if let Ok((_, r)) = &r {
        c.remove_restored(r.pid);
    }
    r.unwrap_or_else(|e| panic!("restore: {e:?}"));
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.is_empty(),
        "CRIU's root was not found bound during the restore"
    );
    assert!(
        seen.iter().all(|s| s.ends_with("denied")),
        "another user reached the container's rootfs through CRIU's root: {seen:?}"
    );
    let left: Vec<_> = fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|d| d.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(
        left.is_empty(),
        "CRIU's root directories are left: {left:?}"
    );
}

/// At checkpoint ckpt reads the container's veth pairs from its own `/sys/class/net`
/// (`/proc/PID/root/sys/...`). A container without sysfs there (none in its spec, or one it
/// unmounted) owns those files: a FIFO as `ifindex` blocked the checkpoint for ever before
/// it froze anything, and a link to `/dev/zero` (resolved from ckpt's own root) was read
/// until memory ran out. Only small regular files are read; the rest reads as no pair.
#[test]
fn a_containers_fake_sysfs_cannot_hang_the_checkpoint() {
    if !root("chroot needs root") {
        return;
    }
    use std::time::Duration;
    let t = TempDir::new("probe-sec");
    let rootfs = t.sub("rootfs");
    common::containers::busybox_rootfs(&rootfs, &["bin"], &["sleep"]);
    let net = rootfs.join("sys/class/net");
    for (name, link) in [("eth0", None), ("eth1", Some("/dev/zero"))] {
        let d = net.join(name);
        fs::create_dir_all(&d).unwrap();
        match link {
            None => {
                nix::unistd::mkfifo(
                    &d.join("ifindex"),
                    nix::sys::stat::Mode::from_bits_truncate(0o600),
                )
                .unwrap();
            }
            Some(l) => std::os::unix::fs::symlink(l, d.join("ifindex")).unwrap(),
        }
        fs::write(d.join("iflink"), "7\n").unwrap();
    }
    let init = chrooted_sleep(&rootfs);
    let pid = init.pid;
    let r = within(Duration::from_secs(5), move || {
        ckpt::container::veth::read(pid)
    });
    if r.is_none() {
        // Unblock the reader before failing, so no thread is left behind.
        let _ = fs::OpenOptions::new()
            .write(true)
            .open(net.join("eth0/ifindex"));
    }
    let pairs = r.expect("reading the container's sysfs blocked");
    assert_eq!(pairs, Some(vec![]), "no pair from fake interfaces");
}

/// The restore reads cgroup.img (to give CRIU the host's cgroup mounts) before CRIU runs: an
/// archive's checkpoint may carry a huge one (zeros compress to nearly nothing), a user's
/// image directory a FIFO. It is read only as a regular file of at most 64 MiB; before, a
/// FIFO blocked the restore for ever and a huge file was read whole into memory.
#[test]
fn a_hostile_cgroup_image_cannot_hang_the_restore() {
    use std::time::Duration;
    let t = TempDir::new("probe-sec");
    let (bundle, images) = hostile_restore_input(&t, &[], &[], None);
    let img = images.join("cgroup.img");
    nix::unistd::mkfifo(&img, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let o = options(&images);
    let r = within(Duration::from_secs(5), move || {
        container::plan_restore(
            &o,
            &RestoreRequest {
                bundle,
                ..Default::default()
            },
        )
        .map(|_| ())
    });
    if r.is_none() {
        let _ = fs::OpenOptions::new().write(true).open(&img);
    }
    r.expect("a FIFO as cgroup.img blocked the restore")
        .unwrap();
}
