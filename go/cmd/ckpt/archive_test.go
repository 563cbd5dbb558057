package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ckpt checkpoint --export writes an archive ckpt inspect reads (text and JSON), and ckpt
// restore --import --name restores the tree from it; the counter carries on.
func TestArchiveExportInspectImport(t *testing.T) {
	dir := t.TempDir()
	w := startWorkload(t, dir, 0)
	name := "ckpt-archive-" + strconv.Itoa(os.Getpid()) + "-go"
	archive := filepath.Join(dir, "tree.tar.zst")
	r := runCkpt(t, dir, "checkpoint", "--export", archive, "--name", name, strconv.Itoa(w.pid()))
	if r.code != 0 {
		t.Fatalf("checkpoint --export: exit %d\n%s", r.code, r.stderr)
	}
	w.reapDumped(t)
	before := w.value()

	r = runCkpt(t, dir, "inspect", archive)
	if r.code != 0 || !strings.Contains(r.stdout, name) || !strings.Contains(r.stdout, "] sh") {
		t.Fatalf("inspect: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("ckpt inspect:\n%s", r.stdout)
	r = runCkpt(t, dir, "inspect", "--format", "json", archive)
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["name"] != name || v["engine"] != "Podman" {
		t.Fatalf("inspect --format json: %v %q", err, r.stdout)
	}
	r = runCkpt(t, dir, "inspect", "--format", "yaml", archive)
	if r.code != 1 {
		t.Errorf("inspect --format yaml: exit %d, want 1 (as every failure, like runc)", r.code)
	}
	bad := filepath.Join(dir, "bad.tar")
	if err := os.WriteFile(bad, []byte("not an archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCkpt(t, dir, "inspect", bad)
	if r.code != 1 || !strings.Contains(r.stderr, "not a checkpoint archive") {
		t.Errorf("inspect of garbage: exit %d, %q", r.code, r.stderr)
	}

	pidFile := filepath.Join(dir, "pid")
	r = runCkpt(t, dir, "restore", "--import", archive, "--name", name+"-new", "--detach", "--pid-file", pidFile)
	if r.code != 0 {
		t.Fatalf("restore --import: exit %d\n%s", r.code, r.stderr)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid != w.pid() {
		t.Fatalf("restored pid %d, want %d (%s)", pid, w.pid(), r.stderr)
	}
	defer killTree(t, pid)
	if !strings.Contains(r.stderr, name+"-new") {
		t.Errorf("restore --import does not name the new container: %q", r.stderr)
	}
	after := w.waitAbove(t, before)
	t.Logf("counter %d at the checkpoint, %d after restore --import", before, after)
	if _, err := os.Stat(archive + ".d/checkpoint/inventory.img"); err != nil {
		t.Errorf("the import directory: %v", err)
	}
}

// ckpt restore --import's container flags: each misuse is one clear line before anything is
// written, and a namespace path absent here is refused before the archive is even opened.
func TestArchiveRestoreContainerFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "a.tar.zst")
	if err := os.WriteFile(archive, []byte("not an archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	imp := filepath.Join(dir, "bundle")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"restore", "--rootfs", dir}, "go with --import"},
		{[]string{"restore", "--namespace", "network=/x"}, "go with --import"},
		{[]string{"restore", "--import", archive, "--rootfs", dir, "--rootfs-image", dir}, "exclude each other"},
		{[]string{"restore", "--import", archive, "--namespace", "network=/x"}, "--namespace goes with --rootfs"},
		{[]string{"restore", "--import", archive, "--rootfs-image", dir, "--namespace", "network"}, "expected TYPE=PATH"},
		{[]string{"restore", "--import", archive, "--import-dir", imp, "--rootfs-image", dir,
			"--namespace", "network=" + filepath.Join(dir, "no-netns")}, "absent here"},
		{[]string{"restore", "--import", archive, "--import-dir", imp, "--rootfs-image", filepath.Join(dir, "none")},
			"is not a directory"},
	} {
		r := runCkpt(t, dir, c.args...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want 1 and %q", c.args, r.code, r.stderr, c.want)
		}
		if _, err := os.Stat(imp); err == nil {
			t.Fatalf("%v left %s behind", c.args, imp)
		}
	}
}
