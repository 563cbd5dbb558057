package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ckpt "ckpt.dev/go/ckpt"
	"ckpt.dev/go/ckpt/internal/wiretest"
)

// Every yes/no flag of checkpoint and restore is either a CRIU switch, sent as an explicit
// false when given =false, or one of ckpt's own, where =false is the same as leaving it out.
func TestEveryYesNoFlagSorted(t *testing.T) {
	own := map[string]bool{"detach": true, "d": true, "stats": true, "explain": true, "keep-network": true}
	for _, c := range []*command{checkpointCmd, restoreCmd} {
		fs := newFlagSet("ckpt " + c.name)
		c.flags(fs)
		fs.fs.VisitAll(func(fl *flag.Flag) {
			b, ok := fl.Value.(interface{ IsBoolFlag() bool })
			if !ok || !b.IsBoolFlag() {
				return
			}
			if _, criu := criuSwitches[fl.Name]; !criu && !own[fl.Name] {
				t.Errorf("ckpt %s --%s is neither a CRIU switch nor one of ckpt's own", c.name, fl.Name)
			}
		})
	}
}

// criuOptsFields maps each Options field to its criu_opts field number, from the README's
// option table.
func criuOptsFields(t *testing.T) map[ckpt.Flag]int {
	byName, err := wiretest.CriuOptsFields("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := map[ckpt.Flag]int{}
	for name, n := range byName {
		m[ckpt.Flag(name)] = n
	}
	return m
}

// sentByCommand runs ckpt with args against a criu that records the request it receives and
// exits (the recording criu of go/explicit_false_test.go), and returns the varint fields of
// the request's criu_opts.
func sentByCommand(t *testing.T, dir string, args ...string) map[int]uint64 {
	t.Helper()
	req := filepath.Join(dir, "request")
	_ = os.Remove(req)
	criu := filepath.Join(dir, "recording-criu")
	script := "#!/bin/sh\ndd bs=1048576 count=1 of=" + req + " <&\"$2\" 2>/dev/null; exit 1\n"
	if err := os.WriteFile(criu, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := runCkpt(t, dir, append([]string{"--criu", criu}, args...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "criu") {
		t.Fatalf("ckpt %v with the recording criu: exit %d, %q", args, r.code, r.stderr)
	}
	b, err := os.ReadFile(req)
	if err != nil || len(b) == 0 {
		t.Fatalf("ckpt %v: no request recorded (%v); ckpt said %q", args, err, r.stderr)
	}
	opts, err := wiretest.RequestOpts(b)
	if err != nil {
		t.Fatalf("ckpt %v: the recorded request: %v", args, err)
	}
	return opts
}

// --flag=false reaches CRIU as a present false for every CRIU switch of checkpoint and
// restore; an omitted flag is not sent; a given one is sent as true.
func TestFlagFalseIsSentAsFalse(t *testing.T) {
	dir := t.TempDir()
	nums := criuOptsFields(t)
	images := filepath.Join(dir, "images")
	if err := os.MkdirAll(images, 0o700); err != nil {
		t.Fatal(err)
	}
	// The restore looks for an inventory before criu starts.
	if err := os.WriteFile(filepath.Join(images, "inventory.img"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A child of the test, not the test itself: ckpt refuses to checkpoint its own ancestors.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	pid := strconv.Itoa(sleeper.Process.Pid)
	cases := []struct {
		cmd      string
		switches []string
		extra    []string
	}{
		{"checkpoint", []string{"leave-running", "tcp-established", "tcp-skip-in-flight", "link-remap",
			"ext-unix-sk", "shell-job", "lazy-pages", "file-locks", "pre-dump", "auto-dedup"}, []string{pid}},
		{"restore", []string{"tcp-established", "tcp-close", "ext-unix-sk", "shell-job", "file-locks",
			"auto-dedup", "lazy-pages"}, []string{"--wait-pids", "0"}},
	}
	checked := 0
	for _, c := range cases {
		base := append([]string{c.cmd, "--image-path", images}, c.extra...)
		var falses []string
		for _, s := range c.switches {
			falses = append(falses, "--"+s+"=false")
		}
		none := sentByCommand(t, dir, base...)
		sentFalse := sentByCommand(t, dir, append(base, falses...)...)
		for _, s := range c.switches {
			f, ok := criuSwitches[s]
			if !ok {
				t.Errorf("--%s is not in criuSwitches", s)
				continue
			}
			n, ok := nums[f]
			if !ok {
				t.Logf("--%s (%s) is not a criu_opts field: not checked on the wire", s, f)
				continue
			}
			checked++
			if v, ok := sentFalse[n]; !ok || v != 0 {
				t.Errorf("ckpt %s --%s=false: criu_opts field %d sent as %v (present %v)", c.cmd, s, n, v, ok)
			}
			if v, ok := none[n]; ok {
				t.Errorf("ckpt %s without --%s: criu_opts field %d sent as %v", c.cmd, s, n, v)
			}
			// A given switch is sent as true (except those that need more than a request: a
			// page server, or a feature check first, which is what the recording criu gets).
			if s == "lazy-pages" || s == "pre-dump" {
				continue
			}
			if on := sentByCommand(t, dir, append(base, "--"+s)...); on[n] != 1 {
				t.Errorf("ckpt %s --%s: criu_opts field %d sent as %v", c.cmd, s, n, on[n])
			}
		}
		// The last of repeated flags wins, as with any flag.
		last := sentByCommand(t, dir, append(base, "--shell-job", "--shell-job=false")...)
		if v, ok := last[nums[ckpt.FlagShellJob]]; !ok || v != 0 {
			t.Errorf("ckpt %s --shell-job --shell-job=false: sent %v (present %v)", c.cmd, v, ok)
		}
	}
	if checked < 15 {
		t.Fatalf("only %d switches checked on the wire", checked)
	}
	t.Logf("%d switches sent as explicit false when given =false, left out when omitted", checked)
}
