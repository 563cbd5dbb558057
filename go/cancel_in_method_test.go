package ckpt

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// cancelAt cancels the call's context from inside the method for one notification and
// returns at once, as a runtime's hook does when it learns it is shutting down.
type cancelAt struct {
	NoNotifications
	script string
	cancel context.CancelFunc
}

func (c *cancelAt) at(script string) error {
	if script == c.script {
		c.cancel()
	}
	return nil
}

func (c *cancelAt) PreDump() error                   { return c.at("pre-dump") }
func (c *cancelAt) PostDump() error                  { return c.at("post-dump") }
func (c *cancelAt) Other(script string, _ int) error { return c.at(script) }

// A context cancelled by a method, which then returns at once, ended while CRIU waited on
// that notification: CRIU is told to abort there (docs/go.md, "Contexts"), so the tree runs
// on, neither killed by a dump that went past post-dump nor left in the hands of a criu
// killed in the middle of its work (TreeStateUnknown), and the method, which returned, is not
// reported as left running. The answer used to race the package's goroutine that triggers
// the library's token.
func TestContextCancelledInsideAMethod(t *testing.T) {
	for _, script := range []string{"pre-dump", "query-ext-files", "post-dump"} {
		for round := 0; round < 3; round++ {
			dir := t.TempDir()
			w := startCounter(t, dir)
			ctx, cancel := context.WithCancel(context.Background())
			// Without LeaveRunning: a dump that went on past post-dump would kill the tree.
			_, err := CheckpointContext(ctx, w.pid(), &Options{ImagesDirectory: filepath.Join(dir, "images"),
				Notify: &cancelAt{script: script, cancel: cancel}})
			cancel()
			e := wantStopped(t, err, context.Canceled, ErrCancelled)
			if e.Outcome != 0 || !strings.Contains(e.Message, "CRIU was told to abort") ||
				strings.Contains(e.Message, "left running") {
				t.Fatalf("cancelled at %s (round %d): outcome %v: %v", script, round, e.Outcome, e)
			}
			waitCounterAbove(t, w.path, w.value()+2)
			if s := processState(w.pid()); s == "" || strings.ContainsAny(s, "TtZX") {
				t.Fatalf("cancelled at %s: workload in state %q", script, s)
			}
		}
	}
}
