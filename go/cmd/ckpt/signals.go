package main

// The package has a type named context (what a subcommand sees), hence the name of the
// standard package here.
import (
	stdcontext "context"
	"os/signal"
	"syscall"
)

// interruptible returns the context a checkpoint or restore runs under: it ends at the first
// SIGINT or SIGTERM ckpt receives, which makes the library stop criu as its timeout does (a
// dump with --leave-running leaves the tree running; a restore kills the tree it half made
// and names its pid), and the operation then fails with the library's message. Until stop is
// called the signals do not end ckpt, so it always gets to clean up and report; call stop as
// soon as the operation returns, so that what follows (an export, waiting for a restored
// tree) sees the signals as before.
func interruptible() (ctx stdcontext.Context, stop stdcontext.CancelFunc) {
	return signal.NotifyContext(stdcontext.Background(), syscall.SIGINT, syscall.SIGTERM)
}
