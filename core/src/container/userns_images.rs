//! The image directory of a user-namespaced container's restore, readable by its root.
//!
//! CRIU opens some images from the restored tasks themselves (`utsns-N.img`, `timens-0.img`,
//! `tty-info.img`), through its descriptor of the image directory, once they run as the
//! container's root: a host uid and gid that the image directory (made 0700, owned by the
//! host's root) let search nothing, and that image files written under a umask of 077 let read
//! nothing, so every such restore failed with "Unable to open ...: Permission denied" (as
//! `runc restore` does). For the restore's length the directory, and each regular file in it
//! that the container's root could not read, get that root's host gid as their group with
//! search (`g+x`) or read (`g+r`) permission; every one is put back after it. Only CRIU images
//! (`*.img`) with no other hard link, on the directory's filesystem, are touched. What the images
//! hold is untouched.
//!
//! What each had is written first to `RECORD` in the directory, which stays while the grant
//! does and is flock'd by the restore that made it: a restore killed before it put things
//! back (SIGKILL, a crash) leaves the record, and the next restore from the directory puts
//! back what it says before it looks (without it, that restore would take the granted modes
//! for the caller's and keep them for good). A record another restore holds locked is that
//! restore's, still running: this one is refused rather than take its grant for the caller's.

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

/// The file in the image directory that says what a restore changed, while it is changed.
pub(super) const RECORD: &str = "ckpt-userns-grant.txt";

/// What `let_read` changed; put back when dropped, the directory last, then `RECORD` removed.
/// Files are reopened by name through the directory's descriptor, so that a restore of many
/// processes' images holds two descriptors, not one per image.
#[derive(Default)]
pub(super) struct Opened {
    dir: Option<OwnedFd>,
    dir_before: Option<Before>,
    files: Vec<(OsString, Before)>,
    record: Option<crate::paths::Flock>,
}

/// Puts back `files` (by name in `dir`; "." is the directory itself, last).
fn put_back_all(dir: &OwnedFd, files: &[(OsString, Before)]) {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    for (name, b) in files.iter().filter(|(n, _)| n != ".") {
        if let Ok(fd) = nix::fcntl::openat(dir, name.as_os_str(), flags, Mode::empty()) {
            put_back(fd.as_fd(), b);
        }
    }
    if let Some((_, b)) = files.iter().find(|(n, _)| n == ".") {
        put_back(dir.as_fd(), b);
    }
}

/// Puts back what a record left by a killed restore says, trusting it only to take away: the
/// record lies in a directory that may have come from elsewhere (an archive), so it may name
/// only the directory itself (".") and regular files in it that a grant could have touched
/// (one link, on the directory's filesystem), each keeps at most the mode bits it has now (a
/// grant only added `g+r` or `g+x`, which the record's mode lacks; a file loses set-user-ID
/// and set-group-ID, which no image has), and only what has the group a grant gives (`gid`,
/// the container's root's) is given the record's group. A planted record can thus make
/// nothing set-user-ID, executable, or reachable by more than it was, nor hand anything to a
/// group of its choosing.
fn put_back_recorded(dir: &OwnedFd, files: &[(OsString, Before)], gid: u32) {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let narrowed = |st: &FileStat, b: &Before, keep: u32| Before {
        gid: if st.st_gid == gid { b.gid } else { st.st_gid },
        mode: st.st_mode & keep & b.mode,
    };
    let Ok(dst) = fstat(dir.as_fd()) else { return };
    for (name, b) in files.iter().filter(|(n, _)| n != ".") {
        let Ok(fd) = nix::fcntl::openat(dir, name.as_os_str(), flags, Mode::empty()) else {
            continue;
        };
        match fstat(fd.as_fd()) {
            Ok(st) if grantable(&st, &dst) => {
                put_back(fd.as_fd(), &narrowed(&st, b, 0o1777));
            }
            _ => {}
        }
    }
    if let Some((_, b)) = files.iter().find(|(n, _)| n == ".") {
        put_back(dir.as_fd(), &narrowed(&dst, b, 0o7777));
    }
}

/// Whether a grant may touch the file `st` of the image directory `dir`: a regular file with
/// no other name (a hard link to a file elsewhere, a host secret, would give the container's
/// root that file) on the directory's own filesystem.
fn grantable(st: &FileStat, dir: &FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_nlink == 1 && st.st_dev == dir.st_dev
}

/// Whether `name` is a CRIU image's ("*.img"): nothing else in an image path is CRIU's to open.
fn an_image(name: &std::ffi::OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    name.as_bytes().ends_with(b".img")
}

impl Drop for Opened {
    fn drop(&mut self) {
        let Some(dir) = &self.dir else { return };
        let mut all = std::mem::take(&mut self.files);
        all.extend(self.dir_before.take().map(|b| (OsString::from("."), b)));
        put_back_all(dir, &all);
        if self.record.is_some() {
            let _ = nix::unistd::unlinkat(dir, RECORD, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        self.record = None;
    }
}

/// `RECORD`'s text: a line per entry, its gid, octal mode and name in hex (any bytes).
fn record_text(files: &[(OsString, Before)]) -> String {
    use std::os::unix::ffi::OsStrExt;
    files
        .iter()
        .map(|(n, b)| {
            let hex: String = n.as_bytes().iter().map(|c| format!("{c:02x}")).collect();
            format!("{} {:o} {hex}\n", b.gid, b.mode)
        })
        .collect()
}

/// The entries of a `RECORD` text; lines that do not parse are skipped.
fn parse_record(text: &str) -> Vec<(OsString, Before)> {
    use std::os::unix::ffi::OsStringExt;
    text.lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            let gid = it.next()?.parse().ok()?;
            let mode = u32::from_str_radix(it.next()?, 8).ok()?;
            let hex = it.next()?;
            let name = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            (!name.is_empty() && !name.contains(&b'/') && name != b"..")
                .then(|| (OsString::from_vec(name), Before { gid, mode }))
        })
        .collect()
}

/// Puts back what a `RECORD` left in `dir` by a restore that never did says, and removes it.
/// Refused while another restore holds the record locked (its grant, still in use). `gid` is
/// the group a grant gives.
fn recover(dir: &OwnedFd, images: &Path, gid: u32) -> Result<()> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = match nix::fcntl::openat(dir, RECORD, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => {
            return Err(Error::io(
                format!("opening {}", images.join(RECORD).display()),
                e,
            ));
        }
    };
    let _lock = match crate::paths::try_lock(fd.as_fd()) {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Err(Error::new(
                crate::error::Code::InvalidState,
                format!(
                    "another restore of a user-namespaced container from {} is under way (it holds {RECORD}): its image directory's permissions are that restore's to put back",
                    images.display()
                ),
            ));
        }
        Err(e) => {
            return Err(Error::io(
                format!("locking {}", images.join(RECORD).display()),
                e,
            ));
        }
    };
    // A record names at most every entry of the directory: a larger one is not ckpt's.
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(std::fs::File::from(fd), 1 << 22),
        &mut text,
    )
    .map_err(|e| Error::io(format!("reading {}", images.join(RECORD).display()), e))?;
    put_back_recorded(dir, &parse_record(&text), gid);
    nix::unistd::unlinkat(dir, RECORD, nix::unistd::UnlinkatFlags::NoRemoveDir)
        .map_err(|e| Error::io(format!("removing {}", images.join(RECORD).display()), e))
}

/// Writes `files` to a new `RECORD` in `dir`, locked for as long as the returned guard lives.
fn write_record(
    dir: &OwnedFd,
    images: &Path,
    files: &[(OsString, Before)],
) -> Result<crate::paths::Flock> {
    use std::io::Write;
    let what = || images.join(RECORD).display().to_string();
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(dir, RECORD, flags, Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::io(format!("creating {}", what()), e))?;
    let lock = match crate::paths::try_lock(fd.as_fd()) {
        Ok(Some(l)) => l,
        Ok(None) => return Err(Error::io(format!("locking {}", what()), "held by another")),
        Err(e) => return Err(Error::io(format!("locking {}", what()), e)),
    };
    let written = std::fs::File::from(fd).write_all(record_text(files).as_bytes());
    if let Err(e) = written {
        let _ = nix::unistd::unlinkat(dir, RECORD, nix::unistd::UnlinkatFlags::NoRemoveDir);
        return Err(Error::io(format!("writing {}", what()), e));
    }
    Ok(lock)
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
    recover(&dir, images, gid)?;
    let st = fstat(dir.as_fd())
        .map_err(|e| Error::io(format!("reading the image path {}", images.display()), e))?;
    let entries = std::fs::read_dir(images)
        .map_err(|e| Error::io(format!("listing the image path {}", images.display()), e))?;
    let dir = opened.dir.insert(dir);
    // First what is to change, then the record of it, then the changes: a restore killed at
    // any point leaves nothing changed that the record does not name.
    let mut wanted: Vec<(OsString, FileStat)> = vec![];
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
        // A file the container's root owns is ruled by its owner bits, the caller's choice.
        if an_image(&name) && grantable(&fst, &st) && fst.st_uid != uid && !may(&fst, uid, gid, 0o4)
        {
            wanted.push((name, fst));
        }
    }
    let dir_wanted = st.st_uid != uid && !may(&st, uid, gid, 0o1);
    if wanted.is_empty() && !dir_wanted {
        return Ok(opened);
    }
    let before = |st: &FileStat| Before {
        gid: st.st_gid,
        mode: st.st_mode & 0o7777,
    };
    let mut record: Vec<(OsString, Before)> = wanted
        .iter()
        .map(|(n, st)| (n.clone(), before(st)))
        .collect();
    if dir_wanted {
        record.push((OsString::from("."), before(&st)));
    }
    opened.record = Some(write_record(dir, images, &record)?);
    for (name, fst) in wanted {
        // Reopened, one descriptor at a time; a file replaced since the look is left alone.
        let Ok(fd) = nix::fcntl::openat(
            &*dir,
            name.as_os_str(),
            flags | OFlag::O_NONBLOCK,
            Mode::empty(),
        ) else {
            continue;
        };
        let Ok(now) = fstat(fd.as_fd()) else { continue };
        if (now.st_dev, now.st_ino) != (fst.st_dev, fst.st_ino) || !grantable(&now, &st) {
            continue;
        }
        let b = grant(fd.as_fd(), &fst, gid, 0o4, &images.join(&name))?;
        opened.files.push((name, b));
    }
    if dir_wanted {
        let b = grant(dir.as_fd(), &st, gid, 0o1, images)?;
        opened.dir_before = Some(b);
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    const OWNER: Option<(u32, u32)> = Some((100_000, 100_000));

    /// An image directory as ckpt makes it (0700) with images written under umask 077.
    struct Images(std::path::PathBuf);

    impl Images {
        /// None (and says so) when not root: the grant chowns.
        fn new(tag: &str) -> Option<Images> {
            if !std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
                eprintln!("chown needs root: not exercised");
                return None;
            }
            let d = std::env::temp_dir().join(format!(
                "ckpt-rev-userns-images-{}-{tag}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir(&d).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
            for f in ["pages-1.img", "core-1.img"] {
                std::fs::write(d.join(f), "x").unwrap();
                std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o600))
                    .unwrap();
            }
            Some(Images(d))
        }

        /// Plants `RECORD` as a restore would write it, listing `(gid, mode, name)`.
        fn plant(&self, entries: &[(u32, u32, &str)]) {
            let files: Vec<_> = entries
                .iter()
                .map(|&(gid, mode, n)| (OsString::from(n), Before { gid, mode }))
                .collect();
            std::fs::write(self.0.join(RECORD), record_text(&files)).unwrap();
        }

        /// A file outside the directory (a host secret) with `mode`, hard-linked into it as
        /// `name`; removed by the caller.
        fn link_secret(&self, ext: &str, mode: u32, name: &str) -> std::path::PathBuf {
            let secret = self.0.with_extension(ext);
            std::fs::write(&secret, "root:x:0:0").unwrap();
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).unwrap();
            std::fs::hard_link(&secret, self.0.join(name)).unwrap();
            secret
        }

        /// Every entry's name, mode and gid.
        fn state(&self) -> Vec<(String, u32, u32)> {
            let mut v: Vec<_> = std::iter::once(self.0.clone())
                .chain(
                    std::fs::read_dir(&self.0)
                        .unwrap()
                        .map(|e| e.unwrap().path()),
                )
                .map(|p| {
                    let m = std::fs::symlink_metadata(&p).unwrap();
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    (name, m.mode() & 0o7777, m.gid())
                })
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for Images {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn granted_for_the_restore_and_put_back_after() {
        let Some(d) = Images::new("plain") else {
            return;
        };
        let before = d.state();
        let o = let_read(&d.0, OWNER).unwrap();
        let granted = d.state();
        assert!(
            granted
                .iter()
                .any(|(n, m, g)| n == "pages-1.img" && *m == 0o640 && *g == 100_000),
            "{granted:?}"
        );
        assert!(granted.iter().any(|(n, _, _)| n == RECORD), "{granted:?}");
        drop(o);
        assert_eq!(d.state(), before);
    }

    /// A restore killed with the grant in place (nothing put back, its lock gone with it):
    /// the next restore from the directory puts back what the caller had, not the grant.
    #[test]
    fn a_restore_killed_mid_way_is_put_back_by_the_next() {
        let Some(d) = Images::new("killed") else {
            return;
        };
        let before = d.state();
        let mut killed = let_read(&d.0, OWNER).unwrap();
        killed.record = None;
        killed.dir = None;
        drop(killed);
        assert_ne!(d.state(), before, "the grant stays after a kill");
        let next = let_read(&d.0, OWNER).unwrap();
        drop(next);
        assert_eq!(d.state(), before);
    }

    /// A second restore from the directory while the first holds the grant is refused and
    /// changes nothing; the first puts back what the caller had.
    #[test]
    fn a_second_restore_meanwhile_is_refused() {
        let Some(d) = Images::new("twice") else {
            return;
        };
        let before = d.state();
        let first = let_read(&d.0, OWNER).unwrap();
        let granted = d.state();
        let e = let_read(&d.0, OWNER).err().expect("refused");
        assert_eq!(e.code, crate::error::Code::InvalidState, "{e:?}");
        assert_eq!(d.state(), granted);
        drop(first);
        assert_eq!(d.state(), before);
    }

    /// A record planted in the directory (an archive's, say) by someone who wants more than
    /// the images had: it can take permission away, never give it, and names nothing outside
    /// the directory.
    #[test]
    fn a_planted_record_gives_nothing() {
        let Some(d) = Images::new("planted") else {
            return;
        };
        let evil = d.0.join("evil.img");
        std::fs::write(&evil, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o700)).unwrap();
        let parent = d.0.parent().unwrap().to_path_buf();
        let parent_before = std::fs::metadata(&parent).unwrap().mode();
        d.plant(&[(0, 0o6777, "evil.img"), (0, 0o777, ".."), (0, 0o1777, ".")]);
        drop(let_read(&d.0, OWNER).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&evil), 0o700);
        assert_eq!(mode(&d.0), 0o700);
        assert_eq!(std::fs::metadata(&parent).unwrap().mode(), parent_before);
        assert!(!d.0.join(RECORD).exists());
    }

    /// A hard link in the image directory to a file elsewhere on its filesystem (a host
    /// secret): the grant would give the container's root read of that file, not an image.
    /// Nor does a file that is no CRIU image (an image path of /etc, say) get the grant.
    #[test]
    fn a_hard_link_or_a_non_image_is_not_granted() {
        let Some(d) = Images::new("hardlink") else {
            return;
        };
        let secret = d.link_secret("secret", 0o600, "shadow.img");
        std::fs::write(d.0.join("shadow"), "root:x:0:0").unwrap();
        std::fs::set_permissions(d.0.join("shadow"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let o = let_read(&d.0, OWNER).unwrap();
        let m = std::fs::metadata(&secret).unwrap();
        let n = std::fs::metadata(d.0.join("shadow")).unwrap();
        let p = std::fs::metadata(d.0.join("pages-1.img")).unwrap();
        drop(o);
        let _ = std::fs::remove_file(&secret);
        assert_eq!((m.mode() & 0o7777, m.gid()), (0o600, 0), "the linked file");
        assert_eq!((n.mode() & 0o7777, n.gid()), (0o600, 0), "a non-image");
        assert_eq!((p.mode() & 0o7777, p.gid()), (0o640, 100_000), "an image");
    }

    /// A planted record naming another group: putting back may not hand a file (nor a file
    /// hard-linked from elsewhere) to a group of the record's choosing.
    #[test]
    fn a_planted_record_gives_no_group() {
        let Some(d) = Images::new("group") else {
            return;
        };
        let secret = d.link_secret("secret2", 0o640, "linked.img");
        std::fs::set_permissions(
            d.0.join("core-1.img"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        d.plant(&[
            (4242, 0o640, "linked.img"),
            (4242, 0o640, "core-1.img"),
            (4242, 0o2770, "."),
        ]);
        drop(let_read(&d.0, OWNER).unwrap());
        let gid = |p: &Path| std::fs::metadata(p).unwrap().gid();
        let (s, c, dir) = (gid(&secret), gid(&d.0.join("core-1.img")), gid(&d.0));
        let _ = std::fs::remove_file(&secret);
        assert_eq!((s, c, dir), (0, 0, 0));
    }

    #[test]
    fn the_record_keeps_any_name() {
        use std::os::unix::ffi::OsStringExt;
        let files = vec![
            (
                OsString::from_vec(b"a b\n\xff.img".to_vec()),
                Before {
                    gid: 7,
                    mode: 0o600,
                },
            ),
            (
                OsString::from("."),
                Before {
                    gid: 0,
                    mode: 0o2700,
                },
            ),
        ];
        let back = parse_record(&record_text(&files));
        assert_eq!(back.len(), 2);
        for ((n, b), (m, c)) in files.iter().zip(&back) {
            assert_eq!((n, b.gid, b.mode), (m, c.gid, c.mode));
        }
        assert!(parse_record("1 600 2f2e2e\n1 600 2e2e\nbad line\n").is_empty());
    }
}
