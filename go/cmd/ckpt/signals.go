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
	"time"
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

// onSignal covers a library call that cannot be stopped (an export, the unpacking of
// --import): a SIGINT, SIGTERM or SIGHUP then still ends ckpt as it ends any program, killed
// by that signal, but first runs cleanup, which removes what the call would leave behind. A
// signal ignored when ckpt started (a background job of a shell without job control) stays
// ignored. Call the returned func once the call has returned.
func onSignal(cleanup func()) (done func()) {
	sigs := make(chan os.Signal, 1)
	for _, s := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		if !signal.Ignored(s) {
			signal.Notify(sigs, s)
		}
	}
	quit, dying := make(chan struct{}), make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			close(dying)
			cleanup()
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
		select {
		case <-dying:
			// The call failed because cleanup took its files away: the signal ends ckpt,
			// not this failure (an exit status 1 would hide why it stopped).
			select {}
		default:
		}
		close(quit)
	}
}

// removeExportLeftovers removes what an export ended by a signal leaves: the archive's hidden
// partial file, which the library writes beside it as .NAME.ckpt-partial-PID-N (this
// process's pid), and the temporary spec written for a process tree (tmpSpec, "" for none).
func removeExportLeftovers(archive, tmpSpec string) {
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
}

// importCleanup returns what removes the files an import ended by a signal unpacked into
// dir, so that the same command can be run again (an import wants a new or empty directory):
// dir itself when it does not exist yet (the import makes it), its contents when it is an
// empty directory the import takes (this user's, writable by no one else), and nothing
// otherwise (the import refuses it, and what others put there is not ckpt's to remove).
func importCleanup(dir string) func() {
	st, err := os.Lstat(dir)
	switch {
	case os.IsNotExist(err):
		return func() { emptyImportDir(dir, false) }
	case err == nil && st.IsDir() && st.Mode().Perm()&0o022 == 0 &&
		st.Sys().(*syscall.Stat_t).Uid == uint32(os.Geteuid()):
		if entries, err := os.ReadDir(dir); err == nil && len(entries) == 0 {
			return func() { emptyImportDir(dir, true) }
		}
	}
	return func() {}
}

// emptyImportDir removes dir (keep false) or what it holds (keep true). The unpacking goes on
// meanwhile in another thread and may create an entry right after a removal: dir counts as
// done only once it has stayed empty (or gone) across a short pause, and the removal is
// repeated until then, for at most two seconds.
func emptyImportDir(dir string, keep bool) {
	done := func() bool {
		if !keep {
			_, err := os.Lstat(dir)
			return os.IsNotExist(err)
		}
		entries, err := os.ReadDir(dir)
		return err != nil || len(entries) == 0
	}
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		if !keep {
			_ = os.RemoveAll(dir)
		} else if entries, err := os.ReadDir(dir); err == nil {
			for _, e := range entries {
				_ = os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
		if done() {
			time.Sleep(10 * time.Millisecond)
			if done() {
				return
			}
		}
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
