//! The cgroups a container restore makes. CRIU creates the container's cgroups (its cgroup
//! roots) when they do not exist; a restore that then fails leaves them to nobody, and after
//! an archive import under a new id the caller does not even know their names. ckpt notes
//! which were missing before CRIU ran and removes those after a failed restore; after one that
//! succeeded, it lists them for the caller (`Restored::made_cgroups`), who removes them once the
//! container is gone.

use super::cgroups;
use super::facts::RestoreFacts;
use super::plan::RootDir;
use std::path::{Path, PathBuf};

/// A cgroup the restore puts the container in that did not exist before it: its directory on
/// the host, and the topmost missing directory above it (itself when only it was missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// The cgroup's directory on the host.
    pub dir: PathBuf,
    /// The topmost directory above `dir` (or `dir` itself) that did not exist.
    pub top: PathBuf,
}

/// The cgroups the restore puts the container in that do not exist yet: the plan's cgroup
/// roots (`roots`, `Plan::cgroup_root_dirs`), and the cgroup2 cgroups of the checkpoint's
/// record (CRIU restores those where they were dumped). `f` is what the plan was made from.
pub fn missing_dirs(roots: &[RootDir], f: &RestoreFacts) -> Vec<Missing> {
    let hs = cgroups::hierarchies(&f.host.mounts);
    let mut dirs: Vec<String> = roots.iter().map(|r| r.dir.clone()).collect();
    dirs.extend(
        f.record
            .cgroups
            .iter()
            .filter(|(c, _)| c.is_empty())
            .filter_map(|(c, path)| cgroups::find(&hs, c)?.host_dir(path)),
    );
    let mut out: Vec<Missing> = vec![];
    for dir in &dirs {
        if let (_, Some(t)) = cgroups::existing_above(Path::new(&dir)) {
            let m = Missing {
                dir: PathBuf::from(dir),
                top: t.to_path_buf(),
            };
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    out
}

/// The topmost missing directory of each of `made`, once each.
pub fn tops(made: &[Missing]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = vec![];
    for m in made {
        if !out.contains(&m.top) {
            out.push(m.top.clone());
        }
    }
    out
}

/// The directories made for the cgroups in `made` (found by `missing_dirs` before CRIU ran):
/// each one's directory with every one below it (the container's own nested cgroups CRIU
/// restored there), and its missing parents up to its top; not the other directories under
/// those parents, which another restore may have made meanwhile. Deepest first: each comes
/// after every directory below it, the order the caller removes them in.
pub fn created(made: &[Missing]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = vec![];
    for m in made.iter().filter(|m| m.dir.is_dir()) {
        let mut mine = vec![];
        tree(&m.dir, &mut mine);
        let mut up = m.dir.parent();
        while let Some(d) = up.filter(|_| m.dir != m.top && m.dir.starts_with(&m.top)) {
            mine.push(d.to_path_buf());
            if d == m.top {
                break;
            }
            up = d.parent();
        }
        for d in mine {
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    // Several cgroups under one made parent: the parent after all of them.
    out.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    out
}

/// Removes each directory and the cgroups below it, deepest first. A cgroup that still holds
/// a process cannot be removed and stays.
pub fn remove(dirs: &[PathBuf]) {
    for d in dirs {
        let mut all = vec![];
        tree(d, &mut all);
        for x in all {
            let _ = std::fs::remove_dir(x);
        }
    }
}

/// `d` and every directory below it, each after every directory below it.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_lists_the_made_chain_deepest_first_and_not_its_siblings() {
        let base = std::env::temp_dir().join(format!("leftovers-{}-made", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let top = base.join("pods");
        let dir = top.join("mid/ctr");
        for d in [
            dir.join("nested/deeper"),
            top.join("other"),
            top.join("mid/sib"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        let made = [Missing {
            dir: dir.clone(),
            top: top.clone(),
        }];
        let got = created(&made);
        assert_eq!(
            got,
            vec![
                dir.join("nested/deeper"),
                dir.join("nested"),
                dir.clone(),
                top.join("mid"),
                top.clone()
            ]
        );
        assert_eq!(tops(&made), vec![top.clone()]);
        // Only the container's own cgroup missing: its parents are not listed.
        let own = [Missing {
            dir: dir.clone(),
            top: dir.clone(),
        }];
        assert_eq!(
            created(&own),
            vec![dir.join("nested/deeper"), dir.join("nested"), dir.clone()]
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
