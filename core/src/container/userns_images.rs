//! The image directory of a user-namespaced container's restore, readable by its root.
//!
//! CRIU opens some images from the restored tasks themselves (`utsns-N.img`, `timens-0.img`,
//! `tty-info.img`), through its descriptor of the image directory, once they run as the
//! container's root: a host uid and gid that the image directory (made 0700, owned by the
//! host's root) let search nothing, and that image files written under a umask of 077 let read
//! nothing, so every such restore failed with "Unable to open ...: Permission denied" (as
//! `runc restore` does). For the restore's length the directory, and each regular file in it
//! that the container's root could not read, get that root's host gid as their group with
//! search (`g+x`) or read (`g+r`) permission; every one is put back after it. Nobody else gains
//! anything, and what the images hold is untouched.

use crate::error::{Error, Result};
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, fchmod, fstat};
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// What a file or the directory had before, to put back.
struct Before {
    gid: u32,
    mode: u32,
}

/// Gives `fd` its group and mode back.
fn put_back(fd: std::os::fd::BorrowedFd<'_>, b: &Before) {
    let _ = std::os::unix::fs::fchown(fd, None, Some(b.gid));
    // The old mode whole, after the chown (which may clear set-group-ID).
    let _ = fchmod(fd, Mode::from_bits_truncate(b.mode as _));
}

/// What `let_read` changed; put back when dropped, the directory last. Files are reopened by
/// name through the directory's descriptor, so that a restore of many processes' images holds
/// one descriptor, not one per image.
#[derive(Default)]
pub(super) struct Opened {
    dir: Option<OwnedFd>,
    dir_before: Option<Before>,
    files: Vec<(OsString, Before)>,
}

impl Drop for Opened {
    fn drop(&mut self) {
        let Some(dir) = &self.dir else { return };
        for (name, b) in self.files.drain(..) {
            let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
            if let Ok(fd) = nix::fcntl::openat(dir, name.as_os_str(), flags, Mode::empty()) {
                put_back(fd.as_fd(), &b);
            }
        }
        if let Some(b) = self.dir_before.take() {
            put_back(dir.as_fd(), &b);
        }
    }
}

/// Whether `uid`/`gid` have the permission `bits` (0o4 read, 0o1 search) on a file by its
/// mode, as the kernel decides: the owner's bits for the owner, else the group's for the group,
/// else the others'.
fn may(st: &FileStat, uid: u32, gid: u32, bits: u32) -> bool {
    let mode = st.st_mode;
    if st.st_uid == uid {
        mode & (bits << 6) != 0
    } else if st.st_gid == gid {
        mode & (bits << 3) != 0
    } else {
        mode & bits != 0
    }
}

/// Gives `fd` the group `gid` with `bits` for it; what it had before.
fn grant(
    fd: std::os::fd::BorrowedFd<'_>,
    st: &FileStat,
    gid: u32,
    bits: u32,
    what: &Path,
) -> Result<Before> {
    let fail = |doing: &str, e: &dyn std::fmt::Display| {
        Error::io(
            format!(
                "{doing} {} for the container's root (host gid {gid}), as which CRIU's restored tasks open images",
                what.display()
            ),
            e,
        )
    };
    let before = Before {
        gid: st.st_gid,
        mode: st.st_mode & 0o7777,
    };
    std::os::unix::fs::fchown(fd, None, Some(gid))
        .map_err(|e| fail("changing the group of", &e))?;
    if let Err(e) = fchmod(
        fd,
        Mode::from_bits_truncate((before.mode | (bits << 3)) as _),
    ) {
        put_back(fd, &before);
        return Err(fail("adding group permission to", &e));
    }
    Ok(before)
}

/// Lets `owner` (the host uid and gid of the container's root, when it has a user namespace)
/// search `images` and read its regular files for the restore, where it may not already.
pub(super) fn let_read(images: &Path, owner: Option<(u32, u32)>) -> Result<Opened> {
    let mut opened = Opened::default();
    let Some((uid, gid)) = owner else {
        return Ok(opened);
    };
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let dir: OwnedFd = nix::fcntl::open(images, flags | OFlag::O_DIRECTORY, Mode::empty())
        .map_err(|e| Error::io(format!("opening the image path {}", images.display()), e))?;
    let st = fstat(dir.as_fd())
        .map_err(|e| Error::io(format!("reading the image path {}", images.display()), e))?;
    let entries = std::fs::read_dir(images)
        .map_err(|e| Error::io(format!("listing the image path {}", images.display()), e))?;
    let dir = opened.dir.insert(dir);
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let name = entry.file_name();
        // O_NONBLOCK: a FIFO planted since the listing is not waited on (and is skipped).
        let Ok(fd) = nix::fcntl::openat(
            &*dir,
            name.as_os_str(),
            flags | OFlag::O_NONBLOCK,
            Mode::empty(),
        ) else {
            continue;
        };
        let Ok(fst) = fstat(fd.as_fd()) else { continue };
        let regular = fst.st_mode & libc::S_IFMT == libc::S_IFREG;
        // A file the container's root owns is ruled by its owner bits, the caller's choice.
        if regular && fst.st_uid != uid && !may(&fst, uid, gid, 0o4) {
            let before = grant(fd.as_fd(), &fst, gid, 0o4, &entry.path())?;
            opened.files.push((name, before));
        }
    }
    if st.st_uid != uid && !may(&st, uid, gid, 0o1) {
        let before = grant(dir.as_fd(), &st, gid, 0o1, images)?;
        opened.dir_before = Some(before);
    }
    Ok(opened)
}
