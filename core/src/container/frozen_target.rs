//! A container restore never starts into a frozen v1 freezer cgroup. CRIU moves the restored
//! tasks into the container's cgroups; in a FROZEN (or FREEZING) v1 freezer cgroup, such as a
//! paused container's, they freeze at once: the restore cannot finish, and a v1-frozen task
//! does not die of SIGKILL until its cgroup thaws, so the restored tree could not be killed
//! and reaped either, and the call would never return, whatever its timeout.

use super::plan::RootDir;
use super::{cgroups, freezer};
use crate::error::{Code, Error, Result};
use std::path::Path;

/// Refuses the restore when the v1 freezer cgroup it puts the container in is not THAWED:
/// the cgroup itself when it exists, else the nearest ancestor CRIU would create it under (a
/// child of a frozen cgroup is frozen too). `roots` are the plan's cgroup roots on this host
/// (`Plan::cgroup_root_dirs`).
pub fn refuse(roots: &[RootDir]) -> Result<()> {
    for r in roots {
        if !r.controllers.split(',').any(|c| c == "freezer") {
            continue;
        }
        let (at, _) = cgroups::existing_above(Path::new(&r.dir));
        // The hierarchy's root has no freezer.state: it cannot be frozen.
        let Some((d, state)) = at.and_then(|d| Some((d, freezer::state_v1(d)?))) else {
            continue;
        };
        if state != "THAWED" {
            // An empty one was left FROZEN after its tasks went (ckpt's own checkpoint of a
            // paused container thaws it, `thaw_emptied`); one with tasks is a paused
            // container's.
            let empty = freezer::holds_no_task(d) == Some(true);
            let what = if empty {
                "it holds no task (left frozen after its tasks were killed?): thaw it (write THAWED to its freezer.state) or remove it"
            } else {
                "a paused container's: resume that container"
            };
            return Err(Error::new(
                Code::InvalidState,
                format!(
                    "the freezer cgroup {} the container would be restored into is {state}: CRIU would move the restored tasks into it, where they would freeze, and the restore could neither finish nor be undone; {what}, or restore into other cgroups (linux.cgroupsPath)",
                    d.display()
                ),
            ));
        }
    }
    Ok(())
}
