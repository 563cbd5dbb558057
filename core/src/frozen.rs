//! Killed processes in a frozen v1 freezer cgroup. A task frozen by the v1 freezer does not
//! act on SIGKILL until its cgroup thaws: a restored tree CRIU put back into a FROZEN cgroup
//! (a paused container's checkpoint records FROZEN, and CRIU writes it back before
//! `pre-resume`) neither stopped nor died when ckpt killed it, and ckpt's wait to reap its
//! root lasted until someone thawed the cgroup, past any timeout. Moving a killed task into
//! the freezer hierarchy's root cgroup, which is never frozen, thaws that task alone (the
//! kernel thaws a task that joins a thawed cgroup), and its pending SIGKILL ends it before it
//! runs any of its own code; the other tasks of the cgroup stay frozen.

use std::cell::OnceCell;
use std::path::PathBuf;

/// The v1 freezer cgroup directory of `pid` on this host, and the hierarchy's root, when the
/// hierarchy is mounted from its root. `root` holds the hierarchy's root once it was looked
/// up (mountinfo is read at most once for every pid given it).
fn freezer_of(pid: i32, root: &OnceCell<Option<PathBuf>>) -> Option<(PathBuf, PathBuf)> {
    use crate::container::cgroups;
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cgroups::parse(&cg)
        .ok()?
        .into_iter()
        .find(|m| m.controllers.split(',').any(|c| c == "freezer"))?
        .path;
    let root = root.get_or_init(freezer_root).clone()?;
    Some((root.join(path.trim_start_matches('/')), root))
}

/// Where the v1 freezer hierarchy is mounted from its root, read from this process's
/// mountinfo.
fn freezer_root() -> Option<PathBuf> {
    use crate::container::mountinfo;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo::parse(&mounts)
        .ok()?
        .into_iter()
        .find(|m| {
            m.fs_type == "cgroup"
                && m.root == "/"
                && m.super_options.split(',').any(|x| x == "freezer")
        })
        .map(|m| PathBuf::from(m.mount_point))
}

/// `freezer_of(pid, root)` when that cgroup is FROZEN or FREEZING.
fn frozen_freezer_of(pid: i32, root: &OnceCell<Option<PathBuf>>) -> Option<(PathBuf, PathBuf)> {
    freezer_of(pid, root).filter(|(dir, _)| {
        crate::container::freezer::state_v1(dir).is_some_and(|s| s != "THAWED")
    })
}

/// Whether `pid` sits in a v1 freezer cgroup that is FROZEN or FREEZING.
pub(crate) fn is_frozen(pid: i32) -> bool {
    frozen_freezer_of(pid, &OnceCell::new()).is_some()
}

/// Moves killed processes out of frozen v1 freezer cgroups; the freezer hierarchy's root is
/// looked up once for all of them.
#[derive(Default)]
pub(crate) struct Release {
    root: OnceCell<Option<PathBuf>>,
}

impl Release {
    /// Moves `pid`, already sent SIGKILL, out of a frozen v1 freezer cgroup into the
    /// hierarchy's root, so that it dies; nothing when its cgroup is not frozen.
    pub(crate) fn pid(&self, pid: i32) {
        if let Some((_, root)) = frozen_freezer_of(pid, &self.root) {
            let _ = std::fs::write(root.join("cgroup.procs"), pid.to_string());
        }
    }
}
