//! The directories a dump or restore works in: created private when missing, opened once and
//! handed to CRIU as descriptors so a rename between check and use cannot redirect CRIU.

use std::fs::{self, DirBuilder};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use crate::error::{Code, Error, Result};

pub struct Dir {
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// Opens `path` as a directory, creating it (and missing parents) with mode 0700 when `create`.
pub fn open_dir(what: &str, path: &Path, create: bool) -> Result<Dir> {
    if create && !path.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| Error::io(format!("cannot create {what} {}", path.display()), e))?;
    }
    let fd = open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        let code = if e == nix::errno::Errno::ENOENT {
            Code::NotFound
        } else {
            Code::Io
        };
        Error::new(code, format!("cannot open {what} {}: {e}", path.display()))
    })?;
    let abs = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(Dir { path: abs, fd })
}

/// CRIU resolves the parent image path relative to the image directory. ckpt keeps it inside
/// that directory: relative, no `..`, and no symlink that leads out of it.
pub fn check_parent(image_dir: &Path, parent: &Path) -> Result<()> {
    let bad =
        |why: &str| Error::invalid(format!("invalid parent-path {}: {why}", parent.display()));
    if parent.is_absolute() {
        return Err(bad("it must be relative to the image path"));
    }
    if parent.components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    }) {
        return Err(bad("it must not contain '..'"));
    }
    let base = fs::canonicalize(image_dir).map_err(|e| {
        Error::io(
            format!("cannot resolve image path {}", image_dir.display()),
            e,
        )
    })?;
    let full = fs::canonicalize(base.join(parent)).map_err(|e| {
        Error::new(
            Code::NotFound,
            format!(
                "invalid parent-path {}: {} does not exist: {e}",
                parent.display(),
                base.join(parent).display()
            ),
        )
    })?;
    if full == base || !full.starts_with(&base) {
        return Err(bad("it resolves outside the image path"));
    }
    if !full.is_dir() {
        return Err(bad("it is not a directory"));
    }
    Ok(())
}

/// Total size of the regular files directly in `dir`: what a dump wrote.
pub fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_must_stay_inside() {
        let t = std::env::temp_dir().join(format!("ckpt-paths-{}", std::process::id()));
        let img = t.join("img");
        fs::create_dir_all(img.join("pre1")).unwrap();
        fs::create_dir_all(t.join("outside")).unwrap();
        let _ = std::os::unix::fs::symlink(t.join("outside"), img.join("escape"));
        assert!(check_parent(&img, Path::new("pre1")).is_ok());
        assert!(check_parent(&img, Path::new("../outside")).is_err());
        assert!(check_parent(&img, Path::new("/tmp")).is_err());
        assert!(check_parent(&img, Path::new("escape")).is_err());
        assert!(check_parent(&img, Path::new("missing")).is_err());
        assert!(check_parent(&img, Path::new(".")).is_err());
        fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn created_private() {
        use std::os::unix::fs::PermissionsExt;
        let t = std::env::temp_dir().join(format!("ckpt-mk-{}", std::process::id()));
        let d = open_dir("image path", &t.join("a/b"), true).unwrap();
        assert_eq!(
            fs::metadata(&d.path).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(open_dir("image path", &t.join("nope"), false).is_err());
        fs::remove_dir_all(&t).unwrap();
    }
}
