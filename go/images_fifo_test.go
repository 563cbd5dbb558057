package ckpt

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A FIFO as pstree.img in the images: the library's own read of the pids to wait for blocked
// in open() for ever, past the Timeout. Now the Timeout ends the restore.
func TestPstreeFifoDoesNotOutlastTheTimeout(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	if err := os.Mkdir(img, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(img, "inventory.img"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(img, "pstree.img")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // lets a call still blocked in open() go
		if fd, err := syscall.Open(fifo, syscall.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			syscall.Close(fd)
		}
	})
	done := make(chan error, 1)
	go func() {
		_, _, err := Restore(&Options{ImagesDirectory: img, Timeout: time.Second, RestoreWait: time.Second})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("restoring from a FIFO pstree.img succeeded")
		}
		t.Logf("refused: %v", err)
	case <-time.After(6 * time.Second):
		t.Fatal("Restore with a FIFO pstree.img still blocks 5 s after its 1 s Timeout")
	}
}
