//! What is in an archive, as checkpointctl shows it: the engine, the container, the process
//! tree (pstree.img with each task's command from core-PID.img), CRIU's dump statistics
//! (stats-dump) and sizes. One verifying pass, nothing written.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::Result;

use super::criu_image;
use super::format::{self, EngineConfig};
use super::reader::{self, Kind, Limits, Section};

/// A process of the checkpointed tree (from pstree.img and core-*.img).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Process {
    /// Its pid, in the container's pid namespace.
    pub pid: u32,
    /// Its parent's pid (0 for the root).
    pub ppid: u32,
    /// Its process group.
    pub pgid: u32,
    /// Its session.
    pub sid: u32,
    /// How many threads it has.
    pub threads: usize,
    /// Its command name, when its core image was read.
    pub comm: Option<String>,
    /// Its children.
    pub children: Vec<Process>,
}

/// Sizes in bytes.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Sizes {
    /// The archive file.
    pub archive: u64,
    /// Content of `checkpoint/` (CRIU's images).
    pub checkpoint: u64,
    /// `checkpoint/pages-*.img`: the memory.
    pub pages: u64,
    /// `rootfs-diff.tar`.
    pub rootfs_diff: u64,
    /// Every entry's content.
    pub total_content: u64,
}

/// What an archive holds, as checkpointctl shows it.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Inspection {
    /// `Podman` (manager `libpod`), `CRI-O` (`cri-o`), or the manager annotation as written
    /// (checkpointctl calls every other value containerd).
    pub engine: String,
    /// The spec's `io.container.manager` annotation.
    pub manager: Option<String>,
    /// `ckpt VERSION` when ckpt wrote the archive.
    pub written_by: Option<String>,
    /// The container's name (config.dump).
    pub name: Option<String>,
    /// The container's id (config.dump).
    pub id: Option<String>,
    /// The image's name (config.dump).
    pub image: Option<String>,
    /// The image's id (config.dump).
    pub image_id: Option<String>,
    /// The OCI runtime that ran the container (config.dump).
    pub runtime: Option<String>,
    /// When the container was created (config.dump, RFC 3339).
    pub created: Option<String>,
    /// When it was checkpointed (config.dump, RFC 3339).
    pub checkpointed: Option<String>,
    /// `none`, `gzip` or `zstd`.
    pub compression: String,
    /// Entries in the archive.
    pub entries: u64,
    /// Sizes of the archive and its parts.
    pub sizes: Sizes,
    /// CRIU's dump statistics (microseconds and page counts, CRIU's names).
    pub statistics: Option<BTreeMap<String, u64>>,
    /// The checkpointed process tree, from its root.
    pub process_tree: Option<Process>,
    /// Whether the archive carries `rootfs-diff.tar`.
    pub rootfs_diff: bool,
    /// Whether the archive carries `deleted.files`.
    pub deleted_files: bool,
    /// The archive's top-level files.
    pub files: Vec<String>,
}

fn build_tree(
    entries: &[criu_image::PstreeEntry],
    comms: &BTreeMap<u32, String>,
) -> Option<Process> {
    let node = |e: &criu_image::PstreeEntry| Process {
        pid: e.pid.unwrap_or(0),
        ppid: e.ppid.unwrap_or(0),
        pgid: e.pgid.unwrap_or(0),
        sid: e.sid.unwrap_or(0),
        threads: e.threads.len(),
        comm: comms.get(&e.pid.unwrap_or(0)).cloned(),
        children: Vec::new(),
    };
    // The records are the archive writer's: a pid may repeat and name its own descendant as
    // its parent. Each pid is placed once, so the tree has at most one node per record.
    fn attach(
        p: &mut Process,
        all: &[Process],
        kids: &BTreeMap<u32, Vec<usize>>,
        placed: &mut std::collections::HashSet<u32>,
        depth: usize,
    ) {
        if depth > 4096 {
            return;
        }
        for &i in kids.get(&p.pid).map(Vec::as_slice).unwrap_or_default() {
            if !placed.insert(all[i].pid) {
                continue;
            }
            let mut c = all[i].clone();
            attach(&mut c, all, kids, placed, depth + 1);
            p.children.push(c);
        }
    }
    let all: Vec<Process> = entries.iter().map(node).collect();
    let mut kids: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, p) in all.iter().enumerate() {
        kids.entry(p.ppid).or_default().push(i);
    }
    let mut root = all.iter().find(|p| p.ppid == 0).cloned()?;
    let mut placed = std::collections::HashSet::from([root.pid]);
    attach(&mut root, &all, &kids, &mut placed, 0);
    Some(root)
}

/// Reads `archive` once, verifying every entry as an import would, and says what it holds;
/// nothing is written.
pub fn inspect(archive: &Path, limits: &Limits) -> Result<Inspection> {
    let mut config = None;
    let mut spec = None;
    let mut stats = None;
    let mut pstree = None;
    let mut cores: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut sizes = Sizes::default();
    let mut files = Vec::new();
    let max = limits.max_document_bytes;
    let summary = reader::walk(archive, limits, |v, r| {
        if !matches!(v.kind, Kind::File) {
            return Ok(());
        }
        files.push(v.name.clone());
        match v.section {
            Section::Images => {
                sizes.checkpoint += v.size;
                let base = v.name.trim_start_matches("checkpoint/");
                if base.starts_with("pages-") {
                    sizes.pages += v.size;
                } else if base == format::PSTREE_IMG {
                    pstree = Some(reader::read_document(v, r, max)?);
                } else if let Some(pid) = base
                    .strip_prefix("core-")
                    .and_then(|s| s.strip_suffix(".img"))
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    cores.insert(pid, reader::read_document(v, r, max)?);
                }
            }
            Section::RootfsDiff => sizes.rootfs_diff += v.size,
            Section::Metadata => match v.name.as_str() {
                format::CONFIG_DUMP => config = Some(reader::read_document(v, r, max)?),
                format::SPEC_DUMP => spec = Some(reader::read_document(v, r, max)?),
                format::STATS_DUMP => stats = Some(reader::read_document(v, r, max)?),
                _ => {}
            },
            _ => {}
        }
        Ok(())
    })?;
    sizes.archive = summary.archive_bytes;
    sizes.total_content = summary.content_bytes;

    let bad_json = |what: &str, e: serde_json::Error| {
        crate::error::Error::invalid(format!("{what} is not valid JSON: {e}"))
    };
    let cfg_v: Value = serde_json::from_slice(config.as_deref().unwrap_or(b"{}"))
        .map_err(|e| bad_json("config.dump", e))?;
    let spec_v: Value = serde_json::from_slice(spec.as_deref().unwrap_or(b"{}"))
        .map_err(|e| bad_json("spec.dump", e))?;
    let cfg = EngineConfig::from_json(cfg_v)?;
    let manager = spec_v
        .pointer("/annotations/io.container.manager")
        .and_then(Value::as_str)
        .map(str::to_string);
    let engine = match manager.as_deref() {
        Some("libpod") => "Podman".to_string(),
        Some("cri-o") => "CRI-O".to_string(),
        Some(m) => m.to_string(),
        None => "unknown".to_string(),
    };
    // CRI-O and containerd keep the container's name in annotations.
    let ann = |k: &str| {
        spec_v
            .pointer(&format!("/annotations/{}", k.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let name = cfg
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| ann("io.kubernetes.cri.container-name"))
        .or_else(|| ann("io.kubernetes.cri-o.ContainerName"));

    let statistics = match &stats {
        Some(b) => {
            let d = criu_image::decode_stats_dump(b)?;
            let mut m = BTreeMap::new();
            let mut put = |k: &str, v: Option<u64>| {
                if let Some(v) = v {
                    m.insert(k.to_string(), v);
                }
            };
            put("freezing_time", d.freezing_time.map(u64::from));
            put("frozen_time", d.frozen_time.map(u64::from));
            put("memdump_time", d.memdump_time.map(u64::from));
            put("memwrite_time", d.memwrite_time.map(u64::from));
            put("pages_scanned", d.pages_scanned);
            put("pages_skipped_parent", d.pages_skipped_parent);
            put("pages_written", d.pages_written);
            put("pages_lazy", d.pages_lazy);
            Some(m)
        }
        None => None,
    };
    let process_tree = match &pstree {
        Some(b) => {
            let entries = criu_image::decode_pstree(b)?;
            let mut comms = BTreeMap::new();
            for (pid, bytes) in &cores {
                if let Some(c) = criu_image::decode_core_comm(bytes, &format!("core-{pid}.img"))? {
                    comms.insert(*pid, c);
                }
            }
            build_tree(&entries, &comms)
        }
        None => None,
    };
    let has = |n: &str| files.iter().any(|f| f == n);
    Ok(Inspection {
        engine,
        manager,
        written_by: cfg
            .extra
            .get(format::WRITER_FIELD)
            .and_then(Value::as_str)
            .map(str::to_string),
        name,
        id: cfg.id.clone(),
        image: cfg.image_name.clone(),
        image_id: cfg.image_id.clone(),
        runtime: cfg.runtime.clone(),
        created: cfg.created.clone(),
        checkpointed: cfg
            .extra
            .get("checkpointedTime")
            .and_then(Value::as_str)
            .map(str::to_string),
        compression: summary.compression.to_string(),
        entries: summary.entries,
        rootfs_diff: has(format::ROOTFS_DIFF_TAR),
        deleted_files: has(format::DELETED_FILES),
        sizes,
        statistics,
        process_tree,
        files,
    })
}

fn human(b: u64) -> String {
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < 5 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}iB", ["", "K", "M", "G", "T", "P"][u])
}

impl Inspection {
    /// The text form: one line per field, then the statistics and the process tree.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let _ = writeln!(s, "container:   {}", o(&self.name));
        let _ = writeln!(s, "id:          {}", o(&self.id));
        let _ = writeln!(
            s,
            "engine:      {}{}",
            self.engine,
            self.written_by
                .as_ref()
                .map(|w| format!(" (written by {w})"))
                .unwrap_or_default()
        );
        let _ = writeln!(s, "image:       {}", o(&self.image));
        let _ = writeln!(s, "runtime:     {}", o(&self.runtime));
        let _ = writeln!(s, "created:     {}", o(&self.created));
        if let Some(c) = &self.checkpointed {
            let _ = writeln!(s, "checkpointed: {c}");
        }
        let _ = writeln!(
            s,
            "archive:     {} ({}, {} entries)",
            human(self.sizes.archive),
            self.compression,
            self.entries
        );
        let _ = writeln!(
            s,
            "images:      {} (memory pages {})",
            human(self.sizes.checkpoint),
            human(self.sizes.pages)
        );
        if self.rootfs_diff || self.deleted_files {
            let _ = writeln!(
                s,
                "rootfs diff: {}{}",
                human(self.sizes.rootfs_diff),
                if self.deleted_files {
                    " + deleted.files"
                } else {
                    ""
                }
            );
        }
        if let Some(st) = &self.statistics {
            let _ = writeln!(s, "CRIU dump statistics:");
            for (k, v) in st {
                let _ = writeln!(
                    s,
                    "  {k}: {v}{}",
                    if k.ends_with("_time") { " us" } else { "" }
                );
            }
        }
        if let Some(t) = &self.process_tree {
            let _ = writeln!(s, "process tree:");
            fn walk(s: &mut String, p: &Process, depth: usize) {
                let _ = writeln!(
                    s,
                    "  {}[{}] {}",
                    "  ".repeat(depth),
                    p.pid,
                    p.comm.as_deref().unwrap_or("?")
                );
                for c in &p.children {
                    walk(s, c, depth + 1);
                }
            }
            walk(&mut s, t, 0);
        }
        s
    }
}
