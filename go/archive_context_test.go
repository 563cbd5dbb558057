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
	_, archive := exportedCounter(t, dir, "cmd-ctx")
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
