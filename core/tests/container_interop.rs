//! Checkpoints moved between runc 1.1.5 and ckpt for a container with what a real workload
//! has: a tmpfs holding data, bind mounts of a file and a directory, environment, a working
//! directory and two processes. runc's images are restored by ckpt onto a root file system
//! that lacks the tmpfs's mountpoint (runc made it in the rootfs when the container started;
//! a fresh copy of the image has none), and ckpt's images of the restored container by
//! `runc restore`. Needs root, runc and criu; every container, cgroup and directory is named
//! `ckpt-interop-<pid>-...` and removed on every path.

mod common;

use ckpt::container;
use common::containers::{
    busybox_rootfs, kill_and_reap, read_pid, remove_cgroups, remove_work, restore_bundle,
    run_detached, runc, runc_ready, script_spec, wait_gone,
};
use common::{options, serial};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CRIU: &str = "/usr/local/sbin/criu";

struct Workload {
    id: String,
    work: PathBuf,
    bundle: PathBuf,
    state: PathBuf,
    /// Trees restored by ckpt (the test's children).
    restored: Vec<i32>,
    /// Ids given to runc (the original and the one runc restored).
    runc_ids: Vec<String>,
}

impl Workload {
    fn start(name: &str) -> Workload {
        let id = format!("ckpt-interop-{}-{name}", std::process::id());
        let work = std::env::temp_dir().join(&id);
        let _ = std::fs::remove_dir_all(&work);
        let bundle = work.join("bundle");
        busybox_rootfs(
            &bundle.join("rootfs"),
            &["bin", "proc", "sys", "dev", "tmp", "etc", "srv"],
            &["sh", "sleep", "cat"],
        );
        std::fs::create_dir_all(bundle.join("host-dir")).unwrap();
        std::fs::write(bundle.join("host-dir/in-dir"), "dir\n").unwrap();
        std::fs::write(bundle.join("host-file"), "file\n").unwrap();
        // The second process sleeps in a loop; the first counts, and both keep the tmpfs's
        // file open, so its content is part of the checkpoint.
        let mut spec = script_spec(
            "runc",
            &bundle,
            "echo \"$FOO\" > /scratch/data; exec 3</scratch/data; (while :; do sleep 1; done) & \
             i=0; while :; do i=$((i+1)); printf '%8d\\n' $i 1<> /counter; sleep 0.05; done",
            &id,
        );
        spec["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("FOO=from-the-spec"));
        spec["process"]["cwd"] = json!("/srv");
        let b = bundle.to_string_lossy().to_string();
        let mounts = spec["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/etc/host-file", "type": "bind", "source": format!("{b}/host-file"), "options": ["bind", "ro"]}));
        mounts.push(json!({"destination": "/data", "type": "bind", "source": format!("{b}/host-dir"), "options": ["rbind", "rw"]}));
        mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]}));
        std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
        let w = Workload {
            state: work.join("runc-state"),
            runc_ids: vec![id.clone()],
            id,
            work,
            bundle,
            restored: vec![],
        };
        let pidfile = w.work.join("init.pid");
        let pid = run_detached("runc", &w.state, &w.bundle, &w.id, &pidfile);
        w.wait_count(pid, 10);
        w
    }

    fn count(&self) -> u64 {
        common::rewritten::read_number(&self.bundle.join("rootfs/counter")).unwrap_or(0)
    }

    /// Waits for the counter to pass `min` while `pid` runs; the value reached.
    fn wait_count(&self, pid: i32, min: u64) -> u64 {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let c = self.count();
            if c > min {
                return c;
            }
            assert!(
                Instant::now() < end && Path::new(&format!("/proc/{pid}")).exists(),
                "the counter of {} stays at {c} (wanted more than {min})",
                self.id
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What a restored container must still have: the tmpfs's data, the environment, the
    /// working directory, the binds and the second process.
    fn check_features(&self, pid: i32, who: &str) {
        let root = format!("/proc/{pid}/root");
        assert_eq!(
            std::fs::read_to_string(format!("{root}/scratch/data"))
                .ok()
                .as_deref(),
            Some("from-the-spec\n"),
            "{who}: the tmpfs's content"
        );
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/cwd")).ok(),
            Some(PathBuf::from("/srv")),
            "{who}: the working directory"
        );
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(
            env.split(|b| *b == 0).any(|v| v == b"FOO=from-the-spec"),
            "{who}: the environment"
        );
        assert_eq!(
            std::fs::read_to_string(format!("{root}/etc/host-file"))
                .ok()
                .as_deref(),
            Some("file\n"),
            "{who}: the bound file"
        );
        assert_eq!(
            std::fs::read_to_string(format!("{root}/data/in-dir"))
                .ok()
                .as_deref(),
            Some("dir\n"),
            "{who}: the bound directory"
        );
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        assert!(
            !children.trim().is_empty(),
            "{who}: the second process is gone"
        );
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        for &p in &self.restored {
            kill_and_reap(p);
            wait_gone(p, Duration::from_secs(2));
        }
        for id in &self.runc_ids {
            runc(&self.state, &["delete", "-f", id]);
        }
        remove_cgroups(&self.id);
        remove_work(&self.work);
    }
}

/// runc checkpoints the workload; its tmpfs's mountpoint is then missing from the root file
/// system (as in a fresh copy of the image: runc made it when the container started), and
/// ckpt restores runc's images, making the mountpoint as `runc restore` does. ckpt then
/// checkpoints the restored container, the mountpoint goes again, and `runc restore` restores
/// ckpt's images. Each time the workload carries on with everything it had.
#[test]
fn runc_and_ckpt_move_a_workload_with_a_tmpfs_binds_env_cwd_and_two_processes() {
    if !runc_ready() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("features");
    let scratch = w.bundle.join("rootfs/scratch");

    let runc_images = w.work.join("runc-images");
    let (ok, err) = runc(
        &w.state,
        &[
            "--criu",
            CRIU,
            "checkpoint",
            "--image-path",
            runc_images.to_str().unwrap(),
            &w.id,
        ],
    );
    assert!(ok, "runc checkpoint: {err}");
    let at_dump = w.count();
    runc(&w.state, &["delete", "-f", &w.id]);
    remove_cgroups(&w.id);
    std::fs::remove_dir(&scratch).expect("the tmpfs's mountpoint, made by runc");

    let (_, r) = restore_bundle(&mut options(&runc_images), &w.bundle)
        .unwrap_or_else(|e| panic!("ckpt restore of runc's images without /scratch: {e}"));
    w.restored.push(r.pid);
    let now = w.wait_count(r.pid, at_dump);
    eprintln!("ckpt restored runc's images: counter {at_dump} -> {now}");
    w.check_features(r.pid, "ckpt's restore of runc's images");

    let ckpt_images = w.work.join("ckpt-images");
    container::checkpoint(&mut options(&ckpt_images), &w.bundle, r.pid, false)
        .unwrap_or_else(|e| panic!("ckpt checkpoint of the restored container: {e}"));
    kill_and_reap(r.pid);
    w.restored.clear();
    let at_dump = w.count();
    remove_cgroups(&w.id);
    std::fs::remove_dir(&scratch).expect("the tmpfs's mountpoint, made by ckpt's restore");

    let rid = format!("{}-r", w.id);
    w.runc_ids.push(rid.clone());
    let pidfile = w.work.join("restored.pid");
    let (ok, _) = runc(
        &w.state,
        &[
            "--criu",
            CRIU,
            "restore",
            "-d",
            "--pid-file",
            pidfile.to_str().unwrap(),
            "--image-path",
            ckpt_images.to_str().unwrap(),
            "--bundle",
            w.bundle.to_str().unwrap(),
            &rid,
        ],
    );
    let errors = std::fs::read_to_string(ckpt_images.join("restore.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Error"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(ok, "runc restore of ckpt's images: {errors}");
    let pid = read_pid(&pidfile);
    let now = w.wait_count(pid, at_dump);
    eprintln!("runc restored ckpt's images: counter {at_dump} -> {now}");
    w.check_features(pid, "runc's restore of ckpt's images");
}
