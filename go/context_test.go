package ckpt

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// atScript runs do at one notification, then sleeps so what do started (a cancel, the
// deadline passing) lands while the notification is handled.
type atScript struct {
	NoNotifications
	script string
	do     func(pid int)
	sleep  time.Duration
}

func (a *atScript) at(script string, pid int) error {
	if script == a.script {
		if a.do != nil {
			a.do(pid)
		}
		time.Sleep(a.sleep)
	}
	return nil
}

func (a *atScript) PreDump() error            { return a.at("pre-dump", 0) }
func (a *atScript) PostDump() error           { return a.at("post-dump", 0) }
func (a *atScript) PostRestore(pid int) error { return a.at("post-restore", pid) }
func (a *atScript) PreResume() error          { return a.at("pre-resume", 0) }

// wantStopped checks err is an *Error with one of codes, whose chain holds ctxErr.
func wantStopped(t *testing.T, err error, ctxErr error, codes ...Code) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want an *Error, got %v", err)
	}
	ok := false
	for _, c := range codes {
		ok = ok || e.Code == c
	}
	if !ok {
		t.Fatalf("code %d (%v), want one of %v: %v", e.Code, e.Code, codes, e)
	}
	if !errors.Is(err, ctxErr) {
		t.Errorf("errors.Is(err, %v) is false: %v", ctxErr, err)
	}
	return e
}

// A context ended before the call: the library refuses at once, before criu starts.
func TestContextEndedBeforeTheCall(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	images := filepath.Join(dir, "images")
	start := time.Now()
	_, err := CheckpointContext(ctx, w.pid(), &Options{ImagesDirectory: images, LeaveRunning: true})
	took := time.Since(start)
	wantStopped(t, err, context.Canceled, ErrCancelled)
	if took > 500*time.Millisecond {
		t.Errorf("took %v", took)
	}
	_, _, err = RestoreContext(ctx, &Options{ImagesDirectory: images})
	wantStopped(t, err, context.Canceled, ErrCancelled)
	_, err = CheckpointIterativeContext(ctx, w.pid(), 2, &Options{ImagesDirectory: images}, nil)
	wantStopped(t, err, context.Canceled, ErrCancelled)
	past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	_, err = CheckpointContext(past, w.pid(), &Options{ImagesDirectory: images, LeaveRunning: true})
	wantStopped(t, err, context.DeadlineExceeded, ErrCancelled, ErrTimeout)
	t.Logf("past deadline: %v", err)
	if syscall.Kill(w.pid(), 0) != nil {
		t.Fatal("the workload is gone")
	}
	// A context that never ends changes nothing.
	if _, err := CheckpointContext(context.Background(), w.pid(), &Options{ImagesDirectory: images, LeaveRunning: true}); err != nil {
		t.Fatalf("CheckpointContext(Background): %v", err)
	}
}

// A cancel while CRIU waits on pre-dump (from the test's goroutine; the library sees it on
// its own thread): CRIU is told to abort and the leave-running workload runs on, not stopped.
func TestContextCancelDuringADump(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fds := openFds(t)
	n := &atScript{script: "pre-dump", sleep: 300 * time.Millisecond,
		do: func(int) { go cancel() }}
	_, err := CheckpointContext(ctx, w.pid(), &Options{ImagesDirectory: filepath.Join(dir, "images"),
		LeaveRunning: true, Notify: n})
	e := wantStopped(t, err, context.Canceled, ErrCancelled)
	t.Logf("cancelled: %v (outcome %v)", e, e.Outcome)
	if e.Outcome&TreeKilled != 0 {
		t.Errorf("outcome %v", e.Outcome)
	}
	waitCounterAbove(t, w.path, w.value()+2)
	if s := processState(w.pid()); s == "" || strings.ContainsAny(s, "TtZX") {
		t.Errorf("workload in state %q", s)
	}
	if got := openFds(t); got != fds {
		t.Errorf("%d fds open, %d before", got, fds)
	}
}

// A context deadline that passes while CRIU waits on pre-dump stops the dump as the
// Timeout does; the error also says the deadline passed.
func TestContextDeadlineDuringADump(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	n := &atScript{script: "pre-dump", sleep: 800 * time.Millisecond}
	start := time.Now()
	_, err := CheckpointContext(ctx, w.pid(), &Options{ImagesDirectory: filepath.Join(dir, "images"),
		LeaveRunning: true, Timeout: time.Minute, Notify: n})
	e := wantStopped(t, err, context.DeadlineExceeded, ErrTimeout, ErrCancelled)
	t.Logf("deadline: %v after %v", e, time.Since(start))
	waitCounterAbove(t, w.path, w.value()+2)
	if s := processState(w.pid()); s == "" || strings.ContainsAny(s, "TtZX") {
		t.Errorf("workload in state %q", s)
	}
}

// A cancel during a restore, after CRIU created the tree: the tree is killed and reaped, and
// the error carries RestoredKilled and its pid.
func TestContextCancelDuringARestore(t *testing.T) {
	for _, script := range []string{"post-restore", "pre-resume"} {
		dir := t.TempDir()
		images := filepath.Join(dir, "images")
		w := dumpedCounter(t, dir, images)
		ctx, cancel := context.WithCancel(context.Background())
		n := &atScript{script: script, sleep: 300 * time.Millisecond, do: func(int) { go cancel() }}
		_, _, err := RestoreContext(ctx, &Options{ImagesDirectory: images, Notify: n})
		cancel()
		e := wantStopped(t, err, context.Canceled, ErrCancelled)
		t.Logf("%s: %v", script, e)
		if e.Outcome&RestoredKilled == 0 || e.Pid != w.pid() {
			t.Errorf("%s: outcome %v pid %d, want RestoredKilled and pid %d", script, e.Outcome, e.Pid, w.pid())
		}
		if syscall.Kill(e.Pid, 0) == nil && processState(e.Pid) != "Z" {
			t.Errorf("%s: the restored tree %d runs on", script, e.Pid)
		}
		waitSessionGone(t, w.pid())
	}
}

// The container forms pass the context on as well: one already ended stops them before the
// container layer reads the bundle or starts anything.
func TestContainerContextEndedBeforeTheCall(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &Container{Bundle: filepath.Join(dir, "no-bundle"), Pid: w.pid()}
	o := &Options{ImagesDirectory: filepath.Join(dir, "images")}
	_, err := CheckpointContainerContext(ctx, c, o)
	wantStopped(t, err, context.Canceled, ErrCancelled)
	_, _, err = RestoreContainerContext(ctx, &Container{Bundle: filepath.Join(dir, "no-bundle")}, o)
	wantStopped(t, err, context.Canceled, ErrCancelled)
	// Without the context, the missing bundle is what the layer reports.
	if _, err := CheckpointContainer(c, o); errors.Is(err, ErrCancelled) || err == nil {
		t.Errorf("CheckpointContainer without a context: %v", err)
	}
	if syscall.Kill(w.pid(), 0) != nil {
		t.Fatal("the workload is gone")
	}
}
