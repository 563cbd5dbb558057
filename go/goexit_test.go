package ckpt

import (
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

type goexiter struct{ NoNotifications }

// PostDump ends its goroutine as t.Fatal or t.FailNow in a callback would.
func (goexiter) PostDump() error { runtime.Goexit(); return nil }

// A method that calls runtime.Goexit must not unwind the library's frames from under it: criu
// would wait for its answer for ever, the tree ptrace-stopped. The call is aborted as for a
// failing method, the tree runs on, and then the calling goroutine exits.
func TestGoexitInCallbackAbortsTheCall(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	returned := make(chan bool)
	go func() {
		ok := false
		defer func() { returned <- ok }()
		_, _ = Checkpoint(w.pid(), &Options{ImagesDirectory: filepath.Join(dir, "img"), LeaveRunning: true,
			Notify: goexiter{}})
		ok = true
	}()
	if <-returned {
		t.Fatal("Checkpoint returned although the callback called runtime.Goexit")
	}
	time.Sleep(100 * time.Millisecond)
	if s := processState(w.pid()); s == "t" || s == "T" {
		t.Fatalf("the tree is left stopped (state %s): criu still holds it", s)
	}
	w.waitAbove(t, w.value())
}
