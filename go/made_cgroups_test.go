package ckpt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A container restore's RestoreStats.MadeCgroups lists the cgroup directories made for it,
// deepest first: every hierarchy's cgroup of the container (runc's delete removed them after
// the checkpoint), which removing in that order clears once the container is gone.
func TestRestoreContainerReportsTheCgroupsItMade(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("NOT EXERCISED: made cgroups of a container restore (needs root)")
	}
	r := newRuncBundle(t, "leftovers-made")
	var restored int
	t.Cleanup(func() {
		if restored > 0 {
			killChild(restored)
		}
	})
	counter, err := r.run()
	if err != nil {
		t.Fatalf("runc run: %v", err)
	}
	waitCounterAbove(t, counter, 2)
	c := &Container{Runtime: "runc", RuntimeRoot: r.state, ID: r.tag}
	o := &Options{ImagesDirectory: filepath.Join(r.work, "img")}
	if _, err := CheckpointContainer(c, o); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	r.runc("delete", "-f", r.tag)
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/" + r.tag); len(left) > 0 {
		t.Fatalf("runc delete left %v", left)
	}
	pid, st, err := RestoreContainer(&Container{Bundle: r.bundle}, o)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	restored = pid
	waitCounterAbove(t, counter, 0)
	if st == nil {
		t.Fatal("no statistics")
	}
	made := st.MadeCgroups
	t.Logf("made: %v", made)
	has := map[string]bool{}
	for i, d := range made {
		if !strings.HasPrefix(d, "/sys/fs/cgroup/") || !strings.Contains(d, r.tag) {
			t.Errorf("%s is not the container's", d)
		}
		for _, later := range made[i+1:] {
			if strings.HasPrefix(later, d+"/") {
				t.Errorf("%s comes after %s, which holds it", later, d)
			}
		}
		has[d] = true
	}
	for _, h := range []string{"memory", "pids", "freezer", "cpuset"} {
		if d := filepath.Join("/sys/fs/cgroup", h, r.tag); !has[d] {
			t.Errorf("%s not reported", d)
		}
	}
	killChild(pid)
	restored = 0
	left := made
	for end := time.Now().Add(5 * time.Second); len(left) > 0 && time.Now().Before(end); {
		var busy []string
		for _, d := range left {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				busy = append(busy, d)
			}
		}
		if left = busy; len(left) > 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(left) > 0 {
		t.Errorf("not removable in the order given: %v", left)
	}
	if found, _ := filepath.Glob("/sys/fs/cgroup/*/" + r.tag); len(found) > 0 {
		t.Errorf("cgroups left: %v", found)
	}
}
