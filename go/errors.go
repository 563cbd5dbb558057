package ckpt

/*
#cgo pkg-config: ckpt
#include <ckpt.h>
*/
import "C"

import (
	"fmt"
	"strings"
)

// Code is one of the library's stable status numbers (ckpt_status in C). Each non-zero code is
// also a sentinel error, so callers test for a kind of failure with errors.Is:
//
//	if errors.Is(err, ckpt.ErrPidInUse) { ... }
type Code uint32

// The codes: the CKPT_* constants of ckpt.h, which is generated from the library's source.
const (
	OK                 Code = C.CKPT_OK
	ErrNullArgument    Code = C.CKPT_ERR_NULL_ARGUMENT    // a required pointer was NULL (from this package: a nil *Container)
	ErrInvalidUTF8     Code = C.CKPT_ERR_INVALID_UTF8     // a string was not valid UTF-8 or held a NUL byte
	ErrInvalidArgument Code = C.CKPT_ERR_INVALID_ARGUMENT // an argument was out of range or malformed
	ErrBadFd           Code = C.CKPT_ERR_BAD_FD           // a descriptor was not open or not usable as asked
	ErrInvalidState    Code = C.CKPT_ERR_INVALID_STATE    // the process or container cannot be checkpointed in its state
	ErrUnsupported     Code = C.CKPT_ERR_UNSUPPORTED      // CRIU or the kernel lacks a feature the options need
	ErrIO              Code = C.CKPT_ERR_IO               // a local file system or system call operation failed
	ErrSpawn           Code = C.CKPT_ERR_SPAWN            // the criu binary could not be started
	ErrProtocol        Code = C.CKPT_ERR_PROTOCOL         // CRIU sent a reply that breaks the RPC protocol
	ErrCriu            Code = C.CKPT_ERR_CRIU             // CRIU reported failure (see Error.CriuErrno and the log)
	ErrCriuDied        Code = C.CKPT_ERR_CRIU_DIED        // CRIU exited before answering
	ErrTimeout         Code = C.CKPT_ERR_TIMEOUT          // Options.Timeout expired; criu was killed
	ErrCallback        Code = C.CKPT_ERR_CALLBACK         // a Notifications method returned an error
	ErrPanic           Code = C.CKPT_ERR_PANIC            // an internal error of the library (please report it)
	ErrNotFound        Code = C.CKPT_ERR_NOT_FOUND        // the item asked for (an image directory) does not exist
	ErrPidInUse        Code = C.CKPT_ERR_PID_IN_USE       // a pid the restore needs is taken by another process
	ErrCancelled       Code = C.CKPT_ERR_CANCELLED        // the context of a ...Context call was cancelled; criu was stopped as at a timeout
)

// Codes lists every code the library defines, in numeric order.
var Codes = []Code{
	OK, ErrNullArgument, ErrInvalidUTF8, ErrInvalidArgument, ErrBadFd, ErrInvalidState,
	ErrUnsupported, ErrIO, ErrSpawn, ErrProtocol, ErrCriu, ErrCriuDied, ErrTimeout,
	ErrCallback, ErrPanic, ErrNotFound, ErrPidInUse, ErrCancelled,
}

// Error returns the library's static description of the code.
func (c Code) Error() string {
	return C.GoString(C.ckpt_status_str(C.ckpt_status(c)))
}

// String is the same as Error.
func (c Code) String() string { return c.Error() }

// Error is what every failing call of this package returns: the library's code and message,
// and, when CRIU ran, CRIU's errno, the path of its log and the lines of the log that explain
// the failure.
type Error struct {
	Code       Code    // the kind of failure; also matched by errors.Is(err, Code)
	Message    string  // one line saying what went wrong, quoting CRIU where CRIU failed
	CriuErrno  int     // CRIU's errno for a CRIU failure, else 0
	LogPath    string  // CRIU's log for the failed operation, "" when CRIU did not log
	LogExcerpt string  // the lines of that log that explain the failure, with context; "" when none
	Outcome    Outcome // what happened to the workload (see Outcome)
	Pid        int     // the root pid of the restored tree a failed restore killed, else 0

	cause error // the Notifications method's own error (ErrCallback), or the context's (ErrCancelled, ErrTimeout)
}

// Error returns the message, followed by the log path when there is one.
func (e *Error) Error() string {
	if e.LogPath != "" {
		return fmt.Sprintf("%s (log: %s)", e.Message, e.LogPath)
	}
	return e.Message
}

// Is reports whether target is this error's Code.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// Unwrap returns the error a Notifications method returned when that aborted the operation,
// or, when a ...Context call was stopped because its context ended, the context's error
// (context.Canceled or context.DeadlineExceeded).
func (e *Error) Unwrap() error { return e.cause }

// newError builds an Error for a failure found on the Go side, before the library was called.
func newError(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// takeError converts and frees a ckpt_error; st is the status the call returned, used when
// the library could not hand out an error object.
func takeError(st C.ckpt_status, e *C.ckpt_error) *Error {
	if e == nil {
		return &Error{Code: Code(st), Message: Code(st).Error()}
	}
	defer C.ckpt_error_free(e)
	return &Error{
		Code:       Code(C.ckpt_error_code(e)),
		Message:    goTerms.Replace(C.GoString(C.ckpt_error_message(e))),
		CriuErrno:  int(C.ckpt_error_criu_errno(e)),
		LogPath:    goStringOrEmpty(C.ckpt_error_log_path(e)),
		LogExcerpt: strings.TrimRight(goStringOrEmpty(C.ckpt_error_log_excerpt(e)), "\n"),
		Outcome:    Outcome(C.ckpt_error_outcome(e)),
		Pid:        int(C.ckpt_error_pid(e)),
	}
}

// Outcome says what happened to the workload, beyond the error code: bits set on an Error
// and on DumpStats. See docs/guarantees.md, "Timeouts and failed restores".
type Outcome uint32

const (
	// DeadlinePassed: the Timeout (or the context's deadline) passed, or the context was
	// cancelled, after CRIU's point of no return (post-dump acknowledged); the result is
	// CRIU's, which was waited for.
	DeadlinePassed Outcome = C.CKPT_OUTCOME_DEADLINE_PASSED
	// TreeKilled: the dump was written and CRIU killed the dumped tree.
	TreeKilled Outcome = C.CKPT_OUTCOME_TREE_KILLED
	// TreeStateUnknown: criu was lost while it had the tree in hand: after pre-dump the tree
	// may be left stopped, frozen or network-locked; after post-dump it may have been killed,
	// in whole or in part. Check the process and keep the images.
	TreeStateUnknown Outcome = C.CKPT_OUTCOME_TREE_STATE_UNKNOWN
	// RestoredKilled: the restore failed after CRIU created the tree; the library killed it
	// whole and reaped its root (Error.Pid).
	RestoredKilled Outcome = C.CKPT_OUTCOME_RESTORED_KILLED
)

func goStringOrEmpty(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}
