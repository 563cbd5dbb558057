//! The container's root file system changes: collected on export into `rootfs-diff.tar` (new
//! and changed files) and `deleted.files` (a JSON list of removed paths, each starting with
//! `/`, as Podman writes it), and applied on import: the tar first, then the deletions, in
//! Podman's order.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

use super::safepath;

/// Where the changes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootfsChanges {
    /// The upper directory of the container's overlay mount: every entry in it is a change;
    /// a character device 0/0 is a deletion (overlayfs' whiteout). `lower`, when given, lets an
    /// opaque directory list the lower entries it hides as deletions.
    OverlayUpper {
        /// The overlay's upper directory.
        upper: PathBuf,
        /// The overlay's lower directory, when known.
        lower: Option<PathBuf>,
    },
    /// As `OverlayUpper`, with every lower layer of the mount (`lowerdir=`, top first): an
    /// opaque directory hides the entries of them all. What a container's export finds.
    OverlayLayers {
        /// The overlay's upper directory.
        upper: PathBuf,
        /// The overlay's lower directories.
        lowers: Vec<PathBuf>,
    },
    /// The container's root file system compared with the image layer it started from: new
    /// entries, and files whose type, size, mode, modification time or link target differ, are
    /// changes; entries of `lower` missing from `rootfs` are deletions.
    CompareWithLower {
        /// The container's root file system.
        rootfs: PathBuf,
        /// The image layer it started from.
        lower: PathBuf,
    },
}

/// What goes into the archive for the root file system.
#[derive(Debug, Default)]
pub struct Diff {
    /// Changed paths, relative, in walk order (parents before children).
    pub changed: Vec<PathBuf>,
    /// Deleted paths, relative.
    pub deleted: Vec<PathBuf>,
    /// Entries left out, with the reason (sockets and device nodes: a tar cannot carry a
    /// socket, and no import creates device nodes).
    pub skipped: Vec<(PathBuf, String)>,
    /// The directory the changed paths are read from.
    pub source: PathBuf,
    /// The overlay's lower layers, top first: where the data of a metadata-only copy-up
    /// (`trusted.overlay.metacopy`) is.
    pub lowers: Vec<PathBuf>,
}

fn io_err(what: &str, p: &Path, e: io::Error) -> Error {
    Error::io(format!("{what} {}", p.display()), e)
}

fn sorted_dir(p: &Path) -> Result<Vec<fs::DirEntry>> {
    let mut v: Vec<_> = fs::read_dir(p)
        .map_err(|e| io_err("reading directory", p, e))?
        .collect::<io::Result<_>>()
        .map_err(|e| io_err("reading directory", p, e))?;
    v.sort_by_key(|e| e.file_name());
    Ok(v)
}

fn is_opaque(p: &Path) -> bool {
    let mut buf = [0u8; 4];
    lxattr(p, c"trusted.overlay.opaque", &mut buf) == Some(1) && buf[0] == b'y'
}

/// Whether the file at `p` (not followed) has the extended attribute `name`.
fn lxattr_present(p: &Path, name: &std::ffi::CStr) -> bool {
    lxattr(p, name, &mut []).is_some()
}

/// The length of the extended attribute `name` of the file at `p` (not followed), its value
/// copied into `buf` when it fits (an empty `buf` asks only the length); None without it.
fn lxattr(p: &Path, name: &std::ffi::CStr, buf: &mut [u8]) -> Option<usize> {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
    // SAFETY: c and name are NUL-terminated; buf is writable for its length (with length 0
    // the kernel writes nothing).
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    usize::try_from(n).ok()
}

/// Why an entry is left out of the diff, if it is. Named pipes go in: a workload that keeps
/// one open needs it back, and Podman carries them too.
fn keepable(ft: &fs::FileType) -> Option<&'static str> {
    if ft.is_socket() {
        Some("a socket")
    } else if ft.is_char_device() || ft.is_block_device() {
        Some("a device node")
    } else {
        None
    }
}

impl RootfsChanges {
    /// Walks the changes once: what goes into `rootfs-diff.tar` and `deleted.files`.
    pub fn collect(&self) -> Result<Diff> {
        match self {
            RootfsChanges::OverlayUpper { upper, lower } => {
                overlay_diff(upper, lower.iter().cloned().collect())
            }
            RootfsChanges::OverlayLayers { upper, lowers } => overlay_diff(upper, lowers.clone()),
            RootfsChanges::CompareWithLower { rootfs, lower } => {
                let mut d = Diff {
                    source: rootfs.clone(),
                    ..Default::default()
                };
                walk_compare(rootfs, lower, Path::new(""), &mut d)?;
                Ok(d)
            }
        }
    }
}

/// The changes in an overlay's `upper` directory over its `lowers` (top first).
fn overlay_diff(upper: &Path, lowers: Vec<PathBuf>) -> Result<Diff> {
    let mut d = Diff {
        source: upper.to_path_buf(),
        ..Default::default()
    };
    walk_upper(upper, &lowers, Path::new(""), &mut d)?;
    d.lowers = lowers;
    Ok(d)
}

/// For tests: mounts on `target` an overlay of `lowers` (top first) under `upper`, its work
/// directory `work`, with `extra` appended to the options ("", ",metacopy=on").
#[cfg(test)]
pub(super) fn mount_test_overlay(
    target: &Path,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    extra: &str,
) -> nix::Result<()> {
    let lowerdir: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}{extra}",
        lowerdir.join(":"),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
}

fn walk_upper(upper: &Path, lowers: &[PathBuf], rel: &Path, d: &mut Diff) -> Result<()> {
    let dir = upper.join(rel);
    for e in sorted_dir(&dir)? {
        let r = rel.join(e.file_name());
        let m = fs::symlink_metadata(e.path()).map_err(|er| io_err("reading", &e.path(), er))?;
        let ft = m.file_type();
        if ft.is_char_device() && m.rdev() == 0 {
            d.deleted.push(r);
            continue;
        }
        if let Some(why) = keepable(&ft) {
            d.skipped
                .push((r, format!("{why} cannot be carried in the archive")));
            continue;
        }
        d.changed.push(r.clone());
        if ft.is_dir() && lxattr_present(&e.path(), c"trusted.overlay.redirect") {
            // Its lower content is under another name, by reference: packing the upper
            // directory alone would restore it empty.
            return Err(Error::new(
                crate::error::Code::Unsupported,
                format!(
                    "the overlay's upper directory {} holds {}, a directory renamed in the container (overlayfs redirect_dir): its contents are in the lower layers under its old name, which the diff cannot carry; give the changes by comparison with the image (ckpt_archive_opts_set_rootfs_compare)",
                    upper.display(),
                    r.display()
                ),
            ));
        }
        if ft.is_dir() {
            if !lowers.is_empty() && is_opaque(&e.path()) {
                // Every layer's names, once each, in order.
                let mut hidden = BTreeSet::new();
                for lower in lowers {
                    if let Ok(entries) = sorted_dir(&lower.join(&r)) {
                        hidden.extend(entries.iter().map(|le| le.file_name()));
                    }
                }
                for name in hidden {
                    if fs::symlink_metadata(e.path().join(&name)).is_err() {
                        d.deleted.push(r.join(name));
                    }
                }
            }
            walk_upper(upper, lowers, &r, d)?;
        }
    }
    Ok(())
}

fn differs(a: &fs::Metadata, b: &fs::Metadata, pa: &Path, pb: &Path) -> bool {
    let (ta, tb) = (a.file_type(), b.file_type());
    if ta.is_dir() != tb.is_dir()
        || ta.is_file() != tb.is_file()
        || ta.is_symlink() != tb.is_symlink()
    {
        return true;
    }
    if ta.is_dir() {
        return false;
    }
    if ta.is_symlink() {
        return fs::read_link(pa).ok() != fs::read_link(pb).ok();
    }
    a.len() != b.len()
        || a.mode() != b.mode()
        || a.mtime() != b.mtime()
        || a.mtime_nsec() != b.mtime_nsec()
}

fn walk_compare(root: &Path, lower: &Path, rel: &Path, d: &mut Diff) -> Result<()> {
    let dir = root.join(rel);
    let mut seen = BTreeSet::new();
    for e in sorted_dir(&dir)? {
        seen.insert(e.file_name());
        let r = rel.join(e.file_name());
        let m = fs::symlink_metadata(e.path()).map_err(|er| io_err("reading", &e.path(), er))?;
        let lp = lower.join(&r);
        let lm = fs::symlink_metadata(&lp).ok();
        let new_or_changed = match &lm {
            None => true,
            Some(lm) => differs(&m, lm, &e.path(), &lp),
        };
        if new_or_changed {
            if let Some(why) = keepable(&m.file_type()) {
                d.skipped
                    .push((r, format!("{why} cannot be carried in the archive")));
                continue;
            }
            d.changed.push(r.clone());
        }
        if m.is_dir() {
            match &lm {
                Some(lm) if lm.is_dir() => walk_compare(root, lower, &r, d)?,
                _ => add_subtree(root, &r, d)?,
            }
        }
    }
    if let Ok(entries) = sorted_dir(&lower.join(rel)) {
        for le in entries {
            if !seen.contains(&le.file_name()) {
                d.deleted.push(rel.join(le.file_name()));
            }
        }
    }
    Ok(())
}

fn add_subtree(root: &Path, rel: &Path, d: &mut Diff) -> Result<()> {
    for e in sorted_dir(&root.join(rel))? {
        let r = rel.join(e.file_name());
        let m = fs::symlink_metadata(e.path()).map_err(|er| io_err("reading", &e.path(), er))?;
        if let Some(why) = keepable(&m.file_type()) {
            d.skipped
                .push((r, format!("{why} cannot be carried in the archive")));
            continue;
        }
        d.changed.push(r.clone());
        if m.is_dir() {
            add_subtree(root, &r, d)?;
        }
    }
    Ok(())
}

impl Diff {
    /// Whether nothing changed and nothing was deleted.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.deleted.is_empty()
    }

    /// Writes `rootfs-diff.tar` of the changed paths into `out` (which the caller rewinds).
    /// The container owns `source` and may run on meanwhile: each entry is reached from
    /// `source` without following any symbolic link (`openat2` with `RESOLVE_BENEATH` and
    /// `RESOLVE_NO_SYMLINKS`), and its header and content come from the file opened, so a
    /// link planted after the walk packs as that link, or fails the export when it replaced
    /// a directory above the entry; it never leads root's read to a host file.
    pub fn write_tar<W: Write>(&self, out: W) -> Result<W> {
        let mut b = tar::Builder::new(out);
        let src = nix::fcntl::open(
            &self.source,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| io_err("opening", &self.source, e.into()))?;
        let lowers = self
            .lowers
            .iter()
            .map(|l| {
                nix::fcntl::open(
                    l,
                    nix::fcntl::OFlag::O_PATH
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| io_err("opening the lower layer", l, e.into()))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut linked = std::collections::HashMap::new();
        for rel in &self.changed {
            let p = self.source.join(rel);
            let err = |e: io::Error| io_err("adding to rootfs-diff.tar", &p, e);
            append_beneath(&mut b, &src, &lowers, rel, &mut linked).map_err(err)?;
        }
        b.into_inner()
            .map_err(|e| Error::io("finishing rootfs-diff.tar", e))
    }

    /// `deleted.files`: a JSON array of absolute paths inside the container.
    pub fn deleted_json(&self) -> Vec<u8> {
        let v: Vec<String> = self
            .deleted
            .iter()
            .map(|p| format!("/{}", p.to_string_lossy()))
            .collect();
        serde_json::to_vec(&v).expect("a list of strings serializes")
    }
}

/// Opens `rel` beneath the directory open as `dir`, following no symbolic link on the way
/// (an `O_PATH` descriptor of a final link itself with `O_PATH | O_NOFOLLOW`).
fn open_beneath(
    dir: &std::os::fd::OwnedFd,
    rel: &Path,
    flags: nix::fcntl::OFlag,
) -> io::Result<fs::File> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let how = OpenHow::new()
        .flags(flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let fd = nix::fcntl::openat2(std::os::fd::AsFd::as_fd(dir), rel, how)?;
    Ok(fs::File::from(fd))
}

/// Appends the entry `rel` of the directory open as `dir` to `b`, as it is now: a directory,
/// a regular file (its content read through the descriptor its header was made from; a
/// hard link to the earlier entry when `linked` has its inode) or a symbolic link (its
/// target, not followed). Anything else there now is an error.
fn append_beneath<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &std::os::fd::OwnedFd,
    lowers: &[std::os::fd::OwnedFd],
    rel: &Path,
    linked: &mut std::collections::HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    use nix::fcntl::OFlag;
    let at = open_beneath(dir, rel, OFlag::O_PATH)?;
    let md = at.metadata()?;
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&md, tar::HeaderMode::Complete);
    let ft = md.file_type();
    if ft.is_dir() {
        h.set_size(0);
        b.append_data(&mut h, rel, io::empty())
    } else if ft.is_symlink() {
        let target = nix::fcntl::readlinkat(std::os::fd::AsFd::as_fd(&at), "")?;
        h.set_size(0);
        b.append_link(&mut h, rel, Path::new(&target))
    } else if ft.is_file() {
        // Non-blocking: a FIFO swapped in meanwhile is caught by the check below, not waited on.
        let f = open_beneath(dir, rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
        let now = f.metadata()?;
        if !now.is_file() || (now.dev(), now.ino()) != (md.dev(), md.ino()) {
            return Err(io::Error::other("replaced while the archive was written"));
        }
        h.set_metadata_in_mode(&now, tar::HeaderMode::Complete);
        // Another name of a file already packed: a link to it, as the container had it.
        if now.nlink() > 1 {
            let key = (now.dev(), now.ino());
            if let Some(first) = linked.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                return b.append_link(&mut h, rel, first);
            }
            linked.insert(key, rel.to_path_buf());
        }
        if let Some(cap) = file_caps(&f)? {
            b.append_pax_extensions([(CAPS_PAX, cap.as_slice())])?;
        }
        let size = now.len();
        // A metadata-only copy-up is a hole; its data is the lower layers' file.
        let data = match fxattr(&f, c"trusted.overlay.metacopy")? {
            Some(_) => metacopy_data(&f, lowers, rel, size)?,
            None => f,
        };
        b.append_data(
            &mut h,
            rel,
            ExactLen {
                inner: &data,
                left: size,
            },
        )
    } else if ft.is_fifo() {
        // Only its name and metadata: a pipe is never opened (that would wait for a writer).
        h.set_size(0);
        b.append_data(&mut h, rel, io::empty())
    } else {
        Err(io::Error::other(
            "no longer a file, directory, link or named pipe (replaced while the archive was written)",
        ))
    }
}

/// The PAX record that carries a file's capabilities, as Podman's diff writes it.
const CAPS_PAX: &str = "SCHILY.xattr.security.capability";

/// The file capabilities (`security.capability`) of the open file `f`, if it has any.
fn file_caps(f: &fs::File) -> io::Result<Option<Vec<u8>>> {
    fxattr(f, c"security.capability")
}

/// The data of the metadata-only copy-up open as `f` (`rel`, `size` bytes): the file of the
/// first lower layer that has an entry at its path (or at the path its own
/// `trusted.overlay.redirect` names, when it was renamed), which must be a file of that size.
fn metacopy_data(
    f: &fs::File,
    lowers: &[std::os::fd::OwnedFd],
    rel: &Path,
    size: u64,
) -> io::Result<fs::File> {
    use nix::fcntl::OFlag;
    let at = match fxattr(f, c"trusted.overlay.redirect")? {
        Some(r) if r.first() == Some(&b'/') => PathBuf::from(OsStr::from_bytes(&r[1..])),
        Some(r) => rel
            .parent()
            .unwrap_or(Path::new(""))
            .join(OsStr::from_bytes(&r)),
        None => rel.to_path_buf(),
    };
    for l in lowers {
        match open_beneath(l, &at, OFlag::O_RDONLY | OFlag::O_NONBLOCK) {
            Ok(d) if d.metadata().is_ok_and(|m| m.is_file() && m.len() == size) => return Ok(d),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "a metadata-only copy-up (overlayfs metacopy) whose data, {}, is in no lower layer given as a file of {size} bytes",
        at.display()
    )))
}

/// The extended attribute `name` of the open file `f`, if it has it (small values only:
/// file capabilities, overlayfs' markers).
fn fxattr(f: &fs::File, name: &std::ffi::CStr) -> io::Result<Option<Vec<u8>>> {
    let mut buf = [0u8; 4096];
    // SAFETY: f is an open descriptor; the name is NUL-terminated; buf is writable for its length.
    let n = unsafe {
        libc::fgetxattr(
            std::os::fd::AsRawFd::as_raw_fd(f),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::EOPNOTSUPP) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(buf[..n as usize].to_vec()))
}

/// The first `left` bytes of `inner`, and an error if it ends before them (a file that
/// shrank while it was packed would otherwise leave its tar header lying about its size).
struct ExactLen<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactLen<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "shrank while the archive was written",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A path inside `root` as a chroot would resolve it: symbolic links in the parent
/// components are followed relative to `root` (absolute targets start at `root`, `..` stops at
/// `root`), the last component is left as it is. At most 40 links are followed.
pub fn secure_parent(root: &Path, rel: &Path) -> Result<PathBuf> {
    let mut hops = 0;
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let parent = rel.parent().unwrap_or(Path::new(""));
    let mut todo: Vec<std::ffi::OsString> = parent.iter().rev().map(|c| c.to_os_string()).collect();
    while let Some(c) = todo.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        if c == "." || c.is_empty() {
            continue;
        }
        let mut at: PathBuf = root.to_path_buf();
        at.extend(&resolved);
        at.push(&c);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err(Error::invalid(format!(
                        "rootfs path {} has too many levels of symbolic links",
                        rel.display()
                    )));
                }
                let t = fs::read_link(&at).map_err(|e| io_err("reading link", &at, e))?;
                if t.is_absolute() {
                    resolved.clear();
                }
                for tc in t.components().rev() {
                    match tc {
                        Component::Normal(p) => todo.push(p.to_os_string()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved.push(c),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

/// Makes the real directories of `dir` (inside root, already resolved) without following links.
fn ensure_dir(root: &Path, dir: &Path) -> Result<()> {
    let rel = dir.strip_prefix(root).unwrap_or(Path::new(""));
    safepath::make_dirs(root, rel, 0o755)
}

fn remove_existing_non_dir(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => Err(Error::invalid(format!(
            "rootfs diff replaces the directory {} with a non-directory",
            p.display()
        ))),
        Ok(_) => fs::remove_file(p).map_err(|e| io_err("removing", p, e)),
        Err(_) => Ok(()),
    }
}

/// Applies a `rootfs-diff.tar` (read from `tar`) onto `root`, then deletes the `deleted` paths.
/// Every name is checked as in the archive itself; device nodes are refused; links inside the
/// root file system are resolved as a chroot would, so nothing is written outside `root`.
/// `max_entries` bounds the tar's entry count.
pub fn apply<R: Read>(root: &Path, tar: R, deleted: &[String], max_entries: u64) -> Result<u64> {
    // The tar reader takes long names and PAX headers whole into memory: bounded, as in the
    // archive itself, by the default document limit.
    let step = super::reader::Limits::default().max_document_bytes + (64 << 10);
    let (tracking, budget) = super::reader::Tracking::new(tar);
    let mut a = tar::Archive::new(tracking);
    let mut n = 0u64;
    let mut entries = a
        .entries()
        .map_err(|e| Error::invalid(format!("rootfs-diff.tar: {e}")))?;
    while let Some((entry, spent)) = super::reader::next_within(&mut entries, &budget, step) {
        let mut entry = entry.map_err(|e| {
            if spent {
                Error::invalid(format!(
                    "rootfs-diff.tar: a long name or PAX header over {step} bytes"
                ))
            } else {
                Error::invalid(format!("rootfs-diff.tar: {e}"))
            }
        })?;
        n += 1;
        if n > max_entries {
            return Err(Error::invalid(format!(
                "rootfs-diff.tar has more than {max_entries} entries"
            )));
        }
        let raw = entry.path_bytes().into_owned();
        let rel = safepath::normalize(&raw)
            .map_err(|e| Error::invalid(format!("rootfs-diff.tar: {}", e.message)))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let shown = rel.display().to_string();
        let h = entry.header().clone();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let (uid, gid) = (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32);
        let parent = secure_parent(root, &rel)?;
        ensure_dir(root, &parent)?;
        let name = rel
            .file_name()
            .expect("normalized path has a last component");
        let dst = parent.join(name);
        let et = h.entry_type();
        match et {
            tar::EntryType::Directory => {
                match fs::symlink_metadata(&dst) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove_existing_non_dir(&dst)?;
                        fs::create_dir(&dst).map_err(|e| io_err("creating", &dst, e))?
                    }
                    Err(_) => fs::create_dir(&dst).map_err(|e| io_err("creating", &dst, e))?,
                }
                fs::set_permissions(&dst, fs::Permissions::from_mode(mode))
                    .map_err(|e| io_err("setting mode of", &dst, e))?;
                std::os::unix::fs::lchown(&dst, Some(uid), Some(gid))
                    .map_err(|e| io_err("setting owner of", &dst, e))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let caps = entry
                    .pax_extensions()
                    .map_err(|e| Error::invalid(format!("rootfs-diff.tar: {shown}: {e}")))?
                    .and_then(|mut x| {
                        x.find_map(|r| r.ok().filter(|r| r.key_bytes() == CAPS_PAX.as_bytes()))
                            .map(|r| r.value_bytes().to_vec())
                    });
                remove_existing_non_dir(&dst)?;
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&dst)
                    .map_err(|e| io_err("creating", &dst, e))?;
                let want = h.size().unwrap_or(0);
                let got = io::copy(&mut entry, &mut f).map_err(|e| io_err("writing", &dst, e))?;
                if got != want {
                    return Err(Error::invalid(format!(
                        "rootfs-diff.tar truncated: {shown} ends after {got} of {want} bytes"
                    )));
                }
                std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                    .map_err(|e| io_err("setting owner of", &dst, e))?;
                f.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(|e| io_err("setting mode of", &dst, e))?;
                // After the owner: a chown clears a file's capabilities.
                if let Some(cap) = caps {
                    // SAFETY: f is an open descriptor; the name is NUL-terminated; cap is
                    // readable for its length.
                    let rc = unsafe {
                        libc::fsetxattr(
                            std::os::fd::AsRawFd::as_raw_fd(&f),
                            c"security.capability".as_ptr(),
                            cap.as_ptr().cast(),
                            cap.len(),
                            0,
                        )
                    };
                    if rc != 0 {
                        let e = io::Error::last_os_error();
                        return Err(io_err("setting the file capabilities of", &dst, e));
                    }
                }
                if let Ok(mt) = h.mtime() {
                    let _ =
                        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mt));
                }
            }
            tar::EntryType::Symlink => {
                let t = entry
                    .link_name_bytes()
                    .ok_or_else(|| {
                        Error::invalid(format!("rootfs-diff.tar: symlink {shown} has no target"))
                    })?
                    .into_owned();
                remove_existing_non_dir(&dst)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&t), &dst)
                    .map_err(|e| io_err("creating link", &dst, e))?;
                std::os::unix::fs::lchown(&dst, Some(uid), Some(gid))
                    .map_err(|e| io_err("setting owner of", &dst, e))?;
            }
            tar::EntryType::Fifo => {
                remove_existing_non_dir(&dst)?;
                nix::unistd::mkfifo(&dst, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| io_err("creating the named pipe", &dst, e.into()))?;
                std::os::unix::fs::lchown(&dst, Some(uid), Some(gid))
                    .map_err(|e| io_err("setting owner of", &dst, e))?;
                // The pipe was just made here, under a parent resolved inside the root.
                fs::set_permissions(&dst, fs::Permissions::from_mode(mode))
                    .map_err(|e| io_err("setting mode of", &dst, e))?;
            }
            tar::EntryType::Link => {
                let t = entry
                    .link_name_bytes()
                    .ok_or_else(|| {
                        Error::invalid(format!("rootfs-diff.tar: hard link {shown} has no target"))
                    })?
                    .into_owned();
                let trel = safepath::normalize(&t).map_err(|e| {
                    Error::invalid(format!("rootfs-diff.tar: hard link {shown}: {}", e.message))
                })?;
                let tp = secure_parent(root, &trel)?.join(trel.file_name().unwrap_or_default());
                match fs::symlink_metadata(&tp) {
                    Ok(m) if m.is_file() => {}
                    _ => {
                        return Err(Error::invalid(format!(
                            "rootfs-diff.tar: hard link {shown} points to {}, not a regular file in the root file system",
                            trel.display()
                        )));
                    }
                }
                remove_existing_non_dir(&dst)?;
                fs::hard_link(&tp, &dst).map_err(|e| io_err("linking", &dst, e))?;
            }
            other => {
                return Err(Error::invalid(format!(
                    "rootfs-diff.tar: {shown} is {}; only files, directories, links and named pipes are applied",
                    kind_name(other)
                )));
            }
        }
    }
    for d in deleted {
        let rel = safepath::normalize(d.trim_start_matches('/').as_bytes())
            .map_err(|e| Error::invalid(format!("deleted.files: {}", e.message)))?;
        if rel.as_os_str().is_empty() {
            return Err(Error::invalid("deleted.files names the root itself"));
        }
        let p = secure_parent(root, &rel)?.join(rel.file_name().unwrap_or_default());
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&p).map_err(|e| io_err("removing", &p, e))?,
            Ok(_) => fs::remove_file(&p).map_err(|e| io_err("removing", &p, e))?,
            Err(_) => {}
        }
    }
    Ok(n)
}

#[doc(hidden)] // for the reader; takes a type of the tar crate
pub fn kind_name(t: tar::EntryType) -> &'static str {
    match t {
        tar::EntryType::Char => "a character device",
        tar::EntryType::Block => "a block device",
        tar::EntryType::Fifo => "a fifo",
        tar::EntryType::GNUSparse => "a sparse file",
        tar::EntryType::Symlink => "a symbolic link",
        tar::EntryType::Link => "a hard link",
        tar::EntryType::Directory => "a directory",
        tar::EntryType::Regular | tar::EntryType::Continuous => "a regular file",
        _ => "an entry of an unsupported type",
    }
}

/// Copies `src` into a fresh anonymous file and rewinds it (for streaming into the archive
/// with a known size).
pub fn spool(dir: &Path) -> Result<fs::File> {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .mode(0o600)
        .open(dir)
        .map_err(|e| io_err("creating a temporary file in", dir, e))?;
    Ok(f)
}

/// Rewinds `f` and returns its length.
#[doc(hidden)] // for the writer
pub fn rewind(f: &mut fs::File) -> Result<u64> {
    let len = f
        .seek(io::SeekFrom::End(0))
        .map_err(|e| Error::io("measuring rootfs-diff.tar", e))?;
    f.rewind()
        .map_err(|e| Error::io("rewinding rootfs-diff.tar", e))?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two names of one file in the container's changes (`ln a hl`) went into
    /// `rootfs-diff.tar` as two files, each with the whole content: the restored container
    /// had two unrelated files where it had one (a write through one name no longer showed
    /// through the other), and a large file took twice its size. Podman's diff keeps the
    /// link; so does ckpt's now, and applying it links the names again.
    #[test]
    fn hard_links_in_the_changes_stay_links() {
        let t = std::env::temp_dir().join(format!("pa-rootfs-hl-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        let upper = t.join("upper");
        fs::create_dir_all(upper.join("d")).unwrap();
        fs::write(upper.join("d/a"), vec![b'x'; 5000]).unwrap();
        fs::hard_link(upper.join("d/a"), upper.join("d/hl")).unwrap();
        let d = RootfsChanges::OverlayUpper {
            upper: upper.clone(),
            lower: None,
        }
        .collect()
        .unwrap();
        let tar = d.write_tar(Vec::new()).unwrap();
        let mut kinds = Vec::new();
        for e in tar::Archive::new(tar.as_slice()).entries().unwrap() {
            let e = e.unwrap();
            kinds.push((
                e.path().unwrap().into_owned(),
                e.header().entry_type(),
                e.size(),
            ));
        }
        assert!(
            kinds.contains(&(PathBuf::from("d/hl"), tar::EntryType::Link, 0)),
            "{kinds:?}"
        );
        let root = t.join("root");
        fs::create_dir_all(&root).unwrap();
        apply(&root, tar.as_slice(), &[], 100).unwrap();
        let (a, hl) = (
            fs::metadata(root.join("d/a")).unwrap(),
            fs::metadata(root.join("d/hl")).unwrap(),
        );
        fs::remove_dir_all(&t).unwrap();
        assert_eq!((a.ino(), a.len()), (hl.ino(), 5000));
    }

    /// A program given file capabilities (`setcap cap_net_raw+ep`, the `security.capability`
    /// attribute) among the container's changes lost them both ways: ckpt's diff left the
    /// attribute out, and applying Podman's diff, which carries it as a PAX record
    /// (`SCHILY.xattr.security.capability`), ignored it, so the restored container's `ping`
    /// could no longer open its raw socket. Both keep it now.
    #[test]
    fn file_capabilities_survive_the_diff() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("setting file capabilities needs root: not exercised");
            return;
        }
        let cap = [
            1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let t = std::env::temp_dir().join(format!("pa-rootfs-cap-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        let upper = t.join("upper");
        fs::create_dir_all(upper.join("bin")).unwrap();
        fs::write(upper.join("bin/ping"), b"\x7fELF").unwrap();
        xattr_set(&upper.join("bin/ping"), &cap);
        let d = RootfsChanges::OverlayUpper {
            upper: upper.clone(),
            lower: None,
        }
        .collect()
        .unwrap();
        let tar = d.write_tar(Vec::new()).unwrap();
        let root = t.join("root");
        fs::create_dir_all(&root).unwrap();
        apply(&root, tar.as_slice(), &[], 100).unwrap();
        let got = fxattr(
            &fs::File::open(root.join("bin/ping")).unwrap(),
            c"security.capability",
        )
        .unwrap();
        fs::remove_dir_all(&t).unwrap();
        assert_eq!(got.as_deref(), Some(&cap[..]));
    }

    /// A named pipe the container made (`mkfifo /tmp/ff`, which the workload then keeps
    /// open) is in Podman's diff, and Podman restores it; applying that diff failed the
    /// restore ("tmp/ff is a fifo; only files, directories and links are applied"), and
    /// ckpt's own diff left it out, so CRIU could not reopen it when Podman restored ckpt's
    /// archive. Both carry it now, with its mode and owner.
    #[test]
    fn a_named_pipe_in_the_changes_is_carried() {
        let t = std::env::temp_dir().join(format!("pa-rootfs-fifo-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        let upper = t.join("upper");
        fs::create_dir_all(upper.join("tmp")).unwrap();
        nix::unistd::mkfifo(
            &upper.join("tmp/ff"),
            nix::sys::stat::Mode::from_bits_truncate(0o640),
        )
        .unwrap();
        fs::set_permissions(upper.join("tmp/ff"), fs::Permissions::from_mode(0o640)).unwrap();
        let d = RootfsChanges::OverlayUpper {
            upper: upper.clone(),
            lower: None,
        }
        .collect()
        .unwrap();
        assert!(d.skipped.is_empty(), "{:?}", d.skipped);
        let tar = d.write_tar(Vec::new()).unwrap();
        let root = t.join("root");
        fs::create_dir_all(&root).unwrap();
        let r = apply(&root, tar.as_slice(), &[], 100);
        let md = fs::symlink_metadata(root.join("tmp/ff"));
        fs::remove_dir_all(&t).unwrap();
        r.unwrap();
        let md = md.unwrap();
        assert!(md.file_type().is_fifo());
        assert_eq!(md.mode() & 0o7777, 0o640);
    }

    /// As for the archive itself (`hostile_archives.rs`): a long name in the rootfs diff
    /// (or a volume's tar) was read whole into memory whatever size it declared; it is
    /// bounded by the default document limit now.
    #[test]
    fn a_huge_long_name_in_the_diff_is_bounded() {
        let size: u64 = 80 << 20;
        let mut h = tar::Header::new_gnu();
        h.set_path("././@LongLink").unwrap();
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_size(size);
        h.set_cksum();
        let tar = io::Cursor::new(h.as_bytes().to_vec())
            .chain(io::repeat(b'a').take(size))
            .chain(io::repeat(0).take(2048));
        let t = std::env::temp_dir().join(format!("pa-rootfs-long-{}", std::process::id()));
        fs::create_dir_all(&t).unwrap();
        let r = apply(&t, tar, &[], 100);
        fs::remove_dir_all(&t).unwrap();
        let e = r.unwrap_err();
        assert!(e.message.contains("long name or PAX header"), "{e}");
    }

    /// Overlay mounts with `metacopy=on` (Podman's storage default on Fedora and RHEL) copy
    /// only the metadata up when a container changes a file's mode or owner: the upper file
    /// is a hole of the right size marked `trusted.overlay.metacopy`, its data still in the
    /// lower layer. The export packed the hole, so the restored container's file was zeros;
    /// its data now comes from the lower layers. A renamed directory (`redirect_dir`, which
    /// metacopy brings) holds its lower content by reference: refused with the reason, where
    /// it was packed empty.
    #[test]
    fn metadata_only_copy_ups_take_their_data_from_the_lower_layers() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("mounting an overlay needs root: not exercised");
            return;
        }
        let t = std::env::temp_dir().join(format!("pa-metacopy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        for d in ["l/bin", "l/d", "u", "w", "m"] {
            fs::create_dir_all(t.join(d)).unwrap();
        }
        fs::write(t.join("l/bin/tool"), b"the program").unwrap();
        fs::write(t.join("l/d/x"), b"x").unwrap();
        let m = t.join("m");
        let (u, w) = (t.join("u"), t.join("w"));
        if mount_test_overlay(&m, &[t.join("l")], &u, &w, ",metacopy=on").is_err() {
            let _ = fs::remove_dir_all(&t);
            eprintln!("overlayfs without metacopy here: not exercised");
            return;
        }
        let changed = fs::set_permissions(m.join("bin/tool"), fs::Permissions::from_mode(0o700));
        let renamed = fs::rename(m.join("d"), m.join("d2"));
        let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        changed.unwrap();
        let changes = RootfsChanges::OverlayLayers {
            upper: t.join("u"),
            lowers: vec![t.join("l")],
        };
        // The program alone (the renamed directory is refused by the walk, below).
        let tool_only = || {
            Diff {
                changed: vec![PathBuf::from("bin"), PathBuf::from("bin/tool")],
                source: t.join("u"),
                lowers: vec![t.join("l")],
                ..Default::default()
            }
            .write_tar(Vec::new())
        };
        let tar = tool_only();
        let all = renamed.map(|_| changes.collect().map(|_| ()));
        let mut got = Vec::new();
        if let Ok(tar) = &tar {
            for e in tar::Archive::new(tar.as_slice()).entries().unwrap() {
                let mut e = e.unwrap();
                if e.path().unwrap() == Path::new("bin/tool") {
                    e.read_to_end(&mut got).unwrap();
                }
            }
        }
        fs::remove_dir_all(&t).unwrap();
        tar.unwrap();
        assert_eq!(got, b"the program");
        if let Ok(r) = all {
            let e = r.expect_err("a redirected directory is refused");
            assert!(e.message.contains("renamed"), "{e}");
        }
    }

    fn xattr_set(p: &Path, v: &[u8]) {
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid C strings, v readable for its length.
        let rc = unsafe {
            libc::setxattr(
                c.as_ptr(),
                c"security.capability".as_ptr(),
                v.as_ptr().cast(),
                v.len(),
                0,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    }
}
