//! The cgroups a container restore makes. CRIU creates the container's cgroups (its cgroup
//! roots) when they do not exist; a restore that then fails leaves them to nobody, and after
//! an archive import under a new id the caller does not even know their names. ckpt notes
//! which were missing before CRIU ran and removes those after a failed restore; after one that
//! succeeded, it lists them for the caller (`Restored::made_cgroups`), who removes them once the
//! container is gone.

use super::cgroups;
use super::facts::RestoreFacts;
use super::plan::Plan;
use std::path::{Path, PathBuf};

/// For each cgroup the restore of `p` puts the container in that does not exist yet, its
/// topmost missing directory on the host: the plan's cgroup roots, and the cgroup2 cgroups of
/// the checkpoint's record (CRIU restores those where they were dumped). `f` is what the plan
/// was made from.
pub fn missing(p: &Plan, f: &RestoreFacts) -> Vec<PathBuf> {
    let hs = cgroups::hierarchies(&f.host.mounts);
    let mut dirs: Vec<String> = p
        .cgroup_root_dirs(&f.host.mounts)
        .into_iter()
        .map(|r| r.dir)
        .collect();
    dirs.extend(
        f.record
            .cgroups
            .iter()
            .filter(|(c, _)| c.is_empty())
            .filter_map(|(c, path)| cgroups::find(&hs, c)?.host_dir(path)),
    );
    let mut out: Vec<PathBuf> = vec![];
    for dir in &dirs {
        let mut top: Option<&Path> = None;
        let mut cur = Some(Path::new(&dir));
        while let Some(c) = cur.filter(|c| !c.exists()) {
            top = Some(c);
            cur = c.parent();
        }
        if let Some(t) = top.map(Path::to_path_buf).filter(|t| !out.contains(t)) {
            out.push(t);
        }
    }
    out
}

/// Every directory in and below `tops` (the topmost missing ones `missing` found before CRIU
/// ran, so all of it was made for this restore), deepest first: each listed after every
/// directory below it, in the order the caller removes them.
pub fn created(tops: &[PathBuf]) -> Vec<PathBuf> {
    fn tree(d: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(d) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    tree(&e.path(), out);
                }
            }
        }
        out.push(d.to_path_buf());
    }
    let mut out = vec![];
    for t in tops.iter().filter(|t| t.is_dir()) {
        tree(t, &mut out);
    }
    out
}

/// Removes each directory and the cgroups below it, deepest first. A cgroup that still holds
/// a process cannot be removed and stays.
pub fn remove(dirs: &[PathBuf]) {
    fn tree(d: &Path) {
        if let Ok(entries) = std::fs::read_dir(d) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    tree(&e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(d);
    }
    for d in dirs {
        tree(d);
    }
}
