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
package ckpt
