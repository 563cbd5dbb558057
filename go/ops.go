package ckpt

/*
#cgo pkg-config: ckpt
#include <ckpt.h>
*/
import "C"

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"runtime/cgo"
	"strconv"
	"strings"
	"time"
)

// Version is the version of the ckpt library this package is linked with, e.g. "0.1.0".
func Version() string { return C.GoString(C.ckpt_version()) }

// run builds a library handle from o for one call, registers o.Notify through a cgo.Handle,
// calls op and turns its status into an error. Nothing C holds outlives the call: the
// handle and the cgo.Handle are released before run returns.
func run(o *Options, op func(p *C.ckpt_opts, e **C.ckpt_error) C.ckpt_status) error {
	return runCtx(context.Background(), o, op)
}

// runCtx is run under ctx: its deadline and cancellation reach the library
// (see watch).
func runCtx(ctx context.Context, o *Options, op func(p *C.ckpt_opts, e **C.ckpt_error) C.ckpt_status) error {
	return runWith(ctx, o, nil, func(p *C.ckpt_opts, _ uintptr, e **C.ckpt_error) C.ckpt_status { return op(p, e) })
}

// runWith is runCtx for operations that take more callbacks than the notifications: op gets
// the cgo.Handle value of the call's state (0 when there is none).
func runWith(ctx context.Context, o *Options, goOn func(int, *DumpStats) bool,
	op func(p *C.ckpt_opts, state uintptr, e **C.ckpt_error) C.ckpt_status) error {
	h, err := newHandle(o)
	if err != nil {
		return err
	}
	defer h.free()
	stop, cancelled, ended, err := h.watch(ctx, o)
	if err != nil {
		return err
	}
	defer stop()
	var state *callState
	var hv uintptr
	if (o != nil && o.Notify != nil) || goOn != nil {
		state = &callState{goOn: goOn, stopped: cancelled, ended: ended}
		if o != nil && o.Timeout > 0 {
			state.patience = o.Timeout + timeoutGrace
		}
		ch := cgo.NewHandle(state)
		defer ch.Delete()
		hv = uintptr(ch)
		if o != nil && o.Notify != nil {
			state.notify = o.Notify
			if err := h.setNotify(hv); err != nil {
				return err
			}
		}
	}
	var cerr *C.ckpt_error
	st := op(h.p, hv, &cerr)
	if state != nil && state.panicked {
		// A callback panicked; the library has finished and cleaned up, and the panic goes
		// on in the caller's goroutine as if the library were not there.
		C.ckpt_error_free(cerr)
		panic(state.panic)
	}
	if state != nil && state.goexit {
		// Likewise for a callback that called runtime.Goexit (t.FailNow): this goroutine
		// exits in its place, the handles freed by the deferred calls above.
		C.ckpt_error_free(cerr)
		runtime.Goexit()
	}
	if st == 0 {
		return nil
	}
	e := takeError(st, cerr)
	if e.Code == ErrCallback && state != nil {
		e.cause = state.cause
	}
	if state != nil && state.abandoned != "" {
		e.Message += fmt.Sprintf("; %s had not returned, and was left running", state.abandoned)
	}
	if state != nil && len(state.skipped) > 0 {
		e.Message += fmt.Sprintf("; not started, the call being stopped already: %s", strings.Join(state.skipped, ", "))
	}
	if e.Code == ErrCancelled || e.Code == ErrTimeout {
		e.cause = contextEnded(ctx)
	}
	return e
}

// timeoutGrace is how much longer than Options.Timeout one callback is waited for. The
// library counts the Timeout from criu's start (or a container's freezing), before any
// callback starts, so by then its deadline has passed and, answered, it has CRIU abort and
// fails the call with ErrTimeout.
const timeoutGrace = time.Second

// contextEnded is ctx's error, or context.DeadlineExceeded once its deadline has passed
// though its timer has not run yet: the library's timeout, set from that deadline, can stop
// a call first on a loaded machine, and the call was still stopped by the context.
func contextEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

func checkPid(pid int) error {
	if pid <= 0 || pid > math.MaxInt32 {
		return newError(ErrInvalidArgument, "pid %d is not a process id", pid)
	}
	return nil
}

// Checkpoint dumps the process tree rooted at pid into opts.ImagesDirectory (or, with
// opts.PreDump, pre-dumps it) and returns CRIU's statistics. Every value that can be checked
// is checked before criu starts. Without opts.LeaveRunning the tree is killed after the dump,
// as runc does; a tree that is the caller's child is then a zombie the caller must reap.
func Checkpoint(pid int, opts *Options) (*DumpStats, error) {
	return CheckpointContext(context.Background(), pid, opts)
}

// CheckpointContext is Checkpoint under ctx: see "Contexts" in the package documentation.
func CheckpointContext(ctx context.Context, pid int, opts *Options) (*DumpStats, error) {
	if err := checkPid(pid); err != nil {
		return nil, err
	}
	var stats *C.ckpt_stats
	err := runCtx(ctx, opts, func(p *C.ckpt_opts, e **C.ckpt_error) C.ckpt_status {
		return C.ckpt_checkpoint(p, C.int32_t(pid), &stats, e)
	})
	if err != nil {
		return nil, err
	}
	return takeDumpStats(stats), nil
}

// CheckpointIterative migrates with pre-dumps on one CRIU connection: pre-dump rounds into
// <ImagesDirectory>/pre-N, each on top of the last, while goOn returns true (at most
// maxRounds; a nil goOn runs them all), then the final dump into opts.ImagesDirectory with
// the last round as its parent. goOn sees each round's statistics, e.g. to stop once few
// pages changed; a panic or runtime.Goexit in goOn ends the rounds (the C API has no way to
// abort there), and goes on in the caller once the final dump is done. It needs memory tracking: where CRIU lacks it the call
// fails with ErrUnsupported before anything is dumped.
func CheckpointIterative(pid, maxRounds int, opts *Options, goOn func(round int, stats *DumpStats) bool) (*DumpStats, error) {
	return CheckpointIterativeContext(context.Background(), pid, maxRounds, opts, goOn)
}

// CheckpointIterativeContext is CheckpointIterative under ctx: see "Contexts" in the package
// documentation. A context that ends between rounds stops the sequence before the next
// request reaches CRIU.
func CheckpointIterativeContext(ctx context.Context, pid, maxRounds int, opts *Options,
	goOn func(round int, stats *DumpStats) bool) (*DumpStats, error) {
	if err := checkPid(pid); err != nil {
		return nil, err
	}
	if maxRounds < 1 || maxRounds > math.MaxUint32 {
		return nil, newError(ErrInvalidArgument, "maxRounds %d must be at least 1", maxRounds)
	}
	var stats *C.ckpt_stats
	err := runWith(ctx, opts, goOn, func(p *C.ckpt_opts, hv uintptr, e **C.ckpt_error) C.ckpt_status {
		return checkpointIterative(p, C.int32_t(pid), C.uint32_t(maxRounds), hv, &stats, e)
	})
	if err != nil {
		return nil, err
	}
	return takeDumpStats(stats), nil
}

// Restore brings back the tree saved in opts.ImagesDirectory. The restored tree becomes a
// child of the calling process, which must reap it (os.FindProcess(pid) then Wait, or
// syscall.Wait4). It returns the root's pid and CRIU's statistics (nil when CRIU reported
// none). A pid file and console socket, when set, are served before Restore returns. A
// container's checkpoint (a mount dumped as external, with no mapping given for its key in
// opts.ExtMounts or opts.External) is refused with ErrInvalidArgument before CRIU starts:
// restore it with RestoreContainer.
func Restore(opts *Options) (int, *RestoreStats, error) {
	return RestoreContext(context.Background(), opts)
}

// RestoreContext is Restore under ctx: see "Contexts" in the package documentation. A
// restore stopped after CRIU created the tree has that tree killed and reaped; the error
// carries RestoredKilled and its pid.
func RestoreContext(ctx context.Context, opts *Options) (int, *RestoreStats, error) {
	var pid C.int32_t
	var stats *C.ckpt_stats
	err := runCtx(ctx, opts, func(p *C.ckpt_opts, e **C.ckpt_error) C.ckpt_status {
		return C.ckpt_restore(p, &pid, &stats, e)
	})
	if err != nil {
		return 0, nil, err
	}
	return int(pid), takeRestoreStats(stats), nil
}

// CriuVersion returns CRIU's version as major*10000 + minor*100 + sublevel (40101 for 4.1.1),
// the form runc's GetCriuVersion uses. opts may be nil (criu from PATH).
func CriuVersion(opts *Options) (int, error) {
	var v C.int32_t
	err := run(opts, func(p *C.ckpt_opts, e **C.ckpt_error) C.ckpt_status {
		return C.ckpt_criu_version(p, &v, e)
	})
	return int(v), err
}

// Support is CRIU's answer about one feature.
type Support int

// The possible answers.
const (
	Unanswered  Support = iota // CRIU said nothing about the feature
	Supported                  // CRIU says the feature works on this kernel
	Unsupported                // CRIU says it does not
)

func (s Support) String() string {
	switch s {
	case Supported:
		return "yes"
	case Unsupported:
		return "no"
	}
	return "unknown"
}

// Features holds CRIU's answers to a feature check: its own, never the question echoed.
type Features struct {
	MemTrack   Support // memory change tracking, for pre-dump and parent images
	LazyPages  Support // userfaultfd, for lazy migration
	PidfdStore Support // pidfds kept across pre-dumps to detect pid reuse
}

// FeatureCheck asks CRIU which features this kernel supports. opts may be nil.
func FeatureCheck(opts *Options) (*Features, error) {
	var yes, known C.ckpt_feature
	err := run(opts, func(p *C.ckpt_opts, e **C.ckpt_error) C.ckpt_status {
		return C.ckpt_feature_check(p, &yes, &known, e)
	})
	if err != nil {
		return nil, err
	}
	answer := func(bit C.ckpt_feature) Support {
		switch {
		case known&bit == 0:
			return Unanswered
		case yes&bit != 0:
			return Supported
		}
		return Unsupported
	}
	return &Features{
		MemTrack:   answer(C.CKPT_FEATURE_MEM_TRACK),
		LazyPages:  answer(C.CKPT_FEATURE_LAZY_PAGES),
		PidfdStore: answer(C.CKPT_FEATURE_PIDFD_STORE),
	}, nil
}

// Check runs CRIU's CHECK request: nil when CRIU finds the kernel fit for checkpoint and
// restore. opts may be nil.
func Check(opts *Options) error {
	return run(opts, func(p *C.ckpt_opts, e **C.ckpt_error) C.ckpt_status {
		return C.ckpt_check(p, e)
	})
}

// StartPageServer starts a page server on opts.PageServer that writes the pages it receives
// into opts.ImagesDirectory: the receiving side of a migration. It returns the server's pid and
// the port it listens on. The server exits after the dump that feeds it. It is not the
// caller's child unless the caller is a child subreaper (PR_SET_CHILD_SUBREAPER): then it
// becomes the caller's child once criu exits, and a server that failed to start is a zombie
// child of the caller when the error returns; the caller reaps either.
func StartPageServer(opts *Options) (pid, port int, err error) {
	var p, po C.int32_t
	err = run(opts, func(h *C.ckpt_opts, e **C.ckpt_error) C.ckpt_status {
		return C.ckpt_page_server_start(h, &p, &po, e)
	})
	return int(p), int(po), err
}

// StartLazyPages starts `criu lazy-pages` for the restoring side of a lazy restore: it serves
// the tree that a Restore with opts.LazyPages brings up its memory on demand, fetched from the
// dumping side's page server when opts.PageServer is set (lazy migration), else read from
// opts.ImagesDirectory (post-copy restore of local images). With opts.StatusFd set, the daemon
// writes one byte to it once it is ready for the restore: start the Restore only then. The
// daemon is a child of the caller, who must reap it; it exits once every page has been served.
func StartLazyPages(opts *Options) (int, error) {
	var p C.int32_t
	err := run(opts, func(h *C.ckpt_opts, e **C.ckpt_error) C.ckpt_status {
		return C.ckpt_lazy_pages_start(h, &p, e)
	})
	return int(p), err
}

// ParsePageServer reads runc's --page-server value, ADDRESS:PORT with an IPv6 address in
// brackets, by the library's rules (the port in 1..65535, ...).
func ParsePageServer(s string) (CriuPageServerInfo, error) {
	h, err := newHandle(nil)
	if err != nil {
		return CriuPageServerInfo{}, err
	}
	defer h.free()
	if err := h.str("page-server", s, func(p *C.ckpt_opts, c *C.char) C.ckpt_status {
		return C.ckpt_opts_set_page_server(p, c)
	}); err != nil {
		return CriuPageServerInfo{}, err
	}
	if s == "" {
		return CriuPageServerInfo{}, newError(ErrInvalidArgument, "invalid page-server \"\": expected ADDRESS:PORT")
	}
	i := strings.LastIndexByte(s, ':')
	addr := strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]")
	port, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return CriuPageServerInfo{}, newError(ErrInvalidArgument, "invalid page-server %q: %v", s, err)
	}
	return CriuPageServerInfo{Address: addr, Port: int32(port)}, nil
}
