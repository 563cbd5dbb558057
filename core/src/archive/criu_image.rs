//! The few CRIU image files the archive layer reads or writes: `stats-dump` (written when the
//! image directory lacks it, read for inspection), `pstree.img` and `core-PID.img` (the
//! process tree and each task's command name, for inspection).
//!
//! An image file is a magic word (preceded by CRIU's common or service magic in v2 images),
//! then records of a little-endian `u32` length followed by a protobuf message.

use prost::Message;

use crate::error::{Error, Result};
use crate::proto::{DumpStatsEntry, StatsEntry};

pub const IMG_COMMON_MAGIC: u32 = 0x5456_4319;
pub const IMG_SERVICE_MAGIC: u32 = 0x5510_5940;
pub const STATS_MAGIC: u32 = 0x5709_3306;
pub const PSTREE_MAGIC: u32 = 0x5027_3030;
pub const CORE_MAGIC: u32 = 0x5505_3847;
pub const INVENTORY_MAGIC: u32 = 0x5831_3116;
pub const FS_MAGIC: u32 = 0x5140_3912;
pub const FILES_MAGIC: u32 = 0x5630_3138;

/// `fs_entry` of CRIU's fs.proto: the task's cwd and root, as file ids.
#[derive(Clone, PartialEq, Message)]
pub struct FsEntry {
    #[prost(uint32, optional, tag = "1")]
    pub cwd_id: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    pub root_id: Option<u32>,
}

/// The part of `reg_file_entry` (regfile.proto) the restore needs.
#[derive(Clone, PartialEq, Message)]
pub struct RegFileEntry {
    #[prost(uint32, optional, tag = "1")]
    pub id: Option<u32>,
    /// The path: bytes, as the kernel has it, not always UTF-8.
    #[prost(bytes = "vec", optional, tag = "6")]
    pub name: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "10")]
    pub mode: Option<u32>,
}

/// The part of `file_entry` (fdinfo.proto) the restore needs.
#[derive(Clone, PartialEq, Message)]
pub struct FileEntry {
    #[prost(int32, optional, tag = "1")]
    pub r#type: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    pub id: Option<u32>,
    #[prost(message, optional, tag = "3")]
    pub reg: Option<RegFileEntry>,
}

/// The mode CRIU recorded for the root directory of the tree's first task (CRIU refuses to
/// restore when the root's mode differs: "File . has bad mode"), if the images record one.
/// Each image read is at most `max_bytes` long (the archive's document limit): they may come
/// from an archive, where a huge one compresses to nearly nothing.
pub fn root_mode(images: &std::path::Path, max_bytes: u64) -> Result<Option<u32>> {
    let read = |name: &str| {
        crate::paths::read_bytes_at_most(&images.join(name), max_bytes).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                Error::invalid(format!(
                    "{name} of the checkpoint is larger than {max_bytes} bytes (the archive's document limit), too large to read into memory"
                ))
            } else {
                Error::io(format!("reading {name} of the checkpoint"), e)
            }
        })
    };
    let tree = decode_pstree(&read("pstree.img")?)?;
    let Some(pid) = tree.first().and_then(|t| t.pid) else {
        return Ok(None);
    };
    let fs_name = format!("fs-{pid}.img");
    let (magic, recs) = split_records(&read(&fs_name)?, &fs_name)?;
    expect_magic(magic, FS_MAGIC, &fs_name)?;
    let Some(root_id) = recs
        .first()
        .and_then(|r| FsEntry::decode(r.as_slice()).ok())
        .and_then(|f| f.root_id)
    else {
        return Ok(None);
    };
    let (magic, recs) = split_records(&read("files.img")?, "files.img")?;
    expect_magic(magic, FILES_MAGIC, "files.img")?;
    for r in recs {
        let f = FileEntry::decode(r.as_slice())
            .map_err(|e| Error::invalid(format!("files.img: {e}")))?;
        if let Some(reg) = f.reg
            && f.id == Some(root_id)
        {
            return Ok(reg.mode);
        }
    }
    Ok(None)
}

/// `pstree_entry` of CRIU's pstree.proto.
#[derive(Clone, PartialEq, Message)]
pub struct PstreeEntry {
    #[prost(uint32, optional, tag = "1")]
    pub pid: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    pub ppid: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    pub pgid: Option<u32>,
    #[prost(uint32, optional, tag = "4")]
    pub sid: Option<u32>,
    #[prost(uint32, repeated, packed = "false", tag = "5")]
    pub threads: Vec<u32>,
}

/// The part of `task_core_entry` (core.proto) inspection needs.
#[derive(Clone, PartialEq, Message)]
pub struct TaskCoreEntry {
    #[prost(string, optional, tag = "6")]
    pub comm: Option<String>,
}

/// The part of `core_entry` (core.proto) inspection needs.
#[derive(Clone, PartialEq, Message)]
pub struct CoreEntry {
    #[prost(message, optional, tag = "3")]
    pub tc: Option<TaskCoreEntry>,
}

/// [`CoreEntry`] as it is decoded: the kernel's command name is bytes, not always UTF-8, and
/// a protobuf string refuses those.
#[derive(Clone, PartialEq, Message)]
struct RawCoreEntry {
    #[prost(message, optional, tag = "3")]
    tc: Option<RawTaskCoreEntry>,
}

#[derive(Clone, PartialEq, Message)]
struct RawTaskCoreEntry {
    #[prost(bytes = "vec", optional, tag = "6")]
    comm: Option<Vec<u8>>,
}

/// The image's magic word and its records.
pub fn split_records(bytes: &[u8], what: &str) -> Result<(u32, Vec<Vec<u8>>)> {
    let bad = |why: &str| Error::invalid(format!("{what}: {why}"));
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let mut at = 0;
    let mut magic = word(0).ok_or_else(|| bad("too short for a CRIU image"))?;
    at += 4;
    if magic == IMG_COMMON_MAGIC || magic == IMG_SERVICE_MAGIC {
        magic = word(4).ok_or_else(|| bad("too short for a CRIU image"))?;
        at += 4;
    }
    let mut records = Vec::new();
    while at < bytes.len() {
        let len = word(at).ok_or_else(|| bad("record length cut short"))? as usize;
        at += 4;
        let body = bytes
            .get(at..at + len)
            .ok_or_else(|| bad("record cut short"))?;
        records.push(body.to_vec());
        at += len;
    }
    Ok((magic, records))
}

fn expect_magic(got: u32, want: u32, what: &str) -> Result<()> {
    if got != want {
        return Err(Error::invalid(format!(
            "{what}: magic {got:#x} is not CRIU's {want:#x}"
        )));
    }
    Ok(())
}

/// Encodes a `stats-dump` image the way CRIU writes it. CRIU's proto2 schema marks the first
/// seven counters and `pages_lazy` required; readers built from it (go-criu, checkpointctl)
/// refuse a message without them, so unknown values are written as 0.
pub fn encode_stats_dump(d: &DumpStatsEntry) -> Vec<u8> {
    let mut d = d.clone();
    for f in [
        &mut d.freezing_time,
        &mut d.frozen_time,
        &mut d.memdump_time,
        &mut d.memwrite_time,
    ] {
        f.get_or_insert(0);
    }
    for f in [
        &mut d.pages_scanned,
        &mut d.pages_skipped_parent,
        &mut d.pages_written,
        &mut d.pages_lazy,
    ] {
        f.get_or_insert(0);
    }
    let body = StatsEntry {
        dump: Some(d),
        restore: None,
    }
    .encode_to_vec();
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(&IMG_SERVICE_MAGIC.to_le_bytes());
    out.extend_from_slice(&STATS_MAGIC.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

pub fn decode_stats_dump(bytes: &[u8]) -> Result<DumpStatsEntry> {
    let (magic, recs) = split_records(bytes, "stats-dump")?;
    expect_magic(magic, STATS_MAGIC, "stats-dump")?;
    let first = recs
        .first()
        .ok_or_else(|| Error::invalid("stats-dump: no record"))?;
    let e = StatsEntry::decode(first.as_slice())
        .map_err(|e| Error::invalid(format!("stats-dump: {e}")))?;
    e.dump
        .ok_or_else(|| Error::invalid("stats-dump: holds no dump statistics"))
}

pub fn decode_pstree(bytes: &[u8]) -> Result<Vec<PstreeEntry>> {
    let (magic, recs) = split_records(bytes, "pstree.img")?;
    expect_magic(magic, PSTREE_MAGIC, "pstree.img")?;
    recs.iter()
        .map(|r| {
            PstreeEntry::decode(r.as_slice())
                .map_err(|e| Error::invalid(format!("pstree.img: {e}")))
        })
        .collect()
}

/// The command name (`comm`) in a `core-PID.img`.
pub fn decode_core_comm(bytes: &[u8], what: &str) -> Result<Option<String>> {
    let (magic, recs) = split_records(bytes, what)?;
    expect_magic(magic, CORE_MAGIC, what)?;
    let first = recs
        .first()
        .ok_or_else(|| Error::invalid(format!("{what}: no record")))?;
    let c = RawCoreEntry::decode(first.as_slice())
        .map_err(|e| Error::invalid(format!("{what}: {e}")))?;
    Ok(c.tc
        .and_then(|t| t.comm)
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// An image file of one magic and these records (tests build images with it).
pub fn encode_image(magic: u32, records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&IMG_COMMON_MAGIC.to_le_bytes());
    out.extend_from_slice(&magic.to_le_bytes());
    for r in records {
        out.extend_from_slice(&(r.len() as u32).to_le_bytes());
        out.extend_from_slice(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_round_trip_fills_required() {
        let img = encode_stats_dump(&DumpStatsEntry {
            frozen_time: Some(9),
            ..Default::default()
        });
        let d = decode_stats_dump(&img).unwrap();
        assert_eq!(d.frozen_time, Some(9));
        assert_eq!(d.pages_lazy, Some(0));
        assert_eq!(d.freezing_time, Some(0));
        assert!(decode_stats_dump(&img[..10]).is_err());
    }

    #[test]
    fn pstree_and_core() {
        let e = PstreeEntry {
            pid: Some(1),
            ppid: Some(0),
            pgid: Some(1),
            sid: Some(1),
            threads: vec![1],
        };
        let img = encode_image(PSTREE_MAGIC, &[e.encode_to_vec()]);
        assert_eq!(decode_pstree(&img).unwrap(), vec![e]);
        let core = CoreEntry {
            tc: Some(TaskCoreEntry {
                comm: Some("sh".into()),
            }),
        };
        let img = encode_image(CORE_MAGIC, &[core.encode_to_vec()]);
        assert_eq!(
            decode_core_comm(&img, "core-1.img").unwrap().as_deref(),
            Some("sh")
        );
        assert!(decode_core_comm(&img, "x").is_ok());
        assert!(decode_pstree(&img).unwrap_err().message.contains("magic"));
    }

    /// A task's command name is the kernel's 16 bytes, not UTF-8 text (an executable named
    /// in Latin-1, `prctl(PR_SET_NAME)`), and CRIU writes it as it is. Decoding it as a
    /// protobuf string refused the whole core image, so `ckpt inspect` failed on a
    /// checkpoint any process could produce, where checkpointctl shows it.
    #[test]
    fn a_command_name_that_is_not_utf8_is_shown() {
        // core_entry { tc (3) { comm (6): "a\xffb" } }
        let img = encode_image(
            CORE_MAGIC,
            &[vec![0x1a, 0x05, 0x32, 0x03, b'a', 0xff, b'b']],
        );
        assert_eq!(
            decode_core_comm(&img, "core-1.img").unwrap().as_deref(),
            Some("a\u{fffd}b")
        );
    }

    /// files.img names every file the tree had open by its path, which is bytes: one open
    /// file named in Latin-1 (a log, a download) made reading the root's mode fail on the
    /// whole image ("invalid string value: data is not UTF-8 encoded"), and with it the
    /// restore of that archive, which Podman restores.
    #[test]
    fn root_mode_reads_past_a_file_name_that_is_not_utf8() {
        let dir = std::env::temp_dir().join(format!("pa-rootmode-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let task = PstreeEntry {
            pid: Some(1),
            ppid: Some(0),
            pgid: Some(1),
            sid: Some(1),
            threads: vec![1],
        };
        let fs = FsEntry {
            cwd_id: Some(5),
            root_id: Some(5),
        };
        let file = |id: u32, name: &str, mode: u32| {
            FileEntry {
                r#type: Some(1),
                id: Some(id),
                reg: Some(RegFileEntry {
                    id: Some(id),
                    name: Some(name.into()),
                    mode: Some(mode),
                }),
            }
            .encode_to_vec()
        };
        // "/tmp/café.log" in Latin-1.
        let mut latin1 = file(3, "/tmp/cafX.log", 0o100644);
        let x = latin1.iter().position(|b| *b == b'X').unwrap();
        latin1[x] = 0xe9;
        let write = |n: &str, b: Vec<u8>| std::fs::write(dir.join(n), b).unwrap();
        write(
            "pstree.img",
            encode_image(PSTREE_MAGIC, &[task.encode_to_vec()]),
        );
        write("fs-1.img", encode_image(FS_MAGIC, &[fs.encode_to_vec()]));
        write(
            "files.img",
            encode_image(FILES_MAGIC, &[latin1, file(5, "/", 0o040555)]),
        );
        let r = root_mode(&dir, 1 << 20);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(r.unwrap(), Some(0o040555));
    }
}
