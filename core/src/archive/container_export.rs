//! Export of a container checkpoint: the container's own spec (its bundle's `config.json`) and,
//! when its root file system is an overlay mount, the overlay's upper directory as the root
//! file system changes. What the caller set explicitly wins.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::container::mountinfo;
use crate::error::{Code, Error, Result};

use super::manifest::ExportRequest;
use super::rootfs::RootfsChanges;

/// Fills `req.spec` (when it is `Null`) from `bundle/config.json` and `req.rootfs` (when
/// unset) from the overlay mounted on the bundle's rootfs, if any. Returns one note per
/// decision.
pub fn fill_from_bundle(req: &mut ExportRequest, bundle: &Path) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let config = bundle.join("config.json");
    // Not a plain read: a FIFO in the bundle would block it for ever.
    let text = crate::paths::read_bytes_at_most(&config, crate::paths::MAX_TEXT).map_err(|e| {
        Error::new(
            Code::NotFound,
            format!("reading the container's spec {}: {e}", config.display()),
        )
    })?;
    let spec: Value = serde_json::from_slice(&text)
        .map_err(|e| Error::invalid(format!("{} is not JSON: {e}", config.display())))?;
    if req.spec.is_null() {
        notes.push(format!("spec.dump: the bundle's {}", config.display()));
        req.spec = spec.clone();
    }
    if req.rootfs.is_none() {
        let root = spec
            .pointer("/root/path")
            .and_then(Value::as_str)
            .map(PathBuf::from)
            .ok_or_else(|| Error::invalid(format!("{} has no root.path", config.display())))?;
        let root = if root.is_absolute() {
            root
        } else {
            bundle.join(root)
        };
        let root = std::fs::canonicalize(&root).unwrap_or(root);
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Error::io("reading /proc/self/mountinfo", e))?;
        let mounts = mountinfo::parse(&text)?;
        let overlay = mounts
            .iter()
            .rev()
            .find(|m| Path::new(&m.mount_point) == root)
            .filter(|m| m.fs_type == "overlay");
        let upper = overlay.and_then(|m| {
            m.super_options
                .split(',')
                .find_map(|o| o.strip_prefix("upperdir="))
                .map(PathBuf::from)
        });
        match upper {
            Some(u) => {
                // An opaque directory of the upper layer hides what the lower layers have
                // there: deletions, which only the lower layers can name.
                let lowers = overlay.map(|m| lower_dirs(&m.super_options)).unwrap_or_default();
                notes.push(format!(
                    "rootfs-diff.tar: the rootfs {} is an overlay; its upper directory {} holds the changes ({} lower layers for what opaque directories hide)",
                    root.display(),
                    u.display(),
                    lowers.len()
                ));
                req.rootfs = Some(RootfsChanges::OverlayLayers { upper: u, lowers });
            }
            None => notes.push(format!(
                "no rootfs-diff.tar: the rootfs {} is not an overlay mount and no lower layer was named",
                root.display()
            )),
        }
    }
    if req.devshm.is_none() {
        if let Some(src) = devshm_source(&spec) {
            notes.push(format!(
                "devshm-checkpoint.tar: the container's /dev/shm is bound from {}",
                src.display()
            ));
            req.devshm = Some(src);
        }
    }
    podman_network_defaults(req, &spec, &mut notes);
    podman_volumes(req, &spec, &mut notes);
    if req.config.created.is_none() {
        // Podman and CRI-O record the container's creation in the spec; without it the
        // archive said the container was created when it was exported.
        if let Some(t) = spec
            .pointer("/annotations/io.kubernetes.cri-o.Created")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            notes.push(format!(
                "config.dump: createdTime {t}, from the spec's io.kubernetes.cri-o.Created"
            ));
            req.config.created = Some(t.to_string());
        }
    }
    Ok(notes)
}

/// The absolute directories of an overlay's `lowerdir=` option, top first (overlayfs
/// separates them with `:`, a `\` escaping a `:` or `,` of a name). A relative one (a
/// mount made from another working directory) cannot be found and is left out.
fn lower_dirs(super_options: &str) -> Vec<PathBuf> {
    let Some(start) = super_options.find("lowerdir=") else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    let mut cur = String::new();
    let mut chars = super_options[start + "lowerdir=".len()..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next()),
            ':' => dirs.push(std::mem::take(&mut cur)),
            ',' => break,
            _ => cur.push(c),
        }
    }
    dirs.push(cur);
    dirs.into_iter()
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .collect()
}

/// The host directory the spec binds on `/dev/shm` (Podman's `userdata/shm`, a tmpfs of its
/// own), if any.
fn devshm_source(spec: &Value) -> Option<PathBuf> {
    spec.get("mounts")?
        .as_array()?
        .iter()
        .rev()
        .find(|m| m.get("destination").and_then(Value::as_str) == Some("/dev/shm"))
        .filter(|m| {
            m.get("type").and_then(Value::as_str) == Some("bind")
                || m.get("options")
                    .and_then(Value::as_array)
                    .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
        })
        .and_then(|m| m.get("source").and_then(Value::as_str))
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
}

/// A Podman container's named volumes (binds of `.../volumes/NAME/_data`, Podman's layout)
/// go in as Podman's export puts them: each one's contents (`volumes/NAME.tar`) and, unless
/// the caller gave the field, `config.dump`'s `namedVolumes` (name, destination, options),
/// from which `podman container restore --import` recreates a volume that is missing.
fn podman_volumes(req: &mut ExportRequest, spec: &Value, notes: &mut Vec<String>) {
    let manager = req.manager.clone().or_else(|| {
        spec.pointer("/annotations/io.container.manager")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    if manager.as_deref() != Some("libpod") || !req.volumes.is_empty() {
        return;
    }
    let mut named = Vec::new();
    for m in spec
        .get("mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(src), Some(dest)) = (
            m.get("source").and_then(Value::as_str),
            m.get("destination").and_then(Value::as_str),
        ) else {
            continue;
        };
        let p = Path::new(src);
        let name = p
            .parent()
            .filter(|v| v.parent().and_then(Path::file_name) == Some("volumes".as_ref()))
            .and_then(Path::file_name)
            .and_then(|n| n.to_str());
        let (Some(name), Some("_data")) = (name, p.file_name().and_then(|f| f.to_str())) else {
            continue;
        };
        if !p.is_dir() || name == "." || name == ".." {
            continue;
        }
        notes.push(format!(
            "volumes/{name}.tar: the named volume {name} bound on {dest}"
        ));
        req.volumes.push((name.to_string(), p.to_path_buf()));
        named.push(serde_json::json!({
            "volumeName": name,
            "dest": dest,
            "options": m.get("options").cloned().unwrap_or_else(|| Value::Array(vec![])),
        }));
    }
    if !named.is_empty() && !req.config.extra.contains_key("namedVolumes") {
        req.config
            .extra
            .insert("namedVolumes".into(), Value::Array(named));
    }
}

/// Podman restores a container into a new network namespace only when `config.dump` says
/// `createNetNS`; without it, `podman container restore --import` keeps the spec's namespace
/// path, which named the checkpointed container's namespace, and fails ("Requested network
/// namespace /run/netns/netns-... does not exist"). A Podman container (the spec's manager
/// annotation is `libpod`) whose network namespace is one Podman made (`/run/netns/netns-*`)
/// gets Podman's default, a bridge network, unless the caller gave either field.
fn podman_network_defaults(req: &mut ExportRequest, spec: &Value, notes: &mut Vec<String>) {
    let manager = req.manager.clone().or_else(|| {
        spec.pointer("/annotations/io.container.manager")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    if manager.as_deref() != Some("libpod")
        || req.config.extra.contains_key("createNetNS")
        || req.config.extra.contains_key("networkMode")
    {
        return;
    }
    let netns = spec
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .and_then(|v| {
            v.iter()
                .find(|n| n.get("type").and_then(Value::as_str) == Some("network"))
        })
        .and_then(|n| n.get("path").and_then(Value::as_str))
        .map(str::to_string);
    if let Some(path) = netns.filter(|p| {
        Path::new(p)
            .file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f.starts_with("netns-"))
            && Path::new(p).parent() == Some(Path::new("/run/netns"))
    }) {
        notes.push(format!(
            "config.dump: createNetNS true and networkMode \"bridge\" (Podman's default network), since the container's network namespace {path} is one Podman made; give either field to choose"
        ));
        req.config
            .extra
            .insert("createNetNS".into(), Value::Bool(true));
        req.config
            .extra
            .insert("networkMode".into(), Value::String("bridge".into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container that replaced an image directory (`rm -rf /bin; mkdir /bin`) has it as an
    /// opaque directory in the overlay's upper layer, hiding the image's entries. The
    /// container's export took the upper directory but not the overlay's lower layers, so
    /// the hidden entries were not listed in `deleted.files` and came back on restore (the
    /// restored `/bin` held the image's programs again). The lower layers are now read from
    /// the mount (`lowerdir=`, every layer).
    #[test]
    fn an_opaque_directory_hides_the_image_entries_after_restore() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("mounting an overlay needs root: not exercised");
            return;
        }
        let t = std::env::temp_dir().join(format!("pa-opaque-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        for d in ["l1/bin", "l2/bin", "upper/bin", "work", "bundle/rootfs"] {
            std::fs::create_dir_all(t.join(d)).unwrap();
        }
        std::fs::write(t.join("l1/bin/a"), b"a").unwrap();
        std::fs::write(t.join("l2/bin/b"), b"b").unwrap();
        std::fs::write(t.join("l2/bin/sh"), b"old").unwrap();
        std::fs::write(t.join("upper/bin/sh"), b"new").unwrap();
        let c = std::ffi::CString::new(t.join("upper/bin").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid C strings and buffer.
        let rc = unsafe {
            libc::setxattr(
                c.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(rc, 0);
        let root = t.join("bundle/rootfs");
        let lowers = [t.join("l1"), t.join("l2")];
        let (upper, work) = (t.join("upper"), t.join("work"));
        crate::archive::rootfs::mount_test_overlay(&root, &lowers, &upper, &work, "").unwrap();
        std::fs::write(
            t.join("bundle/config.json"),
            br#"{"root": {"path": "rootfs"}, "process": {"args": ["sh"]}}"#,
        )
        .unwrap();
        let mut req = ExportRequest::default();
        let r = fill_from_bundle(&mut req, &t.join("bundle"));
        let _ = nix::mount::umount2(&root, nix::mount::MntFlags::MNT_DETACH);
        r.unwrap();
        let d = req.rootfs.expect("the overlay's changes").collect();
        std::fs::remove_dir_all(&t).unwrap();
        let d = d.unwrap();
        assert_eq!(
            d.deleted,
            vec![PathBuf::from("bin/a"), PathBuf::from("bin/b")],
            "the image's entries /bin hides, and not its new sh"
        );
    }
}
