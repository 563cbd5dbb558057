package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// foreground is a `ckpt restore` without --detach, run in dir, whose restored tree has
// written its pid file.
type foreground struct {
	cmd  *exec.Cmd
	done chan error
	pid  int
}

// startForeground runs ckpt with args (a restore writing pidFile) in dir and waits for the
// restored tree's pid in pidFile.
func startForeground(t *testing.T, dir, pidFile string, args ...string) *foreground {
	t.Helper()
	cmd := exec.Command(ckptBin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if pid, err := atoiFile(pidFile); err == nil && pid >= 1 {
			return &foreground{cmd: cmd, done: done, pid: pid}
		}
		select {
		case err := <-done:
			t.Fatalf("ckpt %v exited (%v) before writing its pid file:\n%s", args, err, stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the pid file did not reach 1; ckpt's stderr so far:\n%s", stderr.String())
		}
	}
}

// killAndWait kills the restored tree with SIGKILL and checks that ckpt (what, in the
// messages) exits as the container did, with 137, within 10 seconds.
func (f *foreground) killAndWait(t *testing.T, what string) {
	t.Helper()
	killTree(t, f.pid)
	select {
	case err := <-f.done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 128+9 {
			t.Errorf("%s of a container killed by SIGKILL: %v, want exit 137", what, err)
		}
	case <-time.After(10 * time.Second):
		_ = f.cmd.Process.Kill()
		t.Fatalf("%s did not exit after the container did", what)
	}
}

// copyRootfs copies the container's root file system to rootfs-copy in its work directory,
// as another host's copy of the image would be; its path.
func (c *runcContainer) copyRootfs(t *testing.T) string {
	t.Helper()
	rootfs := filepath.Join(c.work, "rootfs-copy")
	if out, err := exec.Command("cp", "-a", filepath.Join(c.bundle, "rootfs"), rootfs).CombinedOutput(); err != nil {
		t.Fatalf("cp rootfs: %v %s", err, out)
	}
	return rootfs
}
