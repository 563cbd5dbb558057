//! `ckpt_archive_*`: checkpoint archives in the format Podman, CRI-O and checkpointctl share.
//! An options handle (`ckpt_archive_opts`) carries the engine fields and choices; export,
//! import and inspect take it. Results of import and inspect are JSON documents (stable field
//! names, documented in docs/archive.md) that the caller frees with `ckpt_archive_string_free`.

use std::ffi::{CString, c_char};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::error::ckpt_error;
use super::{CKPT_ERR_NULL_ARGUMENT, Failure, ckpt_status, opt_text, put, text};
use super::{Settable, operation, set_on};
use ckpt::archive::{
    self, Compression, EngineConfig, ExportRequest, ImportOptions, Limits, RootfsChanges,
};
use ckpt::{Error, Result};

/// Options for archive export, import and inspection. Create with `ckpt_archive_opts_new`,
/// free with `ckpt_archive_opts_free`. Setters need exclusive access; the operations only read.
pub struct ckpt_archive_opts {
    config: EngineConfig,
    manager: Option<String>,
    compression: Compression,
    spec_path: Option<PathBuf>,
    work_path: Option<PathBuf>,
    rootfs: Option<RootfsChanges>,
    new_rootfs: Option<PathBuf>,
    rootfs_image: Option<PathBuf>,
    namespaces: Vec<(String, Option<String>)>,
    limits: Limits,
    last_error: Option<CString>,
}

/// A new archive options handle: zstd, no engine fields set (their defaults are in
/// docs/archive.md), default limits. NULL only when memory is exhausted.
#[unsafe(no_mangle)]
pub extern "C" fn ckpt_archive_opts_new() -> *mut ckpt_archive_opts {
    boundary! {
        std::panic::catch_unwind(|| {
            Box::into_raw(Box::new(ckpt_archive_opts {
                config: EngineConfig::default(),
                manager: None,
                compression: Compression::default(),
                spec_path: None,
                work_path: None,
                rootfs: None,
                new_rootfs: None,
                rootfs_image: None,
                namespaces: Vec::new(),
                limits: Limits::default(),
                last_error: None,
            }))
        })
        .unwrap_or(std::ptr::null_mut())
    }
}

/// Frees the handle. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_free(opts: *mut ckpt_archive_opts) {
    boundary! {
        // SAFETY: per the contract, from ckpt_archive_opts_new and freed once.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
            super::take(opts)
        }));
    }
}

/// Why the last setter on `opts` failed, or NULL after a success. Owned by the handle; valid
/// until the next setter call or `ckpt_archive_opts_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_last_error(
    opts: *const ckpt_archive_opts,
) -> *const c_char {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        match unsafe { opts.as_ref() } {
            Some(h) => h
                .last_error
                .as_ref()
                .map_or(std::ptr::null(), |c| c.as_ptr()),
            None => std::ptr::null(),
        }
    }
}

impl Settable for ckpt_archive_opts {
    fn last_error(&mut self) -> &mut Option<CString> {
        &mut self.last_error
    }
}

fn apply(
    opts: *mut ckpt_archive_opts,
    f: impl FnOnce(&mut ckpt_archive_opts) -> std::result::Result<(), Failure>,
) -> ckpt_status {
    set_on(opts, f)
}

/// A path argument of an operation as text: NULL and bad UTF-8 as `text` refuses them, and an
/// empty string, which names no file, refused with the argument named.
///
/// # Safety
/// As `text`.
unsafe fn path_text<'a>(p: *const c_char, what: &str) -> std::result::Result<&'a str, Failure> {
    // SAFETY: per this function's contract.
    let t = unsafe { text(p, what) }?;
    if t.is_empty() {
        return Err(Error::invalid(format!("{what} is empty")).into());
    }
    Ok(t)
}

/// A path argument that names a file only (the archive, the image directory): bytes, as Linux
/// paths are, not necessarily UTF-8; NULL refused as `path` refuses it, and an empty one with
/// the argument named. Paths that go into the spec or a JSON answer (a target or bundle
/// directory, a rootfs) stay text: `path_text`.
///
/// # Safety
/// As `path`.
unsafe fn path_bytes<'a>(
    p: *const c_char,
    what: &str,
) -> std::result::Result<&'a std::ffi::OsStr, Failure> {
    // SAFETY: per this function's contract.
    let t = unsafe { super::path(p, what) }?;
    if t.is_empty() {
        return Err(Error::invalid(format!("{what} is empty")).into());
    }
    Ok(t)
}

fn nonempty(s: &str, what: &str) -> Result<String> {
    if s.is_empty() {
        return Err(Error::invalid(format!("{what} is empty")));
    }
    Ok(s.to_string())
}

fn abs_path(s: &str, what: &str) -> Result<PathBuf> {
    if !s.starts_with('/') {
        return Err(Error::invalid(format!(
            "{what} {s:?} is not an absolute path"
        )));
    }
    Ok(PathBuf::from(s))
}

fn set_text(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
    what: &str,
    f: impl FnOnce(&mut ckpt_archive_opts, &str) -> Result<()>,
) -> ckpt_status {
    // SAFETY: the callers pass NULL or a NUL-terminated string valid for the call.
    let v = unsafe { text(value, what) };
    apply(opts, |h| Ok(f(h, v?)?))
}

/// `set_text` for a path option: `value` must be an absolute path, which `store` keeps.
fn set_path(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
    what: &str,
    store: impl FnOnce(&mut ckpt_archive_opts, PathBuf),
) -> ckpt_status {
    set_text(opts, value, what, |h, v| {
        store(h, abs_path(v, what)?);
        Ok(())
    })
}

/// The container name written into `config.dump` (`name`); on import, the new name.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_name(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        set_text(opts, value, "name", |h, v| {
            h.config.name = Some(nonempty(v, "name")?);
            Ok(())
        })
    }
}

/// The container id (`id`); on import, the new id (default: kept with the name, 64 new random
/// hex digits with a new name). A name, not a path: empty, `.`, `..`, or an id with `/` or a
/// control character is refused (`CKPT_ERR_INVALID_ARGUMENT`), since import writes it into the
/// spec's mount sources and `linux.cgroupsPath` in place of the old id.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_id(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        set_text(opts, value, "id", |h, v| {
            let id = nonempty(v, "id")?;
            archive::format::check_container_id(&id)?;
            h.config.id = Some(id);
            Ok(())
        })
    }
}

/// The image name (`rootfsImageName`); Podman's import needs that image present locally.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_image_name(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        set_text(opts, value, "image name", |h, v| {
            h.config.image_name = Some(v.to_string());
            Ok(())
        })
    }
}

/// The image id (`rootfsImageID`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_image_id(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        set_text(opts, value, "image id", |h, v| {
            h.config.image_id = Some(v.to_string());
            Ok(())
        })
    }
}

/// The OCI runtime (`runtime`, default `runc`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_runtime(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        set_text(opts, value, "runtime", |h, v| {
            h.config.runtime = Some(nonempty(v, "runtime")?);
            Ok(())
        })
    }
}

/// The spec's `io.container.manager` annotation (default: the spec's own, else `libpod`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_manager(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        set_text(opts, value, "manager", |h, v| {
            h.manager = Some(nonempty(v, "manager")?);
            Ok(())
        })
    }
}

/// `none`, `gzip[:1-9]` or `zstd[:-7..22]` (default `zstd`, level 1).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_compression(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        set_text(opts, value, "compression", |h, v| {
            h.compression = Compression::parse(v)?;
            Ok(())
        })
    }
}

/// Export: the container's OCI spec file (its `config.json`); required.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_spec_path(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        set_path(opts, value, "spec path", |h, p| h.spec_path = Some(p))
    }
}

/// Export: CRIU's work directory when it is not the image directory (`stats-dump` is read
/// there).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_work_path(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        set_path(opts, value, "work path", |h, p| h.work_path = Some(p))
    }
}

/// Import: the new container's root file system (the spec's `root.path`; the archive's rootfs
/// diff is applied to it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_new_rootfs(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        set_path(opts, value, "new rootfs", |h, p| {
            h.new_rootfs = Some(p);
            h.rootfs_image = None;
        })
    }
}

/// Restore (`ckpt_archive_restore`): the new container's root file system is an overlay over
/// `value`, the image's root file system (left untouched), mounted on `BUNDLE/rootfs` with its
/// upper layer in the bundle; the archive's rootfs diff goes to the upper layer. Replaces
/// `ckpt_archive_opts_set_new_rootfs`, and the other way round.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_rootfs_image(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        set_path(opts, value, "image rootfs", |h, p| {
            h.rootfs_image = Some(p);
            h.new_rootfs = None;
        })
    }
}

/// Export: more `config.dump` fields as a JSON object (e.g. Podman's `createNetNS`); the named
/// setters win over fields of the same name.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_config_json(
    opts: *mut ckpt_archive_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        set_text(
            opts,
            value,
            "config JSON",
            |h, v| match serde_json::from_str::<Value>(v) {
                Ok(Value::Object(m)) => {
                    h.config.extra = m;
                    Ok(())
                }
                Ok(_) => Err(Error::invalid("config JSON is not a JSON object")),
                Err(e) => Err(Error::invalid(format!("config JSON: {e}"))),
            },
        )
    }
}

/// Export: carry the root file system changes found in an overlay upper directory; `lower`
/// (NULL allowed) lists what opaque directories hide.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_rootfs_upper(
    opts: *mut ckpt_archive_opts,
    upper: *const c_char,
    lower: *const c_char,
) -> ckpt_status {
    boundary! {
        // SAFETY: per the contract.
        let (u, l) = unsafe { (text(upper, "upper dir"), opt_text(lower, "lower dir")) };
        apply(opts, |h| {
            let upper = abs_path(u?, "upper dir")?;
            let lower = l?.map(|l| abs_path(l, "lower dir")).transpose()?;
            h.rootfs = Some(RootfsChanges::OverlayUpper { upper, lower });
            Ok(())
        })
    }
}

/// Export: carry the root file system changes found by comparing `rootfs` with `lower`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_rootfs_compare(
    opts: *mut ckpt_archive_opts,
    rootfs: *const c_char,
    lower: *const c_char,
) -> ckpt_status {
    boundary! {
        // SAFETY: per the contract.
        let (r, l) = unsafe { (text(rootfs, "rootfs"), text(lower, "lower dir")) };
        apply(opts, |h| {
            h.rootfs = Some(RootfsChanges::CompareWithLower {
                rootfs: abs_path(r?, "rootfs")?,
                lower: abs_path(l?, "lower dir")?,
            });
            Ok(())
        })
    }
}

/// Import: the namespace of `ns_type` (`network`, `ipc`, `uts`, `pid`, `mount`, `user`,
/// `cgroup`, `time`) joins `path`, or is made new when `path` is NULL. One call per type; a type
/// given twice keeps the last. Types not given lose any path the archive had. A type the
/// archived spec has no namespace of is refused by the import (`CKPT_ERR_INVALID_ARGUMENT`). A path can be joined for `network`, `pid`,
/// `ipc`, `uts` and `user`; the restore refuses one for `mount`, `cgroup` or `time`
/// (`CKPT_ERR_UNSUPPORTED`: CRIU cannot restore into an existing namespace of those types).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_namespace(
    opts: *mut ckpt_archive_opts,
    ns_type: *const c_char,
    path: *const c_char,
) -> ckpt_status {
    boundary! {
        // SAFETY: per the contract.
        let (t, p) = unsafe {
            (
                text(ns_type, "namespace type"),
                opt_text(path, "namespace path"),
            )
        };
        apply(opts, |h| {
            let t = t?;
            if ![
                "network", "ipc", "uts", "pid", "mount", "user", "cgroup", "time",
            ]
            .contains(&t)
            {
                return Err(Error::invalid(format!("unknown namespace type {t:?}")).into());
            }
            let p = p?.map(|p| abs_path(p, "namespace path")).transpose()?;
            h.namespaces.retain(|(x, _)| x != t);
            h.namespaces
                .push((t.to_string(), p.map(|p| p.to_string_lossy().into_owned())));
            Ok(())
        })
    }
}

/// Import and inspect: bounds against hostile archives (entries, content bytes, bytes of each
/// JSON or image document read into memory, and of the long names and PAX headers before each
/// entry). 0 keeps a bound's default.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_opts_set_limits(
    opts: *mut ckpt_archive_opts,
    max_entries: u64,
    max_bytes: u64,
    max_document_bytes: u64,
) -> ckpt_status {
    boundary! {
        apply(opts, |h| {
            let d = Limits::default();
            h.limits = Limits {
                max_entries: if max_entries == 0 {
                    d.max_entries
                } else {
                    max_entries
                },
                max_bytes: if max_bytes == 0 {
                    d.max_bytes
                } else {
                    max_bytes
                },
                max_document_bytes: if max_document_bytes == 0 {
                    d.max_document_bytes
                } else {
                    max_document_bytes
                },
            };
            Ok(())
        })
    }
}

fn run(
    err: *mut *mut ckpt_error,
    f: impl FnOnce() -> std::result::Result<(), Failure>,
) -> ckpt_status {
    operation(err, f)
}

fn hand_json(out: *mut *mut c_char, v: &Value) -> std::result::Result<(), Failure> {
    let s = serde_json::to_string(v).map_err(|e| Error::io("encoding JSON", e))?;
    let c = CString::new(s).map_err(|_| Error::invalid("JSON with a NUL byte"))?;
    // SAFETY: out is NULL or valid for a pointer write, per the callers' contracts.
    unsafe { super::give_string(out, c) };
    Ok(())
}

/// Writes the archive `archive_path` from CRIU's image directory `images_dir`, the spec set
/// with `ckpt_archive_opts_set_spec_path` and the engine fields. The file appears only when
/// complete (mode 0600), replacing a regular file of that name; a path that exists and is not a
/// regular file (a directory, a device node, a fifo, a symbolic link) is refused
/// (`CKPT_ERR_INVALID_ARGUMENT`) before anything is written. On failure `*err` (when `err` is not NULL) receives the error, owned by
/// the caller; on success it is set to NULL.
/// `images_dir` and `archive_path` are bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_archive_export(
    opts: *const ckpt_archive_opts,
    images_dir: *const c_char,
    archive_path: *const c_char,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    // SAFETY: per the contract.
    let (o, i, a) = unsafe {
        (
            opts.as_ref(),
            path_bytes(images_dir, "image directory"),
            path_bytes(archive_path, "archive path"),
        )
    };
    run(err, || {
        let o =
            o.ok_or_else(|| Failure::new(CKPT_ERR_NULL_ARGUMENT, "archive options are NULL"))?;
        let spec_path = o.spec_path.as_ref().ok_or_else(|| {
            Error::invalid("no spec: set it with ckpt_archive_opts_set_spec_path")
        })?;
        let spec = ckpt::archive::spec::read_file(spec_path)?;
        let req = ExportRequest {
            images_dir: PathBuf::from(i?),
            work_dir: o.work_path.clone(),
            spec,
            config: o.config.clone(),
            manager: o.manager.clone(),
            rootfs: o.rootfs.clone(),
            compression: o.compression,
            ..Default::default()
        };
        archive::export(&req, Path::new(a?))?;
        Ok(())
    })
}

/// Checks, writing nothing, that `archive_path` can name the archive `ckpt_archive_export` or
/// `ckpt_archive_export_container` would write: it names a file in a directory that exists
/// (`CKPT_ERR_NOT_FOUND` otherwise) and is not a path that exists as something other than a
/// regular file (`CKPT_ERR_INVALID_ARGUMENT`, as the export refuses it). For a caller that
/// checks before the checkpoint whose images go into the archive. On failure `*err` (when
/// `err` is not NULL) receives the error, owned by the caller; on success it is set to NULL.
/// `archive_path` is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_archive_check_path(
    archive_path: *const c_char,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    // SAFETY: per the contract.
    let a = unsafe { path_bytes(archive_path, "archive path") };
    run(err, || {
        archive::writer::check_path(Path::new(a?))?;
        Ok(())
    })
}

/// Writes the archive of a container checkpoint: as `ckpt_archive_export`, but the spec is the
/// container's own (`config.json` of the bundle `c` names, set or found from the runtime's
/// state) unless `ckpt_archive_opts_set_spec_path` names another, and when the bundle's rootfs
/// is an overlay mount and no rootfs changes were set, its upper directory's changes go into
/// `rootfs-diff.tar` and `deleted.files`; a `/dev/shm` bound from a host directory goes into
/// `devshm-checkpoint.tar`; a Podman container (manager `libpod`) in a network namespace Podman
/// made (`/run/netns/netns-*`) gets `createNetNS: true` and `networkMode: "bridge"` in
/// `config.dump` unless the config JSON set either; `createdTime` is the spec's
/// `io.kubernetes.cri-o.Created` annotation, else, for a container found with
/// `ckpt_container_set_runtime`, its creation in the runtime's state. Ownership and errors as
/// for `ckpt_archive_export`.
/// `images_dir` and `archive_path` are bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_archive_export_container(
    opts: *const ckpt_archive_opts,
    c: *const super::container::ckpt_container,
    images_dir: *const c_char,
    archive_path: *const c_char,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    // SAFETY: per the contract.
    let (o, ch, i, a) = unsafe {
        (
            opts.as_ref(),
            c.as_ref(),
            path_bytes(images_dir, "image directory"),
            path_bytes(archive_path, "archive path"),
        )
    };
    run(err, || {
        let o =
            o.ok_or_else(|| Failure::new(CKPT_ERR_NULL_ARGUMENT, "archive options are NULL"))?;
        let ch =
            ch.ok_or_else(|| Failure::new(CKPT_ERR_NULL_ARGUMENT, "container handle is NULL"))?;
        let bundle = ch.bundle_path().ok_or_else(|| {
            Error::invalid("the container has no bundle: call ckpt_container_set_bundle or ckpt_container_set_runtime")
        })?;
        let spec = match &o.spec_path {
            Some(p) => ckpt::archive::spec::read_file(p)?,
            None => Value::Null,
        };
        let mut req = ExportRequest {
            images_dir: PathBuf::from(i?),
            work_dir: o.work_path.clone(),
            spec,
            config: o.config.clone(),
            manager: o.manager.clone(),
            rootfs: o.rootfs.clone(),
            compression: o.compression,
            ..Default::default()
        };
        archive::container_export::fill_from_bundle(&mut req, bundle)?;
        if req.config.created.is_none() {
            // No engine annotation said when: the runtime's state does.
            req.config.created = ch.created().map(str::to_string);
        }
        archive::export(&req, Path::new(a?))?;
        Ok(())
    })
}

/// Imports `archive_path` (Podman's, CRI-O's or ckpt's; tar, gzip or zstd by magic) into
/// `target_dir` (created, or an existing empty directory): every entry verified, nothing
/// written outside it, the spec rewritten into `target_dir/config.json`, the rootfs diff
/// applied to the new rootfs when one is set. On success and when `result_json` is not NULL,
/// `*result_json` receives a JSON object (`dir`, `images_dir`, `spec_path`, `name`, `id`,
/// `old_name`, `old_id`, `manager`, `spec_changes`, `rootfs_entries_applied`,
/// `deleted_applied`), owned by the caller (free with `ckpt_archive_string_free`). On failure
/// nothing stays in `target_dir`. `opts` may be NULL: the archived name and id are kept, no
/// rootfs, default limits. An empty path is refused (`CKPT_ERR_INVALID_ARGUMENT`).
/// `archive_path` is bytes and need not be UTF-8; `target_dir` must be UTF-8 (it goes into the JSON answer).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_archive_import(
    opts: *const ckpt_archive_opts,
    archive_path: *const c_char,
    target_dir: *const c_char,
    result_json: *mut *mut c_char,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    // SAFETY: per the contract.
    unsafe { put(result_json, std::ptr::null_mut()) };
    // SAFETY: per the contract.
    let (o, a, t) = unsafe {
        (
            opts.as_ref(),
            path_bytes(archive_path, "archive path"),
            path_text(target_dir, "target directory"),
        )
    };
    run(err, || {
        let io = ImportOptions {
            limits: o.map(|o| o.limits).unwrap_or_default(),
            name: o.and_then(|o| o.config.name.clone()),
            id: o.and_then(|o| o.config.id.clone()),
            rootfs: o.and_then(|o| o.new_rootfs.clone()),
            namespaces: o.map(|o| o.namespaces.clone()).unwrap_or_default(),
        };
        let imp = archive::import(Path::new(a?), Path::new(t?), &io)?;
        hand_json(result_json, &imported_json(&imp))
    })
}

/// The JSON object `ckpt_archive_import` hands back, also the start of
/// `ckpt_archive_restore`'s.
fn imported_json(imp: &archive::Imported) -> Value {
    json!({
        "dir": imp.dir,
        "images_dir": imp.images_dir,
        "spec_path": imp.spec_path,
        "name": imp.config.name,
        "id": imp.config.id,
        "old_name": imp.old_name,
        "old_id": imp.old_id,
        "manager": imp.manager,
        "spec_changes": imp.spec_changes,
        "rootfs_entries_applied": imp.rootfs_entries_applied,
        "deleted_applied": imp.deleted_applied,
    })
}

/// Imports `archive_path` into `bundle_dir` (new or empty; it becomes the container's OCI
/// bundle and stays after the restore) and restores the container through the container
/// layer: its root file system is the directory set with `ckpt_archive_opts_set_new_rootfs`
/// (the archive's changes applied to it) or an overlay over the one set with
/// `ckpt_archive_opts_set_rootfs_image`; the new name, id and namespaces come from `aopts`; a
/// network or pid namespace the archived container joined by path must be named with
/// `ckpt_archive_opts_set_namespace`. `c` (NULL allowed) gives keep-network and the stdio
/// descriptors, consumed (closed by the handle) by every call, also one that fails: set them
/// again before retrying; its bundle and pid are not used. `opts` carries the user's
/// flags; its image path is set to `bundle_dir/checkpoint`. The restored init becomes the
/// caller's child: `*pid` receives it (so `pid` must not be NULL: `CKPT_ERR_NULL_ARGUMENT`
/// before anything runs), `*stats` CRIU's statistics and the cgroups made for the restore as
/// for `ckpt_container_restore`, `*result_json` (NULL
/// allowed) the import's JSON object as for `ckpt_archive_import` plus `provided` (the
/// per-container files ckpt made for the engine's bind mounts), owned by the caller (free with
/// `ckpt_archive_string_free`). On failure before or in CRIU, the bundle directory is removed
/// (emptied when it existed); changes applied to a caller's rootfs directory stay.
/// `archive_path` is bytes and need not be UTF-8; `bundle_dir` must be UTF-8 (it goes into the spec).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_archive_restore(
    aopts: *const ckpt_archive_opts,
    c: *mut super::container::ckpt_container,
    opts: *mut super::opts::ckpt_opts,
    archive_path: *const c_char,
    bundle_dir: *const c_char,
    pid: *mut i32,
    stats: *mut *mut super::stats::ckpt_stats,
    result_json: *mut *mut c_char,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    // SAFETY: per the contract, NULL or valid for writes.
    unsafe {
        put(result_json, std::ptr::null_mut());
        put(stats, std::ptr::null_mut());
        put(pid, 0);
    }
    // SAFETY: per the contract.
    let (ao, a, b) = unsafe {
        (
            aopts.as_ref(),
            path_bytes(archive_path, "archive path"),
            path_text(bundle_dir, "bundle directory"),
        )
    };
    run(err, || {
        // SAFETY: NULL or live handles used by no other thread, per the contract.
        let (ch, o) = unsafe { (c.as_mut(), opts.as_mut()) };
        // Consumed by every call, also one refused below, as ckpt_container_restore does: a
        // caller retrying sets them again, whatever the failure was.
        let (keep_network, stdio) = ch
            .map(|h| h.take_restore_parts())
            .unwrap_or((false, [None, None, None]));
        let o = o.ok_or_else(|| Failure::new(CKPT_ERR_NULL_ARGUMENT, "options handle is NULL"))?;
        let ao =
            ao.ok_or_else(|| Failure::new(CKPT_ERR_NULL_ARGUMENT, "archive options are NULL"))?;
        if pid.is_null() {
            // A restored init is the caller's child to reap: never make one whose pid is dropped.
            return Err(Failure::new(
                CKPT_ERR_NULL_ARGUMENT,
                "pid output pointer is NULL",
            ));
        }
        let (a, b) = (a?, b?);
        let rootfs = match (&ao.new_rootfs, &ao.rootfs_image) {
            (Some(d), _) => archive::NewRootfs::Dir(d.clone()),
            (None, Some(l)) => archive::NewRootfs::Overlay { lower: l.clone() },
            (None, None) => {
                return Err(Error::invalid(
                    "no root file system for the container: set ckpt_archive_opts_set_new_rootfs or ckpt_archive_opts_set_rootfs_image",
                )
                .into());
            }
        };
        let bundle = abs_path(b, "bundle directory")?;
        let r = archive::restore::restore(
            &mut o.inner,
            Path::new(a),
            archive::ImportRestore {
                bundle,
                rootfs,
                name: ao.config.name.clone(),
                id: ao.config.id.clone(),
                namespaces: ao.namespaces.clone(),
                limits: ao.limits,
                keep_network,
                stdio,
                hooks: None,
            },
        )?;
        let mut doc = imported_json(&r.imported);
        doc["provided"] = json!(r.provided);
        let restored = r.restored;
        // SAFETY: per the contract.
        unsafe { super::ops::hand_restored(restored, pid, stats) };
        hand_json(result_json, &doc)
    })
}

/// Reads `archive_path` once, verifying it as import does, writing nothing; `*json` receives
/// what checkpointctl shows (engine, container, image, runtime, sizes, CRIU's dump
/// statistics, the process tree) as a JSON object owned by the caller (free with
/// `ckpt_archive_string_free`). `opts` may be NULL (default limits).
/// `archive_path` is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_archive_inspect(
    opts: *const ckpt_archive_opts,
    archive_path: *const c_char,
    json: *mut *mut c_char,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    // SAFETY: per the contract.
    unsafe { put(json, std::ptr::null_mut()) };
    // SAFETY: per the contract.
    let (o, a) = unsafe { (opts.as_ref(), path_bytes(archive_path, "archive path")) };
    run(err, || {
        let limits = o.map(|o| o.limits).unwrap_or_default();
        let i = archive::inspect(Path::new(a?), &limits)?;
        let v = serde_json::to_value(&i).map_err(|e| Error::io("encoding JSON", e))?;
        hand_json(json, &v)
    })
}

/// Frees a string from `ckpt_archive_import` or `ckpt_archive_inspect`. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_archive_string_free(s: *mut c_char) {
    boundary! {
        if !s.is_null() {
            // SAFETY: per the contract, from CString::into_raw and freed once.
            drop(unsafe { CString::from_raw(s) });
        }
    }
}
