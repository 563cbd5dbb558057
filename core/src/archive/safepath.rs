//! Names inside an archive, checked before anything is written: each must stay inside the
//! directory it is unpacked into, and writing must never follow a link out of it.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// The longest entry name accepted (Linux's PATH_MAX).
pub const MAX_PATH: usize = 4096;
/// The longest path component accepted (Linux's NAME_MAX).
pub const MAX_COMPONENT: usize = 255;

/// A relative path of plain components (`./` prefixes and `.` components dropped). Empty for
/// the archive's root (`.` or `./`). Refuses absolute names, `..`, NUL, over-long names.
pub fn normalize(raw: &[u8]) -> Result<PathBuf> {
    let shown = String::from_utf8_lossy(raw);
    if raw.is_empty() {
        return Err(Error::invalid("archive entry with an empty name"));
    }
    if raw.len() > MAX_PATH {
        return Err(Error::invalid(format!(
            "archive entry name longer than {MAX_PATH} bytes"
        )));
    }
    if raw.contains(&0) {
        return Err(Error::invalid(format!(
            "archive entry {shown:?} holds a NUL byte"
        )));
    }
    if raw[0] == b'/' {
        return Err(Error::invalid(format!(
            "archive entry {shown:?} is an absolute path"
        )));
    }
    let mut out = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(p) => {
                if p.len() > MAX_COMPONENT {
                    return Err(Error::invalid(format!(
                        "archive entry {shown:?} has a component longer than {MAX_COMPONENT} bytes"
                    )));
                }
                out.push(p)
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::invalid(format!(
                    "archive entry {shown:?} leaves the archive with '..'"
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::invalid(format!(
                    "archive entry {shown:?} is an absolute path"
                )));
            }
        }
    }
    Ok(out)
}

/// Where a symbolic link at `link` (relative to the root) pointing to `target` leads, if that
/// stays inside the root; `None` when it leaves it (absolute target, or `..` past the root).
pub fn resolve_link_inside(link: &Path, target: &[u8]) -> Option<PathBuf> {
    if target.is_empty() || target[0] == b'/' || target.contains(&0) {
        return None;
    }
    let mut stack: Vec<&OsStr> = link
        .parent()
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    for c in Path::new(OsStr::from_bytes(target)).components() {
        match c {
            Component::Normal(p) => stack.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                stack.pop()?;
            }
            _ => return None,
        }
    }
    Some(stack.iter().collect())
}

/// Makes every directory from `root` down to `rel` (inclusive), refusing to pass through
/// anything that is not a real directory (a symbolic link above all). `root` must exist.
pub fn make_dirs(root: &Path, rel: &Path, mode: u32) -> Result<()> {
    let mut at = root.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::invalid(format!(
                    "archive entry {} goes through the symbolic link {}",
                    rel.display(),
                    at.strip_prefix(root).unwrap_or(&at).display()
                )));
            }
            Ok(_) => {
                return Err(Error::invalid(format!(
                    "archive entry {} goes through {}, which is not a directory",
                    rel.display(),
                    at.strip_prefix(root).unwrap_or(&at).display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .mode(mode)
                    .create(&at)
                    .map_err(|e| Error::io(format!("creating {}", at.display()), e))?;
            }
            Err(e) => return Err(Error::io(format!("checking {}", at.display()), e)),
        }
    }
    Ok(())
}

/// Creates `root/rel` as a new regular file (never opening an existing one, never following a
/// link), its parents made with [`make_dirs`].
pub fn create_file(root: &Path, rel: &Path, mode: u32) -> Result<fs::File> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    make_dirs(root, parent, 0o755)?;
    let p = root.join(rel);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&p)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Error::invalid(format!(
                    "archive entry {} appears twice (or over an existing file)",
                    rel.display()
                ))
            } else {
                Error::io(format!("creating {}", p.display()), e)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(
            normalize(b"./checkpoint/").unwrap(),
            Path::new("checkpoint")
        );
        assert_eq!(normalize(b"a/./b").unwrap(), Path::new("a/b"));
        assert_eq!(normalize(b"./").unwrap(), Path::new(""));
        for bad in [
            &b"/etc/passwd"[..],
            b"../x",
            b"a/../../x",
            b"a/..",
            b"",
            b"a\0b",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
        assert!(normalize(&vec![b'a'; 300]).is_err());
    }

    #[test]
    fn resolves_links() {
        let l = Path::new("checkpoint/parent");
        assert_eq!(
            resolve_link_inside(l, b"../pre-checkpoint").unwrap(),
            Path::new("pre-checkpoint")
        );
        assert!(resolve_link_inside(l, b"../../etc").is_none());
        assert!(resolve_link_inside(l, b"/etc").is_none());
        assert!(resolve_link_inside(Path::new("x"), b"..").is_none());
    }
}
