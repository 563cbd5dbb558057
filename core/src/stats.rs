//! CRIU's dump and restore statistics (`stats-dump`, `stats-restore` in CRIU's work directory, the image directory unless a work path is set),
//! as a list of (stable key, value) pairs so new counters never change a struct layout.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use prost::Message;

use crate::proto::{DumpStatsEntry, RestoreStatsEntry, StatsEntry};

/// Stable numbers, part of the C ABI (`ckpt_stat_key`). Times are microseconds, as CRIU records them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Key {
    /// Dump: how long freezing the tree took.
    FreezingTimeUs = 1,
    /// Dump: how long the tree stayed frozen.
    FrozenTimeUs = 2,
    /// Dump: how long collecting the memory took.
    MemdumpTimeUs = 3,
    /// Dump: how long writing the memory took.
    MemwriteTimeUs = 4,
    /// Dump: memory pages scanned.
    PagesScanned = 5,
    /// Dump: pages skipped because the parent image has them.
    PagesSkippedParent = 6,
    /// Dump: pages written.
    PagesWritten = 7,
    /// Dump: how long resolving inotify paths (irmap) took.
    IrmapResolveUs = 8,
    /// Dump: pages left for lazy restore.
    PagesLazy = 9,
    /// Dump: page pipes used.
    PagePipes = 10,
    /// Dump: page pipe buffers used.
    PagePipeBufs = 11,
    /// Dump: shared memory pages scanned.
    ShpagesScanned = 12,
    /// Dump: shared memory pages skipped because the parent image has them.
    ShpagesSkippedParent = 13,
    /// Dump: shared memory pages written.
    ShpagesWritten = 14,
    /// Restore: pages compared with the parent's.
    PagesCompared = 32,
    /// Restore: pages skipped as copy-on-write.
    PagesSkippedCow = 33,
    /// Restore: how long forking the tree took.
    ForkingTimeUs = 34,
    /// Restore: how long the restore took.
    RestoreTimeUs = 35,
    /// Restore: pages restored.
    PagesRestored = 36,
    /// Bytes of the images in the image directory after the operation (ckpt's own count):
    /// its regular files but the logs (`*.log` and the log ckpt named) and `stats-restore`.
    ImageBytes = 64,
}

impl Key {
    /// Every key, in numeric order.
    pub const ALL: [Key; 20] = [
        Key::FreezingTimeUs,
        Key::FrozenTimeUs,
        Key::MemdumpTimeUs,
        Key::MemwriteTimeUs,
        Key::PagesScanned,
        Key::PagesSkippedParent,
        Key::PagesWritten,
        Key::IrmapResolveUs,
        Key::PagesLazy,
        Key::PagePipes,
        Key::PagePipeBufs,
        Key::ShpagesScanned,
        Key::ShpagesSkippedParent,
        Key::ShpagesWritten,
        Key::PagesCompared,
        Key::PagesSkippedCow,
        Key::ForkingTimeUs,
        Key::RestoreTimeUs,
        Key::PagesRestored,
        Key::ImageBytes,
    ];

    /// The key numbered `n`, if there is one.
    pub fn from_u32(n: u32) -> Option<Key> {
        Key::ALL.iter().copied().find(|k| *k as u32 == n)
    }

    /// NUL-terminated snake_case name, the same words CRIU's stats.proto uses.
    pub fn name_c(self) -> &'static str {
        match self {
            Key::FreezingTimeUs => "freezing_time_us\0",
            Key::FrozenTimeUs => "frozen_time_us\0",
            Key::MemdumpTimeUs => "memdump_time_us\0",
            Key::MemwriteTimeUs => "memwrite_time_us\0",
            Key::PagesScanned => "pages_scanned\0",
            Key::PagesSkippedParent => "pages_skipped_parent\0",
            Key::PagesWritten => "pages_written\0",
            Key::IrmapResolveUs => "irmap_resolve_us\0",
            Key::PagesLazy => "pages_lazy\0",
            Key::PagePipes => "page_pipes\0",
            Key::PagePipeBufs => "page_pipe_bufs\0",
            Key::ShpagesScanned => "shpages_scanned\0",
            Key::ShpagesSkippedParent => "shpages_skipped_parent\0",
            Key::ShpagesWritten => "shpages_written\0",
            Key::PagesCompared => "pages_compared\0",
            Key::PagesSkippedCow => "pages_skipped_cow\0",
            Key::ForkingTimeUs => "forking_time_us\0",
            Key::RestoreTimeUs => "restore_time_us\0",
            Key::PagesRestored => "pages_restored\0",
            Key::ImageBytes => "image_bytes\0",
        }
    }

    /// The snake_case name, the same words CRIU's stats.proto uses.
    pub fn name(self) -> &'static str {
        let n = self.name_c();
        &n[..n.len() - 1]
    }
}

/// CRIU's statistics of one operation: the counters it recorded, and what happened to the
/// workload.
///
/// ```
/// let st = ckpt::Stats::default();
/// assert_eq!(st.get(ckpt::StatKey::FrozenTimeUs), None);
/// assert_eq!(st.outcome & ckpt::outcome::TREE_KILLED, 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// The counters CRIU recorded, each once; a key CRIU did not record is absent.
    pub values: Vec<(Key, u64)>,
    /// [`outcome`](crate::outcome) bits: what happened to the workload (a dump without
    /// leave-running sets [`TREE_KILLED`](crate::outcome::TREE_KILLED)).
    pub outcome: u32,
}

impl Stats {
    /// The value of `key`, if CRIU recorded it.
    pub fn get(&self, key: Key) -> Option<u64> {
        self.values.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn put(&mut self, key: Key, v: Option<impl Into<u64>>) {
        if let Some(v) = v {
            self.values.push((key, v.into()));
        }
    }

    fn from_dump(d: &DumpStatsEntry) -> Stats {
        let mut s = Stats::default();
        s.put(Key::FreezingTimeUs, d.freezing_time);
        s.put(Key::FrozenTimeUs, d.frozen_time);
        s.put(Key::MemdumpTimeUs, d.memdump_time);
        s.put(Key::MemwriteTimeUs, d.memwrite_time);
        s.put(Key::PagesScanned, d.pages_scanned);
        s.put(Key::PagesSkippedParent, d.pages_skipped_parent);
        s.put(Key::PagesWritten, d.pages_written);
        s.put(Key::IrmapResolveUs, d.irmap_resolve);
        s.put(Key::PagesLazy, d.pages_lazy);
        s.put(Key::PagePipes, d.page_pipes);
        s.put(Key::PagePipeBufs, d.page_pipe_bufs);
        s.put(Key::ShpagesScanned, d.shpages_scanned);
        s.put(Key::ShpagesSkippedParent, d.shpages_skipped_parent);
        s.put(Key::ShpagesWritten, d.shpages_written);
        s
    }

    fn from_restore(r: &RestoreStatsEntry) -> Stats {
        let mut s = Stats::default();
        s.put(Key::PagesCompared, r.pages_compared);
        s.put(Key::PagesSkippedCow, r.pages_skipped_cow);
        s.put(Key::ForkingTimeUs, r.forking_time);
        s.put(Key::RestoreTimeUs, r.restore_time);
        s.put(Key::PagesRestored, r.pages_restored);
        s
    }
}

/// CRIU image files start with two magic words, then `u32 length` + message records.
fn decode_image(bytes: &[u8]) -> Option<StatsEntry> {
    let body = bytes.get(8..)?;
    let len = u32::from_le_bytes(body.get(..4)?.try_into().ok()?) as usize;
    StatsEntry::decode(body.get(4..4 + len)?).ok()
}

/// Reads `stats-dump` or `stats-restore` from `dir`; missing or unreadable files give `None`.
// ckpt itself reads through the directory descriptor (read_at); the tests read by path.
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub fn read(dir: &Path, restore: bool) -> Option<Stats> {
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    read_at(fd.as_fd(), restore, None)
}

/// As `read`, for the image directory open as `dir`, whose absolute path may be too long to
/// open. `log_name` is the log ckpt named when it lies in that directory: it is not counted
/// in `ImageBytes`, nor is any other log.
pub fn read_at(
    dir: BorrowedFd<'_>,
    restore: bool,
    log_name: Option<&std::ffi::OsStr>,
) -> Option<Stats> {
    read_in(dir, dir, restore, log_name)
}

/// As `read_at`, with the statistics file read from `stats_dir`: CRIU writes it into its work
/// directory, which is the image directory only when no work path is set.
pub fn read_in(
    stats_dir: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    restore: bool,
    log_name: Option<&std::ffi::OsStr>,
) -> Option<Stats> {
    let name = if restore {
        "stats-restore"
    } else {
        "stats-dump"
    };
    let f = nix::fcntl::openat(
        stats_dir,
        name,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .ok()?;
    let mut bytes = Vec::new();
    std::fs::File::from(f).read_to_end(&mut bytes).ok()?;
    let entry = decode_image(&bytes)?;
    let mut s = if restore {
        Stats::from_restore(entry.restore.as_ref()?)
    } else {
        Stats::from_dump(entry.dump.as_ref()?)
    };
    s.values
        .push((Key::ImageBytes, crate::paths::image_bytes_at(dir, log_name)));
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for k in Key::ALL {
            assert_eq!(Key::from_u32(k as u32), Some(k));
            assert!(!k.name().is_empty());
        }
        assert_eq!(Key::from_u32(0), None);
    }

    #[test]
    fn decodes_image_framing() {
        let e = StatsEntry {
            dump: Some(DumpStatsEntry {
                frozen_time: Some(42),
                pages_written: Some(7),
                ..Default::default()
            }),
            restore: None,
        };
        let body = e.encode_to_vec();
        let mut img = vec![0u8; 8];
        img.extend_from_slice(&(body.len() as u32).to_le_bytes());
        img.extend_from_slice(&body);
        let d = decode_image(&img).unwrap();
        let s = Stats::from_dump(d.dump.as_ref().unwrap());
        assert_eq!(s.get(Key::FrozenTimeUs), Some(42));
        assert_eq!(s.get(Key::PagesWritten), Some(7));
        assert_eq!(s.get(Key::FreezingTimeUs), None);
        assert!(decode_image(&img[..10]).is_none());
    }
}
