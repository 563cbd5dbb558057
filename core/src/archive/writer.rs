//! Carries out a [`Manifest`]: one pass over its entries into a tar stream compressed as it is
//! written. Image files are streamed from the image directory (never copied first); only the
//! root file system diff is packed into an anonymous temporary file, because its size must be
//! known before its tar header is written. The archive appears under its name only when
//! complete: it is written to a temporary name beside it and renamed.

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};

use super::format::Compression;
use super::manifest::{Manifest, Source};
use super::rootfs;

const BUF: usize = 1 << 20;

enum Encoder {
    Plain(BufWriter<fs::File>),
    Gzip(flate2::write::GzEncoder<BufWriter<fs::File>>),
    Zstd(zstd::Encoder<'static, BufWriter<fs::File>>),
}

impl Write for Encoder {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(b),
            Encoder::Gzip(w) => w.write(b),
            Encoder::Zstd(w) => w.write(b),
        }
    }
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.write_all(b),
            Encoder::Gzip(w) => w.write_all(b),
            Encoder::Zstd(w) => w.write_all(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
        }
    }
}

impl Encoder {
    fn new(f: fs::File, c: Compression) -> io::Result<Encoder> {
        let w = BufWriter::with_capacity(BUF, f);
        Ok(match c {
            Compression::None => Encoder::Plain(w),
            Compression::Gzip { level } => Encoder::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::new(level),
            )),
            Compression::Zstd { level } => {
                let mut e = zstd::Encoder::new(w, level)?;
                // A frame checksum lets the reader tell a corrupted archive from a valid one.
                e.include_checksum(true)?;
                Encoder::Zstd(e)
            }
        })
    }

    fn finish(self) -> io::Result<fs::File> {
        let w = match self {
            Encoder::Plain(w) => w,
            Encoder::Gzip(w) => w.finish()?,
            Encoder::Zstd(w) => w.finish()?,
        };
        w.into_inner().map_err(|e| e.into_error())
    }
}

/// Reads exactly `want` bytes of a file being archived, failing if it shrank or grew: a tar
/// header already promised its size.
struct Exact<R: Read> {
    inner: io::Take<R>,
    want: u64,
    got: u64,
    what: String,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(b)?;
        self.got += n as u64;
        if n == 0 && !b.is_empty() && self.got != self.want {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} shrank while it was archived ({} of {} bytes)",
                    self.what, self.got, self.want
                ),
            ));
        }
        Ok(n)
    }
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Entries written.
    pub entries: u64,
    /// Bytes of entry content (before tar framing and compression).
    pub content_bytes: u64,
    /// Size of the archive file.
    pub archive_bytes: u64,
}

fn header(kind: tar::EntryType, size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Writes the archive `out` from `m`. On any failure nothing is left under `out`'s name. The
/// archive is flushed to disk before it gets its name unless the request said `no_sync`.
pub fn write(m: &Manifest, out: &Path) -> Result<Written> {
    m.compression_setting.check()?;
    // The manifest's fields are public: one changed by hand may name a diff it lacks.
    if m.rootfs_diff.is_none()
        && m.entries
            .iter()
            .any(|e| matches!(e.source, Source::RootfsDiff { .. }))
    {
        return Err(Error::invalid(
            "the manifest has a rootfs-diff entry but no root file system changes",
        ));
    }
    refuse_non_regular(out)?;
    let parent = parent_of(out);
    let fname = out
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} names no file", out.display())))?;
    let (tmp, f) = create_partial(&parent, &fname.to_string_lossy())?;
    match write_into(m, f, &parent) {
        Ok((file, mut w)) => {
            let synced = if m.sync { file.sync_all() } else { Ok(()) };
            let done = synced
                .map_err(|e| Error::io(format!("syncing {}", tmp.display()), e))
                .and_then(|_| {
                    fs::rename(&tmp, out)
                        .map_err(|e| Error::io(format!("renaming to {}", out.display()), e))
                });
            if let Err(e) = done {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
            w.archive_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
            Ok(w)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The archive is renamed into place, which replaces whatever has the name: a device node
/// (an export to /dev/null), a fifo or a symbolic link would be replaced by a regular file,
/// and a directory fails the rename only once the whole archive is written. Refused.
fn refuse_non_regular(out: &Path) -> Result<()> {
    let Ok(md) = fs::symlink_metadata(out) else {
        return Ok(());
    };
    let t = md.file_type();
    if t.is_file() {
        return Ok(());
    }
    let kind = crate::paths::file_kind(&t);
    Err(Error::invalid(format!(
        "archive path {} exists and is not a regular file but {kind}: the archive would replace it",
        out.display()
    )))
}

/// The directory `out` is in ("." for a bare name).
fn parent_of(out: &Path) -> std::path::PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// Checks, writing nothing, that `out` can name a new archive, as `write` would find it: it
/// names a file, in a directory that exists, and is not something other than a regular file.
/// For a caller that checks before the checkpoint whose images go into the archive (without
/// leave-running the workload is gone once it is taken).
pub fn check_path(out: &Path) -> Result<()> {
    refuse_non_regular(out)?;
    if out.file_name().is_none() {
        return Err(Error::invalid(format!("{} names no file", out.display())));
    }
    let parent = parent_of(out);
    if !fs::metadata(&parent).is_ok_and(|m| m.is_dir()) {
        return Err(Error::new(
            crate::error::Code::NotFound,
            format!(
                "the directory of archive path {} ({}) does not exist",
                out.display(),
                parent.display()
            ),
        ));
    }
    Ok(())
}

/// Creates the hidden file the archive is written into before it gets its name:
/// `.NAME.ckpt-partial-PID-N`, new (`O_EXCL`), 0600. N varies with the time and each attempt,
/// so neither another thread exporting to the same name nor a partial file left by a killed
/// export whose pid this process now has (a runtime that is pid 1 of its container always
/// has the same one) makes the export fail.
fn create_partial(parent: &Path, name: &str) -> Result<(std::path::PathBuf, fs::File)> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut attempt = 0u32;
    loop {
        let tmp = parent.join(format!(
            ".{name}.ckpt-partial-{}-{}",
            std::process::id(),
            nanos.wrapping_add(attempt)
        ));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 1000 => {
                attempt += 1;
            }
            Err(e) => return Err(Error::io(format!("creating {}", tmp.display()), e)),
        }
    }
}

fn write_into(m: &Manifest, f: fs::File, spool_dir: &Path) -> Result<(fs::File, Written)> {
    let enc = Encoder::new(f, m.compression_setting)
        .map_err(|e| Error::io("starting the compressor", e))?;
    let mut b = tar::Builder::new(enc);
    let mut w = Written::default();
    for e in &m.entries {
        let ctx = |err: io::Error| Error::io(format!("writing {} into the archive", e.name), err);
        match &e.source {
            Source::Directory => {
                let mut h = header(tar::EntryType::Directory, 0, e.mode, e.mtime);
                b.append_data(&mut h, &e.name, io::empty()).map_err(ctx)?;
            }
            Source::Generated { bytes } => {
                let mut h = header(tar::EntryType::Regular, bytes.len() as u64, e.mode, e.mtime);
                b.append_data(&mut h, &e.name, bytes.as_slice())
                    .map_err(ctx)?;
                w.content_bytes += bytes.len() as u64;
            }
            Source::File { path } => {
                let file = fs::File::open(path)
                    .map_err(|er| Error::io(format!("opening {}", path.display()), er))?;
                // The size now, not when planned: CRIU is done, but the check below is what
                // guarantees the header tells the truth.
                let size = file
                    .metadata()
                    .map_err(|er| Error::io(format!("{}", path.display()), er))?
                    .len();
                let mut h = header(tar::EntryType::Regular, size, e.mode, e.mtime);
                let r = Exact {
                    // A large buffer: io::copy then moves 1 MiB per call, not 8 KiB.
                    inner: io::BufReader::with_capacity(BUF, file).take(size),
                    want: size,
                    got: 0,
                    what: path.display().to_string(),
                };
                b.append_data(&mut h, &e.name, r).map_err(ctx)?;
                w.content_bytes += size;
            }
            Source::RootfsDiff { .. } | Source::DevShm { .. } | Source::Volume { .. } => {
                let diff = match e.source {
                    Source::DevShm { .. } => m.devshm.as_ref(),
                    Source::Volume { index, .. } => m.volumes.get(index),
                    _ => m.rootfs_diff.as_ref(),
                }
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "the manifest has a {} entry but nothing to pack for it",
                        e.name
                    ))
                })?;
                let spool = rootfs::spool(spool_dir)?;
                let mut spool = diff.write_tar(spool)?;
                let size = rootfs::rewind(&mut spool)?;
                let mut h = header(tar::EntryType::Regular, size, e.mode, e.mtime);
                let r = Exact {
                    inner: spool.take(size),
                    want: size,
                    got: 0,
                    what: e.name.clone(),
                };
                b.append_data(&mut h, &e.name, r).map_err(ctx)?;
                w.content_bytes += size;
            }
        }
        w.entries += 1;
    }
    let enc = b
        .into_inner()
        .map_err(|e| Error::io("finishing the archive", e))?;
    let file = enc
        .finish()
        .map_err(|e| Error::io("finishing the compressed stream", e))?;
    Ok((file, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_path_refuses_what_write_would() {
        let dir = std::env::temp_dir().join(format!("fold-{}-archpath", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let code = |p: &Path| check_path(p).map_err(|e| (e.code, e.message));
        assert!(code(&dir.join("a.tar")).is_ok());
        fs::write(dir.join("old.tar"), b"x").unwrap();
        assert!(
            code(&dir.join("old.tar")).is_ok(),
            "a regular file is replaced"
        );
        let (c, m) = code(&dir.join("none/a.tar")).unwrap_err();
        assert!(
            c == crate::error::Code::NotFound && m.contains("does not exist"),
            "{m}"
        );
        let (c, m) = code(&dir).unwrap_err();
        assert!(
            c == crate::error::Code::InvalidArgument && m.contains("but a directory"),
            "{m}"
        );
        std::os::unix::fs::symlink("old.tar", dir.join("link")).unwrap();
        let (_, m) = code(&dir.join("link")).unwrap_err();
        assert!(m.contains("but a symbolic link"), "{m}");
        let (_, m) = code(Path::new("/dev/null")).unwrap_err();
        assert!(m.contains("but a character device"), "{m}");
        assert!(
            fs::read_dir(&dir).unwrap().count() == 2,
            "nothing was written"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
