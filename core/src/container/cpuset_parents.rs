//! The missing parents of a restored container's v1 cpuset cgroup. CRIU creates a missing
//! cgroup path directory by directory, but gives properties only to the container's own
//! cgroup: a new v1 cpuset directory has no CPUs and no memory nodes, so the container's
//! cgroup below it cannot get its own ("Failed writing 0-1 to .../cpuset.cpus: Permission
//! denied") and the restore fails. runc creates the container's cgroups, parents with their
//! parent's CPUs and memory nodes, before CRIU runs; ckpt makes the missing parents the same
//! way and leaves the container's own cgroup to CRIU, which restores its recorded properties
//! in it. A restore that fails removes them with the other cgroups it made
//! (`made_cgroups`).

use super::plan::RootDir;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Makes the missing parent directories of every v1 cpuset cgroup root of `roots` (the plan's,
/// `Plan::cgroup_root_dirs`), top down, each with `cpuset.cpus` and `cpuset.mems` copied from
/// its parent, and fills a parent that exists with those values empty the same way (runc
/// does too).
/// A parent that exists with empty values is what another restore under the same parent (two
/// containers of one pod restored at once) leaves between making a directory and filling it:
/// this restore found it, left it alone, and CRIU failed to give the container its CPUs.
pub fn make(roots: &[RootDir]) -> Result<()> {
    for r in roots {
        if !r.controllers.split(',').any(|c| c == "cpuset") {
            continue;
        }
        let mut todo: Vec<PathBuf> = vec![];
        let mut at = Path::new(&r.dir).parent();
        while let Some(d) = at.filter(|d| !filled(d)) {
            todo.push(d.to_path_buf());
            at = d.parent();
        }
        for d in todo.iter().rev() {
            match std::fs::create_dir(d) {
                // Made meanwhile by another restore under the same parent: filled below.
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::io(
                        format!("creating the cpuset cgroup {}", d.display()),
                        e,
                    ));
                }
                _ => {}
            }
            fill(d)?;
        }
        // The container's own cgroup, when it exists without CPUs or memory nodes (made
        // beforehand, as `none` and `props` modes require): CRIU keeps an existing cgroup's
        // properties in those modes and in `soft`, and then cannot move the restored tasks
        // into it ("No space left on device"). runc fills it from its parent too. A missing
        // one is CRIU's to make, with its recorded properties.
        let own = Path::new(&r.dir);
        if own.exists() && !filled(own) {
            fill(own)?;
        }
    }
    Ok(())
}

/// Gives `d` its parent's `cpuset.cpus` and `cpuset.mems` where its own are empty.
fn fill(d: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let to = d.join(file);
        if std::fs::read(&to).is_ok_and(|v| !v.trim_ascii().is_empty()) {
            continue;
        }
        let from = d.parent().unwrap_or(d).join(file);
        let v = std::fs::read(&from)
            .map_err(|e| Error::io(format!("reading {}", from.display()), e))?;
        std::fs::write(&to, v).map_err(|e| Error::io(format!("writing {}", to.display()), e))?;
    }
    Ok(())
}

/// Whether `d` needs nothing: it exists and has CPUs and memory nodes, or it is not a cpuset
/// cgroup ckpt can read (the walk up stops there, as at the hierarchy's root).
fn filled(d: &Path) -> bool {
    if !d.exists() {
        return false;
    }
    ["cpuset.cpus", "cpuset.mems"]
        .iter()
        .all(|f| std::fs::read(d.join(f)).map_or(true, |v| !v.trim_ascii().is_empty()))
}
