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
	stopped := make(chan struct{})
	close(stopped)
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
