package ckpt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// RestoreArchiveContext under a context already ended: the restore is refused with
// ErrCancelled (the chain holding context.Canceled), and the bundle directory it would have
// become is removed, as on any failed RestoreArchive.
func TestRestoreArchiveContextEnded(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	images := filepath.Join(dir, "images")
	if _, err := Checkpoint(w.pid(), &Options{ImagesDirectory: images, LeaveRunning: true}); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	spec := filepath.Join(dir, "config.json")
	if err := os.WriteFile(spec, []byte(`{"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "ckpt.tar")
	if err := ExportArchive(images, archive, &ArchiveOptions{Name: "cmd-ctx", Compression: "none", SpecPath: spec}); err != nil {
		t.Fatalf("ExportArchive: %v", err)
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "bundle")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, _, err := RestoreArchiveContext(ctx, archive, bundle, &ArchiveOptions{NewRootfs: rootfs}, nil,
		&Options{})
	t.Logf("ended context: %v", err)
	if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("RestoreArchiveContext with an ended context: %v, want ErrCancelled and context.Canceled", err)
	}
	if _, serr := os.Stat(bundle); !os.IsNotExist(serr) {
		t.Errorf("the bundle directory is left: %v", serr)
	}
}
