package main

import (
	"bytes"
	gocontext "context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO planted as runc's state.json: `ckpt checkpoint --runtime runc` is refused with the
// library's message instead of blocking for ever in the command's own read of the init pid.
func TestRuntimeStateFifoIsRefusedNotWaitedOn(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "c1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "c1", "state.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := gocontext.WithTimeout(gocontext.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ckptBin, "checkpoint", "--runtime", "runc", "--runtime-root", root,
		"--image-path", filepath.Join(root, "img"), "c1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ckpt checkpoint blocked on a FIFO state file for 20 s")
	}
	if err == nil {
		t.Fatalf("ckpt checkpoint of a FIFO state file succeeded")
	}
	if !strings.Contains(stderr.String(), "a FIFO, not a regular file") {
		t.Errorf("stderr does not name the FIFO: %s", stderr.String())
	}
}
