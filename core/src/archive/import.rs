//! Import: unpack an archive from Podman, CRI-O or ckpt into a fresh directory, every entry
//! verified first ([`super::reader`]), nothing written outside the directory; then rewrite the
//! spec for the new container and, when asked, apply the root file system changes. The result
//! is a directory ready for a restore: `checkpoint/` (CRIU's images), `config.json` (the
//! rewritten spec), and the archive's own files.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Code, Error, Result};

use super::format::{self, EngineConfig};
use super::pipeline::Pipeline;
use super::reader::{self, Kind, Limits, Section, Summary};
use super::rootfs;
use super::safepath;
use super::spec::{self, SpecRewrite};

/// How to import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// What the archive may hold (entries, bytes, document sizes).
    pub limits: Limits,
    /// The new container's name; default: the archived one.
    pub name: Option<String>,
    /// The new container's id; default: the archived one when the name is kept, else 64 new
    /// random hex digits (as Podman does with `--name`).
    pub id: Option<String>,
    /// The new container's root file system: written into the spec's `root.path`, and the
    /// archive's `rootfs-diff.tar` and `deleted.files` are applied to it.
    pub rootfs: Option<PathBuf>,
    /// Namespace paths to join (see [`SpecRewrite::namespaces`]).
    pub namespaces: Vec<(String, Option<String>)>,
}

/// An imported checkpoint.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The import target: the new bundle directory.
    pub dir: PathBuf,
    /// `dir/checkpoint`: CRIU's images.
    pub images_dir: PathBuf,
    /// `dir/config.json`: the rewritten spec.
    pub spec_path: PathBuf,
    /// The rewritten spec, as written to `spec_path`.
    pub spec: Value,
    /// The archived engine config, with the new name and id.
    pub config: EngineConfig,
    /// The archived container's name.
    pub old_name: Option<String>,
    /// The archived container's id.
    pub old_id: Option<String>,
    /// The spec's `io.container.manager`, if any.
    pub manager: Option<String>,
    /// One line per change made to the spec.
    pub spec_changes: Vec<String>,
    /// Entries of rootfs-diff.tar applied (0 when none or no rootfs was given).
    pub rootfs_entries_applied: u64,
    /// Paths of deleted.files removed from the rootfs (0 when none or no rootfs was given).
    pub deleted_applied: usize,
    /// What the verifying reader saw.
    pub summary: Summary,
}

impl Imported {
    /// The hook for the container layer's restore: the OCI bundle directory (holding the
    /// rewritten `config.json`), the spec file and CRIU's image directory. A plain process
    /// tree restores with `ops::restore` and `images_dir` alone; a container needs its mounts,
    /// namespaces and cgroups prepared from the spec first, which is the container layer's job.
    pub fn restore_inputs(&self) -> (&Path, &Path, &Path) {
        (&self.dir, &self.spec_path, &self.images_dir)
    }
}

fn free_bytes(dir: &Path) -> u64 {
    nix::sys::statvfs::statvfs(dir)
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
        .unwrap_or(u64::MAX)
}

fn write_entry(
    root: &Path,
    v: &reader::Verified,
    r: &mut dyn Read,
    budget: &mut u64,
    pipe: &mut Pipeline,
) -> Result<()> {
    match &v.kind {
        Kind::Dir => safepath::make_dirs(root, &v.path, 0o700),
        Kind::File => {
            if v.size > *budget {
                return Err(Error::invalid(format!(
                    "{} ({} bytes) does not fit in the free space of the target file system",
                    v.name, v.size
                )));
            }
            *budget -= v.size;
            let f = safepath::create_file(root, &v.path, v.mode & 0o777)?;
            let n = pipe.copy(r, f, &v.name).map_err(|e| match e {
                Ok(e) => Error::invalid(format!(
                    "archive truncated or corrupt in {} at {}: {e}",
                    v.section.name(),
                    v.name
                )),
                Err(e) => e,
            })?;
            if n != v.size {
                return Err(Error::invalid(format!(
                    "archive truncated in {}: {} ends after {n} of {} bytes",
                    v.section.name(),
                    v.name,
                    v.size
                )));
            }
            Ok(())
        }
        Kind::Symlink { target } => {
            let parent = v.path.parent().unwrap_or(Path::new(""));
            safepath::make_dirs(root, parent, 0o700)?;
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), root.join(&v.path))
                .map_err(|e| Error::io(format!("creating link {}", v.name), e))
        }
        Kind::HardLink { target } => {
            let tparent = target.parent().unwrap_or(Path::new(""));
            // Refuses a target reached through a symbolic link.
            safepath::make_dirs(root, tparent, 0o700)?;
            let tp = root.join(target);
            match fs::symlink_metadata(&tp) {
                Ok(m) if m.is_file() => {}
                _ => {
                    return Err(Error::invalid(format!(
                        "archive entry {} is a hard link to {}, which is not an earlier file of the archive",
                        v.name,
                        target.display()
                    )));
                }
            }
            let parent = v.path.parent().unwrap_or(Path::new(""));
            safepath::make_dirs(root, parent, 0o700)?;
            fs::hard_link(&tp, root.join(&v.path))
                .map_err(|e| Error::io(format!("linking {}", v.name), e))
        }
    }
}

/// Claims `target` for one import: made when missing, else an empty directory, and locked
/// (flock LOCK_EX, never waiting) until the returned guard is dropped, so a second
/// import into it is refused before it writes or removes anything. The bool says whether this
/// import made the directory.
fn prepare_target(target: &Path) -> Result<(bool, crate::paths::Flock)> {
    let created = match fs::symlink_metadata(target) {
        // Private: it receives CRIU's images (the container's memory) and, on restore, the
        // overlay's upper layer with the archive's setuid files, which other users must not
        // reach through it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), 0o700)
                .create(target)
            {
                Ok(()) => true,
                // Another import made it meanwhile: its lock decides below.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(Error::io(format!("creating {}", target.display()), e)),
            }
        }
        Err(e) => return Err(Error::io(format!("checking {}", target.display()), e)),
        Ok(m) if m.is_dir() => false,
        Ok(_) => {
            return Err(Error::invalid(format!(
                "import target {} exists and is not a directory",
                target.display()
            )));
        }
    };
    let fd = nix::fcntl::open(
        target,
        nix::fcntl::OFlag::O_RDONLY
            | nix::fcntl::OFlag::O_DIRECTORY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::io(format!("opening {}", target.display()), e))?;
    if !created {
        refuse_others(&fd, target)?;
    }
    let lock = lock_target(&fd, target)?;
    let mut it =
        fs::read_dir(target).map_err(|e| Error::io(format!("reading {}", target.display()), e))?;
    if it.next().is_some() {
        return Err(Error::invalid(format!(
            "import target {} is not empty",
            target.display()
        )));
    }
    Ok((created, lock))
}

/// An existing target is used as it is: one another user owns or others may write would give
/// them CRIU's images (the container's memory), the images root then restores, and the
/// moment to plant links while the import writes (the command's default, `FILE.d` beside an
/// archive in /tmp, can be made by anyone first).
fn refuse_others(fd: &OwnedFd, target: &Path) -> Result<()> {
    let st = nix::sys::stat::fstat(fd)
        .map_err(|e| Error::io(format!("reading {}", target.display()), e))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if (st.st_uid != 0 && st.st_uid != me) || st.st_mode & 0o022 != 0 {
        return Err(Error::invalid(format!(
            "import target {} belongs to uid {} with mode {:o}: others could read or change what the import writes there; give a directory of your own that no one else may write, or a new path",
            target.display(),
            st.st_uid,
            st.st_mode & 0o7777
        )));
    }
    Ok(())
}

fn lock_target(fd: &OwnedFd, target: &Path) -> Result<crate::paths::Flock> {
    use std::os::fd::AsFd;
    match crate::paths::try_lock(fd.as_fd()) {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(Error::new(
            Code::InvalidState,
            format!(
                "import target {} is in use by another import",
                target.display()
            ),
        )),
        Err(e) => Err(Error::io(format!("locking {}", target.display()), e)),
    }
}

fn clean(target: &Path, created: bool) {
    if created {
        let _ = fs::remove_dir_all(target);
    } else if let Ok(it) = fs::read_dir(target) {
        for e in it.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => {
                    let _ = fs::remove_dir_all(&p);
                }
                _ => {
                    let _ = fs::remove_file(&p);
                }
            }
        }
    }
}

/// Writes (or replaces) `dir/config.json`.
pub(crate) fn write_spec(dir: &Path, spec: &Value) -> Result<()> {
    match fs::remove_file(dir.join("config.json")) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(Error::io("replacing config.json", e));
        }
        _ => {}
    }
    // Serialised whole, then written at once: serde_json writes token by token, and straight
    // into the file that was a few thousand write(2) calls, about 10 ms per spec here.
    let text = serde_json::to_vec_pretty(spec).map_err(|e| Error::io("writing config.json", e))?;
    let mut f = safepath::create_file(dir, Path::new("config.json"), 0o600)?;
    f.write_all(&text)
        .map_err(|e| Error::io("writing config.json", e))
}

/// Applies the imported directory's `rootfs-diff.tar` and then `deleted` to `rootfs_dir`.
/// Returns the entries and deletions applied.
fn apply_rootfs(
    dir: &Path,
    rootfs_dir: &Path,
    deleted: &[String],
    max_entries: u64,
) -> Result<(u64, usize)> {
    let diff = dir.join(format::ROOTFS_DIFF_TAR);
    let has_diff = diff.is_file();
    if !has_diff && deleted.is_empty() {
        return Ok((0, 0));
    }
    if !rootfs_dir.is_dir() {
        return Err(Error::invalid(format!(
            "the new rootfs {} is not a directory",
            rootfs_dir.display()
        )));
    }
    let tar: Box<dyn Read> = if has_diff {
        Box::new(fs::File::open(&diff).map_err(|e| Error::io("opening rootfs-diff.tar", e))?)
    } else {
        Box::new(io::empty())
    };
    let n = rootfs::apply(rootfs_dir, tar, deleted, max_entries)?;
    Ok((n, deleted.len()))
}

impl Imported {
    /// Gives an imported directory (imported without a rootfs) its root file system: the
    /// archive's rootfs diff and deletions are applied to `rootfs_dir`, then `config.json`'s
    /// `root.path` names it.
    pub fn set_rootfs(&mut self, rootfs_dir: &Path, limits: &Limits) -> Result<()> {
        self.set_rootfs_unwritten(rootfs_dir, limits)?;
        write_spec(&self.dir, &self.spec)
    }

    /// As `set_rootfs`, changing only `self.spec`: the caller writes `config.json` once it
    /// is complete.
    pub(crate) fn set_rootfs_unwritten(
        &mut self,
        rootfs_dir: &Path,
        limits: &Limits,
    ) -> Result<()> {
        let deleted: Vec<String> = match fs::read(self.dir.join(format::DELETED_FILES)) {
            Ok(b) if b.len() as u64 > limits.max_document_bytes => {
                return Err(Error::invalid(
                    "deleted.files is larger than the document limit",
                ));
            }
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                Error::invalid(format!("deleted.files is not a JSON list of paths: {e}"))
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("reading deleted.files", e)),
        };
        let change = spec::set_root(&mut self.spec, &rootfs_dir.to_string_lossy())?;
        self.spec_changes.push(change);
        let (n, d) = apply_rootfs(&self.dir, rootfs_dir, &deleted, limits.max_entries)?;
        self.rootfs_entries_applied = n;
        self.deleted_applied = d;
        Ok(())
    }
}

/// Imports `archive` into `target` (created, or an existing empty directory). On failure
/// everything written into `target` is removed again.
pub fn import(archive: &Path, target: &Path, opts: &ImportOptions) -> Result<Imported> {
    import_with(archive, target, opts, true, None).map(|(imp, _)| imp)
}

/// The namespaces the archived spec joined by path, as (type, path), read before the rewrite
/// dropped or replaced those paths.
pub(crate) type Joined = Vec<(String, String)>;

/// As `import`, without writing `config.json`: the caller changes `Imported::spec` further
/// and writes it once (`write_spec`).
/// As `import` without writing config.json; `cancel`, checked before every entry, ends the
/// import with `Cancelled` (what was unpacked is removed). With the import: the namespaces the
/// archived spec joined.
pub(crate) fn import_unwritten(
    archive: &Path,
    target: &Path,
    opts: &ImportOptions,
    cancel: Option<&crate::cancel::Cancel>,
) -> Result<(Imported, Joined)> {
    import_with(archive, target, opts, false, cancel)
}

fn import_with(
    archive: &Path,
    target: &Path,
    opts: &ImportOptions,
    write: bool,
    cancel: Option<&crate::cancel::Cancel>,
) -> Result<(Imported, Joined)> {
    // The lock is held until the import's files are all written, or removed on failure.
    let (created, _claim) = prepare_target(target)?;
    let r = import_into(archive, target, opts, write, cancel);
    if r.is_err() {
        clean(target, created);
    }
    r
}

fn import_into(
    archive: &Path,
    target: &Path,
    opts: &ImportOptions,
    write: bool,
    cancel: Option<&crate::cancel::Cancel>,
) -> Result<(Imported, Joined)> {
    let mut budget = free_bytes(target);
    let mut pipe = Pipeline::new()?;
    let mut config_raw = None;
    let mut spec_raw = None;
    let mut deleted_raw = None;
    let max_doc = opts.limits.max_document_bytes;
    let summary = reader::walk(archive, &opts.limits, |v, r| {
        if cancel.is_some_and(|c| c.is_triggered()) {
            return Err(Error::new(
                crate::error::Code::Cancelled,
                format!(
                    "the operation was cancelled while the archive was unpacked (at {}), before criu started",
                    v.name
                ),
            ));
        }
        if v.section == Section::Metadata && matches!(v.kind, Kind::File) {
            let slot = match v.name.as_str() {
                format::CONFIG_DUMP => Some(&mut config_raw),
                format::SPEC_DUMP => Some(&mut spec_raw),
                format::DELETED_FILES => Some(&mut deleted_raw),
                _ => None,
            };
            if let Some(slot) = slot {
                let bytes = reader::read_document(v, r, max_doc)?;
                let mut f = safepath::create_file(target, &v.path, 0o600)?;
                io::Write::write_all(&mut f, &bytes)
                    .map_err(|e| Error::io(format!("writing {}", v.name), e))?;
                *slot = Some(bytes);
                return Ok(());
            }
        }
        write_entry(target, v, r, &mut budget, &mut pipe)
    });
    // Every write done (or failed) before anything else looks at the files.
    let written = pipe.finish();
    let summary = summary?;
    written?;
    let parse = |what: &str, b: Option<Vec<u8>>| -> Result<Value> {
        let b =
            b.ok_or_else(|| Error::invalid(format!("wrong layout: the archive has no {what}")))?;
        serde_json::from_slice(&b)
            .map_err(|e| Error::invalid(format!("{what} is not valid JSON: {e}")))
    };
    let mut config = EngineConfig::from_json(parse(format::CONFIG_DUMP, config_raw)?)?;
    let mut spec_v = parse(format::SPEC_DUMP, spec_raw)?;
    let deleted: Vec<String> = match deleted_raw {
        Some(b) => serde_json::from_slice(&b).map_err(|e| {
            Error::invalid(format!("deleted.files is not a JSON list of paths: {e}"))
        })?,
        None => Vec::new(),
    };
    let manager = spec_v
        .pointer("/annotations/io.container.manager")
        .and_then(Value::as_str)
        .map(str::to_string);

    let old_name = config.name.clone();
    let old_id = config.id.clone();
    let renamed = opts.name.is_some() && opts.name != old_name;
    if let Some(n) = &opts.name {
        config.name = Some(n.clone());
    }
    if let Some(id) = &opts.id {
        format::check_container_id(id)?;
    }
    config.id = match (&opts.id, renamed) {
        (Some(id), _) => Some(id.clone()),
        (None, true) => Some(format::random_id()?),
        (None, false) => old_id.clone(),
    };

    let rw = SpecRewrite {
        rootfs: opts
            .rootfs
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        namespaces: opts.namespaces.clone(),
        ids: match (&old_id, &config.id) {
            (Some(o), Some(n)) => Some((o.clone(), n.clone())),
            _ => None,
        },
    };
    let joined: Joined = spec_v
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let t = n.get("type").and_then(Value::as_str)?;
            let p = n.get("path").and_then(Value::as_str)?;
            Some((t.to_string(), p.to_string()))
        })
        .collect();
    let spec_changes = spec::rewrite(&mut spec_v, &rw)?;
    let spec_path = target.join("config.json");
    if write {
        write_spec(target, &spec_v)?;
    }

    let (rootfs_entries_applied, deleted_applied) = match &opts.rootfs {
        Some(r) => apply_rootfs(target, r, &deleted, opts.limits.max_entries)?,
        None => (0, 0),
    };

    let imp = Imported {
        dir: target.to_path_buf(),
        images_dir: target.join(format::CHECKPOINT_DIR),
        spec_path,
        spec: spec_v,
        config,
        old_name,
        old_id,
        manager,
        spec_changes,
        rootfs_entries_applied,
        deleted_applied,
        summary,
    };
    Ok((imp, joined))
}
