package ckpt

import (
	"os"
	"path/filepath"
	"testing"
)

// exportedCounter checkpoints a counter started in dir (left running) into dir/images and
// exports those images, uncompressed and named name, with a minimal spec to dir/ckpt.tar. It
// returns the images directory and the archive.
func exportedCounter(t *testing.T, dir, name string) (images, archive string) {
	t.Helper()
	w := startCounter(t, dir)
	images = filepath.Join(dir, "images")
	if _, err := Checkpoint(w.pid(), &Options{ImagesDirectory: images, LeaveRunning: true}); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	spec := filepath.Join(dir, "config.json")
	if err := os.WriteFile(spec, []byte(`{"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	archive = filepath.Join(dir, "ckpt.tar")
	if err := ExportArchive(images, archive, &ArchiveOptions{Name: name, Compression: "none", SpecPath: spec}); err != nil {
		t.Fatalf("ExportArchive: %v", err)
	}
	return images, archive
}
