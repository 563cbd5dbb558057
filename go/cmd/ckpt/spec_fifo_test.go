package main

import (
	"bytes"
	gocontext "context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO given as --spec: `ckpt checkpoint --export` refuses it in one line before the
// checkpoint instead of blocking for ever in the command's own check of the spec.
func TestExportSpecFifoIsRefusedNotWaitedOn(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.json")
	if err := syscall.Mkfifo(spec, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := gocontext.WithTimeout(gocontext.Background(), 5*time.Second)
	defer cancel()
	// pid 1 is never dumped: the spec is refused first, and the library refuses an ancestor.
	cmd := exec.CommandContext(ctx, ckptBin, "checkpoint", "--image-path", filepath.Join(dir, "img"),
		"--export", filepath.Join(dir, "a.tar"), "--spec", spec, "1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ckpt checkpoint blocked on a FIFO --spec for 5 s")
	}
	if err == nil || !strings.Contains(stderr.String(), "not a regular file") {
		t.Fatalf("ckpt checkpoint --spec FIFO: %v, stderr %q", err, stderr.String())
	}
}
