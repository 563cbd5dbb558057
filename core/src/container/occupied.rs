//! A container restore into cgroups that already hold processes: a container (most often
//! the one checkpointed with leave-running, or one restored before) runs there. CRIU would
//! put the restored container beside it without a word, and the two would then share their
//! limits and their freezer (a later checkpoint of either freezes both). runc 1.1 warns that
//! it will refuse this ("container's cgroup is not empty"), and runc 1.2 refuses it; ckpt
//! refuses it before CRIU starts.

use super::plan::RootDir;
use crate::error::{Code, Error, Result};

/// Refuses the restore when one of the cgroups it puts the container in (`roots`, the plan's
/// cgroup roots: config.json's linux.cgroupsPath in each v1 hierarchy) exists and holds a
/// process. A hierarchy's root cgroup always holds some and is left out (a container restored
/// there shares it anyway). The record's cgroup2 cgroups are not looked at: CRIU restores
/// those where they were dumped, also for an archive restored under a new id beside the
/// original, which is allowed (with cgroup2 mounted beside v1, as here, that hierarchy holds
/// no limits).
pub fn refuse(roots: &[RootDir]) -> Result<()> {
    for r in roots {
        if r.path.trim_end_matches('/').is_empty() {
            continue;
        }
        let dir = &r.dir;
        let Ok(procs) = std::fs::read_to_string(format!("{dir}/cgroup.procs")) else {
            continue;
        };
        let pids: Vec<&str> = procs.split_whitespace().collect();
        if let Some(first) = pids.first() {
            return Err(Error::new(
                Code::InvalidState,
                format!(
                    "the container's cgroup {dir} already holds {} process(es) (pid {first}{}): a container runs there; \
                     stop it first, or give the restored container another linux.cgroupsPath in config.json",
                    pids.len(),
                    if pids.len() > 1 { ", ..." } else { "" }
                ),
            ));
        }
    }
    Ok(())
}
