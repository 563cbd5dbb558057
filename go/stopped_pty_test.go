package ckpt

import (
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// ptyKeeper's OrphanPtsMaster starts late, as a method's goroutine may on a loaded machine,
// and reports which file it was given.
type ptyKeeper struct {
	NoNotifications
	got chan syscall.Stat_t
}

func (k ptyKeeper) OrphanPtsMaster(f *os.File) error {
	time.Sleep(50 * time.Millisecond)
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		st = syscall.Stat_t{}
	}
	f.Close()
	k.got <- st
	return nil
}

// A call already stopped (its context ended) does not wait for the method's goroutine, and
// the library closes the descriptor at once: the method must still be given a duplicate of
// the descriptor CRIU sent, not whatever file its number names by the time it runs.
func TestAStoppedCallsPtyMasterIsTheOneSent(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var sent syscall.Stat_t
	if err := syscall.Fstat(int(r.Fd()), &sent); err != nil {
		t.Fatal(err)
	}
	// One P: the method's goroutine runs only once this one blocks, as a loaded machine may.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	// Stopped while the method waits to be scheduled (a call stopped before the notification
	// does not start the method at all: TestAMethodIsNotStartedOnceTheCallIsStopped).
	stopped := make(chan struct{})
	time.AfterFunc(10*time.Millisecond, func() { close(stopped) })
	k := ptyKeeper{got: make(chan syscall.Stat_t, 1)}
	c := &callState{notify: k, stopped: stopped}
	fd := int(r.Fd())
	if err := c.dispatch("orphan-pts-master", 0, fd); err != nil {
		t.Fatal(err)
	}
	// As the library does once the callback returned; the number is then taken again.
	r.Close()
	other, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	st := <-k.got
	if st.Ino != sent.Ino || st.Dev != sent.Dev {
		t.Fatalf("the method was given another file (inode %d, sent %d)", st.Ino, sent.Ino)
	}
}

// callRecorder reports every method called.
type callRecorder struct {
	NoNotifications
	called chan string
}

func (r callRecorder) PostRestore(int) error { r.called <- "post-restore"; return nil }
func (r callRecorder) OrphanPtsMaster(f *os.File) error {
	f.Close()
	r.called <- "orphan-pts-master"
	return nil
}

// Once the call is stopped (its context ended), a notification that still arrives starts no
// method: it would run after the call had returned its error. No pty master is duplicated
// for it either.
func TestAMethodIsNotStartedOnceTheCallIsStopped(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	stopped := make(chan struct{})
	close(stopped)
	k := callRecorder{called: make(chan string, 2)}
	c := &callState{notify: k, stopped: stopped}
	fds := func() int { e, _ := os.ReadDir("/proc/self/fd"); return len(e) }
	before := fds()
	for _, s := range []string{"post-restore", "orphan-pts-master"} {
		if err := c.dispatch(s, 1, int(r.Fd())); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case s := <-k.called:
		t.Fatalf("%s was called after the call was stopped", s)
	case <-time.After(100 * time.Millisecond):
	}
	if after := fds(); after != before {
		t.Fatalf("%d descriptors before, %d after", before, after)
	}
	if len(c.skipped) != 2 || c.abandoned != "" {
		t.Fatalf("skipped %q, abandoned %q", c.skipped, c.abandoned)
	}
}
