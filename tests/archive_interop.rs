//! Checkpoint archives against the real tools: CRIU 4.1.1 (through ckpt), checkpointctl 1.3.0
//! and Podman 4.3.1 with runc. Run as root after scripts/setup.sh. Every container, image and
//! directory is named `ckpt-archive-<pid>-...` and removed on every path.

#[path = "../core/tests/common/mod.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ckpt::archive::{
    self, Compression, EngineConfig, ExportRequest, ImportOptions, Limits, RootfsChanges,
};
use ckpt::ops;
use common::cgroup_sweep::remove_cgroups_named;
use common::*;
use serde_json::json;

fn checkpointctl() -> PathBuf {
    std::env::var_os("CKPT_CHECKPOINTCTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/opt/ckpt-deps/checkpointctl/usr/bin/checkpointctl".into())
}

fn run_out(cmd: &mut Command) -> Output {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run_out(cmd).stdout).into_owned()
}

/// A minimal OCI spec for a plain process tree (checkpointctl and the engines want a full
/// spec object; a process tree has no rootfs of its own).
fn process_spec(args: &[&str]) -> serde_json::Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {"args": args, "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "root": {"path": "/"},
        "hostname": "ckpt-archive",
        "linux": {"namespaces": []}
    })
}

/// checkpointctl `show` and `inspect --all` read an archive ckpt wrote from a real CRIU
/// checkpoint and name its container and process tree; ckpt imports the same archive into
/// a new directory and restores the tree from it, and the tree carries on.
#[test]
fn checkpointctl_reads_ckpt_archive_and_ckpt_restores_from_it() {
    let _s = serial();
    let dir = TempDir::new("archive-ctl");
    let counter = dir.join("counter");
    let mut w = Proc::spawn(&mut counter_loop(&counter));
    wait_counter(&counter, 3);
    let images = dir.join("img");
    let stats = ops::checkpoint(&options(&images), w.pid).expect("checkpoint");
    w.wait_exit(WAIT);
    wait_pid_free(w.pid);
    let at_dump = read_counter(&counter).expect("counter after dump");

    let name = format!("ckpt-archive-{}-ctl", std::process::id());
    let out = dir.join("ctl.tar.zst");
    let (m, written) = archive::export(
        &ExportRequest {
            images_dir: images.clone(),
            spec: process_spec(&["sh", "-c", "counter"]),
            config: EngineConfig {
                name: Some(name.clone()),
                image_name: Some("localhost/none".into()),
                ..Default::default()
            },
            stats: Some(stats),
            ..Default::default()
        },
        &out,
    )
    .expect("export");
    assert!(written.archive_bytes > 0);
    eprintln!("manifest notes: {:?}", m.notes);

    let show = stdout_of(Command::new(checkpointctl()).arg("show").arg(&out));
    assert!(
        show.contains(&name),
        "checkpointctl show does not name the container:\n{show}"
    );
    assert!(show.contains("Podman"), "{show}");
    let insp = stdout_of(
        Command::new(checkpointctl())
            .args(["inspect", "--all"])
            .arg(&out),
    );
    assert!(insp.contains(&name), "{insp}");
    assert!(insp.contains("Process tree"), "{insp}");
    assert!(
        insp.contains(&format!("[{}]", w.pid)) || insp.contains(&w.pid.to_string()),
        "{insp}"
    );
    assert!(insp.contains("sh"), "{insp}");
    assert!(insp.contains("CRIU dump statistics"), "{insp}");
    let json = stdout_of(
        Command::new(checkpointctl())
            .args(["inspect", "--all", "--format", "json"])
            .arg(&out),
    );
    let v: serde_json::Value = serde_json::from_str(&json).expect("checkpointctl JSON");
    assert!(json.contains(&name), "{v}");

    let i = archive::inspect(&out, &Limits::default()).expect("inspect");
    assert_eq!(i.process_tree.as_ref().map(|t| t.pid), Some(w.pid as u32));
    assert_eq!(
        i.process_tree
            .as_ref()
            .and_then(|t| t.comm.clone())
            .as_deref(),
        Some("sh")
    );

    let imp =
        archive::import(&out, &dir.join("imported"), &ImportOptions::default()).expect("import");
    assert_eq!(imp.config.name.as_deref(), Some(name.as_str()));
    let r = ops::restore(&options(&imp.images_dir)).expect("restore from the imported archive");
    let _p = Proc::adopt(r.pid);
    assert_eq!(r.pid, w.pid);
    assert_counter_continues(&counter, at_dump);
}

// ---------------------------------------------------------------------------------------------
// Podman

/// The containers' script: counts into /tmp/count, ten times a second.
const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done";

struct Podman {
    /// Ids of the containers started, for the cgroups runc leaves behind under Podman here.
    ids: std::cell::RefCell<Vec<String>>,
    tag: String,
    dir: PathBuf,
    conf: PathBuf,
    image: String,
}

impl Podman {
    fn new(what: &str) -> Option<Podman> {
        if Command::new("podman").arg("--version").output().is_err() {
            not_exercised("podman is not installed (scripts/setup.sh installs it)");
            return None;
        }
        let tag = format!("ckpt-archive-{}-{what}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        let _ = fs::remove_dir_all(&dir);
        let root = dir.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for c in ["sh", "sleep", "cat", "echo", "mv"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(c)).unwrap();
        }
        let conf = dir.join("containers.conf");
        fs::write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\",\"nproc=32768:32768\"]\n",
        )
        .unwrap();
        let p = Podman {
            ids: Default::default(),
            image: format!("localhost/{tag}-img"),
            tag,
            dir,
            conf,
        };
        let tarball = p.dir.join("rootfs.tar");
        run_out(
            Command::new("tar")
                .arg("-C")
                .arg(&root)
                .arg("-cf")
                .arg(&tarball)
                .arg("."),
        );
        run_out(p.cmd().arg("import").arg(&tarball).arg(&p.image));
        Some(p)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &self.conf);
        c
    }

    fn name(&self, n: &str) -> String {
        format!("{}-{n}", self.tag)
    }

    fn run_counter(&self, n: &str) -> String {
        self.run_script(n, &[], COUNTER)
    }

    /// Starts container `n` (with the extra `podman run` arguments `run_args`) running `script`.
    fn run_script(&self, n: &str, run_args: &[&str], script: &str) -> String {
        let id = stdout_of(
            self.cmd()
                .args(["run", "-d", "--runtime", "runc", "--name"])
                .arg(self.name(n))
                .args(run_args)
                .arg(&self.image)
                .args(["sh", "-c", script]),
        )
        .trim()
        .to_string();
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// Container `n`'s bundle directory, init pid and image id, as Podman reports them.
    fn bundle_pid_image(&self, n: &str) -> (PathBuf, i32, String) {
        let bundle = PathBuf::from(self.inspect(n, "{{.OCIConfigPath}}"))
            .parent()
            .unwrap()
            .to_path_buf();
        let pid: i32 = self.inspect(n, "{{.State.Pid}}").parse().unwrap();
        (bundle, pid, self.inspect(n, "{{.Image}}"))
    }

    /// ckpt's export of the images of container `n` (id `id`, image `image_id`) with the
    /// engine's config naming it, its image and runc as Podman does.
    fn export_request(&self, n: &str, id: &str, image_id: String, images: &Path) -> ExportRequest {
        ExportRequest {
            images_dir: images.to_path_buf(),
            config: EngineConfig {
                name: Some(self.name(n)),
                id: Some(id.to_string()),
                image_name: Some(format!("{}:latest", self.image)),
                image_id: Some(image_id),
                runtime: Some("runc".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// `podman container checkpoint --export out` of container `n`.
    fn export(&self, n: &str, out: &Path) {
        run_out(
            self.cmd()
                .args(["container", "checkpoint", "--export"])
                .arg(out)
                .arg(self.name(n)),
        );
    }

    fn inspect(&self, n: &str, fmt: &str) -> String {
        stdout_of(
            self.cmd()
                .args(["inspect", "--format", fmt])
                .arg(self.name(n)),
        )
        .trim()
        .to_string()
    }

    fn count(&self, n: &str) -> Option<u64> {
        let o = self
            .cmd()
            .args(["exec"])
            .arg(self.name(n))
            .args(["cat", "/tmp/count"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    }

    fn wait_count(&self, n: &str, min: u64) -> u64 {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = self.count(n).filter(|v| *v >= min) {
                return v;
            }
            assert!(
                Instant::now() < end,
                "the counter in {} did not reach {min}",
                self.name(n)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn rm(&self, n: &str) {
        let _ = self
            .cmd()
            .args(["rm", "-f", "-t", "0"])
            .arg(self.name(n))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if let Ok(o) = self
            .cmd()
            .args(["ps", "-a", "--format", "{{.Names}}"])
            .output()
        {
            for n in String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|n| n.starts_with(&self.tag))
            {
                let _ = self
                    .cmd()
                    .args(["rm", "-f", "-t", "0", n])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = self
            .cmd()
            .args(["rmi", "-f", &self.image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // runc under Podman leaves the container's (empty) cgroup2 directory here.
        for id in self.ids.borrow().iter() {
            remove_cgroups_named(id);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Podman exports a checkpoint (zstd, named .tar.gz); ckpt inspects it and imports it: a
/// verified directory, the spec rewritten for a new name and rootfs, the rootfs diff applied.
#[test]
fn podman_archive_inspected_and_imported_by_ckpt() {
    let _s = serial();
    let Some(p) = Podman::new("pimp") else { return };
    let id = p.run_counter("c");
    p.wait_count("c", 5);
    let out = p.dir.join("podman-export.tar.gz");
    p.export("c", &out);
    assert_eq!(
        &fs::read(&out).unwrap()[..4],
        &[0x28, 0xb5, 0x2f, 0xfd],
        "Podman writes zstd"
    );

    let i = archive::inspect(&out, &Limits::default()).expect("inspect Podman's archive");
    assert_eq!(i.engine, "Podman");
    assert_eq!(i.name.as_deref(), Some(p.name("c").as_str()));
    assert_eq!(i.id.as_deref(), Some(id.as_str()));
    assert_eq!(i.compression, "zstd");
    assert!(
        i.rootfs_diff,
        "Podman carried /tmp/count in rootfs-diff.tar"
    );
    let tree = i.process_tree.as_ref().expect("process tree");
    assert_eq!(tree.comm.as_deref(), Some("sh"));
    assert!(i.statistics.is_some());
    eprintln!("{}", i.to_text());

    let newroot = p.dir.join("newroot");
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(p.dir.join("rootfs"))
            .arg(&newroot)
            .status()
            .unwrap()
            .success()
    );
    let imp = archive::import(
        &out,
        &p.dir.join("imported"),
        &ImportOptions {
            name: Some(p.name("new")),
            rootfs: Some(newroot.clone()),
            ..Default::default()
        },
    )
    .expect("import Podman's archive");
    assert!(imp.images_dir.join("inventory.img").is_file());
    assert!(imp.images_dir.join("descriptors.json").is_file());
    assert_eq!(imp.manager.as_deref(), Some("libpod"));
    let new_id = imp.config.id.clone().unwrap();
    assert_ne!(new_id, id);
    let spec: serde_json::Value =
        serde_json::from_slice(&fs::read(&imp.spec_path).unwrap()).unwrap();
    assert_eq!(spec["root"]["path"], newroot.to_str().unwrap());
    let ns = spec["linux"]["namespaces"].as_array().unwrap();
    assert!(
        ns.iter().all(|n| n.get("path").is_none()),
        "old netns path dropped: {ns:?}"
    );
    let mounts = serde_json::to_string(&spec["mounts"]).unwrap();
    assert!(
        !mounts.contains(&id) && mounts.contains(&new_id),
        "{mounts}"
    );
    let count: u64 = fs::read_to_string(newroot.join("tmp/count"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(count >= 5, "rootfs diff applied: /tmp/count = {count}");
}

fn dev_null_w() -> std::os::fd::OwnedFd {
    fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap()
        .into()
}

/// An import and restore onto an overlay over `lower`, under the name `name`, its output
/// dropped.
fn overlay_restore(
    bundle: &Path,
    lower: PathBuf,
    name: String,
    namespaces: Vec<(String, Option<String>)>,
) -> archive::ImportRestore {
    archive::ImportRestore {
        bundle: bundle.to_path_buf(),
        rootfs: archive::NewRootfs::Overlay { lower },
        name: Some(name),
        id: None,
        namespaces,
        limits: Limits::default(),
        keep_network: false,
        stdio: [None, Some(dev_null_w()), Some(dev_null_w())],
        hooks: None,
    }
}

/// Waits for the counter restored as `pid` to show, then to go up by 5: (first, later).
fn counter_carries_on(pid: i32) -> (u64, u64) {
    let first = wait_for("the restored counter", Duration::from_secs(10), || {
        count_in(pid)
    });
    let later = wait_for("the counter to carry on", Duration::from_secs(10), || {
        count_in(pid).filter(|v| *v >= first + 5)
    });
    (first, later)
}

/// Kills the restored container `proc_`, removes its cgroups and its bundle.
fn remove_restored(mut proc_: Proc, id: &str, bundle: &Path) {
    proc_.kill();
    drop(proc_);
    remove_cgroups_named(id);
    let _ = fs::remove_dir_all(bundle);
}

fn count_in(pid: i32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/root/tmp/count"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Podman exports a checkpoint of a busybox container; after `podman rm`, ckpt imports it
/// with a new name onto an overlay over the image's root file system and restores it through
/// the container layer: the counter carries on from the archived value. Before that, inputs
/// that cannot work here are refused before CRIU starts, leaving no bundle behind.
#[test]
fn podman_archive_restored_by_ckpt() {
    let _s = serial();
    let Some(p) = Podman::new("prest") else {
        return;
    };
    p.run_counter("c");
    p.wait_count("c", 5);
    let out = p.dir.join("podman-export.tar.gz");
    p.export("c", &out);
    p.rm("c");
    let bad_src = p.dir.join("bad-src");
    archive::import(&out, &bad_src, &ImportOptions::default()).expect("import");
    let spec_dump: serde_json::Value =
        serde_json::from_slice(&fs::read(bad_src.join("spec.dump")).unwrap()).unwrap();
    let old_netns = spec_dump["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "network")
        .and_then(|n| n["path"].as_str())
        .expect("Podman's container joined a network namespace by path")
        .to_string();

    let lower = p.dir.join("rootfs");
    let bundle = p.dir.join("bundle");
    let netns = NetNs::new("archive-prest");
    let new_name = p.name("restored");
    let req = |ns: Vec<(String, Option<String>)>, lower: PathBuf| {
        overlay_restore(&bundle, lower, new_name.clone(), ns)
    };
    let images = p.dir.join("unused-img");

    // Bad input, each refused before CRIU starts, nothing left behind.
    let e = archive::restore::restore(&mut options(&images), &out, req(vec![], lower.clone()))
        .expect_err("no network namespace named");
    let msg = e.to_string();
    assert!(
        msg.contains(&old_netns) && msg.contains("network namespace"),
        "{msg}"
    );
    assert!(
        !bundle.exists(),
        "a refused restore left {}",
        bundle.display()
    );
    let absent = format!("/run/netns/{}-absent", p.tag);
    let e = archive::restore::restore(
        &mut options(&images),
        &out,
        req(
            vec![("network".into(), Some(absent.clone()))],
            lower.clone(),
        ),
    )
    .expect_err("absent namespace path");
    assert!(
        e.to_string().contains(&absent) && e.to_string().contains("absent here"),
        "{e}"
    );
    let e = archive::restore::restore(
        &mut options(&images),
        &out,
        req(
            vec![("network".into(), Some("/etc/hostname".into()))],
            lower.clone(),
        ),
    )
    .expect_err("not a namespace file");
    assert!(e.to_string().contains("not a namespace file"), "{e}");
    let e = archive::restore::restore(
        &mut options(&images),
        &out,
        req(
            vec![("network".into(), Some(netns.path().display().to_string()))],
            p.dir.join("no-such-rootfs"),
        ),
    )
    .expect_err("absent rootfs");
    assert!(e.to_string().contains("no-such-rootfs"), "{e}");
    assert!(!bundle.exists());

    // A bind mount from a host path absent here: the container layer refuses it.
    let mut bad_spec_dump = spec_dump.clone();
    bad_spec_dump["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": format!("/{}-absent-src", p.tag),
        "options": ["bind"]
    }));
    let bad = p.dir.join("bad.tar.zst");
    archive::export(
        &ExportRequest {
            images_dir: bad_src.join("checkpoint"),
            spec: bad_spec_dump,
            config: EngineConfig::from_json(
                serde_json::from_slice(&fs::read(bad_src.join("config.dump")).unwrap()).unwrap(),
            )
            .unwrap(),
            ..Default::default()
        },
        &bad,
    )
    .expect("export the altered archive");
    let e = archive::restore::restore(
        &mut options(&images),
        &bad,
        req(
            vec![("network".into(), Some(netns.path().display().to_string()))],
            lower.clone(),
        ),
    )
    .expect_err("absent bind source");
    assert!(
        e.to_string().contains("-absent-src") && e.to_string().contains("does not exist"),
        "{e}"
    );
    assert!(!bundle.exists());

    // The restore.
    let at_dump = count_in_diff(&bad_src.join("rootfs-diff.tar"), &p.dir.join("diff"));
    let t0 = Instant::now();
    let r = archive::restore::restore(
        &mut options(&images),
        &out,
        req(
            vec![("network".into(), Some(netns.path().display().to_string()))],
            lower.clone(),
        ),
    );
    let new_id = r
        .as_ref()
        .ok()
        .and_then(|r| r.imported.config.id.clone())
        .unwrap_or_default();
    let r = r.expect("import and restore Podman's archive through the container layer");
    let pid = r.restored.pid;
    let proc_ = Proc::adopt(pid);
    eprintln!(
        "imported and restored in {:?}: pid {pid}, provided {:?}, spec changes {:?}",
        t0.elapsed(),
        r.provided,
        r.imported.spec_changes
    );
    assert_eq!(r.imported.config.name.as_deref(), Some(new_name.as_str()));
    assert!(
        r.provided.iter().any(|l| l.starts_with("/etc/hosts")),
        "{:?}",
        r.provided
    );
    let (first, later) = counter_carries_on(pid);
    assert!(
        first >= at_dump,
        "the restored counter is at {first}, below {at_dump} (the archived value)"
    );
    assert!(later > first);
    remove_restored(proc_, &new_id, &bundle);
}

/// ckpt writes the archive of a real Podman container (CRIU images from runc's checkpoint, the
/// container's config.json, the overlay upper dir as the rootfs diff); `podman container
/// restore --import` restores it and the counter carries on; checkpointctl reads it too.
#[test]
fn ckpt_archive_restored_by_podman() {
    let _s = serial();
    let Some(p) = Podman::new("pres") else { return };
    let id = p.run_counter("c");
    p.wait_count("c", 5);
    let bundle_spec = PathBuf::from(p.inspect("c", "{{.OCIConfigPath}}"));
    let upper = PathBuf::from(p.inspect("c", "{{.GraphDriver.Data.UpperDir}}"));
    let image_id = p.inspect("c", "{{.Image}}");
    let images = p.dir.join("img");
    let work = p.dir.join("work");
    // The checkpoint itself, as Podman would have runc take it.
    let t0 = Instant::now();
    run_out(
        Command::new("runc")
            .args([
                "--criu",
                "/usr/local/sbin/criu",
                "checkpoint",
                "--image-path",
            ])
            .arg(&images)
            .arg("--work-path")
            .arg(&work)
            .arg(&id),
    );
    let at_dump: u64 = fs::read_to_string(upper.join("tmp/count"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let spec: serde_json::Value = serde_json::from_slice(&fs::read(&bundle_spec).unwrap()).unwrap();
    let out = p.dir.join("ckpt-export.tar.gz");
    let t1 = Instant::now();
    let (m, w) = archive::export(
        &ExportRequest {
            images_dir: images.clone(),
            work_dir: Some(work.clone()),
            spec,
            config: EngineConfig {
                name: Some(p.name("c")),
                id: Some(id.clone()),
                image_name: Some(format!("{}:latest", p.image)),
                image_id: Some(image_id),
                runtime: Some("runc".into()),
                extra: json!({"createNetNS": true, "networkMode": "bridge"})
                    .as_object()
                    .unwrap()
                    .clone(),
                ..Default::default()
            },
            rootfs: Some(RootfsChanges::OverlayUpper { upper, lower: None }),
            compression: Compression::default(),
            ..Default::default()
        },
        &out,
    )
    .expect("export");
    eprintln!(
        "runc checkpoint {:?}, ckpt export {:?} ({} bytes, notes {:?})",
        t1 - t0,
        t1.elapsed(),
        w.archive_bytes,
        m.notes
    );
    let show = stdout_of(Command::new(checkpointctl()).arg("show").arg(&out));
    assert!(show.contains(&p.name("c")), "{show}");
    let insp = stdout_of(
        Command::new(checkpointctl())
            .args(["inspect", "--all"])
            .arg(&out),
    );
    assert!(insp.contains("sh"), "{insp}");

    p.rm("c");
    run_out(p.cmd().args(["container", "restore", "--import"]).arg(&out));
    let first = p.wait_count("c", 1);
    assert!(
        first >= at_dump,
        "the restored counter started at {first}, below {at_dump}: it did not carry on"
    );
    let later = p.wait_count("c", first + 5);
    assert!(later > first);
}

/// `ckpt checkpoint --export` with a container (what the command runs for `--bundle DIR --pid
/// PID`): ckpt's container layer checkpoints a running Podman container, and the archive is
/// written from its bundle (the spec is the bundle's config.json, the rootfs diff comes from
/// the overlay's upper directory, found from the mount); checkpointctl reads it, and after
/// `podman rm`, `podman container restore --import` restores it and the counter carries on.
#[test]
fn ckpt_container_checkpoint_exported_and_restored_by_podman() {
    let _s = serial();
    let Some(p) = Podman::new("cexp") else { return };
    let id = p.run_counter("c");
    p.wait_count("c", 5);
    let (bundle, pid, image_id) = p.bundle_pid_image("c");
    let images = p.dir.join("img");
    let mut o = options(&images);
    let t0 = Instant::now();
    ckpt::container::checkpoint(&mut o, &bundle, pid, false).expect("container checkpoint");
    let t1 = Instant::now();
    let mut req = p.export_request("c", &id, image_id, &images);
    req.config.extra = json!({"createNetNS": true, "networkMode": "bridge"})
        .as_object()
        .unwrap()
        .clone();
    let notes = archive::container_export::fill_from_bundle(&mut req, &bundle).expect("bundle");
    assert!(
        matches!(req.rootfs, Some(RootfsChanges::OverlayLayers { ref lowers, .. }) if !lowers.is_empty()),
        "{notes:?}"
    );
    let out = p.dir.join("ckpt-container.tar.zst");
    archive::export(&req, &out).expect("export");
    eprintln!(
        "ckpt container checkpoint {:?}, export {:?}; notes {notes:?}",
        t1 - t0,
        t1.elapsed()
    );
    let i = archive::inspect(&out, &Limits::default()).expect("inspect");
    assert!(i.rootfs_diff, "the overlay's upper directory went in");
    let show = stdout_of(Command::new(checkpointctl()).arg("show").arg(&out));
    assert!(show.contains(&p.name("c")), "{show}");
    let at_dump = {
        let t = p.dir.join("peek");
        archive::import(&out, &t, &ImportOptions::default()).expect("import");
        count_in_diff(&t.join("rootfs-diff.tar"), &p.dir.join("diff"))
    };
    p.rm("c");
    run_out(p.cmd().args(["container", "restore", "--import"]).arg(&out));
    let first = p.wait_count("c", at_dump);
    let later = p.wait_count("c", first + 5);
    assert!(later > first);
}

/// The counter the container had written to /tmp/count when it was checkpointed, read from
/// the archive's rootfs diff `tar`, unpacked into `scratch`.
fn count_in_diff(tar: &std::path::Path, scratch: &std::path::Path) -> u64 {
    fs::create_dir_all(scratch).unwrap();
    run_out(
        Command::new("tar")
            .arg("-C")
            .arg(scratch)
            .arg("-xf")
            .arg(tar),
    );
    fs::read_to_string(scratch.join("tmp/count"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A Podman container with what a workload has (a volume, a bound file, a tmpfs holding
/// data, a file in /dev/shm, environment, a working directory, two processes, Podman's
/// default bridge network), checkpointed by ckpt's container layer and exported from its
/// bundle with no engine fields given, as `ckpt checkpoint --export --runtime runc ID` does:
/// `podman container restore --import` restores it into a new network namespace, and it
/// carries on with all of it. Before, Podman kept the old namespace's path ("Requested
/// network namespace ... does not exist") and /dev/shm came back empty.
#[test]
fn ckpt_archive_of_a_podman_workload_restored_by_podman() {
    let _s = serial();
    let Some(p) = Podman::new("work") else { return };
    let vol = p.dir.join("vol");
    fs::create_dir_all(&vol).unwrap();
    fs::write(vol.join("in-vol"), "vol\n").unwrap();
    fs::write(p.dir.join("host-file"), "file\n").unwrap();
    let id = p.run_script(
        "c",
        &[
            "-v",
            &format!("{}:/data", vol.display()),
            "-v",
            &format!("{}:/etc/host-file:ro", p.dir.join("host-file").display()),
            "--tmpfs",
            "/scratch",
            "-e",
            "FOO=from-podman",
            "-w",
            "/tmp",
        ],
        &format!(
            "echo shm > /dev/shm/s; echo \"$FOO\" > /scratch/t; (while :; do sleep 1; done) & {COUNTER}"
        ),
    );
    p.wait_count("c", 5);
    let (bundle, pid, image_id) = p.bundle_pid_image("c");
    let images = p.dir.join("img");
    ckpt::container::checkpoint(&mut options(&images), &bundle, pid, false)
        .expect("container checkpoint");
    let mut req = p.export_request("c", &id, image_id, &images);
    let notes = archive::container_export::fill_from_bundle(&mut req, &bundle).expect("bundle");
    let out = p.dir.join("ckpt-work.tar.zst");
    let (m, _) = archive::export(&req, &out).expect("export");
    eprintln!("notes {notes:?} {:?}", m.notes);
    let i = archive::inspect(&out, &Limits::default()).expect("inspect");
    let spec: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        i.created.as_deref(),
        spec["annotations"]["io.kubernetes.cri-o.Created"].as_str(),
        "createdTime is when Podman created the container"
    );
    assert!(
        i.files.iter().any(|f| f == "devshm-checkpoint.tar"),
        "no devshm-checkpoint.tar: {:?}",
        i.files
    );
    p.rm("c");
    run_out(p.cmd().args(["container", "restore", "--import"]).arg(&out));
    let first = p.wait_count("c", 1);
    let later = p.wait_count("c", first + 5);
    assert!(later > first);
    let exec = |script: &str| {
        stdout_of(
            p.cmd()
                .arg("exec")
                .arg(p.name("c"))
                .args(["sh", "-c", script]),
        )
    };
    assert_eq!(exec("cat /dev/shm/s"), "shm\n", "/dev/shm's file");
    assert_eq!(
        exec("cat /scratch/t"),
        "from-podman\n",
        "the tmpfs's content"
    );
    assert_eq!(exec("cat /data/in-vol /etc/host-file"), "vol\nfile\n");
    let init = p.inspect("c", "{{.State.Pid}}");
    assert_eq!(
        fs::read_link(format!("/proc/{init}/cwd")).unwrap(),
        PathBuf::from("/tmp")
    );
    let env = fs::read(format!("/proc/{init}/environ")).unwrap();
    assert!(env.split(|b| *b == 0).any(|v| v == b"FOO=from-podman"));
    assert!(
        !fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
            .unwrap()
            .trim()
            .is_empty(),
        "the second process"
    );
}

/// Removes a Podman volume on drop.
struct Volume<'a>(&'a Podman, String);

impl Drop for Volume<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .cmd()
            .args(["volume", "rm", "-f", &self.1])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Podman exports a container with a named volume (`volumes/NAME.tar` in the archive); the
/// container and the volume are removed, as on another host, and ckpt restores the archive:
/// the volume's contents come from the archive into the bundle, and the container counts on
/// with them. Before, the restore was refused ("the source .../volumes/NAME/_data of
/// external mount /vol (spec) does not exist on this host"), where Podman's own import
/// recreates the volume.
#[test]
fn podman_archive_with_a_named_volume_restored_by_ckpt_where_the_volume_is_gone() {
    let _s = serial();
    let Some(p) = Podman::new("vol") else { return };
    let vol = Volume(&p, p.name("v"));
    run_out(p.cmd().args(["volume", "create"]).arg(&vol.1));
    p.run_script(
        "c",
        &["-v", &format!("{}:/vol", vol.1)],
        &format!("echo in-volume > /vol/f; {COUNTER}"),
    );
    p.wait_count("c", 5);
    let out = p.dir.join("podman-vol.tar.zst");
    p.export("c", &out);
    p.rm("c");
    run_out(p.cmd().args(["volume", "rm", "-f"]).arg(&vol.1));
    let bundle = p.dir.join("bundle");
    let netns = NetNs::new("archive-vol");
    let r = archive::restore::restore(
        &mut options(&p.dir.join("unused-img")),
        &out,
        overlay_restore(
            &bundle,
            p.dir.join("rootfs"),
            p.name("restored"),
            vec![("network".into(), Some(netns.path().display().to_string()))],
        ),
    )
    .expect("ckpt restores Podman's archive with its volume gone");
    let pid = r.restored.pid;
    let proc_ = Proc::adopt(pid);
    let new_id = r.imported.config.id.clone().unwrap_or_default();
    eprintln!("provided {:?}", r.provided);
    assert!(
        r.provided.iter().any(|l| l.starts_with("/vol:")),
        "{:?}",
        r.provided
    );
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/root/vol/f"))
            .ok()
            .as_deref(),
        Some("in-volume\n")
    );
    counter_carries_on(pid);
    remove_restored(proc_, &new_id, &bundle);
}
