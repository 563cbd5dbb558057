//! One verifying pass over an archive, shared by import and inspection. The compression is
//! read from the magic number; every entry's name, type and place in the layout is checked
//! before its visitor sees it; counts and sizes are bounded; a stream that ends early or holds
//! garbage is an error naming the entry and the section where it broke.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::format::{self, Detected};
use super::rootfs::kind_name;
use super::safepath;

/// Bounds that keep a hostile archive (a decompression bomb, millions of entries) from
/// exhausting the disk or memory. Defaults are far above any real checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Entries in the archive (default 1,000,000).
    pub max_entries: u64,
    /// Bytes of entry content, summed (default 256 GiB). Import also refuses an entry that
    /// does not fit in the target file system's free space.
    pub max_bytes: u64,
    /// Bytes of each document read into memory: config.dump, spec.dump, stats-dump,
    /// deleted.files, pstree.img, core-*.img, and the long names and PAX headers that
    /// describe an entry (default 64 MiB).
    pub max_document_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 1_000_000,
            max_bytes: 256 << 30,
            max_document_bytes: 64 << 20,
        }
    }
}

/// Where in the layout an entry sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// The archive's top level (a directory entry there).
    Root,
    /// config.dump, spec.dump, stats-dump, network.status, deleted.files and other top files.
    Metadata,
    /// The `checkpoint/` directory entry.
    CheckpointDir,
    /// CRIU images under `checkpoint/`.
    Images,
    /// `rootfs-diff.tar`.
    RootfsDiff,
    /// artifacts/, volumes/, pre-checkpoint/ and the tars of /dev/shm.
    Extra,
}

impl Section {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Section::Root => "the archive root",
            Section::Metadata => "the metadata files",
            Section::CheckpointDir => "the checkpoint directory",
            Section::Images => "the CRIU images",
            Section::RootfsDiff => "the rootfs diff",
            Section::Extra => "the extra files",
        }
    }
}

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link and the archive path it resolves to (always inside).
    Symlink {
        /// The link's target, as the archive gives it.
        target: Vec<u8>,
    },
    /// A hard link to an earlier entry.
    HardLink {
        /// The earlier entry.
        target: PathBuf,
    },
}

/// An entry that passed every check.
#[derive(Clone, Debug)]
pub struct Verified {
    /// Its path, normalized (relative, plain components).
    pub path: PathBuf,
    /// Its path as text, for messages.
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// Its content's size.
    pub size: u64,
    /// Its mode bits.
    pub mode: u32,
    /// Where in the layout it sits.
    pub section: Section,
}

/// What one pass saw.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// `none`, `gzip` or `zstd`.
    pub compression: &'static str,
    /// Size of the archive file.
    pub archive_bytes: u64,
    /// Entries read.
    pub entries: u64,
    /// Bytes of entry content.
    pub content_bytes: u64,
    /// Whether the archive has a `checkpoint/` directory entry.
    pub checkpoint_dir_entry: bool,
    /// Whether it has `checkpoint/inventory.img`.
    pub has_inventory: bool,
    /// Whether it has `config.dump`.
    pub has_config: bool,
    /// Whether it has `spec.dump`.
    pub has_spec: bool,
}

/// Notes end of input from the decompressed stream: the tar reader treats it as the end of
/// the archive, which it is only after the end-of-archive block. While `budget` holds a
/// count, at most that many bytes are read: the tar reader takes a GNU long name or link
/// and a PAX header whole into memory on its way to the next entry, whatever size they
/// declare, so the walk gives each step to the next entry a budget.
pub(super) struct Tracking<R> {
    inner: R,
    hit_eof: bool,
    budget: std::rc::Rc<std::cell::Cell<Option<u64>>>,
}

impl<R> Tracking<R> {
    /// `inner`, and the budget the caller sets around each step to the next entry.
    pub(super) fn new(inner: R) -> (Tracking<R>, std::rc::Rc<std::cell::Cell<Option<u64>>>) {
        let budget = std::rc::Rc::new(std::cell::Cell::new(None));
        (
            Tracking {
                inner,
                hit_eof: false,
                budget: budget.clone(),
            },
            budget,
        )
    }
}

/// The next entry of `entries`, at most `step` bytes of the reader's `budget` read on the way
/// (padding, header, long names, PAX records), and whether that budget ran out: a failure then
/// is an overlong name or header, not a corrupt archive.
pub(super) fn next_within<'a, R: Read + 'a>(
    entries: &mut tar::Entries<'a, R>,
    budget: &std::cell::Cell<Option<u64>>,
    step: u64,
) -> Option<(io::Result<tar::Entry<'a, R>>, bool)> {
    budget.set(Some(step));
    let next = entries.next();
    let spent = budget.replace(None) == Some(0);
    next.map(|e| (e, spent))
}

impl<R: Read> Read for Tracking<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let want = match self.budget.get() {
            Some(0) if !b.is_empty() => {
                return Err(io::Error::other(
                    "metadata before the next entry exceeds the document limit",
                ));
            }
            Some(left) => b.len().min(usize::try_from(left).unwrap_or(usize::MAX)),
            None => b.len(),
        };
        let n = self.inner.read(&mut b[..want])?;
        if let Some(left) = self.budget.get() {
            self.budget.set(Some(left - n as u64));
        }
        if n == 0 && !b.is_empty() {
            self.hit_eof = true;
        }
        Ok(n)
    }
}

fn classify(path: &Path, kind: &Kind) -> Result<Section> {
    let comps: Vec<_> = path.iter().collect();
    let shown = path.display();
    let Some(first) = comps.first() else {
        return match kind {
            Kind::Dir => Ok(Section::Root),
            _ => Err(Error::invalid("archive root entry is not a directory")),
        };
    };
    let first = first.to_string_lossy();
    if first == format::CHECKPOINT_DIR {
        if comps.len() == 1 {
            return match kind {
                Kind::Dir => Ok(Section::CheckpointDir),
                _ => Err(Error::invalid(format!(
                    "wrong layout: {shown} is not a directory; CRIU images belong in the directory checkpoint/"
                ))),
            };
        }
        if comps.len() > 2 || matches!(kind, Kind::Dir) {
            return Err(Error::invalid(format!(
                "wrong layout: {shown} is below checkpoint/ in a subdirectory; CRIU image directories are flat"
            )));
        }
        return Ok(Section::Images);
    }
    if format::KNOWN_TOP_DIRS.contains(&first.as_ref()) {
        return Ok(Section::Extra);
    }
    if comps.len() > 1 {
        return Err(Error::invalid(format!(
            "wrong layout: {shown} is in an unknown top-level directory"
        )));
    }
    if matches!(kind, Kind::Dir) {
        return Err(Error::invalid(format!(
            "wrong layout: unknown top-level directory {shown}"
        )));
    }
    if first.ends_with(".img") {
        return Err(Error::invalid(format!(
            "wrong layout: CRIU image {shown} at the top of the archive; images belong under checkpoint/"
        )));
    }
    if matches!(kind, Kind::Symlink { .. } | Kind::HardLink { .. }) {
        return Err(Error::invalid(format!(
            "archive entry {shown} is a link at the top of the archive; only files belong there"
        )));
    }
    Ok(match first.as_ref() {
        format::ROOTFS_DIFF_TAR => Section::RootfsDiff,
        format::DEVSHM_TAR => Section::Extra,
        _ => Section::Metadata,
    })
}

/// Opens the archive without waiting for a writer: a FIFO planted at the path (with no writer,
/// as nothing but an attacker makes one there) blocked open() for ever; now it opens, reads as
/// empty, and is refused as not an archive. A pipe with a writer (`--import <(...)`) is then
/// read blocking, as before: the archive is read once, from the start.
/// A device node at the path (or a link to one) is refused without being opened: it is
/// looked at through an O_PATH descriptor, which runs no driver (opening some devices is an
/// act: /dev/watchdog arms the machine's reset), and what is read is that same file, reopened
/// through /proc/self/fd.
fn open_archive(path: &Path) -> Result<fs::File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let at = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let t = at
        .metadata()
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?
        .file_type();
    if t.is_char_device() || t.is_block_device() {
        return Err(Error::invalid(format!(
            "archive {} is not a regular file but {}",
            path.display(),
            crate::paths::file_kind(&t)
        )));
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&at)
        ))
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) - nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(flags))
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    Ok(file)
}

/// Reads the archive at `path` once, calling `visit` for each verified entry with a reader
/// of exactly its content. `visit` may read less; the rest is read and checked here.
pub fn walk(
    path: &Path,
    limits: &Limits,
    mut visit: impl FnMut(&Verified, &mut dyn Read) -> Result<()>,
) -> Result<Summary> {
    let file = open_archive(path)?;
    let archive_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buffered = BufReader::with_capacity(1 << 20, file);
    let head = buffered
        .fill_buf()
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
        .to_vec();
    let detected = format::detect(&head)?;
    let decoded: Box<dyn Read> = match detected {
        Detected::Tar => Box::new(buffered),
        Detected::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Detected::Zstd => Box::new(
            zstd::Decoder::with_buffer(buffered)
                .map_err(|e| Error::io("starting the zstd decoder", e))?,
        ),
    };
    let cname = detected.name();
    let mut summary = Summary {
        compression: cname,
        archive_bytes,
        ..Default::default()
    };
    let (tracking, budget) = Tracking::new(decoded);
    let mut ar = tar::Archive::new(tracking);
    // What may be read between two entries: the previous one's padding, the next header,
    // and the long names and PAX records that describe it (names are at most 4096 bytes).
    let step = limits.max_document_bytes.saturating_add(64 << 10);
    let mut last = String::from("(none: the first entry)");
    // Names already seen: files and links may appear once, nothing may be written through a
    // symbolic link of the archive, a hard link must name an earlier file.
    let mut seen_files: std::collections::HashSet<PathBuf> = Default::default();
    let mut links: std::collections::HashSet<PathBuf> = Default::default();
    let mut last_section = Section::Root;
    let broke = |last: &str, section: Section, e: &dyn std::fmt::Display| {
        Error::invalid(format!(
            "archive truncated or corrupt after entry {last} (in {}): {e}",
            section.name()
        ))
    };
    {
        let mut entries = ar
            .entries()
            .map_err(|e| Error::invalid(format!("reading the archive: {e}")))?;
        while let Some((entry, spent)) = next_within(&mut entries, &budget, step) {
            let mut entry = entry.map_err(|e| {
                if spent {
                    Error::invalid(format!(
                        "archive entry after {last} (in {}) is described by a long name or PAX header over the {}-byte limit for documents",
                        last_section.name(),
                        limits.max_document_bytes
                    ))
                } else {
                    broke(&last, last_section, &e)
                }
            })?;
            summary.entries += 1;
            if summary.entries > limits.max_entries {
                return Err(Error::invalid(format!(
                    "archive has more than {} entries (limit)",
                    limits.max_entries
                )));
            }
            let raw = entry.path_bytes().into_owned();
            let rel = safepath::normalize(&raw)?;
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let h = entry.header();
            let et = h.entry_type();
            let size = entry.size();
            let kind = match et {
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
                tar::EntryType::Symlink => {
                    let t = entry
                        .link_name_bytes()
                        .map(|t| t.into_owned())
                        .unwrap_or_default();
                    if safepath::resolve_link_inside(&rel, &t).is_none() {
                        return Err(Error::invalid(format!(
                            "archive entry {shown:?} is a symbolic link to {:?}, outside the archive",
                            String::from_utf8_lossy(&t)
                        )));
                    }
                    Kind::Symlink { target: t }
                }
                tar::EntryType::Link => {
                    let t = entry
                        .link_name_bytes()
                        .map(|t| t.into_owned())
                        .unwrap_or_default();
                    let target = safepath::normalize(&t).map_err(|e| {
                        Error::invalid(format!(
                            "archive entry {shown:?} is a hard link out of the archive: {}",
                            e.message
                        ))
                    })?;
                    Kind::HardLink { target }
                }
                other => {
                    return Err(Error::invalid(format!(
                        "archive entry {shown:?} is {}; checkpoint archives hold only files, directories and links",
                        kind_name(other)
                    )));
                }
            };
            let section = classify(&rel, &kind)?;
            if let Some(l) = rel.ancestors().skip(1).find(|a| links.contains(*a)) {
                return Err(Error::invalid(format!(
                    "archive entry {shown:?} goes through the symbolic link {} of the archive",
                    l.display()
                )));
            }
            if !matches!(kind, Kind::Dir) && (seen_files.contains(&rel) || links.contains(&rel)) {
                return Err(Error::invalid(format!(
                    "archive entry {shown:?} appears twice"
                )));
            }
            if let Kind::HardLink { target } = &kind
                && !seen_files.contains(target)
            {
                return Err(Error::invalid(format!(
                    "archive entry {shown:?} is a hard link to {}, which is not an earlier file of the archive",
                    target.display()
                )));
            }
            match &kind {
                Kind::Symlink { .. } => {
                    links.insert(rel.clone());
                }
                Kind::File | Kind::HardLink { .. } => {
                    seen_files.insert(rel.clone());
                }
                Kind::Dir => {}
            }
            if matches!(kind, Kind::File) {
                summary.content_bytes = summary.content_bytes.saturating_add(size);
                if summary.content_bytes > limits.max_bytes {
                    return Err(Error::invalid(format!(
                        "archive content exceeds {} bytes (limit) at entry {shown:?}",
                        limits.max_bytes
                    )));
                }
            }
            let name = rel.to_string_lossy().into_owned();
            match (section, name.as_str()) {
                (Section::CheckpointDir, _) => summary.checkpoint_dir_entry = true,
                (Section::Images, "checkpoint/inventory.img") => summary.has_inventory = true,
                (Section::Metadata, format::CONFIG_DUMP) => summary.has_config = true,
                (Section::Metadata, format::SPEC_DUMP) => summary.has_spec = true,
                _ => {}
            }
            let v = Verified {
                path: rel,
                name: name.clone(),
                kind,
                size,
                mode: h.mode().unwrap_or(0o600),
                section,
            };
            let mut counted = Counted {
                inner: &mut entry,
                n: 0,
            };
            visit(&v, &mut counted)?;
            let read = counted.n
                + io::copy(&mut counted.inner, &mut io::sink())
                    .map_err(|e| broke(&name, section, &e))?;
            if matches!(v.kind, Kind::File) && read != size {
                return Err(Error::invalid(format!(
                    "archive truncated in {}: {name} ends after {read} of {size} bytes",
                    section.name()
                )));
            }
            last = name;
            last_section = section;
        }
    }
    let mut rest = ar.into_inner();
    if rest.hit_eof {
        return Err(Error::invalid(format!(
            "archive truncated: it ends after entry {last} (in {}) without the end-of-archive block",
            last_section.name()
        )));
    }
    // What follows the end block must be zero padding, and the compressed stream must end
    // cleanly (a truncated zstd or gzip stream fails here).
    let mut buf = vec![0u8; 64 << 10];
    let mut trailing = 0u64;
    loop {
        let n = rest.read(&mut buf).map_err(|e| {
            Error::invalid(format!(
                "compressed stream ({cname}) truncated or corrupt after the end of the archive: {e}"
            ))
        })?;
        if n == 0 {
            break;
        }
        trailing += n as u64;
        if buf[..n].iter().any(|b| *b != 0) || trailing > 1 << 20 {
            return Err(Error::invalid("data after the end of the archive"));
        }
    }
    if !summary.has_config || !summary.has_spec || !summary.has_inventory {
        let mut missing = Vec::new();
        if !summary.has_config {
            missing.push(format::CONFIG_DUMP);
        }
        if !summary.has_spec {
            missing.push(format::SPEC_DUMP);
        }
        if !summary.has_inventory {
            missing.push("checkpoint/inventory.img");
        }
        return Err(Error::invalid(format!(
            "wrong layout: the archive has no {}",
            missing.join(", ")
        )));
    }
    Ok(summary)
}

struct Counted<'a, R> {
    inner: &'a mut R,
    n: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(b)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Reads a whole entry into memory, refusing one larger than `max`.
pub fn read_document(v: &Verified, r: &mut dyn Read, max: u64) -> Result<Vec<u8>> {
    if v.size > max {
        return Err(Error::invalid(format!(
            "{} is {} bytes, over the {max}-byte limit for documents",
            v.name, v.size
        )));
    }
    let mut out = Vec::with_capacity(v.size as usize);
    r.take(max)
        .read_to_end(&mut out)
        .map_err(|e| Error::invalid(format!("archive truncated or corrupt in {}: {e}", v.name)))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive path that is (or links to) a device node: never opened, since opening one
    /// runs its driver (/dev/watchdog arms the machine's reset); refused naming what it is.
    /// A copy of /dev/null stands for them, watched for opens.
    #[test]
    fn a_device_node_is_refused_without_being_opened() {
        let Some(w) = crate::paths::WatchedDevice::make("sec2-archive-dev") else {
            return;
        };
        let a = w.dir.join("a.ckpt");
        std::os::unix::fs::symlink(&w.dev, &a).unwrap();
        let e = walk(&a, &Limits::default(), |_, _| Ok(())).err();
        let opened = w.opened();
        drop(w);
        let e = e.expect("refused");
        assert!(e.message.contains("character device"), "{e}");
        assert!(!opened, "the device was opened");
    }
}
