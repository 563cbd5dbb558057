package ckpt

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A FIFO where a file is read (the archive, the spec, a bundle's config.json) is refused at
// once, as the library refuses one planted as a runtime's state file, instead of blocking the
// call for ever in open().
func TestArchiveFifosAreRefusedNotWaitedOn(t *testing.T) {
	dir := t.TempDir()
	fifo := func(name string) string {
		p := filepath.Join(dir, name)
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		// A call still blocked in open() is let go when the test ends.
		t.Cleanup(func() {
			if fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				syscall.Close(fd)
			}
		})
		return p
	}
	img := filepath.Join(dir, "img")
	bundle := filepath.Join(dir, "bundle")
	for _, d := range []string{img, bundle} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"inventory.img", "pstree.img"} {
		if err := os.WriteFile(filepath.Join(img, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	archive, spec := fifo("archive.tar"), fifo("spec.json")
	if err := syscall.Mkfifo(filepath.Join(bundle, "config.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"InspectArchive": func() error { _, err := InspectArchive(archive, nil); return err },
		"ImportArchive":  func() error { _, err := ImportArchive(archive, filepath.Join(dir, "imported"), nil); return err },
		"ExportArchive": func() error {
			return ExportArchive(img, filepath.Join(dir, "out1.tar"), &ArchiveOptions{SpecPath: spec})
		},
		"ExportContainerArchive": func() error {
			return ExportContainerArchive(&Container{Bundle: bundle}, img, filepath.Join(dir, "out2.tar"), nil)
		},
	}
	for name, call := range calls {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s with a FIFO succeeded", name)
			}
			t.Logf("%s: %v", name, err)
		case <-time.After(3 * time.Second):
			t.Errorf("%s still blocks on a FIFO after 3 s", name)
		}
	}
}
