//! Killed processes in a frozen v1 freezer cgroup. A task frozen by the v1 freezer does not
//! act on SIGKILL until its cgroup thaws: a restored tree CRIU put back into a FROZEN cgroup
//! (a paused container's checkpoint records FROZEN, and CRIU writes it back before
//! `pre-resume`) neither stopped nor died when ckpt killed it, and ckpt's wait to reap its
//! root lasted until someone thawed the cgroup, past any timeout. Moving a killed task into
//! the freezer hierarchy's root cgroup, which is never frozen, thaws that task alone (the
//! kernel thaws a task that joins a thawed cgroup), and its pending SIGKILL ends it before it
//! runs any of its own code; the other tasks of the cgroup stay frozen.

use std::path::PathBuf;

/// The v1 freezer cgroup directory of `pid` on this host, and the hierarchy's root, when the
/// hierarchy is mounted from its root.
fn freezer_of(pid: i32) -> Option<(PathBuf, PathBuf)> {
    use crate::container::{cgroups, mountinfo};
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cgroups::parse(&cg)
        .ok()?
        .into_iter()
        .find(|m| m.controllers.split(',').any(|c| c == "freezer"))?
        .path;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let root = mountinfo::parse(&mounts)
        .ok()?
        .into_iter()
        .find(|m| {
            m.fs_type == "cgroup"
                && m.root == "/"
                && m.super_options.split(',').any(|x| x == "freezer")
        })
        .map(|m| PathBuf::from(m.mount_point))?;
    Some((root.join(path.trim_start_matches('/')), root))
}

/// `freezer_of(pid)` when that cgroup is FROZEN or FREEZING.
fn frozen_freezer_of(pid: i32) -> Option<(PathBuf, PathBuf)> {
    freezer_of(pid).filter(|(dir, _)| {
        crate::container::freezer::state_v1(dir).is_some_and(|s| s != "THAWED")
    })
}

/// Whether `pid` sits in a v1 freezer cgroup that is FROZEN or FREEZING.
pub(crate) fn is_frozen(pid: i32) -> bool {
    frozen_freezer_of(pid).is_some()
}

/// Moves `pid`, already sent SIGKILL, out of a frozen v1 freezer cgroup into the hierarchy's
/// root, so that it dies; nothing when its cgroup is not frozen.
pub(crate) fn release(pid: i32) {
    if let Some((_, root)) = frozen_freezer_of(pid) {
        let _ = std::fs::write(root.join("cgroup.procs"), pid.to_string());
    }
}
