package ckpt

/*
#cgo pkg-config: ckpt
#include <stdint.h>
#include <stdlib.h>
#include <ckpt.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime/cgo"
	"syscall"
	"time"
	"unsafe"
)

// Notifications receives CRIU's notifications (its "action scripts") while an operation runs,
// in the order CRIU sends them. A method that returns an error aborts the operation: CRIU
// undoes what it did (a dump resumes the tree) and the call fails with ErrCallback, carrying
// the method's message and, through errors.Is / errors.As, the error itself.
//
// Methods run one at a time, in CRIU's order, each on a goroutine of its own while the
// goroutine that called the operation waits for it. A method that panics, or calls
// runtime.Goexit (as t.Fatal and t.FailNow do), aborts the operation as an error would; once
// the library has cleaned up, the panic goes on, or the calling goroutine exits, in the caller.
// A method still running when the call's context ends, or that has run a second longer than
// the call's Timeout, is no longer waited for: the call is stopped as for a late method, and
// the method runs on alone; a notification arriving after the context ended starts no method.
// Embed NoNotifications to implement only some of them.
type Notifications interface {
	PreDump() error                     // before the tree is frozen
	PostDump() error                    // after the images are written, before the tree is killed or resumed
	NetworkLock() error                 // before the tree's network namespace is locked
	NetworkUnlock() error               // after it is unlocked
	PreRestore() error                  // before the restore starts
	SetupNamespaces(pid int) error      // the restored root's namespaces exist; pid is its pid (only a tree with namespaces of its own)
	PostSetupNamespaces() error         // after the namespaces are set up (likewise)
	PostRestore(pid int) error          // the tree is restored, not yet running; pid is its root
	PreResume() error                   // just before the restored tree runs
	PostResume() error                  // the restored tree runs
	OrphanPtsMaster(pty *os.File) error // the master of the tree's orphaned pty; the method owns pty
	StatusReady() error                 // a lazy-pages dump's page server is listening
	// Other receives any notification without a method of its own.
	Other(script string, pid int) error
}

// NoNotifications implements Notifications by ignoring everything; embed it in a struct to
// override only the methods of interest.
type NoNotifications struct{}

func (NoNotifications) PreDump() error                   { return nil }
func (NoNotifications) PostDump() error                  { return nil }
func (NoNotifications) NetworkLock() error               { return nil }
func (NoNotifications) NetworkUnlock() error             { return nil }
func (NoNotifications) PreRestore() error                { return nil }
func (NoNotifications) SetupNamespaces(int) error        { return nil }
func (NoNotifications) PostSetupNamespaces() error       { return nil }
func (NoNotifications) PostRestore(int) error            { return nil }
func (NoNotifications) PreResume() error                 { return nil }
func (NoNotifications) PostResume() error                { return nil }
func (NoNotifications) StatusReady() error               { return nil }
func (NoNotifications) Other(string, int) error          { return nil }
func (NoNotifications) OrphanPtsMaster(f *os.File) error { return f.Close() }

// callState is what one operation's callbacks share with the goroutine that started it. C holds
// only a cgo.Handle to it (an integer), for the duration of the call.
type callState struct {
	notify Notifications
	goOn   func(round int, stats *DumpStats) bool // CheckpointIterative's decision
	cause  error                                  // the first error a method returned
	panic  any                                    // a callback's panic value (nil for panic(nil)), raised again once the library has returned
	// panicked says a callback panicked: its value may be nil.
	panicked bool
	goexit   bool // a callback called runtime.Goexit, done again once the library has returned
	// stopped closes when the call's context ended and the library's cancellation token was
	// triggered; nil when it cannot be.
	stopped <-chan struct{}
	// ended reports whether the call's context has ended, triggering the library's token
	// itself if so (see watch); nil when the context cannot end.
	ended     func() bool
	patience  time.Duration // how long one callback is waited for (Timeout + timeoutGrace); 0: for ever
	abandoned string        // the callback no longer waited for (see contain), if any
	skipped   []string      // the callbacks not started because the call was already stopped
}

// contain runs f on a goroutine of its own and waits for it. Neither a panic nor
// runtime.Goexit in f may unwind the library's frames (a Goexit there would leave criu
// waiting for an answer for ever, with the tree in its hands): both become an error for the
// library, and are recorded to go on in the caller once the library has returned. Once the
// call is stopped (c.stopped closes: its context ended and the library's cancellation token
// was triggered) or f has run for c.patience (the library's deadline has passed by then), f
// is no longer waited for: the answer goes back at once, and the library, seeing the token or
// its deadline, has CRIU undo its work (a dumped tree runs on, a restored one is killed) and
// fails the call; f runs on to its end on its goroutine, and what it returns then is dropped.
func (c *callState) contain(what string, f func() error) error {
	if c.isStopped() {
		// The call already failed for its caller (or is about to): a method started now
		// would run after the call returned, so it is not started at all.
		c.skipped = append(c.skipped, what)
		return nil
	}
	type result struct {
		err      error
		panicked bool
		value    any
		goexit   bool
	}
	res := make(chan result, 1)
	go func() {
		var r result
		finished, recovered := false, false
		defer func() {
			// Neither returned nor recovered: f called runtime.Goexit, which recover does
			// not stop.
			if !finished && !recovered {
				r = result{err: fmt.Errorf("%s called runtime.Goexit", what), goexit: true}
			}
			res <- r
		}()
		// A panic is told from Goexit by whether recover stopped it, not by recover's value:
		// before Go 1.21, panic(nil) (a panic(err) with a nil err) recovers as nil too.
		func() {
			defer func() {
				if !finished {
					v := recover()
					r = result{err: fmt.Errorf("panic in %s: %v", what, v), panicked: true, value: v}
				}
			}()
			r.err = f()
			finished = true
		}()
		recovered = !finished
	}()
	var late <-chan time.Time
	if c.patience > 0 {
		t := time.NewTimer(c.patience)
		defer t.Stop()
		late = t.C
	}
	took := func(r result) error {
		if r.panicked && !c.panicked {
			c.panicked, c.panic = true, r.value
		}
		c.goexit = c.goexit || r.goexit
		// A context that ended while f ran (f may have cancelled it) must reach the library
		// before this answer does: the library looks at its token right after the answer and
		// then has CRIU abort, where a token triggered later, from watch's goroutine, would
		// find CRIU at work and have it killed with the tree in its hands.
		c.isStopped()
		return r.err
	}
	select {
	case r := <-res:
		return took(r)
	case <-c.stopped:
	case <-late:
	}
	// Both may be ready: a method that did return is not reported as left running.
	select {
	case r := <-res:
		return took(r)
	default:
	}
	c.abandoned = what
	return nil
}

// isStopped reports whether the call's context has ended; if so the library's token is
// triggered by the time it returns.
func (c *callState) isStopped() bool {
	if c.ended != nil && c.ended() {
		return true
	}
	if c.stopped == nil {
		return false
	}
	select {
	case <-c.stopped:
		return true
	default:
		return false
	}
}

// dispatch calls the method for one notification, contained (see contain).
func (c *callState) dispatch(script string, pid, fd int) error {
	if c.isStopped() {
		// Before the pty master is duplicated: nothing would be handed to a method.
		c.skipped = append(c.skipped, fmt.Sprintf("the %s notification", script))
		return nil
	}
	var pty *os.File
	if script == "orphan-pts-master" && fd >= 0 {
		// Duplicated here, before the method's goroutine starts: the library closes its
		// descriptor once dispatch returns, which a stopped call does without waiting for that
		// goroutine, and a number closed then may already name another file of the program.
		dup, err := dupCloexec(fd)
		if err != nil {
			return fmt.Errorf("duplicating the pty master: %w", err)
		}
		pty = os.NewFile(uintptr(dup), "pty-master")
	}
	return c.contain(fmt.Sprintf("the %s notification", script), func() error { return c.method(script, pid, pty) })
}

// method calls the Notifications method for script; pty is orphan-pts-master's descriptor.
func (c *callState) method(script string, pid int, pty *os.File) error {
	n := c.notify
	switch script {
	case "pre-dump":
		return n.PreDump()
	case "post-dump":
		return n.PostDump()
	case "network-lock":
		return n.NetworkLock()
	case "network-unlock":
		return n.NetworkUnlock()
	case "pre-restore":
		return n.PreRestore()
	case "setup-namespaces":
		return n.SetupNamespaces(pid)
	case "post-setup-namespaces":
		return n.PostSetupNamespaces()
	case "post-restore":
		return n.PostRestore(pid)
	case "pre-resume":
		return n.PreResume()
	case "post-resume":
		return n.PostResume()
	case "status-ready":
		return n.StatusReady()
	case "orphan-pts-master":
		if pty == nil {
			return fmt.Errorf("CRIU sent orphan-pts-master without a descriptor")
		}
		return n.OrphanPtsMaster(pty)
	default:
		return n.Other(script, pid)
	}
}

//export ckptGoNotify
func ckptGoNotify(h C.uintptr_t, n *C.ckpt_notification) C.int {
	c := cgo.Handle(h).Value().(*callState)
	script := C.GoString(C.ckpt_notification_script(n))
	err := c.dispatch(script, int(C.ckpt_notification_pid(n)), int(C.ckpt_notification_fd(n)))
	if err == nil {
		return 0
	}
	if c.cause == nil {
		c.cause = err
	}
	msg := C.CString(err.Error())
	defer C.free(unsafe.Pointer(msg))
	C.ckpt_notification_set_error(n, msg)
	return 1
}

//export ckptGoPredump
func ckptGoPredump(h C.uintptr_t, round C.uint32_t, st *C.ckpt_stats) C.int32_t {
	c := cgo.Handle(h).Value().(*callState)
	if c.goOn == nil {
		return 1
	}
	stats := dumpStatsOf(st)
	// goOn's answer comes back as contain's error, never through a shared variable: a goOn
	// given up on may still write it after this returns.
	err := c.contain("goOn", func() error {
		if c.goOn(int(round), stats) {
			return nil
		}
		return errLastRound
	})
	if err != nil || c.abandoned != "" {
		return 0
	}
	return 1
}

// errLastRound is goOn's "no more rounds".
var errLastRound = errors.New("goOn ended the pre-dump rounds")

// dupCloexec duplicates fd to a close-on-exec descriptor numbered 3 or more, so a concurrent
// fork+exec elsewhere in the program never inherits it.
func dupCloexec(fd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 3)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}
