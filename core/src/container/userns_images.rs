//! The image directory of a user-namespaced container's restore, searchable by its root.
//!
//! CRIU opens some images from the restored tasks themselves (`timens-0.img`, `tty-info.img`),
//! through its descriptor of the image directory, once they run as the container's root: a
//! host uid and gid that the image directory (made 0700, owned by the host's root) let search
//! nothing, so every such restore failed with "Unable to open ...: Permission denied" (as
//! `runc restore` does). For the restore's length the directory's group becomes the
//! container root's host gid with search permission (`g+x`), and both are put back after it;
//! nobody else gains anything, and the images themselves are as CRIU wrote them.

use crate::error::{Error, Result};
use nix::sys::stat::{Mode, fchmod, fstat};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// The directory opened and changed, with what to put back.
pub(super) struct Opened {
    dir: OwnedFd,
    gid: u32,
    mode: u32,
}

/// Lets `owner` (the host uid and gid of the container's root, when it has a user namespace)
/// search `images` for the restore, unless it already may. None when nothing was changed.
pub(super) fn let_search(images: &Path, owner: Option<(u32, u32)>) -> Result<Option<Opened>> {
    let Some((uid, gid)) = owner else {
        return Ok(None);
    };
    let dir: OwnedFd = nix::fcntl::open(
        images,
        nix::fcntl::OFlag::O_RDONLY
            | nix::fcntl::OFlag::O_DIRECTORY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(format!("opening the image path {}", images.display()), e))?;
    let st = fstat(dir.as_fd())
        .map_err(|e| Error::io(format!("reading the image path {}", images.display()), e))?;
    let mode = st.st_mode & 0o7777;
    // The kernel's rule: the owner's bits for the owner, else the group's for the group, else
    // the others'.
    let may = if st.st_uid == uid {
        mode & 0o100 != 0
    } else if st.st_gid == gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    };
    if may || st.st_uid == uid {
        return Ok(None);
    }
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::io(
            format!(
                "{what} of the image path {} for the container's root (host gid {gid}), which CRIU's restored tasks open images as",
                images.display()
            ),
            e,
        )
    };
    std::os::unix::fs::fchown(&dir, None, Some(gid)).map_err(|e| fail("changing the group", &e))?;
    let opened = Opened {
        dir,
        gid: st.st_gid,
        mode,
    };
    fchmod(
        opened.dir.as_fd(),
        Mode::from_bits_truncate((mode | 0o010) as _),
    )
    .map_err(|e| fail("adding group search permission", &e))?;
    Ok(Some(opened))
}

impl Drop for Opened {
    fn drop(&mut self) {
        let _ = std::os::unix::fs::fchown(&self.dir, None, Some(self.gid));
        // The old mode whole, after the chown (which may clear set-group-ID).
        let _ = fchmod(self.dir.as_fd(), Mode::from_bits_truncate(self.mode as _));
    }
}
