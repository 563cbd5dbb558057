//! A container with a user namespace of its own (its root is host uid and gid 100000),
//! checkpointed by ckpt and restored by ckpt. CRIU opens some images (timens, tty-info) from
//! the restored tasks, which run as the container's root: the image directory, made 0700 and
//! owned by the host's root, let them search nothing, and every such restore failed ("Unable to
//! open timens-0.img: Permission denied"; `runc restore` fails the same way) after the
//! checkpoint had killed the container; with image files readable by root alone (a caller's
//! umask 077) too. Needs root and runc.

mod common;

use common::containers::{
    advancing, busybox_rootfs, kill_and_reap, read_pid, remove_cgroups, remove_work,
    restore_bundle, root, runc_at, runc_ready, script_spec, wait_gone,
};
use common::options;
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

const HOST_ID: u32 = 100_000;

#[test]
fn a_user_namespaced_container_is_restored() {
    if !root("a runc container needs root") || !runc_ready() {
        return;
    }
    let id = format!("ckpt-userns-{}", std::process::id());
    let work = std::env::temp_dir().join(&id);
    let _ = std::fs::remove_dir_all(&work);
    let bundle = work.join("bundle");
    let rootfs = bundle.join("rootfs");
    busybox_rootfs(&rootfs, &["bin", "proc", "dev", "tmp"], &["sh", "sleep"]);
    let mut spec = script_spec(
        "runc",
        &bundle,
        "i=0; while :; do i=$((i+1)); printf '%8d\\n' $i 1<> /counter; sleep 0.05; done",
        &id,
    );
    let map = json!([{"containerID": 0, "hostID": HOST_ID, "size": 65536}]);
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    spec["linux"]["uidMappings"] = map.clone();
    spec["linux"]["gidMappings"] = map;
    // sysfs and mqueue cannot be mounted from this user namespace here.
    spec["mounts"] = json!(
        spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"] != "/sys" && m["destination"] != "/dev/mqueue")
            .collect::<Vec<_>>()
    );
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    std::fs::write(rootfs.join("counter"), "").unwrap();
    let status = std::process::Command::new("chown")
        .args(["-R", &format!("{HOST_ID}:{HOST_ID}")])
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(status.success());
    let state = work.join("runc-state");
    let pidfile = work.join("init.pid");
    let (p, b) = (pidfile.to_str().unwrap(), bundle.to_str().unwrap());
    assert!(runc_at(
        &state,
        &["run", "-d", "--pid-file", p, "--bundle", b, &id]
    ));
    let pid = read_pid(&pidfile);
    assert!(advancing(&bundle), "the container does not count");

    let images = work.join("images");
    let mut o = options(&images);
    o.set_restore_wait(Some(Duration::from_secs(5)));
    let dumped = ckpt::container::checkpoint(&mut o, &bundle, pid, false);
    wait_gone(pid, Duration::from_secs(5));
    runc_at(&state, &["delete", "-f", &id]);
    remove_cgroups(&id);
    // As a caller with umask 077 leaves them (CRIU's files follow it): readable by root alone.
    for f in std::fs::read_dir(&images).into_iter().flatten().flatten() {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o600));
    }
    let file_before = std::fs::metadata(images.join("inventory.img"))
        .map(|m| (m.mode(), m.gid()))
        .unwrap_or_default();
    let before = std::fs::metadata(&images)
        .map(|m| (m.mode(), m.gid()))
        .unwrap_or_default();
    let restored = dumped
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|_| restore_bundle(&mut o, &bundle));
    let file_after = std::fs::metadata(images.join("inventory.img"))
        .map(|m| (m.mode(), m.gid()))
        .unwrap_or_default();
    let after = std::fs::metadata(&images)
        .map(|m| (m.mode(), m.gid()))
        .unwrap_or_default();
    let counting = restored.is_ok() && advancing(&bundle);
    if let Ok((_, r)) = &restored {
        kill_and_reap(r.pid);
        wait_gone(r.pid, Duration::from_secs(2));
    }
    remove_cgroups(&id);
    let excerpt = restored
        .as_ref()
        .err()
        .map(|e| format!("{e:?}"))
        .unwrap_or_default();
    remove_work(&work);
    assert!(dumped.is_ok(), "checkpoint: {:?}", dumped.err());
    assert!(restored.is_ok(), "restore: {excerpt}");
    assert!(counting, "the restored container does not count on");
    assert_eq!(
        before.0 & 0o777,
        0o700,
        "ckpt made the image directory 0700"
    );
    assert_eq!(
        after, before,
        "the image directory's mode and group are put back"
    );
    assert_eq!(
        (file_after, file_before.0 & 0o777),
        (file_before, 0o600),
        "an image's mode and group are put back"
    );
}
