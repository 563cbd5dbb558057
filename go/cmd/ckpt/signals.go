package main

// The package has a type named context (what a subcommand sees), hence the name of the
// standard package here.
import (
	stdcontext "context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
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

// cleanOnSignal covers an export, which the library cannot stop: a SIGINT, SIGTERM or SIGHUP
// then still ends ckpt as it ends any program (killed by that signal), but first removes what
// the export would leave behind: the archive's hidden partial file, which the library writes
// beside it as .NAME.ckpt-partial-PID-N (this process's pid), and the temporary spec written
// for a process tree (tmpSpec, "" for none). A signal ignored when ckpt started (a background
// job of a shell without job control) stays ignored. Call the returned func once the export
// has returned.
func cleanOnSignal(archive, tmpSpec string) (done func()) {
	sigs := make(chan os.Signal, 1)
	for _, s := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		if !signal.Ignored(s) {
			signal.Notify(sigs, s)
		}
	}
	quit := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			if tmpSpec != "" {
				_ = os.Remove(tmpSpec)
			}
			if abs, err := filepath.Abs(archive); err == nil {
				pattern := fmt.Sprintf(".%s.ckpt-partial-%d-*", globEscape(filepath.Base(abs)), os.Getpid())
				partial, _ := filepath.Glob(filepath.Join(globEscape(filepath.Dir(abs)), pattern))
				for _, p := range partial {
					_ = os.Remove(p)
				}
			}
			// Die of the signal itself: once no channel wants it, the runtime takes the
			// default action.
			signal.Reset(s)
			_ = syscall.Kill(os.Getpid(), s.(syscall.Signal))
			select {}
		case <-quit:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(quit)
	}
}

// globEscape quotes the characters filepath.Glob gives a meaning to.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteRune('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
