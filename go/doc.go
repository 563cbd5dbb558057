// Package ckpt checkpoints and restores process trees with runc's semantics, through the ckpt
// library (libckpt, found with pkg-config) driving the real CRIU binary over its RPC protocol.
//
//	stats, err := ckpt.Checkpoint(pid, &ckpt.Options{
//		ImagesDirectory: "/var/lib/app/checkpoint",
//		LeaveRunning:    true,
//	})
//	if err != nil {
//		var e *ckpt.Error
//		if errors.As(err, &e) && e.LogExcerpt != "" {
//			log.Printf("CRIU said:\n%s\n(log: %s)", e.LogExcerpt, e.LogPath)
//		}
//		return err
//	}
//	log.Printf("frozen for %v, %d pages written", stats.FrozenTime, stats.PagesWritten)
//
// Every call copies its Options into a fresh library handle and releases it before returning,
// so calls are safe from many goroutines at once and C keeps no Go memory after a call.
// Failures are *Error values whose Code also works as a sentinel with errors.Is.
//
// # Contexts
//
// CheckpointContext, CheckpointIterativeContext, RestoreContext, CheckpointContainerContext,
// RestoreContainerContext and RestoreArchiveContext take a context. Its deadline becomes the call's timeout when it
// comes before Options.Timeout, and its end triggers the library's cancellation token, so
// criu is stopped exactly as Options.Timeout stops it: told to abort while CRIU waits on a
// notification, killed and reaped otherwise; a restore's tree is killed and reported
// (RestoredKilled, Error.Pid); a dump that lost criu with the tree in hand says so
// (TreeStateUnknown); past the point of no return the result is CRIU's, marked
// DeadlinePassed (a lazy-pages dump waiting for its pages to be fetched is still stopped).
// A context already ended fails the call at once. The error is an *Error with Code
// ErrCancelled (or ErrTimeout when the deadline was reached through the timeout) that wraps
// ctx.Err(). See docs/guarantees.md, "Cancellation".
package ckpt
