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
    let text = std::fs::read(&config).map_err(|e| {
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
        let upper = mounts
            .iter()
            .rev()
            .find(|m| Path::new(&m.mount_point) == root)
            .filter(|m| m.fs_type == "overlay")
            .and_then(|m| {
                m.super_options
                    .split(',')
                    .find_map(|o| o.strip_prefix("upperdir="))
                    .map(PathBuf::from)
            });
        match upper {
            Some(u) => {
                notes.push(format!(
                    "rootfs-diff.tar: the rootfs {} is an overlay; its upper directory {} holds the changes",
                    root.display(),
                    u.display()
                ));
                req.rootfs = Some(RootfsChanges::OverlayUpper {
                    upper: u,
                    lower: None,
                });
            }
            None => notes.push(format!(
                "no rootfs-diff.tar: the rootfs {} is not an overlay mount and no lower layer was named",
                root.display()
            )),
        }
    }
    Ok(notes)
}
