package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// madeCgroups tracks the cgroups a foreground container restore creates, so that they are
// removed once the container has exited, as runc restore (without -d) destroys its
// container's cgroups: the restore makes them (CRIU creates the container's cgroups when they
// are missing) and nobody else knows them.
type madeCgroups struct {
	missing map[string]bool // cgroup directories that did not exist before the restore
}

// cgroupMounts lists the mount points of the host's cgroup hierarchies with their roots,
// keyed by the controllers as /proc/PID/cgroup names them ("" for cgroup2).
func cgroupMounts() map[string]string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		pre, post, ok := strings.Cut(s.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 || fields[3] != "/" {
			continue
		}
		switch tail[0] {
		case "cgroup2":
			out[""] = fields[4]
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(tail[2], ",") {
				if o == "rw" || o == "ro" || strings.HasPrefix(o, "release_agent") || o == "clone_children" ||
					o == "noprefix" || o == "xattr" || o == "cpuset_v2_mode" {
					continue
				}
				ctrls = append(ctrls, o)
			}
			out[strings.Join(ctrls, ",")] = fields[4]
		}
	}
	return out
}

// beforeContainerRestore notes which of the cgroups config.json's linux.cgroupsPath names do
// not exist yet. Nothing is tracked without a cgroupsPath that is a path (a systemd
// slice:prefix:name is left to systemd).
func beforeContainerRestore(bundle string) *madeCgroups {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil
	}
	var spec struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	if json.Unmarshal(b, &spec) != nil || !strings.HasPrefix(spec.Linux.CgroupsPath, "/") ||
		filepath.Clean(spec.Linux.CgroupsPath) == "/" {
		return nil
	}
	m := &madeCgroups{missing: map[string]bool{}}
	for _, mp := range cgroupMounts() {
		dir := filepath.Join(mp, spec.Linux.CgroupsPath)
		// The topmost missing directory and everything under it: CRIU makes the parents too.
		for d := dir; d != mp && d != "/"; d = filepath.Dir(d) {
			if _, err := os.Stat(d); err == nil {
				break
			}
			m.missing[d] = true
		}
	}
	return m
}

// remove removes, once the container has exited, the cgroups of the restored init (read at
// restore time in initCgroups) that the restore made; a cgroup that still holds a process
// stays.
func (m *madeCgroups) remove(initCgroups []string) {
	if m == nil {
		return
	}
	var dirs []string
	for _, d := range initCgroups {
		for ; m.missing[d]; d = filepath.Dir(d) {
			dirs = append(dirs, d)
		}
	}
	// Deepest first. The init's end kills the rest of its pid namespace, which takes the
	// kernel a moment: a cgroup still busy is tried again for up to a second.
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for try := 0; try < 100 && len(dirs) > 0; try++ {
		if try > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		var busy []string
		for _, d := range dirs {
			if err := os.Remove(d); errors.Is(err, syscall.EBUSY) {
				busy = append(busy, d)
			}
		}
		dirs = busy
	}
}

// cgroupDirs lists the host directories of the cgroups process pid is in.
func cgroupDirs(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil
	}
	mounts := cgroupMounts()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if mp, ok := mounts[parts[1]]; ok && parts[2] != "/" {
			out = append(out, filepath.Join(mp, parts[2]))
		}
	}
	return out
}
