package ckpt

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// blocker's PostDump blocks until release is closed: a hook stuck on something.
type blocker struct {
	NoNotifications
	release chan struct{}
}

func (b blocker) PostDump() error { <-b.release; return nil }

// A method that never returns must not hold the operation past its context or its Timeout:
// the tree would stay frozen for as long. The call is aborted as for a late method, and
// returns; the tree runs on.
func TestBlockedCallbackDoesNotOutlastTheCall(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		o    Options
		want error
	}{
		{"context deadline", ctx, Options{}, context.DeadlineExceeded},
		{"Timeout", context.Background(), Options{Timeout: 300 * time.Millisecond}, ErrTimeout},
	} {
		o := c.o
		o.ImagesDirectory, o.LeaveRunning, o.Notify = filepath.Join(dir, c.name), true, blocker{release: release}
		done := make(chan error, 1)
		go func() {
			_, err := CheckpointContext(c.ctx, w.pid(), &o)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, c.want) {
				t.Fatalf("%s: %v, want %v", c.name, err, c.want)
			}
			t.Logf("%s: %v", c.name, err)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the call still waits for the blocked method after 5 s", c.name)
		}
		w.waitAbove(t, w.value())
	}
}
