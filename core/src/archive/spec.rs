//! Rewrites an archived OCI spec for the container it is restored as: the new root file
//! system, namespace paths (which name the old host's namespaces), and mount sources under
//! the old container's id (engines keep per-container files in a directory named by the id).
//! The spec is edited as JSON so fields ckpt does not know survive untouched.

use serde_json::Value;

use super::idswap;
use crate::error::{Error, Result};

/// How to rewrite the spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecRewrite {
    /// The new root file system (`root.path`).
    pub rootfs: Option<String>,
    /// Namespace type (`network`, `ipc`, ...) and the path to join; `None` makes a new one.
    /// Types not listed: a `path` in the archived spec is dropped (a new namespace is made),
    /// because it names a namespace of the machine that wrote the archive.
    pub namespaces: Vec<(String, Option<String>)>,
    /// The old and new container ids: the old id as a whole path component of a mount source,
    /// or delimited in `linux.cgroupsPath`, becomes the new one (`idswap`).
    pub ids: Option<(String, String)>,
}

/// Reads the OCI spec file `path` (an export's spec) as JSON. It must be a regular file of at
/// most 64 MiB, opened without waiting: a FIFO in its place is refused instead of blocking the
/// export for ever.
pub fn read_file(path: &std::path::Path) -> Result<Value> {
    let bytes = crate::paths::read_bytes_at_most(path, crate::paths::MAX_TEXT)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(format!("{} is not JSON: {e}", path.display())))
}

/// Sets `root.path` to `root` (an absolute path), returning the change made.
pub fn set_root(spec: &mut Value, root: &str) -> Result<String> {
    if !root.starts_with('/') {
        return Err(Error::invalid(format!(
            "the new rootfs {root:?} is not an absolute path"
        )));
    }
    let obj = spec
        .as_object_mut()
        .ok_or_else(|| Error::invalid("spec.dump is not a JSON object"))?;
    let r = obj
        .entry("root")
        .or_insert_with(|| Value::Object(Default::default()));
    let r = r
        .as_object_mut()
        .ok_or_else(|| Error::invalid("spec.dump: root is not an object"))?;
    let old = r
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    r.insert("path".into(), Value::String(root.to_string()));
    Ok(format!("root.path: {old:?} -> {root:?}"))
}

/// Applies `rw` to `spec`, returning one line per change made.
pub fn rewrite(spec: &mut Value, rw: &SpecRewrite) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    if let Some(root) = &rw.rootfs {
        changes.push(set_root(spec, root)?);
    }
    let obj = spec
        .as_object_mut()
        .ok_or_else(|| Error::invalid("spec.dump is not a JSON object"))?;
    // A CRIU configuration file of the machine that wrote the archive: CRIU reads it as root
    // and runs its `action-script` lines as shell commands, so an archive could name a file
    // it placed (its extra files land in the import directory) and run anything here.
    if let Some(a) = obj.get_mut("annotations").and_then(Value::as_object_mut)
        && let Some(old) = a.remove(crate::container::plan::CONFIG_ANNOTATION)
    {
        changes.push(format!(
            "annotation {}: dropped (was {old}): a CRIU configuration file is the restoring host's choice",
            crate::container::plan::CONFIG_ANNOTATION
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    if let Some(ns) = obj
        .get_mut("linux")
        .and_then(|l| l.get_mut("namespaces"))
        .and_then(Value::as_array_mut)
    {
        for n in ns.iter_mut() {
            let Some(n) = n.as_object_mut() else {
                return Err(Error::invalid("spec.dump: a namespace is not an object"));
            };
            let ty = n
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            seen.push(ty.clone());
            let old = n.get("path").and_then(Value::as_str).map(str::to_string);
            let want = rw
                .namespaces
                .iter()
                .find(|(t, _)| *t == ty)
                .map(|(_, p)| p.clone());
            match (want, old) {
                (Some(Some(p)), old) => {
                    n.insert("path".into(), Value::String(p.clone()));
                    changes.push(format!("namespace {ty}: join {p:?} (was {old:?})"));
                }
                (Some(None), Some(old)) | (None, Some(old)) => {
                    n.remove("path");
                    changes.push(format!(
                        "namespace {ty}: new namespace (the archive joined {old:?})"
                    ));
                }
                _ => {}
            }
        }
    }
    // A type the archived container has no namespace of its own of would be ignored: it
    // shares its engine's, and CRIU restores it as such. Say so instead of doing nothing.
    if let Some((ty, _)) = rw.namespaces.iter().find(|(t, _)| !seen.contains(t)) {
        return Err(Error::invalid(format!(
            "the archived container has no {ty} namespace of its own (its spec lists {}): a {ty} namespace can be given only for one it has",
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        )));
    }
    if let Some((old, new)) = &rw.ids
        && !old.is_empty()
        && old != new
        && let Some(mounts) = obj.get_mut("mounts").and_then(Value::as_array_mut)
    {
        for m in mounts.iter_mut() {
            if let Some(src) = m.get_mut("source")
                && let Some(s) = src.as_str()
                && let Some(ns) = idswap::in_path(s, old, new)
            {
                changes.push(format!("mount source {s:?} -> {ns:?}"));
                *src = Value::String(ns);
            }
        }
    }
    if let Some((old, new)) = &rw.ids
        && !old.is_empty()
        && old != new
        && let Some(cg) = obj.get_mut("linux").and_then(|l| l.get_mut("cgroupsPath"))
        && let Some(s) = cg.as_str()
        && let Some(ns) = idswap::in_cgroups_path(s, old, new)
    {
        // The engine names the container's cgroup by its id: the restored container gets
        // its own instead of the old one's.
        changes.push(format!("linux.cgroupsPath {s:?} -> {ns:?}"));
        *cg = Value::String(ns);
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rewrites_root_namespaces_and_mounts() {
        let mut s = json!({
            "root": {"path": "/old/merged"},
            "linux": {"cgroupsPath": "/libpod_parent/libpod-aaaa", "namespaces": [
                {"type": "pid"},
                {"type": "network", "path": "/run/netns/old"},
                {"type": "ipc", "path": "/proc/1/ns/ipc"}
            ]},
            "mounts": [{"destination": "/etc/hosts", "source": "/var/lib/c/aaaa/userdata/hosts"}],
            "unknownField": 7
        });
        let rw = SpecRewrite {
            rootfs: Some("/new/rootfs".into()),
            namespaces: vec![("ipc".into(), Some("/proc/9/ns/ipc".into()))],
            ids: Some(("aaaa".into(), "bbbb".into())),
        };
        let ch = rewrite(&mut s, &rw).unwrap();
        assert_eq!(s["root"]["path"], "/new/rootfs");
        assert!(s["linux"]["namespaces"][1].get("path").is_none());
        assert_eq!(s["linux"]["namespaces"][2]["path"], "/proc/9/ns/ipc");
        assert_eq!(s["mounts"][0]["source"], "/var/lib/c/bbbb/userdata/hosts");
        assert_eq!(s["linux"]["cgroupsPath"], "/libpod_parent/libpod-bbbb");
        assert_eq!(s["unknownField"], 7);
        assert_eq!(ch.len(), 5);
        assert!(rewrite(&mut json!([]), &rw).is_err());
        let rel = SpecRewrite {
            rootfs: Some("rel".into()),
            ..Default::default()
        };
        assert!(rewrite(&mut json!({}), &rel).is_err());
    }

    #[test]
    fn a_namespace_the_archived_container_lacks_is_refused() {
        let spec = json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}});
        for (ty, path) in [("user", Some("/proc/9/ns/user")), ("network", None)] {
            let rw = SpecRewrite {
                namespaces: vec![(ty.into(), path.map(str::to_string))],
                ..Default::default()
            };
            let e = rewrite(&mut spec.clone(), &rw).unwrap_err();
            assert!(
                e.message.contains(&format!("no {ty} namespace of its own"))
                    && e.message.contains("pid, mount"),
                "{e:?}"
            );
        }
        let rw = SpecRewrite {
            namespaces: vec![("pid".into(), None)],
            ..Default::default()
        };
        assert!(rewrite(&mut spec.clone(), &rw).is_ok());
    }
}
