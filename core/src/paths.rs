//! The directories a dump or restore works in: created private when missing, opened once and
//! handed to CRIU as descriptors so a rename between check and use cannot redirect CRIU.

use std::fs::{self, DirBuilder};
use std::os::fd::{BorrowedFd, OwnedFd};
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

/// Takes the advisory write lock (flock LOCK_EX, never waiting) on the image directory open
/// in `dir`, held until the returned guard is dropped. flock belongs to the open file, so two
/// operations of one process, with one handle or two, exclude each other as two processes
/// do. Restores take no lock: a same-host lazy migration restores from the directory while
/// the lazy dump that wrote it still serves its pages.
pub fn lock_for_writing(dir: &Dir) -> Result<Flock> {
    use std::os::fd::AsFd;
    match try_lock(dir.fd.as_fd()) {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(Error::new(
            Code::InvalidState,
            format!(
                "image directory {} is in use by another checkpoint",
                dir.path.display()
            ),
        )),
        Err(e) => Err(Error::io(
            format!("locking image directory {}", dir.path.display()),
            e,
        )),
    }
}

/// A flock taken by [`try_lock`], released with `LOCK_UN` when dropped. Closing the descriptor
/// alone does not release it: flock belongs to the open file, and a child the caller forked
/// meanwhile (from any thread: a runtime starting a helper, Go's fork and exec) holds a copy
/// of it until it execs or exits, so the lock outlived the operation and the next one was
/// refused as if another operation still ran. `LOCK_UN` on any descriptor of the open file
/// releases it for every copy.
pub struct Flock(OwnedFd);

impl Drop for Flock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on the descriptor this guard owns; it changes no memory.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Takes flock LOCK_EX on `fd` without waiting, trying again when a signal interrupts it;
/// `Ok(None)` when another open file holds the lock. The lock lasts until the returned guard
/// is dropped (it keeps its own close-on-exec copy of the descriptor).
pub fn try_lock(fd: BorrowedFd<'_>) -> std::result::Result<Option<Flock>, nix::errno::Errno> {
    use std::os::fd::AsRawFd;
    let own = fd.try_clone_to_owned().map_err(|e| {
        nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF))
    })?;
    loop {
        // SAFETY: flock on a descriptor the guard-to-be owns; it changes no memory.
        if unsafe { libc::flock(own.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some(Flock(own)));
        }
        match nix::errno::Errno::last() {
            nix::errno::Errno::EINTR => continue,
            nix::errno::Errno::EWOULDBLOCK => return Ok(None),
            e => return Err(e),
        }
    }
}

/// The most ckpt reads of a JSON or /proc text file (a runtime's state, config.json, its own
/// record): far above any real one, low enough that a hostile one cannot exhaust memory.
pub const MAX_TEXT: u64 = 64 << 20;

/// Reads the text file `path` (links followed) when it is a regular file of at most
/// `MAX_TEXT` bytes. It is opened non-blocking and checked before anything is read: a FIFO
/// or a device planted in its place (in a state directory another user owns) is refused
/// instead of blocking for ever or being read without end.
pub fn read_small(path: &Path) -> std::io::Result<String> {
    read_at_most(path, MAX_TEXT)
}

/// As `read_small`, for a regular file of at most `max` bytes.
pub fn read_at_most(path: &Path, max: u64) -> std::io::Result<String> {
    String::from_utf8(read_bytes_at_most(path, max)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The bytes of `path` (links followed) when it is a regular file of at most `max` bytes,
/// opened non-blocking and checked before anything is read.
pub fn read_bytes_at_most(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error as IoError, ErrorKind};
    read_regular(path, max, true).map_err(|u| match u {
        Unread::Open(e) | Unread::Read(e) => e,
        Unread::NotRegular(_) => IoError::new(ErrorKind::InvalidInput, "not a regular file"),
        Unread::TooLarge => {
            IoError::new(ErrorKind::InvalidData, format!("larger than {max} bytes"))
        }
    })
}

/// Why `read_regular` read nothing: each caller words its own message.
#[derive(Debug)]
pub enum Unread {
    /// The open failed (ELOOP: a symbolic link, when links are not followed).
    Open(std::io::Error),
    /// Its status or its bytes could not be read.
    Read(std::io::Error),
    /// It is no regular file but this.
    NotRegular(fs::FileType),
    /// It is longer than the limit.
    TooLarge,
}

/// What a file of type `t` is, for messages: "a directory", "a FIFO", "a character device".
pub fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

/// The bytes of the regular file `path`, at most `max`. Its type is checked before it is
/// opened for reading (`open_regular`: a FIFO or a device node in its place is never opened),
/// it is opened without taking a terminal, and with its last component followed only when
/// `follow`; its size is checked before anything is read, and the read stops past `max` also
/// when it grows after that check.
pub fn read_regular(
    path: &Path,
    max: u64,
    follow: bool,
) -> std::result::Result<Vec<u8>, Unread> {
    use std::io::Read;
    let f = open_regular(path, follow)?;
    let md = f.metadata().map_err(Unread::Read)?;
    if md.len() > max {
        return Err(Unread::TooLarge);
    }
    let mut out = Vec::new();
    f.take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(Unread::Read)?;
    if out.len() as u64 > max {
        return Err(Unread::TooLarge);
    }
    Ok(out)
}

/// Opens `path` for reading when it is a regular file, its last component followed only when
/// `follow`. It is first opened with O_PATH, which runs no driver, and looked at: a device node
/// in its place (or a link to one) is never opened for reading, since opening one is an act
/// for some (/dev/watchdog arms the machine's reset); a FIFO is not waited on. The file
/// looked at is then opened through /proc/self/fd: the same file, whatever the path names by
/// then.
fn open_regular(path: &Path, follow: bool) -> std::result::Result<fs::File, Unread> {
    use std::os::unix::fs::OpenOptionsExt;
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    let at = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC | nofollow)
        .open(path)
        .map_err(Unread::Open)?;
    let t = at.metadata().map_err(Unread::Read)?.file_type();
    if t.is_symlink() {
        // O_PATH|O_NOFOLLOW opens the link itself, where an open for reading fails so.
        return Err(Unread::Open(std::io::Error::from_raw_os_error(libc::ELOOP)));
    }
    if !t.is_file() {
        return Err(Unread::NotRegular(t));
    }
    let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&at));
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(proc)
        .map_err(Unread::Open)
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

/// Whether the file `name` in an image directory is not part of the images: a log (the one
/// ckpt named, `log_name`, and CRIU's others, which all end in `.log`) or the statistics a
/// restore writes.
fn is_not_image(name: &[u8], log_name: Option<&std::ffi::OsStr>) -> bool {
    name.ends_with(b".log")
        || name == b"stats-restore"
        || log_name.is_some_and(|l| l.as_encoded_bytes() == name)
}

/// Total size of the images directly in the directory open as `dir`: its regular files but
/// the logs (see `is_not_image`). Measured through the descriptor (openat, fstatat), so a
/// directory whose absolute path is near PATH_MAX is measured as well as any.
pub fn image_bytes_at(dir: BorrowedFd<'_>, log_name: Option<&std::ffi::OsStr>) -> u64 {
    use nix::fcntl::{AtFlags, OFlag};
    use nix::sys::stat::{Mode, SFlag, fstatat};
    let Ok(mut d) = nix::dir::Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return 0;
    };
    let mut total = 0;
    for entry in d.iter().flatten() {
        let name = entry.file_name();
        if is_not_image(name.to_bytes(), log_name) {
            continue;
        }
        if let Ok(st) = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG {
                total += st.st_size as u64;
            }
        }
    }
    total
}

#[cfg(test)]
/// Opens of `path` since `watch` started watching it (inotify's IN_OPEN).
pub(crate) struct Opens(std::os::fd::OwnedFd);

#[cfg(test)]
impl Opens {
    pub(crate) fn watch(path: &Path) -> Opens {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: inotify_init1 takes no pointer; its descriptor is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: fd was just made and is owned by the OwnedFd.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: c is a NUL-terminated path that outlives the call.
        let w = unsafe {
            libc::inotify_add_watch(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                c.as_ptr(),
                libc::IN_OPEN,
            )
        };
        assert!(w >= 0);
        Opens(fd)
    }

    pub(crate) fn any(&self) -> bool {
        let mut buf = [0u8; 4096];
        nix::unistd::read(&self.0, &mut buf).is_ok_and(|n| n > 0)
    }
}

#[cfg(test)]
/// A scratch directory holding `null`, a copy of /dev/null that stands for a device whose open
/// is an act, watched for opens from the start; removed when dropped.
pub(crate) struct WatchedDevice {
    pub(crate) dir: PathBuf,
    pub(crate) dev: PathBuf,
    opens: Opens,
}

#[cfg(test)]
impl WatchedDevice {
    /// None (and says so) when not root: mknod needs it.
    pub(crate) fn make(tag: &str) -> Option<WatchedDevice> {
        if !fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        {
            eprintln!("mknod needs root: not exercised");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let dev = dir.join("null");
        nix::sys::stat::mknod(
            &dev,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
        let opens = Opens::watch(&dev);
        Some(WatchedDevice { dir, dev, opens })
    }

    /// Whether the device was opened since it was made.
    pub(crate) fn opened(&self) -> bool {
        self.opens.any()
    }
}

#[cfg(test)]
impl Drop for WatchedDevice {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
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

    /// A device node in a file's place (or a link to one) is never opened: opening one runs
    /// its driver's open, which for some devices is an act (/dev/watchdog arms the machine's
    /// reset, a tape device rewinds). A copy of /dev/null stands for them, watched for opens.
    #[test]
    fn a_device_node_is_refused_without_being_opened() {
        let Some(w) = WatchedDevice::make("sec2-paths-dev") else {
            return;
        };
        let t = w.dir.clone();
        std::os::unix::fs::symlink(&w.dev, t.join("spec.json")).unwrap();
        let direct = read_regular(&w.dev, 10, false);
        let linked = read_bytes_at_most(&t.join("spec.json"), 10);
        let opened = w.opened();
        drop(w);
        assert!(matches!(direct, Err(Unread::NotRegular(_))), "{direct:?}");
        assert!(linked.is_err());
        assert!(!opened, "the device was opened");
        // A regular file is still read, through a link or not, and a link refused unfollowed.
        let f = t.with_extension("file");
        fs::write(&f, "x").unwrap();
        let l = t.with_extension("link");
        let _ = fs::remove_file(&l);
        std::os::unix::fs::symlink(&f, &l).unwrap();
        let (a, b, c) = (
            read_regular(&f, 10, false).ok(),
            read_bytes_at_most(&l, 10).ok(),
            read_regular(&l, 10, false),
        );
        let _ = fs::remove_file(&f);
        let _ = fs::remove_file(&l);
        assert_eq!((a, b), (Some(b"x".to_vec()), Some(b"x".to_vec())));
        assert!(
            matches!(&c, Err(Unread::Open(e)) if e.raw_os_error() == Some(libc::ELOOP)),
            "{c:?}"
        );
    }
}
