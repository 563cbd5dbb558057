//! Mountpoints inside bind mounts. When a mount's mountpoint lies under a bind mount's
//! destination, CRIU mounts the bind first and then the inner mount on top of it: the inner
//! mountpoint must exist in the bind's *source*, not in the rootfs, where the bind hides it.
//! runc (issue 2748) handles this by bind-mounting each bind's source on the rootfs before it
//! creates the mountpoints; the same place is reached here without a temporary mount, by
//! creating the mountpoint in the source of the innermost bind that holds it.

use super::facts::Record;
use std::path::{Path, PathBuf};

/// A bind mount of the restore: its mountpoint in the container and the host path bound there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    /// The mountpoint inside the container.
    pub mountpoint: String,
    /// The host path bound there.
    pub source: String,
}

/// The recorded bind mounts (of config.json, devices, those a hook added) with the sources
/// the restore binds: config.json's current source where it names the mountpoint, else the
/// recorded one. cgroup and masked mounts are not binds of a source the container owns.
pub fn binds(rec: &Record, spec_source: impl Fn(&str) -> Option<String>) -> Vec<Bind> {
    rec.mounts
        .iter()
        .filter(|m| matches!(m.origin.as_str(), "spec" | "device" | "discovered"))
        .map(|m| Bind {
            mountpoint: m.mountpoint.clone(),
            source: match m.origin.as_str() {
                "discovered" => m.source.clone(),
                _ => spec_source(&m.mountpoint).unwrap_or_else(|| m.source.clone()),
            },
        })
        .collect()
}

/// The innermost bind whose mountpoint strictly contains `mp`, and `mp`'s path relative to it.
pub fn enclosing<'a>(mp: &str, binds: &'a [Bind]) -> Option<(&'a Bind, String)> {
    binds
        .iter()
        .filter_map(|b| {
            let base = b.mountpoint.trim_end_matches('/');
            let rest = mp.strip_prefix(base)?.strip_prefix('/')?;
            (!rest.is_empty()).then(|| (b, rest.to_string()))
        })
        .max_by_key(|(b, _)| b.mountpoint.len())
}

/// Where mountpoint `mp` lives on the host once the mounts that hold it are in place: the
/// directory that holds it (the source of the innermost bind that holds it, else the rootfs)
/// and its path inside that directory ("/a/b"), and that bind.
pub fn host_mountpoint<'a>(
    rootfs: &Path,
    mp: &str,
    binds: &'a [Bind],
) -> (PathBuf, String, Option<&'a Bind>) {
    match enclosing(mp, binds) {
        Some((b, rest)) => (PathBuf::from(&b.source), format!("/{rest}"), Some(b)),
        None => (rootfs.to_path_buf(), mp.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(mp: &str, src: &str) -> Bind {
        Bind {
            mountpoint: mp.into(),
            source: src.into(),
        }
    }

    #[test]
    fn innermost_bind_wins() {
        let bs = [
            b("/data", "/h/data"),
            b("/data/in", "/h/in"),
            b("/datax", "/h/x"),
        ];
        let r = Path::new("/r");
        let at = |mp| {
            let (dir, inner, _) = host_mountpoint(r, mp, &bs);
            (dir, inner)
        };
        assert_eq!(at("/data/in/deep"), ("/h/in".into(), "/deep".into()));
        assert_eq!(at("/data/in"), ("/h/data".into(), "/in".into()));
        assert_eq!(at("/datax/y"), ("/h/x".into(), "/y".into()));
        assert_eq!(at("/data"), ("/r".into(), "/data".into()));
        assert_eq!(at("/dat/a"), ("/r".into(), "/dat/a".into()));
    }
}
