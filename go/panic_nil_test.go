package ckpt

import (
	"path/filepath"
	"testing"
)

// nilPanicker panics with a nil value, as `panic(err)` does when err is nil.
type nilPanicker struct{ NoNotifications }

func (nilPanicker) PreDump() error {
	var err error
	panic(err)
}

// A method's panic goes on in the caller as a panic, whatever its value: a deferred recover
// in the caller stops it, as it stops a panic(nil) of the caller's own (before Go 1.21 recover
// returns nil for it). It was taken for runtime.Goexit, which no recover stops: the calling
// goroutine was ended, and a main goroutine's program with it.
func TestNilPanicInCallbackIsAPanic(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	resumed := make(chan bool)
	go func() {
		after := false
		defer func() { resumed <- after }()
		func() {
			defer func() { _ = recover() }()
			_, _ = Checkpoint(w.pid(), &Options{ImagesDirectory: filepath.Join(dir, "img"), Notify: nilPanicker{}})
			t.Error("Checkpoint returned although the callback panicked")
		}()
		after = true
	}()
	if !<-resumed {
		t.Fatal("the caller's recover did not stop the callback's panic(nil): its goroutine was ended as by runtime.Goexit")
	}
	// The dump was aborted at pre-dump: the tree, without LeaveRunning, runs on.
	w.waitAbove(t, w.value())
}
