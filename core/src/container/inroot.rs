//! Creating and removing a restore's missing mountpoints inside a directory the container
//! controls (its rootfs, or the source of one of its bind mounts). The container may have
//! planted symbolic links there, to host paths or up with `..`, and a checkpoint record may
//! name a mountpoint with `..`: ckpt, running as root, resolves each path as a chroot at that
//! directory would (the kernel's `openat2` with `RESOLVE_IN_ROOT`) and creates each missing
//! component with `mkdirat`/`openat(O_EXCL|O_NOFOLLOW)` in the directory it resolved, so
//! nothing is made, and nothing removed, outside it, also when a link changes meanwhile.

use super::facts::Kind;
use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat, openat2};
use nix::sys::stat::{Mode, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Something a restore created: `rel` inside `root`, resolved already (no link in it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// The directory it was made in (the rootfs, or a bind's source).
    pub root: PathBuf,
    /// Its path inside `root`, resolved (no link in it), relative.
    pub rel: PathBuf,
    /// A directory (else a file).
    pub dir: bool,
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// Opens `rel` (relative, "" for the root itself) inside the root open as `root` as an
/// `O_PATH` descriptor, resolved as a chroot at `root` would.
fn open_in(root: &OwnedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2(root.as_fd(), rel, how(OFlag::O_PATH | flags))
}

fn open_root(root: &Path) -> Result<OwnedFd> {
    open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(format!("opening {}", root.display()), e))
}

/// Creates `inner` (the container's path, "/a/b") inside `root` with its missing parents, as
/// the container would see it: links followed inside `root`, `..` stopping at its top. What
/// already exists at the end is left as it is. Appends what it made to `created`, parents first.
pub fn create(root: &Path, inner: &str, kind: Kind, created: &mut Vec<Created>) -> Result<()> {
    let resolved = super::rootfs::resolve_in(root, inner)?;
    let rel = PathBuf::from(resolved.trim_start_matches('/'));
    let fd = open_root(root)?;
    let comps: Vec<_> = rel.components().collect();
    let mut at = PathBuf::new();
    for (i, c) in comps.iter().enumerate() {
        let parent = at.clone();
        at.push(c);
        let last = i + 1 == comps.len();
        match open_in(&fd, &at, OFlag::empty()) {
            Ok(_) => continue,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(io(root, &at, "resolving", e)),
        }
        let dir = open_in(&fd, &parent, OFlag::O_DIRECTORY)
            .map_err(|e| io(root, &parent, "resolving", e))?;
        let name = c.as_os_str();
        let made = if last && kind == Kind::File {
            openat(
                dir.as_fd(),
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_WRONLY
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .map(drop)
        } else {
            mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755))
        };
        // Made meanwhile by someone else (a link included): not ours to remove; the next
        // component is resolved inside the root again.
        match made {
            Ok(()) => created.push(Created {
                root: root.to_path_buf(),
                rel: at.clone(),
                dir: !(last && kind == Kind::File),
            }),
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(io(root, &at, "creating", e)),
        }
    }
    Ok(())
}

/// Removes what `create` made (call with the list reversed: children first). A directory
/// that is not empty any more stays.
pub fn remove(c: &Created) {
    let (Some(parent), Some(name)) = (c.rel.parent(), c.rel.file_name()) else {
        return;
    };
    let Ok(fd) = open_root(&c.root) else {
        return;
    };
    let Ok(dir) = open_in(&fd, parent, OFlag::O_DIRECTORY) else {
        return;
    };
    let how = if c.dir {
        UnlinkatFlags::RemoveDir
    } else {
        UnlinkatFlags::NoRemoveDir
    };
    let _ = unlinkat(dir.as_fd(), name, how);
}

fn io(root: &Path, rel: &Path, what: &str, e: Errno) -> Error {
    Error::io(
        format!("{what} {} inside {}", rel.display(), root.display()),
        e,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_dots_stay_inside() {
        let t = std::env::temp_dir().join(format!("ckpt-inroot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        let (root, host) = (t.join("root"), t.join("host"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&host).unwrap();
        std::os::unix::fs::symlink(&host, root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../host", root.join("up")).unwrap();
        let mut made = vec![];
        create(&root, "/abs/a/b", Kind::Dir, &mut made).unwrap();
        create(&root, "/up/f", Kind::File, &mut made).unwrap();
        create(&root, "/../../host/g", Kind::File, &mut made).unwrap();
        assert_eq!(std::fs::read_dir(&host).unwrap().count(), 0);
        assert!(
            root.join(host.strip_prefix("/").unwrap())
                .join("a/b")
                .is_dir()
        );
        assert!(root.join("host/f").is_file());
        assert!(root.join("host/g").is_file());
        for c in made.iter().rev() {
            remove(c);
        }
        assert!(!root.join("host").exists());
        assert!(!root.join("tmp").exists());
        std::fs::remove_dir_all(&t).unwrap();
    }
}
