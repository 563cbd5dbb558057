//! What a failed container restore may not leave behind, shared by the container fault tests
//! (included with `#[path]`).

use crate::faultkit::Snapshot;
use ckpt::error::outcome;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Every cgroup directory named `id`, in any hierarchy (cgroup2's included).
pub fn cgroups_named(id: &str) -> Vec<PathBuf> {
    let mut out = vec![];
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let d = h.path().join(id);
        if d.exists() {
            out.push(d);
        }
    }
    out
}

/// The processes in any cgroup named `id`.
pub fn procs_in(id: &str) -> Vec<String> {
    cgroups_named(id)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// What a failed container restore may not leave behind; the problems found.
pub fn leftovers(id: &str, e: &ckpt::Error, snap: &Snapshot, what: &str) -> Vec<String> {
    let mut bad = vec![];
    if e.pid > 0 {
        if e.outcome & outcome::RESTORED_KILLED == 0 {
            bad.push(format!("{what}: pid {} without RESTORED_KILLED", e.pid));
        }
        if Path::new(&format!("/proc/{}", e.pid)).exists() {
            bad.push(format!("{what}: the restored root {} is there", e.pid));
        }
    }
    let end = Instant::now() + Duration::from_secs(2);
    while !procs_in(id).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let procs = procs_in(id);
    if !procs.is_empty() {
        bad.push(format!(
            "{what}: processes left in the container's cgroups: {procs:?}"
        ));
    }
    let cgs = cgroups_named(id);
    if !cgs.is_empty() {
        bad.push(format!("{what}: the cgroups CRIU made are left: {cgs:?}"));
    }
    // The restore's cgroup warm-up thread (container::cgroup_warm) is joined before the
    // restore returns, on every path.
    let warm: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim_end() == "ckpt-cgroup-war")
        })
        .map(|t| t.file_name().to_string_lossy().into_owned())
        .collect();
    if !warm.is_empty() {
        bad.push(format!(
            "{what}: the cgroup warm-up thread is left: {warm:?}"
        ));
    }
    let me = format!("ckpt-criu-root-{}-", std::process::id());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    if mounts.contains(&me) {
        bad.push(format!("{what}: CRIU's root is still bound"));
    }
    let dirs: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|d| d.file_name().to_string_lossy().starts_with(&me))
        .map(|d| d.path())
        .collect();
    if !dirs.is_empty() {
        bad.push(format!(
            "{what}: CRIU's root directories are left: {dirs:?}"
        ));
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| snap.assert_clean(what)));
    if let Err(p) = r {
        let m = p
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "?".into());
        bad.push(m);
    }
    // A failed restore leaves nothing for the next one to trip over.
    for d in cgroups_named(id) {
        crate::common::containers::remove_cgroup_tree(&d);
    }
    bad
}
