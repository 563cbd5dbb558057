package ckpt

import (
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// counting is one Notifications value shared by every goroutine: the race detector checks
// that the package calls it safely.
type counting struct {
	NoNotifications
	preDumps, postRestores atomic.Int32
}

func (c *counting) PreDump() error            { c.preDumps.Add(1); return nil }
func (c *counting) PostRestore(pid int) error { c.postRestores.Add(1); return nil }

func TestEightGoroutinesCheckpointAndRestoreAtOnce(t *testing.T) {
	const n = 8
	dir := t.TempDir()
	fds := openFds(t)
	notes := &counting{}
	workloads := make([]*counter, n)
	for i := range workloads {
		workloads[i] = startCounter(t, filepath.Join(dir, strconv.Itoa(i)))
	}
	imagesOf := func(i int) string { return filepath.Join(dir, strconv.Itoa(i), "images") }

	var wg sync.WaitGroup
	errs := make([]error, n)
	stats := make([]*DumpStats, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			stats[i], errs[i] = Checkpoint(workloads[i].pid(), &Options{ImagesDirectory: imagesOf(i), Notify: notes})
		}(i)
	}
	wg.Wait()
	before := make([]int, n)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("checkpoint %d: %v", i, err)
		}
		if stats[i].PagesWritten == 0 {
			t.Errorf("checkpoint %d wrote no pages: %+v", i, stats[i])
		}
		workloads[i].reapDumped(t)
		before[i] = workloads[i].value()
	}
	if got := notes.preDumps.Load(); got != n {
		t.Errorf("%d pre-dump notifications for %d dumps", got, n)
	}

	pids := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pids[i], _, errs[i] = Restore(&Options{ImagesDirectory: imagesOf(i), Notify: notes})
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("restore %d: %v", i, err)
			continue
		}
		defer killChild(pids[i])
		if pids[i] != workloads[i].pid() {
			t.Errorf("restore %d: pid %d, want %d", i, pids[i], workloads[i].pid())
		}
		after := workloads[i].waitAbove(t, before[i])
		t.Logf("process %d (pid %d): counter %d at the checkpoint, %d after the restore", i, pids[i], before[i], after)
	}
	if got := notes.postRestores.Load(); got != n {
		t.Errorf("%d post-restore notifications for %d restores", got, n)
	}
	if got := openFds(t); got != fds {
		t.Errorf("%d fds open before, %d after", fds, got)
	}
}
