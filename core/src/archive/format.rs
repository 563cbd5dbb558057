//! The checkpoint archive format shared by Podman, CRI-O and checkpointctl: entry names, the
//! compressions an archive may use, and the engine's container config (`config.dump`).
//!
//! Facts, as the engines read them: one tar, uncompressed, gzip or zstd (Podman's default, also
//! when the file is named `.tar.gz`), with a directory entry `checkpoint/` holding CRIU's images,
//! and at the top `config.dump` (the engine's container config, JSON), `spec.dump` (the OCI spec,
//! JSON), `stats-dump` (CRIU's dump statistics image) and optional extras.

use std::io::{self, Read};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The directory of CRIU images inside the archive.
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// The engine's container config (name, id, image, runtime).
pub const CONFIG_DUMP: &str = "config.dump";
/// The container's OCI spec.
pub const SPEC_DUMP: &str = "spec.dump";
/// CRIU's dump statistics.
pub const STATS_DUMP: &str = "stats-dump";
/// The engine's network state (Podman).
pub const NETWORK_STATUS: &str = "network.status";
/// The root file system's changes, as a tar.
pub const ROOTFS_DIFF_TAR: &str = "rootfs-diff.tar";
/// The root file system's deleted paths, as a JSON list.
pub const DELETED_FILES: &str = "deleted.files";
/// The container's /dev/shm, as a tar (Podman).
pub const DEVSHM_TAR: &str = "devshm-checkpoint.tar";
/// The CRIU image every restore needs first; Podman refuses an import without it.
pub const INVENTORY_IMG: &str = "inventory.img";
/// CRIU's process tree image.
pub const PSTREE_IMG: &str = "pstree.img";

/// Top-level names the engines are known to write beside the four above. Other top-level
/// regular files are kept (engines add files over time); other top-level directories are not.
pub const KNOWN_TOP_DIRS: &[&str] = &["checkpoint", "artifacts", "volumes", "pre-checkpoint"];

/// The spec annotation naming the engine that wrote the archive.
pub const MANAGER_ANNOTATION: &str = "io.container.manager";
/// The `config.dump` field ckpt adds to say that ckpt wrote the archive (engines ignore
/// unknown fields).
pub const WRITER_FIELD: &str = "checkpointWriter";

/// How the tar stream is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (Podman's `--compress gzip`).
    Gzip {
        /// 0 to 9.
        level: u32,
    },
    /// zstd (Podman's default).
    Zstd {
        /// -7 to 22, not 0.
        level: i32,
    },
}

/// zstd level 1: the fastest positive level; CRIU's page images are the bulk of an archive
/// and level 1 keeps the archive writer ahead of the disk on this machine (see bench/).
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;
/// gzip level 1 for the same reason; gzip is offered for readers without zstd.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd {
            level: DEFAULT_ZSTD_LEVEL,
        }
    }
}

impl Compression {
    /// `none`, `gzip`, `zstd`, optionally `gzip:LEVEL` / `zstd:LEVEL`.
    pub fn parse(s: &str) -> Result<Compression> {
        let (kind, level) = match s.split_once(':') {
            Some((k, l)) => (k, Some(l)),
            None => (s, None),
        };
        // Only called with a level; quoted as typed (it said `Some("99")`).
        let bad = || {
            Error::invalid(format!(
                "compression level {:?} out of range for {kind} (gzip[:1-9], zstd[:-7..22])",
                level.unwrap_or_default()
            ))
        };
        match kind {
            "none" | "tar" if level.is_none() => Ok(Compression::None),
            "gzip" | "gz" => {
                let level = match level {
                    Some(l) => l
                        .parse::<u32>()
                        .ok()
                        .filter(|l| (1..=9).contains(l))
                        .ok_or_else(bad)?,
                    None => DEFAULT_GZIP_LEVEL,
                };
                Ok(Compression::Gzip { level })
            }
            "zstd" | "zst" => {
                let level = match level {
                    Some(l) => l
                        .parse::<i32>()
                        .ok()
                        .filter(|l| (-7..=22).contains(l) && *l != 0)
                        .ok_or_else(bad)?,
                    None => DEFAULT_ZSTD_LEVEL,
                };
                Ok(Compression::Zstd { level })
            }
            _ => Err(Error::invalid(format!(
                "unknown compression {s:?} (none, gzip[:1-9], zstd[:-7..22])"
            ))),
        }
    }

    /// Refuses a level `parse` would not give: the enum's fields are public, and the gzip
    /// compressor panics on a level above 10.
    pub fn check(self) -> Result<()> {
        let ok = match self {
            Compression::None => true,
            Compression::Gzip { level } => level <= 9,
            Compression::Zstd { level } => (-7..=22).contains(&level) && level != 0,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "compression {self:?} is out of range (none, gzip level 0-9, zstd level -7..22 but 0)"
            )))
        }
    }

    /// `none`, `gzip` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip { .. } => "gzip",
            Compression::Zstd { .. } => "zstd",
        }
    }
}

/// What the first bytes of a file say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detected {
    /// A plain tar.
    Tar,
    /// A gzip stream.
    Gzip,
    /// A zstd stream.
    Zstd,
}

impl Detected {
    /// `none`, `gzip` or `zstd`, as [`Compression::name`].
    pub fn name(self) -> &'static str {
        match self {
            Detected::Tar => "none",
            Detected::Gzip => "gzip",
            Detected::Zstd => "zstd",
        }
    }
}

/// Reads the compression from the magic number, never from the file name: Podman writes
/// zstd into files named `.tar.gz`.
pub fn detect(head: &[u8]) -> Result<Detected> {
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Detected::Gzip);
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok(Detected::Zstd);
    }
    if head.starts_with(b"BZh") {
        return Err(Error::invalid(
            "archive is bzip2-compressed; checkpoint archives are tar, gzip or zstd",
        ));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(Error::invalid(
            "archive is xz-compressed; checkpoint archives are tar, gzip or zstd",
        ));
    }
    if head.len() >= 263 && &head[257..262] == b"ustar" {
        return Ok(Detected::Tar);
    }
    if head.is_empty() {
        return Err(Error::invalid("archive is empty"));
    }
    Err(Error::invalid(
        "not a checkpoint archive: neither a tar nor gzip or zstd (by its first bytes)",
    ))
}

/// Reads up to `n` bytes (fewer only at end of file).
pub fn read_head(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The fields of the engine's container config that ckpt fills on export and reads on import.
/// `config.dump` is Podman's `ContainerConfig` in JSON; CRI-O and containerd write their own
/// subsets. Everything else in the file is carried through untouched in `extra`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineConfig {
    /// Container name (`name`). Export default: `ckpt-` and the first 12 characters of the
    /// id. Export refuses an empty name or one with a NUL byte.
    pub name: Option<String>,
    /// Container id (`id`, 64 hex digits in Podman). Export default: 64 random hex digits.
    /// Export refuses what [`check_container_id`] refuses.
    pub id: Option<String>,
    /// The image the rootfs came from (`rootfsImageName`). Podman's import pulls it if missing
    /// locally. Export default: empty.
    pub image_name: Option<String>,
    /// The image's id (`rootfsImageID`). Export default: empty.
    pub image_id: Option<String>,
    /// OCI runtime (`runtime`). Export default: `runc`.
    pub runtime: Option<String>,
    /// When the container was created (`createdTime`, RFC 3339). Export default: now.
    pub created: Option<String>,
    /// Any other fields (Podman's `createNetNS`, `networkMode`, `namespace`, ...), written as
    /// given on export (they win over nothing: the named fields above are written after them).
    pub extra: Map<String, Value>,
}

impl EngineConfig {
    /// Parses `config.dump`: a JSON object; the named fields must be strings when present.
    pub fn from_json(v: Value) -> Result<EngineConfig> {
        let Value::Object(mut m) = v else {
            return Err(Error::invalid("config.dump is not a JSON object"));
        };
        let mut take = |k: &str| -> Result<Option<String>> {
            match m.remove(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(Error::invalid(format!("config.dump: {k} is not a string"))),
            }
        };
        Ok(EngineConfig {
            name: take("name")?,
            id: take("id")?,
            image_name: take("rootfsImageName")?,
            image_id: take("rootfsImageID")?,
            runtime: take("runtime")?,
            created: take("createdTime")?,
            extra: m,
        })
    }

    /// The JSON object written as `config.dump`, with the documented defaults filled in.
    pub fn to_json_with_defaults(&self, checkpointed: SystemTime) -> Result<Value> {
        let id = match &self.id {
            Some(id) => id.clone(),
            None => random_id()?,
        };
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("ckpt-{}", id.chars().take(12).collect::<String>()));
        let mut m = self.extra.clone();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), Value::String(v));
        };
        put("id", id);
        put("name", name);
        put(
            "rootfsImageName",
            self.image_name.clone().unwrap_or_default(),
        );
        put("rootfsImageID", self.image_id.clone().unwrap_or_default());
        put(
            "runtime",
            self.runtime.clone().unwrap_or_else(|| "runc".into()),
        );
        put(
            "createdTime",
            self.created
                .clone()
                .unwrap_or_else(|| rfc3339(checkpointed)),
        );
        put("checkpointedTime", rfc3339(checkpointed));
        put(WRITER_FIELD, format!("ckpt {}", crate::VERSION));
        Ok(Value::Object(m))
    }
}

/// Checks a container id given for an archive: a name, never a path. The new id replaces
/// the old one inside the spec's mount sources and `linux.cgroupsPath`, so a `/`, `.` or `..`
/// would lead them out of the engine's directories and cgroups. Podman's and CRI-O's ids are
/// 64 hex digits; runc and crun ids are names without `/`, accepted here too.
pub fn check_container_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id == "."
        || id == ".."
        || id.contains('/')
        || id.chars().any(char::is_control)
    {
        return Err(Error::invalid(format!(
            "invalid container id {id:?}: an id is a name without '/' or control characters, not '.' or '..'"
        )));
    }
    Ok(())
}

/// 64 lower-case hex digits from the kernel's random source, the shape of Podman's ids.
pub fn random_id() -> Result<String> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::io("reading /dev/urandom for a container id", e))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// UTC time as RFC 3339 with nanoseconds, the form Go's `time.Time` marshals to.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn detects_by_magic() {
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]).unwrap(), Detected::Gzip);
        assert_eq!(
            detect(&[0x28, 0xb5, 0x2f, 0xfd, 1]).unwrap(),
            Detected::Zstd
        );
        let mut tar = vec![0u8; 512];
        tar[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(detect(&tar).unwrap(), Detected::Tar);
        assert!(detect(b"BZh91AY").unwrap_err().message.contains("bzip2"));
        assert!(detect(b"").unwrap_err().message.contains("empty"));
        assert!(
            detect(b"hello")
                .unwrap_err()
                .message
                .contains("not a checkpoint")
        );
    }

    #[test]
    fn parses_compression() {
        assert_eq!(Compression::parse("zstd").unwrap(), Compression::default());
        assert_eq!(
            Compression::parse("gzip:6").unwrap(),
            Compression::Gzip { level: 6 }
        );
        assert_eq!(Compression::parse("none").unwrap(), Compression::None);
        assert!(Compression::parse("zstd:0").is_err());
        assert!(Compression::parse("gzip:10").is_err());
        // Level 0 is deflate's "store": documented and refused as out of gzip[:1-9].
        assert!(Compression::parse("gzip:0").is_err());
        assert!(Compression::parse("lz4").is_err());
        let e = Compression::parse("zstd:99").unwrap_err();
        assert_eq!(
            e.message,
            "compression level \"99\" out of range for zstd (gzip[:1-9], zstd[:-7..22])"
        );
    }

    #[test]
    fn formats_time() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn config_defaults_and_round_trip() {
        let c = EngineConfig {
            name: Some("web".into()),
            ..Default::default()
        };
        let v = c.to_json_with_defaults(UNIX_EPOCH).unwrap();
        assert_eq!(v["name"], "web");
        assert_eq!(v["id"].as_str().unwrap().len(), 64);
        assert_eq!(v["runtime"], "runc");
        assert_eq!(v["rootfsImageName"], "");
        let back = EngineConfig::from_json(v).unwrap();
        assert_eq!(back.name.as_deref(), Some("web"));
        assert!(back.extra.contains_key("checkpointedTime"));
        assert!(EngineConfig::from_json(serde_json::json!({"name": 3})).is_err());
        assert!(EngineConfig::from_json(serde_json::json!([1])).is_err());
    }
}
