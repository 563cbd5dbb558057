//! What an export puts in the archive, decided before a byte is written: each entry with its
//! source and the reason it is there. [`plan`] reads only directory listings, metadata and
//! the small JSON documents; [`super::writer`] carries the manifest out in one streaming pass.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::proto::DumpStatsEntry;
use crate::stats::{Key, Stats};

use super::criu_image;
use super::format::{self, Compression, EngineConfig};
use super::rootfs::{Diff, RootfsChanges};

/// Everything an export needs from the caller.
#[derive(Clone, Debug, Default)]
pub struct ExportRequest {
    /// CRIU's image directory of the checkpoint (with `inventory.img`, `pstree.img`, and the
    /// runtime's `descriptors.json`).
    pub images_dir: PathBuf,
    /// The container's OCI spec (its `config.json`), written as `spec.dump`.
    pub spec: Value,
    /// The engine's container fields for `config.dump`; defaults are documented on each field.
    pub config: EngineConfig,
    /// The spec's `io.container.manager` annotation. `None`: keep the spec's; when the spec has
    /// none, `libpod` (ckpt writes Podman's variant of `config.dump`).
    pub manager: Option<String>,
    /// The root file system changes to carry (`rootfs-diff.tar`, `deleted.files`).
    pub rootfs: Option<RootfsChanges>,
    /// CRIU's work directory when it is not the image directory (runc's `--work-path`):
    /// CRIU writes `stats-dump` there.
    pub work_dir: Option<PathBuf>,
    /// Dump statistics for `stats-dump` when the image and work directories have none (CRIU writes it
    /// into its work directory, which is the image directory unless the caller chose another).
    pub stats: Option<Stats>,
    /// Extra top-level files (`network.status`, `ctr.log`, ...): archive name, source path.
    pub extra_files: Vec<(String, PathBuf)>,
    /// The container's `/dev/shm` when the engine binds it from a host directory (Podman's
    /// `userdata/shm`): its contents go into `devshm-checkpoint.tar`, which Podman's import
    /// (and ckpt's) unpacks into the new container's `/dev/shm`. CRIU's images do not hold
    /// them: the mount is external.
    pub devshm: Option<PathBuf>,
    /// Podman named volumes (name, directory `.../volumes/NAME/_data`): each one's contents
    /// go into `volumes/NAME.tar`, which Podman's import (and ckpt's) unpacks into the
    /// volume when it is missing where the archive is restored.
    pub volumes: Vec<(String, PathBuf)>,
    /// How the archive is compressed (default zstd level 1).
    pub compression: Compression,
    /// Skip the flush to disk before the archive gets its name (faster; a crash may then
    /// leave a named but incomplete file).
    pub no_sync: bool,
}

/// Where an entry's bytes come from.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A directory entry.
    Directory,
    /// A file streamed as it is; `size` is its size when planned (checked again while writing).
    File {
        /// The file.
        path: PathBuf,
    },
    /// Bytes made by ckpt (config.dump, spec.dump, a synthesized stats-dump, deleted.files).
    Generated {
        /// The bytes.
        #[serde(skip)]
        bytes: Vec<u8>,
    },
    /// The root file system changes, packed while writing.
    RootfsDiff {
        /// The root file system (its upper layer).
        from: PathBuf,
        /// How many paths changed.
        changed: usize,
    },
    /// The contents of the container's `/dev/shm`, packed while writing.
    DevShm {
        /// The directory bound on the container's `/dev/shm`.
        from: PathBuf,
        /// How many entries it holds.
        entries: usize,
    },
    /// The contents of a named volume, packed while writing (`Manifest::volumes[index]`).
    Volume {
        /// The volume's directory.
        from: PathBuf,
        /// Its place in `Manifest::volumes`.
        index: usize,
        /// How many entries it holds.
        entries: usize,
    },
}

/// One entry of the archive.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// Its name in the archive.
    pub name: String,
    /// Where its bytes come from.
    pub source: Source,
    /// Its size when planned.
    pub size: u64,
    /// Its mode bits.
    pub mode: u32,
    /// Its modification time (seconds since the epoch).
    pub mtime: u64,
    /// Why it goes in.
    pub reason: String,
}

/// What an export writes, and why: [`plan`]'s answer, which [`super::writer::write`] carries
/// out.
#[derive(Debug, Serialize)]
pub struct Manifest {
    /// The entries, in archive order.
    pub entries: Vec<Entry>,
    /// The compression's name.
    pub compression: &'static str,
    /// The compression and its level.
    #[serde(skip)]
    pub compression_setting: Compression,
    /// Flush the archive to disk before naming it.
    pub sync: bool,
    /// Things left out or missing that the caller should know about.
    pub notes: Vec<String>,
    /// The name and id written into `config.dump` (defaults filled in).
    pub container_name: String,
    /// The id written into `config.dump`.
    pub container_id: String,
    /// The root file system changes to pack, when the request carries them.
    #[serde(skip)]
    pub rootfs_diff: Option<Diff>,
    /// The container's `/dev/shm` contents to pack, when the request names them.
    #[serde(skip)]
    pub devshm: Option<Diff>,
    /// The named volumes' contents to pack, in the order of their entries.
    #[serde(skip)]
    pub volumes: Vec<Diff>,
}

fn stats_to_entry(s: &Stats) -> DumpStatsEntry {
    let g32 = |k| s.get(k).map(|v| v.min(u64::from(u32::MAX)) as u32);
    DumpStatsEntry {
        freezing_time: g32(Key::FreezingTimeUs),
        frozen_time: g32(Key::FrozenTimeUs),
        memdump_time: g32(Key::MemdumpTimeUs),
        memwrite_time: g32(Key::MemwriteTimeUs),
        pages_scanned: s.get(Key::PagesScanned),
        pages_skipped_parent: s.get(Key::PagesSkippedParent),
        pages_written: s.get(Key::PagesWritten),
        irmap_resolve: g32(Key::IrmapResolveUs),
        pages_lazy: s.get(Key::PagesLazy),
        page_pipes: s.get(Key::PagePipes),
        page_pipe_bufs: s.get(Key::PagePipeBufs),
        shpages_scanned: s.get(Key::ShpagesScanned),
        shpages_skipped_parent: s.get(Key::ShpagesSkippedParent),
        shpages_written: s.get(Key::ShpagesWritten),
    }
}

fn now_secs(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn generated(name: &str, bytes: Vec<u8>, mtime: u64, reason: &str) -> Entry {
    Entry {
        name: name.to_string(),
        size: bytes.len() as u64,
        source: Source::Generated { bytes },
        mode: 0o600,
        mtime,
        reason: reason.to_string(),
    }
}

/// Decides the archive's entries and checks the inputs: the image directory must hold a
/// complete CRIU checkpoint (`inventory.img`, `pstree.img`) of plain files, the spec must be a
/// JSON object with `root` and `process`.
pub fn plan(req: &ExportRequest) -> Result<Manifest> {
    req.compression.check()?;
    // As the C setters check them (ckpt_archive_opts_set_id, _set_name).
    if let Some(id) = &req.config.id {
        format::check_container_id(id)?;
    }
    if let Some(name) = &req.config.name {
        crate::options::check_text("container name", name)?;
    }
    let now = SystemTime::now();
    let mtime = now_secs(now);
    let dir = &req.images_dir;
    let md = fs::metadata(dir)
        .map_err(|e| Error::io(format!("image directory {}", dir.display()), e))?;
    if !md.is_dir() {
        return Err(Error::invalid(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    for need in [format::INVENTORY_IMG, format::PSTREE_IMG] {
        if !dir.join(need).is_file() {
            return Err(Error::invalid(format!(
                "{} holds no {need}: not a complete CRIU checkpoint",
                dir.display()
            )));
        }
    }
    let Value::Object(spec_obj) = &req.spec else {
        return Err(Error::invalid("the OCI spec is not a JSON object"));
    };
    for k in ["root", "process"] {
        if !spec_obj.contains_key(k) {
            return Err(Error::invalid(format!(
                "the OCI spec has no {k:?}; engines restore only from a full spec"
            )));
        }
    }

    let mut notes = Vec::new();
    let mut spec = req.spec.clone();
    let ann = spec
        .as_object_mut()
        .expect("checked above")
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()));
    let Some(ann) = ann.as_object_mut() else {
        return Err(Error::invalid(
            "the OCI spec's annotations are not an object",
        ));
    };
    match &req.manager {
        Some(m) => {
            ann.insert(format::MANAGER_ANNOTATION.into(), Value::String(m.clone()));
        }
        None => {
            ann.entry(format::MANAGER_ANNOTATION)
                .or_insert_with(|| Value::String("libpod".into()));
        }
    }

    let config = req.config.to_json_with_defaults(now)?;
    let container_name = config["name"].as_str().unwrap_or_default().to_string();
    let container_id = config["id"].as_str().unwrap_or_default().to_string();

    let mut entries = vec![
        generated(
            format::CONFIG_DUMP,
            serde_json::to_vec_pretty(&config).expect("JSON value serializes"),
            mtime,
            "the engine's container config (name, id, image, runtime)",
        ),
        generated(
            format::SPEC_DUMP,
            serde_json::to_vec_pretty(&spec).expect("JSON value serializes"),
            mtime,
            "the container's OCI spec",
        ),
    ];

    let stats_path = req
        .work_dir
        .iter()
        .chain(std::iter::once(dir))
        .map(|d| d.join(format::STATS_DUMP))
        .find(|p| p.is_file());
    if let Some(stats_path) = stats_path {
        let m = fs::metadata(&stats_path).map_err(|e| Error::io("stats-dump", e))?;
        entries.push(Entry {
            name: format::STATS_DUMP.into(),
            source: Source::File { path: stats_path },
            size: m.len(),
            mode: 0o600,
            mtime: m.mtime().max(0) as u64,
            reason: "CRIU's dump statistics, from its work directory".into(),
        });
    } else {
        let d = req.stats.as_ref().map(stats_to_entry).unwrap_or_default();
        if req.stats.is_none() {
            notes.push("no stats-dump in the image directory and no statistics given: stats-dump holds zeros".into());
        }
        entries.push(generated(
            format::STATS_DUMP,
            criu_image::encode_stats_dump(&d),
            mtime,
            "CRIU's dump statistics, from the statistics the caller gave",
        ));
    }

    for (name, path) in &req.extra_files {
        let n = super::safepath::normalize(name.as_bytes())?;
        if n.components().count() != 1
            || [
                format::CONFIG_DUMP,
                format::SPEC_DUMP,
                format::STATS_DUMP,
                format::CHECKPOINT_DIR,
                format::ROOTFS_DIFF_TAR,
                format::DELETED_FILES,
                format::DEVSHM_TAR,
            ]
            .contains(&name.as_str())
        {
            return Err(Error::invalid(format!(
                "extra file name {name:?} must be one plain top-level name not used by the format"
            )));
        }
        let m = fs::metadata(path)
            .map_err(|e| Error::io(format!("extra file {}", path.display()), e))?;
        if !m.is_file() {
            return Err(Error::invalid(format!(
                "extra file {} is not a regular file",
                path.display()
            )));
        }
        entries.push(Entry {
            name: name.clone(),
            source: Source::File { path: path.clone() },
            size: m.len(),
            mode: 0o600,
            mtime: m.mtime().max(0) as u64,
            reason: "an extra file the caller named".into(),
        });
    }

    entries.push(Entry {
        name: format!("{}/", format::CHECKPOINT_DIR),
        source: Source::Directory,
        size: 0,
        mode: 0o700,
        mtime,
        reason: "the directory entry checkpointctl looks for".into(),
    });
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    names.sort_by_key(|e| e.file_name());
    let mut saw_descriptors = false;
    for e in names {
        let name = e.file_name().to_string_lossy().into_owned();
        let m = fs::symlink_metadata(e.path())
            .map_err(|er| Error::io(format!("{}", e.path().display()), er))?;
        if !m.is_file() {
            return Err(Error::invalid(format!(
                "{} in the image directory is not a regular file; CRIU image directories are flat",
                e.path().display()
            )));
        }
        if name == format::STATS_DUMP || name.ends_with(".log") {
            // stats-dump goes to the top, as the engines place it; logs stay out.
            continue;
        }
        saw_descriptors |= name == "descriptors.json";
        entries.push(Entry {
            name: format!("{}/{name}", format::CHECKPOINT_DIR),
            size: m.len(),
            mode: m.permissions().mode() & 0o777,
            mtime: m.mtime().max(0) as u64,
            source: Source::File { path: e.path() },
            reason: "a CRIU image".into(),
        });
    }
    if !saw_descriptors {
        notes.push("the image directory has no descriptors.json: runc and crun need it to restore the container's stdio".into());
    }

    let mut rootfs_diff = None;
    if let Some(rc) = &req.rootfs {
        let diff = rc.collect()?;
        for (p, why) in &diff.skipped {
            notes.push(format!("rootfs change /{} left out: {why}", p.display()));
        }
        if !diff.changed.is_empty() {
            entries.push(Entry {
                name: format::ROOTFS_DIFF_TAR.into(),
                source: Source::RootfsDiff {
                    from: diff.source.clone(),
                    changed: diff.changed.len(),
                },
                size: 0,
                mode: 0o600,
                mtime,
                reason: "new and changed files of the root file system".into(),
            });
        }
        if !diff.deleted.is_empty() {
            entries.push(generated(
                format::DELETED_FILES,
                diff.deleted_json(),
                mtime,
                "files deleted from the root file system",
            ));
        }
        rootfs_diff = Some(diff);
    }

    let mut devshm = None;
    if let Some(dir) = &req.devshm {
        // Every entry of the directory is content: walked as an overlay's upper directory
        // without a lower one (a shm directory holds no whiteouts).
        let d = RootfsChanges::OverlayUpper {
            upper: dir.clone(),
            lower: None,
        }
        .collect()?;
        for (p, why) in &d.skipped {
            notes.push(format!("/dev/shm/{} left out: {why}", p.display()));
        }
        if d.changed.is_empty() {
            notes.push(format!(
                "no devshm-checkpoint.tar: the container's /dev/shm ({}) is empty",
                dir.display()
            ));
        } else {
            entries.push(Entry {
                name: format::DEVSHM_TAR.into(),
                source: Source::DevShm {
                    from: dir.clone(),
                    entries: d.changed.len(),
                },
                size: 0,
                mode: 0o600,
                mtime,
                reason: "the contents of the container's /dev/shm, a bind mount CRIU does not dump"
                    .into(),
            });
            devshm = Some(d);
        }
    }

    let mut volumes = Vec::new();
    for (name, dir) in &req.volumes {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(Error::invalid(format!(
                "volume name {name:?} cannot name an archive entry"
            )));
        }
        // Walked as /dev/shm is: every entry is content.
        let d = RootfsChanges::OverlayUpper {
            upper: dir.clone(),
            lower: None,
        }
        .collect()?;
        for (p, why) in &d.skipped {
            notes.push(format!("volume {name}: {} left out: {why}", p.display()));
        }
        entries.push(Entry {
            name: format!("volumes/{name}.tar"),
            source: Source::Volume {
                from: dir.clone(),
                index: volumes.len(),
                entries: d.changed.len(),
            },
            size: 0,
            mode: 0o600,
            mtime,
            reason: format!(
                "the contents of the named volume {name}, for an import where it is missing"
            ),
        });
        volumes.push(d);
    }

    Ok(Manifest {
        entries,
        compression: req.compression.name(),
        compression_setting: req.compression,
        sync: !req.no_sync,
        notes,
        container_name,
        container_id,
        rootfs_diff,
        devshm,
        volumes,
    })
}
