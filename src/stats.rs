//! `ckpt_stats`: CRIU's statistics as key/value pairs, so new counters never break the ABI.

use std::ffi::{CString, c_char};
use std::os::unix::ffi::OsStrExt;

use super::{
    CKPT_ERR_INVALID_ARGUMENT, CKPT_ERR_NOT_FOUND, CKPT_ERR_NULL_ARGUMENT, CKPT_OK, ckpt_status,
    put, take,
};
use ckpt::{StatKey as Key, Stats};

/// Identifies one statistic. Stable numbers; times are in microseconds as CRIU records them.
pub type ckpt_stat_key = u32;

/// Dump: time spent freezing the tree.
pub const CKPT_STAT_FREEZING_TIME_US: ckpt_stat_key = 1;
/// Dump: time the tree stayed frozen.
pub const CKPT_STAT_FROZEN_TIME_US: ckpt_stat_key = 2;
/// Dump: time spent collecting memory.
pub const CKPT_STAT_MEMDUMP_TIME_US: ckpt_stat_key = 3;
/// Dump: time spent writing memory.
pub const CKPT_STAT_MEMWRITE_TIME_US: ckpt_stat_key = 4;
/// Dump: pages scanned.
pub const CKPT_STAT_PAGES_SCANNED: ckpt_stat_key = 5;
/// Dump: pages skipped because the parent images hold them.
pub const CKPT_STAT_PAGES_SKIPPED_PARENT: ckpt_stat_key = 6;
/// Dump: pages written.
pub const CKPT_STAT_PAGES_WRITTEN: ckpt_stat_key = 7;
/// Dump: time spent resolving inotify names.
pub const CKPT_STAT_IRMAP_RESOLVE_US: ckpt_stat_key = 8;
/// Dump: pages left for lazy restore.
pub const CKPT_STAT_PAGES_LAZY: ckpt_stat_key = 9;
/// Dump: page pipes used.
pub const CKPT_STAT_PAGE_PIPES: ckpt_stat_key = 10;
/// Dump: page pipe buffers used.
pub const CKPT_STAT_PAGE_PIPE_BUFS: ckpt_stat_key = 11;
/// Dump: shared memory pages scanned.
pub const CKPT_STAT_SHPAGES_SCANNED: ckpt_stat_key = 12;
/// Dump: shared memory pages skipped thanks to the parent.
pub const CKPT_STAT_SHPAGES_SKIPPED_PARENT: ckpt_stat_key = 13;
/// Dump: shared memory pages written.
pub const CKPT_STAT_SHPAGES_WRITTEN: ckpt_stat_key = 14;
/// Restore: pages compared.
pub const CKPT_STAT_PAGES_COMPARED: ckpt_stat_key = 32;
/// Restore: pages skipped thanks to copy-on-write.
pub const CKPT_STAT_PAGES_SKIPPED_COW: ckpt_stat_key = 33;
/// Restore: time spent forking the tree.
pub const CKPT_STAT_FORKING_TIME_US: ckpt_stat_key = 34;
/// Restore: time spent restoring.
pub const CKPT_STAT_RESTORE_TIME_US: ckpt_stat_key = 35;
/// Restore: pages restored.
pub const CKPT_STAT_PAGES_RESTORED: ckpt_stat_key = 36;
/// Bytes of the images in the image directory after the operation (counted by ckpt): its
/// regular files except the logs (the one ckpt named and every `*.log`) and `stats-restore`.
pub const CKPT_STAT_IMAGE_BYTES: ckpt_stat_key = 64;

/// Statistics of one dump or restore. Owned by the caller; free with `ckpt_stats_free`.
/// A container restore's also lists the cgroups made for it (`ckpt_stats_made_cgroup_at`).
pub struct ckpt_stats {
    pub(crate) inner: Stats,
    /// A container restore's `Restored::made_cgroups`, deepest first.
    made_cgroups: Vec<CString>,
}

impl ckpt_stats {
    pub(crate) fn of(inner: Stats) -> ckpt_stats {
        ckpt_stats {
            inner,
            made_cgroups: vec![],
        }
    }

    /// A restore's statistics with the cgroups made for it; an object without statistics
    /// when CRIU reported none but cgroups were made, so the caller still learns them.
    pub(crate) fn of_restore(r: &ckpt::ops::Restored) -> Option<ckpt_stats> {
        if r.stats.is_none() && r.made_cgroups.is_empty() {
            return None;
        }
        Some(ckpt_stats {
            inner: r.stats.clone().unwrap_or_default(),
            made_cgroups: r
                .made_cgroups
                .iter()
                .filter_map(|p| CString::new(p.as_os_str().as_bytes()).ok())
                .collect(),
        })
    }
}

/// Reads statistic `key` into `*value`. `CKPT_ERR_NOT_FOUND` when CRIU did not report it,
/// `CKPT_ERR_INVALID_ARGUMENT` for a key this library does not know.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_stats_get(
    stats: *const ckpt_stats,
    key: ckpt_stat_key,
    value: *mut u64,
) -> ckpt_status {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        let Some(s) = (unsafe { stats.as_ref() }) else {
            return CKPT_ERR_NULL_ARGUMENT;
        };
        if value.is_null() {
            return CKPT_ERR_NULL_ARGUMENT;
        }
        let Some(k) = Key::from_u32(key) else {
            return CKPT_ERR_INVALID_ARGUMENT;
        };
        match s.inner.get(k) {
            Some(v) => {
                // SAFETY: checked non-NULL; valid for writes per the contract.
                unsafe { put(value, v) };
                CKPT_OK
            }
            None => CKPT_ERR_NOT_FOUND,
        }
    }
}

/// How many statistics `stats` holds (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_stats_count(stats: *const ckpt_stats) -> usize {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        unsafe { stats.as_ref() }.map_or(0, |s| s.inner.values.len())
    }
}

/// The key and value at position `index` (0 .. count-1), for listing every statistic. `key` and
/// `value` may each be NULL. `CKPT_ERR_NOT_FOUND` for an index at or past the count, with both
/// left untouched; `CKPT_ERR_NULL_ARGUMENT` for NULL `stats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_stats_at(
    stats: *const ckpt_stats,
    index: usize,
    key: *mut ckpt_stat_key,
    value: *mut u64,
) -> ckpt_status {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        let Some(s) = (unsafe { stats.as_ref() }) else {
            return CKPT_ERR_NULL_ARGUMENT;
        };
        match s.inner.values.get(index) {
            Some((k, v)) => {
                // SAFETY: NULL or valid for writes, per the contract.
                unsafe {
                    put(key, *k as ckpt_stat_key);
                    put(value, *v);
                }
                CKPT_OK
            }
            None => CKPT_ERR_NOT_FOUND,
        }
    }
}

/// How many cgroup directories a container restore (`ckpt_container_restore`,
/// `ckpt_archive_restore`) created, by ckpt or CRIU (0 for NULL, for every other operation,
/// and when every cgroup existed before).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_stats_made_cgroup_count(stats: *const ckpt_stats) -> usize {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        unsafe { stats.as_ref() }.map_or(0, |s| s.made_cgroups.len())
    }
}

/// The cgroup directory at position `index` (0 .. count-1) among those created for a container
/// restore, which the caller removes (rmdir, in this order) after the container is gone,
/// deepest first: each comes after every one below it. `*path` receives an absolute host path
/// owned by `stats`, valid until `ckpt_stats_free`. `CKPT_ERR_NOT_FOUND` for an index at or
/// past the count, `CKPT_ERR_NULL_ARGUMENT` for NULL `stats` or `path`; `*path` is NULL after
/// any failure (when `path` is not NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_stats_made_cgroup_at(
    stats: *const ckpt_stats,
    index: usize,
    path: *mut *const c_char,
) -> ckpt_status {
    boundary! {
        // SAFETY: NULL or valid for writes, per the contract.
        unsafe { put(path, std::ptr::null()) };
        // SAFETY: NULL or live, per the contract.
        let Some(s) = (unsafe { stats.as_ref() }) else {
            return CKPT_ERR_NULL_ARGUMENT;
        };
        if path.is_null() {
            return CKPT_ERR_NULL_ARGUMENT;
        }
        match s.made_cgroups.get(index) {
            Some(p) => {
                // SAFETY: checked non-NULL; valid for writes per the contract.
                unsafe { put(path, p.as_ptr()) };
                CKPT_OK
            }
            None => CKPT_ERR_NOT_FOUND,
        }
    }
}

/// The snake_case name of `key` ("frozen_time_us"), or NULL for an unknown key. Static.
#[unsafe(no_mangle)]
pub extern "C" fn ckpt_stat_name(key: ckpt_stat_key) -> *const c_char {
    boundary! {
        Key::from_u32(key).map_or(std::ptr::null(), |k| k.name_c().as_ptr().cast())
    }
}

/// What happened to the workload, as `CKPT_OUTCOME_*` bits (0 for NULL): a successful dump
/// without leave-running has `CKPT_OUTCOME_TREE_KILLED`, and `CKPT_OUTCOME_DEADLINE_PASSED`
/// when CRIU finished after the operation timeout, past its point of no return.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_stats_outcome(stats: *const ckpt_stats) -> super::ckpt_outcome {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        unsafe { stats.as_ref() }.map_or(0, |s| s.inner.outcome)
    }
}

/// Frees statistics. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_stats_free(stats: *mut ckpt_stats) {
    boundary! {
        // SAFETY: per the contract, `stats` came from ckpt and is freed once.
        unsafe { take(stats) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_keys() {
        let c = [
            CKPT_STAT_FREEZING_TIME_US,
            CKPT_STAT_FROZEN_TIME_US,
            CKPT_STAT_MEMDUMP_TIME_US,
            CKPT_STAT_MEMWRITE_TIME_US,
            CKPT_STAT_PAGES_SCANNED,
            CKPT_STAT_PAGES_SKIPPED_PARENT,
            CKPT_STAT_PAGES_WRITTEN,
            CKPT_STAT_IRMAP_RESOLVE_US,
            CKPT_STAT_PAGES_LAZY,
            CKPT_STAT_PAGE_PIPES,
            CKPT_STAT_PAGE_PIPE_BUFS,
            CKPT_STAT_SHPAGES_SCANNED,
            CKPT_STAT_SHPAGES_SKIPPED_PARENT,
            CKPT_STAT_SHPAGES_WRITTEN,
            CKPT_STAT_PAGES_COMPARED,
            CKPT_STAT_PAGES_SKIPPED_COW,
            CKPT_STAT_FORKING_TIME_US,
            CKPT_STAT_RESTORE_TIME_US,
            CKPT_STAT_PAGES_RESTORED,
            CKPT_STAT_IMAGE_BYTES,
        ];
        for (k, n) in Key::ALL.iter().zip(c) {
            assert_eq!(*k as u32, n);
        }
    }
}
