package ckpt

/*
#cgo pkg-config: ckpt
#include <ckpt.h>
*/
import "C"

import "time"

// DumpStats is what CRIU reported about a dump or pre-dump (its stats-dump file), plus the
// size of the images. Statistics CRIU did not report are zero.
type DumpStats struct {
	FreezingTime         time.Duration // freezing the tree
	FrozenTime           time.Duration // how long the tree stayed frozen
	MemdumpTime          time.Duration // collecting memory
	MemwriteTime         time.Duration // writing memory
	IrmapResolveTime     time.Duration // resolving inotify watch names
	PagesScanned         uint64
	PagesSkippedParent   uint64 // pages the parent images already hold
	PagesWritten         uint64
	PagesLazy            uint64 // pages left for a lazy restore
	PagePipes            uint64
	PagePipeBufs         uint64
	ShpagesScanned       uint64 // shared memory pages
	ShpagesSkippedParent uint64
	ShpagesWritten       uint64
	ImageBytes           uint64  // bytes of the images in the images directory after the dump (logs not counted)
	Outcome              Outcome // TreeKilled for a dump without leave-running; DeadlinePassed when CRIU finished after the Timeout

	values map[string]uint64
}

// RestoreStats is what CRIU reported about a restore (its stats-restore file), and for a
// container restore the cgroups made for it.
type RestoreStats struct {
	ForkingTime     time.Duration
	RestoreTime     time.Duration
	PagesCompared   uint64
	PagesSkippedCow uint64 // pages shared copy-on-write instead of copied
	PagesRestored   uint64
	ImageBytes      uint64 // bytes of the images in the images directory (logs not counted)

	// MadeCgroups (RestoreContainer, RestoreArchive): the cgroup directories created for
	// this restore (by the library or CRIU), which the caller removes after the container
	// is gone, deepest first (each comes after every one below it). Empty for a process
	// restore and when every cgroup existed before; a failed restore removes them itself.
	MadeCgroups []string

	values map[string]uint64
}

// Values returns every statistic the library reported, by the library's stable names
// ("frozen_time_us", "pages_written", ...), times in microseconds as CRIU records them. It
// includes statistics newer than this package.
func (s *DumpStats) Values() map[string]uint64 { return copyValues(s.values) }

// Values is as for DumpStats.
func (s *RestoreStats) Values() map[string]uint64 { return copyValues(s.values) }

func copyValues(m map[string]uint64) map[string]uint64 {
	c := make(map[string]uint64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func micros(v uint64) time.Duration { return time.Duration(v) * time.Microsecond }

// readStats lists every statistic of s by key; the caller frees s.
func readStats(s *C.ckpt_stats) (map[C.ckpt_stat_key]uint64, map[string]uint64) {
	byKey := map[C.ckpt_stat_key]uint64{}
	byName := map[string]uint64{}
	n := C.ckpt_stats_count(s)
	for i := C.size_t(0); i < n; i++ {
		var k C.ckpt_stat_key
		var v C.uint64_t
		if C.ckpt_stats_at(s, i, &k, &v) != 0 {
			continue
		}
		byKey[k] = uint64(v)
		if name := C.ckpt_stat_name(k); name != nil {
			byName[C.GoString(name)] = uint64(v)
		}
	}
	return byKey, byName
}

func takeDumpStats(s *C.ckpt_stats) *DumpStats {
	if s == nil {
		return &DumpStats{values: map[string]uint64{}}
	}
	defer C.ckpt_stats_free(s)
	return dumpStatsOf(s)
}

// dumpStatsOf reads s, which stays the library's.
func dumpStatsOf(s *C.ckpt_stats) *DumpStats {
	k, names := readStats(s)
	return &DumpStats{
		FreezingTime:         micros(k[C.CKPT_STAT_FREEZING_TIME_US]),
		FrozenTime:           micros(k[C.CKPT_STAT_FROZEN_TIME_US]),
		MemdumpTime:          micros(k[C.CKPT_STAT_MEMDUMP_TIME_US]),
		MemwriteTime:         micros(k[C.CKPT_STAT_MEMWRITE_TIME_US]),
		IrmapResolveTime:     micros(k[C.CKPT_STAT_IRMAP_RESOLVE_US]),
		PagesScanned:         k[C.CKPT_STAT_PAGES_SCANNED],
		PagesSkippedParent:   k[C.CKPT_STAT_PAGES_SKIPPED_PARENT],
		PagesWritten:         k[C.CKPT_STAT_PAGES_WRITTEN],
		PagesLazy:            k[C.CKPT_STAT_PAGES_LAZY],
		PagePipes:            k[C.CKPT_STAT_PAGE_PIPES],
		PagePipeBufs:         k[C.CKPT_STAT_PAGE_PIPE_BUFS],
		ShpagesScanned:       k[C.CKPT_STAT_SHPAGES_SCANNED],
		ShpagesSkippedParent: k[C.CKPT_STAT_SHPAGES_SKIPPED_PARENT],
		ShpagesWritten:       k[C.CKPT_STAT_SHPAGES_WRITTEN],
		ImageBytes:           k[C.CKPT_STAT_IMAGE_BYTES],
		Outcome:              Outcome(C.ckpt_stats_outcome(s)),
		values:               names,
	}
}

func takeRestoreStats(s *C.ckpt_stats) *RestoreStats {
	if s == nil {
		return nil
	}
	defer C.ckpt_stats_free(s)
	k, names := readStats(s)
	var made []string
	for i := C.size_t(0); i < C.ckpt_stats_made_cgroup_count(s); i++ {
		var p *C.char
		if C.ckpt_stats_made_cgroup_at(s, i, &p) == 0 {
			made = append(made, C.GoString(p))
		}
	}
	return &RestoreStats{
		ForkingTime:     micros(k[C.CKPT_STAT_FORKING_TIME_US]),
		RestoreTime:     micros(k[C.CKPT_STAT_RESTORE_TIME_US]),
		PagesCompared:   k[C.CKPT_STAT_PAGES_COMPARED],
		PagesSkippedCow: k[C.CKPT_STAT_PAGES_SKIPPED_COW],
		PagesRestored:   k[C.CKPT_STAT_PAGES_RESTORED],
		ImageBytes:      k[C.CKPT_STAT_IMAGE_BYTES],
		MadeCgroups:     made,
		values:          names,
	}
}
