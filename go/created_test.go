package ckpt

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// A container created but not started, named by its bundle and the pid its runtime reports
// (not by the runtime's id, which the runtime's state refuses already): the pid is still the
// runtime's own init, holding exec.fifo until `start`. The checkpoint is refused with
// ErrInvalidState before CRIU runs (CRIU failed with "Can't lookup mount=N for fd=-3 path=/"),
// and the container can still be started.
func TestCreatedContainerByBundleAndPid(t *testing.T) {
	r := newRuncBundle(t, "created")
	bundle, rootfs, work, tag, runc, status := r.bundle, r.rootfs, r.work, r.tag, r.runc, r.status
	if _, err := runc("create", "--bundle", bundle, tag); err != nil {
		t.Fatalf("runc create: %v", err)
	}
	st, pid := status()
	if st != "created" || pid <= 0 {
		t.Fatalf("runc state: %s pid %d", st, pid)
	}
	images := filepath.Join(work, "img")
	_, err := CheckpointContainer(&Container{Bundle: bundle, Pid: pid}, &Options{ImagesDirectory: images})
	t.Logf("created, by bundle and pid: %v", err)
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrInvalidState || !strings.Contains(e.Message, "not started") {
		t.Errorf("checkpoint of a created container: %v, want ErrInvalidState saying it was not started", err)
	}
	if e != nil && e.LogPath != "" {
		t.Errorf("CRIU ran: %s", e.LogPath)
	}
	if st, _ := status(); st != "created" {
		t.Errorf("the container is %s after the refusal", st)
	}
	if _, err := runc("start", tag); err != nil {
		t.Fatalf("runc start after the refusal: %v", err)
	}
	waitCounterAbove(t, filepath.Join(rootfs, "counter"), 1)
}
