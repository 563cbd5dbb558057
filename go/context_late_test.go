package ckpt

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// lateContext has a deadline whose Done channel closes late: what a loaded machine does to
// a context.WithTimeout, whose timer goroutine may run after the deadline (a run with busy
// goroutines on this machine saw 37 of 150 short-deadline checkpoints come back before it).
type lateContext struct {
	context.Context
	deadline time.Time
	done     chan struct{}
	mu       sync.Mutex
	err      error
}

func newLateContext(deadline, doneAfter time.Duration) *lateContext {
	c := &lateContext{Context: context.Background(), deadline: time.Now().Add(deadline), done: make(chan struct{})}
	time.AfterFunc(doneAfter, func() {
		c.mu.Lock()
		c.err = context.DeadlineExceeded
		c.mu.Unlock()
		close(c.done)
	})
	return c
}

func (c *lateContext) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *lateContext) Done() <-chan struct{}       { return c.done }
func (c *lateContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// The library stops the call at the context's deadline (its timeout) before the context's
// own timer has run: the error is still one the context stopped, errors.Is(err,
// context.DeadlineExceeded), as docs/go.md promises for every call stopped by its context.
func TestContextDeadlineBeforeItsTimerRan(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	ctx := newLateContext(100*time.Millisecond, 3*time.Second)
	n := &atScript{script: "pre-dump", sleep: 400 * time.Millisecond}
	_, err := CheckpointContext(ctx, w.pid(), &Options{ImagesDirectory: filepath.Join(dir, "images"),
		LeaveRunning: true, Timeout: time.Minute, Notify: n})
	if ctx.Err() != nil {
		t.Fatal("NOT EXERCISED: the context's timer ran before the call returned")
	}
	e := wantStopped(t, err, context.DeadlineExceeded, ErrTimeout)
	t.Logf("deadline passed, timer not run: %v", e)
	waitCounterAbove(t, w.path, w.value()+2)
}
