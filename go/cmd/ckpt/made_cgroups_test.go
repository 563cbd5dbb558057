package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// A container restored in the foreground from an archive under a new name: once it has
// exited, the cgroups the restore made (named by the new id, which only the library knew) are
// removed, as after a foreground --bundle restore. Before, they stayed.
func TestContainerForegroundImportRemovesItsCgroups(t *testing.T) {
	c := startRuncContainer(t, "fgimp")
	archive := filepath.Join(c.work, "c.tar")
	r := runCkpt(t, c.work, "checkpoint", "--runtime", "runc", "--runtime-root", c.state,
		"--image-path", filepath.Join(c.work, "img"), "--leave-running", "--export", archive, c.id)
	if r.code != 0 {
		t.Fatalf("checkpoint --export: exit %d\n%s", r.code, r.stderr)
	}
	rootfs := c.copyRootfs(t)
	importDir := filepath.Join(c.work, "imported")
	pidFile := filepath.Join(c.work, "restored.pid")
	fg := startForeground(t, c.work, pidFile, "restore", "--import", archive, "--rootfs", rootfs, "--import-dir", importDir,
		"--name", c.id+"-fg", "--pid-file", pidFile)
	var spec struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	b, _ := os.ReadFile(filepath.Join(importDir, "config.json"))
	if err := json.Unmarshal(b, &spec); err != nil || len(filepath.Base(spec.Linux.CgroupsPath)) < 12 {
		t.Fatalf("the imported spec's cgroupsPath: %q (%v)", spec.Linux.CgroupsPath, err)
	}
	newID := filepath.Base(spec.Linux.CgroupsPath)
	t.Cleanup(func() { removeCgroups(newID) })
	if len(cgroupsNamed(newID)) == 0 {
		t.Errorf("the restored copy has no cgroup named %s", newID)
	}
	fg.killAndWait(t, "ckpt restore --import")
	if left := cgroupsNamed(newID); len(left) > 0 {
		t.Errorf("cgroups left after the container exited: %v", left)
	}
}
