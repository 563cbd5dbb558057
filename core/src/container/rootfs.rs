//! Paths inside a container's root file system, resolved the way the container sees them:
//! symlinks are followed relative to the rootfs and `..` stops at its top, so a destination
//! never names something outside it (as runc's securejoin does).

use crate::error::{Code, Error, Result};
use std::path::{Component, Path, PathBuf};

const MAX_LINKS: u32 = 255;

/// Resolves `unsafe_path` inside `root`; returns the path as the container sees it ("/a/b").
/// Missing components are kept as written (they may be created later).
pub fn resolve_in(root: &Path, unsafe_path: &str) -> Result<String> {
    let mut todo: Vec<String> = components(unsafe_path);
    todo.reverse();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let mut cand = root.to_path_buf();
        cand.extend(done.iter());
        cand.push(&c);
        match std::fs::symlink_metadata(&cand) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Error::new(
                        Code::InvalidArgument,
                        format!(
                            "too many symlinks resolving {unsafe_path} inside {}",
                            root.display()
                        ),
                    ));
                }
                let target = std::fs::read_link(&cand)
                    .map_err(|e| Error::io(format!("reading symlink {}", cand.display()), e))?;
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    done.clear();
                }
                let mut rest = components(&t);
                rest.reverse();
                todo.extend(rest);
            }
            _ => done.push(c),
        }
    }
    Ok(format!("/{}", done.join("/")))
}

fn components(p: &str) -> Vec<String> {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

/// The host path of container path `inner` ("/a/b") under `root`.
pub fn host_path(root: &Path, inner: &str) -> PathBuf {
    root.join(inner.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside() {
        let d = std::env::temp_dir().join(format!(
            "ckpt-containers-{}-rootfs-unit",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("real/sub")).unwrap();
        std::os::unix::fs::symlink("/etc", d.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../real", d.join("up")).unwrap();
        std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
        assert_eq!(resolve_in(&d, "/abs/passwd").unwrap(), "/etc/passwd");
        assert_eq!(resolve_in(&d, "/up/sub").unwrap(), "/real/sub");
        assert_eq!(resolve_in(&d, "/../../x").unwrap(), "/x");
        assert_eq!(resolve_in(&d, "/data/./new").unwrap(), "/data/new");
        assert!(resolve_in(&d, "/loop/x").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
