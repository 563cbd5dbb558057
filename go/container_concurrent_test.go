package ckpt

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// counterAbove waits up to 5 s for the counter at path to pass n; usable from any goroutine.
func counterAbove(path string, n int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if readCounter(path) > n {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// Three runc containers, each started, checkpointed three times with leave-running, then
// checkpointed (it stops) and restored by a goroutine of its own, all at once: while one
// goroutine checkpoints, the others fork runc and criu. Every call succeeds and every
// container counts on.
func TestThreeContainersFromGoroutines(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("NOT EXERCISED: containers from goroutines (needs root)")
	}
	const n = 3
	bundles := make([]*runcBundle, n)
	for i := range bundles {
		bundles[i] = newRuncBundle(t, fmt.Sprintf("probe-soak-g%d", i))
	}
	restored := make([]int, n)
	t.Cleanup(func() { // before the bundles' own cleanups
		for _, p := range restored {
			if p > 0 {
				killChild(p)
			}
		}
	})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := bundles[i]
			fail := func(format string, a ...any) { errs[i] = fmt.Errorf(r.tag+": "+format, a...) }
			counter, err := r.run()
			if err != nil {
				fail("runc run: %v", err)
				return
			}
			if !counterAbove(counter, 3) {
				fail("does not count")
				return
			}
			c := &Container{Runtime: "runc", RuntimeRoot: r.state, ID: r.tag}
			for k := 0; k < 3; k++ {
				o := &Options{ImagesDirectory: filepath.Join(r.work, fmt.Sprintf("lr-%d", k)), LeaveRunning: true, Timeout: time.Minute}
				if _, err := CheckpointContainer(c, o); err != nil {
					fail("leave-running checkpoint %d: %v", k, err)
					return
				}
			}
			o := &Options{ImagesDirectory: filepath.Join(r.work, "img"), Timeout: time.Minute}
			if _, err := CheckpointContainer(c, o); err != nil {
				fail("checkpoint: %v", err)
				return
			}
			atDump := readCounter(counter)
			r.runc("delete", "-f", r.tag)
			pid, _, err := RestoreContainer(&Container{Bundle: r.bundle}, o)
			if err != nil {
				fail("restore: %v", err)
				return
			}
			restored[i] = pid
			if !counterAbove(counter, atDump) {
				fail("does not count on after restore (dumped at %d)", atDump)
			}
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
