// Command ckpt checkpoints and restores process trees with runc's flags and defaults, through
// the ckpt library and the real CRIU. See `ckpt --help`.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	ckpt "ckpt.dev/go/ckpt"
)

// Exit statuses, as runc's: 0, or 1 for anything that went wrong (a malformed command line, a
// refused value, a failed operation). A restore that waits for the restored tree exits with the
// tree's status instead.
const (
	exitOK      = 0
	exitFailure = 1
)

// command is one subcommand: its flags and what it runs.
type command struct {
	name     string
	summary  string
	manual   func(fs *flagSet) string
	flags    func(*flagSet)
	minArgs  int
	maxArgs  int
	argsName string
	run      func(c *context) int
}

var commands = []*command{checkpointCmd, restoreCmd, checkCmd, inspectCmd}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// context is what a running subcommand sees.
type context struct {
	cmd    *command
	fs     *flagSet
	args   []string
	criu   string // the global --criu, overridden by the subcommand's own
	debug  bool   // the global --debug
	stdout io.Writer
	stderr io.Writer
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	g := newFlagSet("ckpt")
	criu := g.String("criu", "", "PATH", "path to the criu binary (default: criu from PATH)")
	version := g.BoolShort("version", "v", "print the versions of ckpt, its library and CRIU")
	debug := g.Bool("debug", "after the operation, say what ckpt did: the pid, the image path, CRIU's log and how long it took")
	logPath := g.String("log", "", "FILE", "write ckpt's own messages (errors, --debug lines) to FILE, appended, instead of standard error")
	if err := g.parseUntilCommand(args); err != nil {
		if errors.Is(err, errHelp) {
			fmt.Fprint(stdout, mainManual())
			return exitOK
		}
		return usageError(stderr, "ckpt", err)
	}
	// As a command's options: an empty --log or --criu silently meant standard error or
	// criu from PATH.
	if err := g.refuseEmpty(); err != nil {
		return fail(stderr, "ckpt", err)
	}
	if *logPath != "" {
		f, err := openLog(*logPath)
		if err != nil {
			return fail(stderr, "ckpt", fmt.Errorf("cannot open --log %s: %w", *logPath, err))
		}
		defer f.Close()
		stderr = f
	}
	if *version {
		return printVersion(stdout, stderr, *criu)
	}
	rest := g.args()
	if len(rest) == 0 {
		return usageError(stderr, "ckpt", errors.New("no command given; commands are checkpoint, restore, check and inspect"))
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		// "help help" too: the manual lists help among the commands.
		if len(rest) == 0 || rest[0] == "help" {
			fmt.Fprint(stdout, mainManual())
			return exitOK
		}
		name, rest = rest[0], []string{"--help"}
	}
	c := findCommand(name)
	if c == nil {
		return usageError(stderr, "ckpt", fmt.Errorf("unknown command %q; commands are checkpoint, restore, check and inspect", name))
	}
	fs := newFlagSet("ckpt " + c.name)
	c.flags(fs)
	sub := fs.String("criu", "", "PATH", "The criu binary to run: a path, or a name looked up in PATH. The default is "+
		"the global --criu, else criu from PATH.")
	if err := fs.parse(rest); err != nil {
		if errors.Is(err, errHelp) {
			fmt.Fprint(stdout, c.manual(fs))
			return exitOK
		}
		return usageError(stderr, "ckpt "+c.name, err)
	}
	if n := len(fs.args()); n < c.minArgs || n > c.maxArgs {
		return usageError(stderr, "ckpt "+c.name, argCountError(c, fs.args()))
	}
	if err := fs.refuseEmpty(); err != nil {
		return fail(stderr, "ckpt "+c.name, err)
	}
	ctx := &context{cmd: c, fs: fs, args: fs.args(), criu: *criu, debug: *debug, stdout: stdout, stderr: stderr}
	if *sub != "" {
		ctx.criu = *sub
	}
	return c.run(ctx)
}

func argCountError(c *command, got []string) error {
	switch {
	case c.maxArgs == 0:
		return fmt.Errorf("unexpected argument %q: %s takes none", got[0], c.name)
	case len(got) < c.minArgs:
		return fmt.Errorf("missing %s", c.argsName)
	default:
		return fmt.Errorf("unexpected argument %q after %s %s", got[c.maxArgs], c.argsName, got[0])
	}
}

// openLog opens the --log file for appending. Without waiting: a fifo nobody reads blocked
// the open, and ckpt with it, for ever; one being read (a pipe from a logger) is written
// to as before, blocking once open like any file.
func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o644)
	if errors.Is(err, syscall.ENXIO) {
		// Also what a device without its hardware (/dev/tty without a terminal) says.
		if st, serr := os.Stat(path); serr == nil && st.Mode()&os.ModeNamedPipe != 0 {
			return nil, errors.New("it is a fifo that nobody reads")
		}
	}
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// usageError reports a wrong command line in one line.
func usageError(w io.Writer, who string, err error) int {
	fmt.Fprintf(w, "%s: %v (see '%s --help')\n", who, err, who)
	return exitFailure
}

// debugf writes one --debug line.
func (c *context) debugf(format string, a ...any) {
	if c.debug {
		fmt.Fprintf(c.stderr, "ckpt %s: debug: %s\n", c.cmd.name, fmt.Sprintf(format, a...))
	}
}

// fail reports a failed operation: one line, then, when CRIU ran and failed, the part of its
// log that explains why and where the whole log is.
func fail(w io.Writer, who string, err error) int {
	var e *ckpt.Error
	if !errors.As(err, &e) {
		fmt.Fprintf(w, "%s: %v\n", who, err)
		return exitFailure
	}
	fmt.Fprintf(w, "%s: %s\n", who, e.Message)
	if e.LogExcerpt != "" {
		fmt.Fprintln(w, "CRIU's log says:")
		for _, l := range strings.Split(e.LogExcerpt, "\n") {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	if e.LogPath != "" && (e.LogExcerpt != "" || e.Code == ckpt.ErrCriu) {
		fmt.Fprintf(w, "full log: %s\n", e.LogPath)
	}
	return exitFailure
}

func printVersion(stdout, stderr io.Writer, criu string) int {
	fmt.Fprintf(stdout, "ckpt version %s\n", ckpt.Version())
	v, err := ckpt.CriuVersion(&ckpt.Options{CriuPath: criu})
	if err != nil {
		return fail(stderr, "ckpt", err)
	}
	fmt.Fprintf(stdout, "criu version %s\n", versionString(v))
	return exitOK
}

// versionString turns CRIU's version number (40101) into "4.1.1".
func versionString(v int) string {
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}
