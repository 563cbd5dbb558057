package main

import (
	"flag"

	ckpt "ckpt.dev/go/ckpt"
)

// criuSwitches are the yes/no flags of checkpoint and restore that are CRIU options, by the
// library's name for each. Given as --flag=false, such a flag is sent to CRIU as an explicit
// false (Options.ExplicitFalse), which overrides a CRIU configuration file that sets it; an
// omitted flag is not sent, so CRIU's default or its configuration decides. The other yes/no
// flags (--detach, --stats, --explain, --keep-network) are ckpt's own: =false means what
// leaving them out means.
var criuSwitches = map[string]ckpt.Flag{
	"leave-running":      ckpt.FlagLeaveRunning,
	"tcp-established":    ckpt.FlagTcpEstablished,
	"tcp-skip-in-flight": ckpt.FlagTcpSkipInFlight,
	"tcp-close":          ckpt.FlagTcpClose,
	"link-remap":         ckpt.FlagLinkRemap,
	"ext-unix-sk":        ckpt.FlagExternalUnixConnections,
	"shell-job":          ckpt.FlagShellJob,
	"lazy-pages":         ckpt.FlagLazyPages,
	"file-locks":         ckpt.FlagFileLocks,
	"pre-dump":           ckpt.FlagPreDump,
	"auto-dedup":         ckpt.FlagAutoDedup,
}

// explicitFalse lists the CRIU switches given on the command line as false.
func explicitFalse(fs *flagSet) []ckpt.Flag {
	var out []ckpt.Flag
	fs.fs.Visit(func(fl *flag.Flag) {
		if f, ok := criuSwitches[fl.Name]; ok && fl.Value.String() == "false" {
			out = append(out, f)
		}
	})
	return out
}
