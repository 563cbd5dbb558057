package main

import (
	"fmt"
	"text/tabwriter"

	ckpt "ckpt.dev/go/ckpt"
)

var checkFormat *string

var checkCmd = &command{
	name:     "check",
	summary:  "show CRIU's version and what this kernel supports",
	minArgs:  0,
	maxArgs:  0,
	argsName: "arguments",
	flags: func(fs *flagSet) {
		checkFormat = fs.String("format", "text", "FORMAT",
			"Print the result as text (the default) or as json: one object on one line.")
	},
	manual: func(fs *flagSet) string {
		return manual("ckpt check", "show CRIU's version and what this kernel supports",
			"ckpt check [option ...]",
			`The check command asks CRIU for its version, runs CRIU's own check of the kernel (criu check),
and asks which optional features work here: memory change tracking (needed by --pre-dump and
--parent-path), lazy pages (needed by --lazy-pages) and the pidfd store (which protects iterative
pre-dumps against pid reuse).`,
			fs,
			exitStatusSection("0 when CRIU finds the kernel fit for checkpoint and restore"),
			`SEE ALSO
   ckpt(8), criu(8)
`)
	},
	run: runCheck,
}

type checkReport struct {
	CriuVersion       string          `json:"criu_version"`
	CriuVersionNumber int             `json:"criu_version_number"`
	CkptVersion       string          `json:"ckpt_version"`
	Check             bool            `json:"check"`
	CheckError        string          `json:"check_error,omitempty"`
	Features          map[string]bool `json:"features"`
}

func runCheck(c *context) int {
	if *checkFormat != "text" && *checkFormat != "json" {
		return fail(c.stderr, "ckpt check", fmt.Errorf("invalid --format %q: expected text or json", *checkFormat))
	}
	o := &ckpt.Options{CriuPath: c.criu}
	v, err := ckpt.CriuVersion(o)
	if err != nil {
		return fail(c.stderr, "ckpt check", err)
	}
	f, err := ckpt.FeatureCheck(o)
	if err != nil {
		return fail(c.stderr, "ckpt check", err)
	}
	checkErr := ckpt.Check(o)
	features := []struct {
		name, use string
		s         ckpt.Support
	}{
		{"mem_track", "--pre-dump, --parent-path", f.MemTrack},
		{"lazy_pages", "--lazy-pages", f.LazyPages},
		{"pidfd_store", "pid reuse detection across pre-dumps", f.PidfdStore},
	}
	if *checkFormat == "json" {
		r := checkReport{CriuVersion: versionString(v), CriuVersionNumber: v, CkptVersion: ckpt.Version(),
			Check: checkErr == nil, Features: map[string]bool{}}
		if checkErr != nil {
			r.CheckError = checkErr.Error()
		}
		for _, ft := range features {
			if ft.s != ckpt.Unanswered {
				r.Features[ft.name] = ft.s == ckpt.Supported
			}
		}
		writeJSON(c.stdout, r)
	} else {
		criu := c.criu
		if criu == "" {
			criu = "criu"
		}
		fmt.Fprintf(c.stdout, "criu %s (%s), ckpt %s\n", versionString(v), criu, ckpt.Version())
		if checkErr == nil {
			fmt.Fprintln(c.stdout, "kernel check: looks good")
		} else {
			fmt.Fprintln(c.stdout, "kernel check: FAILED (see below)")
		}
		fmt.Fprintln(c.stdout, "features:")
		t := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		for _, ft := range features {
			fmt.Fprintf(t, "  %s\t%s\t(%s)\n", ft.name, ft.s, ft.use)
		}
		t.Flush()
	}
	if checkErr != nil {
		return fail(c.stderr, "ckpt check", checkErr)
	}
	return exitOK
}
