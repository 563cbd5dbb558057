package ckpt

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A kill-mode dump says it killed the tree; a restore right after it, with RestoreWait, waits
// for the killed root (a zombie until this test reaps it) and fires pre-restore once.
func TestRestoreWaitOutlastsTheZombie(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	w.waitAbove(t, 3)
	images := filepath.Join(dir, "images")
	stats, err := Checkpoint(w.pid(), &Options{ImagesDirectory: images})
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if stats.Outcome != TreeKilled {
		t.Errorf("outcome %v, want TreeKilled", stats.Outcome)
	}
	// The dumped root stays a zombie, holding its pid, until this reaps it 700 ms later.
	done := make(chan struct{})
	go func() {
		time.Sleep(700 * time.Millisecond)
		w.reapDumped(t)
		close(done)
	}()
	rec := &recorder{}
	start := time.Now()
	pid, _, err := Restore(&Options{ImagesDirectory: images, RestoreWait: 10 * time.Second, Notify: rec})
	<-done
	if err != nil {
		t.Fatalf("Restore with RestoreWait: %v", err)
	}
	defer killChild(pid)
	t.Logf("restored pid %d after waiting %v; notifications %v", pid, time.Since(start), rec.seen)
	n := 0
	for _, s := range rec.seen {
		if s == "pre-restore" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("pre-restore fired %d times", n)
	}
	waitCounterAbove(t, w.path, w.value())
}

type failAt struct {
	recorder
	at string
}

func (f *failAt) PostResume() error {
	if f.at == "post-resume" {
		return errRefused{"post-resume"}
	}
	return nil
}

// A restore whose callback fails at post-resume: the error carries the killed tree's pid.
func TestFailedRestoreSaysTheTreeWasKilled(t *testing.T) {
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	w := dumpedCounter(t, dir, images)
	_, _, err := Restore(&Options{ImagesDirectory: images, Notify: &failAt{at: "post-resume"}})
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrCallback {
		t.Fatalf("Restore: %v, want ErrCallback", err)
	}
	if e.Outcome&RestoredKilled == 0 || e.Pid != w.pid() {
		t.Errorf("outcome %v pid %d, want RestoredKilled and pid %d: %v", e.Outcome, e.Pid, w.pid(), e)
	}
	if syscall.Kill(e.Pid, 0) == nil && processState(e.Pid) != "Z" {
		t.Errorf("the restored tree %d runs on", e.Pid)
	}
	waitSessionGone(t, w.pid())
}
