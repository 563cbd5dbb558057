//! /proc/PID/cgroup and the host's cgroup hierarchies, as plain data.

use super::mountinfo::Mount;
use crate::error::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// One line of /proc/PID/cgroup: `controllers` is empty for the cgroup2 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// The hierarchy's controllers ("freezer", "cpu,cpuacct", "" for cgroup2).
    pub controllers: String,
    /// The cgroup's path in that hierarchy.
    pub path: String,
}

/// Parses /proc/PID/cgroup text; a malformed line is an error.
pub fn parse(text: &str) -> Result<Vec<Membership>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, c, p) = (it.next(), it.next(), it.next());
            match (c, p) {
                (Some(c), Some(p)) if p.starts_with('/') => Ok(Membership {
                    controllers: c.to_string(),
                    path: p.to_string(),
                }),
                _ => Err(Error::invalid(format!("malformed cgroup line: {l:?}"))),
            }
        })
        .collect()
}

/// A hierarchy mounted on the host: v1 (with its controllers) or the cgroup2 one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hierarchy {
    /// As /proc/PID/cgroup names it: "freezer", "cpu,cpuacct", "name=systemd", "" for cgroup2.
    pub controllers: String,
    /// Where it is mounted.
    pub mount_point: String,
    /// The mount's root inside the hierarchy (normally "/").
    pub root: String,
    /// "major:minor" of its mount.
    pub dev: String,
}

impl Hierarchy {
    /// Whether it is the cgroup2 hierarchy.
    pub fn is_v2(&self) -> bool {
        self.controllers.is_empty()
    }

    /// The host directory of cgroup `path` (a path inside the hierarchy), or None when the
    /// hierarchy is mounted from below it.
    pub fn host_dir(&self, path: &str) -> Option<String> {
        let rel = if self.root == "/" {
            path
        } else {
            path.strip_prefix(self.root.as_str())
                .filter(|r| r.is_empty() || r.starts_with('/'))?
        };
        Some(format!(
            "{}{}",
            self.mount_point,
            if rel == "/" { "" } else { rel }
        ))
    }
}

/// Refuses a cgroup path (`what` names where it comes from) with a `..` component or a NUL:
/// joined to a hierarchy's mount point it would name a directory outside the hierarchy.
pub fn check_path(what: &str, path: &str) -> Result<()> {
    if path.contains('\0') || path.split('/').any(|c| c == "..") {
        return Err(Error::invalid(format!(
            "{what} {path:?} leaves the cgroup hierarchy ('..' or a NUL byte): refused"
        )));
    }
    Ok(())
}

/// The cgroup hierarchies in a mount table (the host's: ckpt's own mountinfo).
pub fn hierarchies(mounts: &[Mount]) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for m in mounts {
        let controllers = match m.fs_type.as_str() {
            "cgroup2" => String::new(),
            "cgroup" => {
                let mut names: Vec<&str> = m
                    .super_options
                    .split(',')
                    .filter(|o| {
                        !matches!(*o, "rw" | "ro" | "relatime" | "noexec" | "nosuid" | "nodev")
                            && !o.starts_with("release_agent")
                            && *o != "clone_children"
                            && *o != "xattr"
                            && *o != "noprefix"
                            && *o != "cpuset_v2_mode"
                    })
                    .collect();
                names.sort_unstable();
                names.join(",")
            }
            _ => continue,
        };
        // The first mount of each hierarchy wins: later ones are binds of it.
        if out.iter().any(|h| h.dev == m.dev) {
            continue;
        }
        out.push(Hierarchy {
            controllers,
            mount_point: m.mount_point.clone(),
            root: m.root.clone(),
            dev: m.dev.clone(),
        });
    }
    out
}

/// Where the cgroup directory `dir` meets the tree that exists: the nearest of `dir` and its
/// ancestors that exists (None when none does), and the topmost of them that does not (None
/// when `dir` itself exists). CRIU makes the missing ones under the first, which they inherit
/// from.
pub fn existing_above(dir: &Path) -> (Option<&Path>, Option<&Path>) {
    let mut missing = None;
    let mut at = Some(dir);
    while let Some(d) = at.filter(|d| !d.exists()) {
        missing = Some(d);
        at = d.parent();
    }
    (at, missing)
}

/// The hierarchy /proc/PID/cgroup's `controllers` field refers to (the kernel lists a v1
/// hierarchy's controllers in its own order; compare them as sets).
pub fn find<'a>(hs: &'a [Hierarchy], controllers: &str) -> Option<&'a Hierarchy> {
    let mut want: Vec<&str> = controllers.split(',').filter(|s| !s.is_empty()).collect();
    want.sort_unstable();
    let want = want.join(",");
    hs.iter().find(|h| h.controllers == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_above_names_the_nearest_existing_and_the_topmost_missing() {
        let base = std::env::temp_dir().join(format!("fold-{}-above", std::process::id()));
        std::fs::create_dir_all(base.join("a")).unwrap();
        let deep = base.join("a/b/c");
        assert_eq!(
            existing_above(&deep),
            (
                Some(base.join("a").as_path()),
                Some(base.join("a/b").as_path())
            )
        );
        assert_eq!(
            existing_above(&base.join("a")),
            (Some(base.join("a").as_path()), None)
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn lines() {
        let m = parse("9:name=systemd:/a\n0::/\n").unwrap();
        assert_eq!(m[1].controllers, "");
        assert_eq!(m[0].path, "/a");
        assert!(parse("0:x\n").is_err());
        assert!(check_path("p", "/a/../../b").is_err());
        assert!(check_path("p", "/a/..").is_err());
        assert!(check_path("p", "/a/..b/c..").is_ok());
    }
}
