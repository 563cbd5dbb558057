package main

import (
	"fmt"
	"strings"
)

func mainManual() string {
	var cmds strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&cmds, "   %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(&cmds, "   %-12s %s\n", "help", "show the manual of ckpt or of one command")
	g := newFlagSet("ckpt")
	g.String("criu", "", "PATH", "The criu binary to run: a path, or a name looked up in PATH. The default is criu from PATH.")
	g.String("log", "", "FILE", "Append ckpt's own messages (errors and --debug lines) to FILE instead of writing them "+
		"to standard error. FILE is created (mode 0644) when missing.")
	g.Bool("debug", "After a checkpoint or restore, write one line saying what ckpt did: the pid, the image path, the "+
		"path of CRIU's log and the time taken.")
	g.BoolShort("version", "v", "Print the versions of ckpt and of CRIU, then exit.")
	g.Bool("help", "Show this manual; ckpt COMMAND --help shows a command's.")
	return manual("ckpt", "checkpoint and restore process trees with runc's options",
		"ckpt [global option ...] command [command option ...] [argument ...]",
		`ckpt saves the state of a running process tree to image files and brings it back later, on this
machine or another. It drives criu(8) through the ckpt library, with the options, defaults and error
reporting of runc checkpoint and runc restore, for any process tree, and for an OCI container given by
its bundle or by the runc or crun that started it (checkpoint --bundle, --runtime; restore --bundle).

Options may come before or after the arguments; -- ends them. Each command's manual is shown by
ckpt COMMAND --help or ckpt help COMMAND.`,
		nil,
		"COMMANDS\n"+cmds.String(),
		"GLOBAL OPTIONS\n"+g.options(),
		exitStatusSection("0 on success"),
		`EXAMPLES
   ckpt check
   ckpt checkpoint --image-path /tmp/img --leave-running --stats 1234
   ckpt restore --image-path /tmp/img --detach

SEE ALSO
   ckpt-checkpoint(8), ckpt-restore(8), ckpt-check(8), ckpt-inspect(8), criu(8), runc(8)
`)
}
