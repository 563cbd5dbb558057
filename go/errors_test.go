package ckpt

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Go codes are the header's: same names, same numbers, nothing missing on either side.
func TestCodesMatchHeader(t *testing.T) {
	h, err := os.ReadFile("../include/ckpt.h")
	if err != nil {
		t.Fatalf("reading the header: %v", err)
	}
	re := regexp.MustCompile(`(?m)^#define CKPT_(OK|ERR_[A-Z0-9_]+) (\d+)$`)
	goName := map[string]Code{
		"OK": OK, "ERR_NULL_ARGUMENT": ErrNullArgument, "ERR_INVALID_UTF8": ErrInvalidUTF8,
		"ERR_INVALID_ARGUMENT": ErrInvalidArgument, "ERR_BAD_FD": ErrBadFd,
		"ERR_INVALID_STATE": ErrInvalidState, "ERR_UNSUPPORTED": ErrUnsupported, "ERR_IO": ErrIO,
		"ERR_SPAWN": ErrSpawn, "ERR_PROTOCOL": ErrProtocol, "ERR_CRIU": ErrCriu,
		"ERR_CRIU_DIED": ErrCriuDied, "ERR_TIMEOUT": ErrTimeout, "ERR_CALLBACK": ErrCallback,
		"ERR_PANIC": ErrPanic, "ERR_NOT_FOUND": ErrNotFound, "ERR_PID_IN_USE": ErrPidInUse,
		"ERR_CANCELLED": ErrCancelled,
	}
	found := 0
	for _, m := range re.FindAllStringSubmatch(string(h), -1) {
		n, _ := strconv.Atoi(m[2])
		c, ok := goName[m[1]]
		if !ok {
			t.Errorf("CKPT_%s = %d has no Go code", m[1], n)
			continue
		}
		if int(c) != n {
			t.Errorf("CKPT_%s = %d but the Go code is %d", m[1], n, c)
		}
		found++
	}
	if found != len(goName) || found != len(Codes) {
		t.Errorf("header has %d codes, Go maps %d and lists %d", found, len(goName), len(Codes))
	}
	for _, c := range Codes {
		if c.Error() == "" || strings.Contains(c.Error(), "unknown") {
			t.Errorf("code %d has no description: %q", c, c.Error())
		}
		e := &Error{Code: c, Message: "x"}
		for _, other := range Codes {
			if got := errors.Is(e, other); got != (other == c) {
				t.Errorf("errors.Is(Error{%d}, %d) = %v", c, other, got)
			}
		}
	}
}

func fakeCriu(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-criu")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// Each code the library can return to a Go caller, produced for real and checked with
// errors.Is and errors.As.
func TestEveryErrorCodeMapped(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	images := func(name string) string { return filepath.Join(dir, name) }
	cases := []struct {
		code Code
		run  func() error
	}{
		// Text CRIU reads as text (a path would be taken: paths are bytes).
		{ErrInvalidUTF8, func() error {
			_, err := Checkpoint(w.pid(), &Options{ImagesDirectory: images("u"), LsmProfile: "apparmor:bad\xff"})
			return err
		}},
		{ErrInvalidUTF8, func() error {
			_, err := Checkpoint(w.pid(), &Options{ImagesDirectory: "nul\x00dir"})
			return err
		}},
		{ErrInvalidArgument, func() error {
			_, err := Checkpoint(w.pid(), &Options{ImagesDirectory: images("a"),
				PageServer: CriuPageServerInfo{Address: "127.0.0.1", Port: 0}})
			return err
		}},
		{ErrBadFd, func() error {
			_, err := Checkpoint(w.pid(), &Options{ImagesDirectory: images("b"), StatusFd: 1})
			return err
		}},
		{ErrInvalidState, func() error {
			_, err := Checkpoint(w.pid(), &Options{ImagesDirectory: images("c"), ContainerStatus: StateCreated})
			return err
		}},
		{ErrIO, func() error {
			_, err := Checkpoint(w.pid(), &Options{ImagesDirectory: "/proc/version/images"})
			return err
		}},
		{ErrSpawn, func() error {
			_, err := CriuVersion(&Options{CriuPath: "/nonexistent/criu"})
			return err
		}},
		{ErrProtocol, func() error {
			_, err := CriuVersion(&Options{CriuPath: fakeCriu(t, `printf '\377\377\377\377' >&"$2"; sleep 1`)})
			return err
		}},
		{ErrCriu, func() error {
			_, err := Checkpoint(shellJob(t), &Options{ImagesDirectory: images("d"), LeaveRunning: true})
			return err
		}},
		{ErrCriuDied, func() error {
			_, err := CriuVersion(&Options{CriuPath: fakeCriu(t, "exit 3")})
			return err
		}},
		{ErrTimeout, func() error {
			_, err := CriuVersion(&Options{CriuPath: fakeCriu(t, "exec sleep 10"), Timeout: 200 * time.Millisecond})
			return err
		}},
		{ErrCallback, func() error {
			_, err := Checkpoint(w.pid(), &Options{ImagesDirectory: images("e"), LeaveRunning: true,
				Notify: &recorder{failOn: "pre-dump", failErr: errors.New("no")}})
			return err
		}},
		{ErrNotFound, func() error {
			empty := images("empty")
			if err := os.MkdirAll(empty, 0o700); err != nil {
				t.Fatal(err)
			}
			_, _, err := Restore(&Options{ImagesDirectory: empty})
			return err
		}},
		{ErrCancelled, func() error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := CheckpointContext(ctx, w.pid(), &Options{ImagesDirectory: images("x"), LeaveRunning: true})
			return err
		}},
		{ErrPidInUse, func() error {
			img := images("inuse")
			if _, err := Checkpoint(w.pid(), &Options{ImagesDirectory: img, LeaveRunning: true}); err != nil {
				t.Fatalf("leave-running dump: %v", err)
			}
			pid, _, err := Restore(&Options{ImagesDirectory: img})
			if err == nil {
				killChild(pid)
			}
			return err
		}},
	}
	f, err := FeatureCheck(nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.MemTrack != Supported {
		cases = append(cases, struct {
			code Code
			run  func() error
		}{ErrUnsupported, func() error {
			_, err := Checkpoint(w.pid(), &Options{ImagesDirectory: images("f"), PreDump: true})
			return err
		}})
	} else {
		t.Log("NOT EXERCISED: ErrUnsupported (this kernel has memory tracking, so pre-dump works)")
	}
	seen := map[Code]bool{}
	for _, c := range cases {
		err := c.run()
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%v: want an *Error, got %v", c.code, err)
			continue
		}
		if !errors.Is(err, c.code) || e.Code != c.code {
			t.Errorf("want code %d (%v), got %d: %v", c.code, c.code, e.Code, e)
			continue
		}
		if e.Message == "" || strings.Contains(e.Message, "\n") {
			t.Errorf("%v: message %q is not one line", c.code, e.Message)
		}
		seen[c.code] = true
		t.Logf("%-2d %-20s %s", e.Code, codeName(e.Code), e.Message)
	}
	// CRIU's own failure carries its log and the excerpt.
	_, err = Checkpoint(shellJob(t), &Options{ImagesDirectory: images("g"), LeaveRunning: true})
	var e *Error
	if errors.As(err, &e) {
		if e.Code != ErrCriu || e.LogExcerpt == "" {
			t.Errorf("a CRIU failure without its excerpt: %+v", e)
		}
		if _, serr := os.Stat(e.LogPath); serr != nil {
			t.Errorf("log path %q: %v", e.LogPath, serr)
		}
		if !strings.Contains(e.LogExcerpt, "Error") {
			t.Errorf("excerpt without CRIU's Error lines: %q", e.LogExcerpt)
		}
	}
	for _, c := range Codes {
		if c == OK || seen[c] {
			continue
		}
		switch c {
		case ErrNullArgument:
			t.Log("ErrNullArgument: not from a library call (this package never passes NULL to the library); a nil *Container gives it, TestNilContainerIsErrNullArgument")
		case ErrPanic:
			t.Log("NOT EXERCISED: ErrPanic (an internal library failure cannot be provoked from Go; mapped by TestCodesMatchHeader)")
		case ErrUnsupported:
		default:
			t.Errorf("code %d (%v) was not produced", c, c)
		}
	}
}

// shellJob starts a process in the test's own session, whose leader is outside the tree:
// CRIU refuses to dump it, as not a session leader without ShellJob, or, where the test runs in
// a pid namespace its session's leader is not in (CI runners), for that. Either is ErrCriu.
func shellJob(t *testing.T) int {
	t.Helper()
	c := exec.Command("sleep", "60")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	return c.Process.Pid
}

func codeName(c Code) string {
	names := []string{"OK", "ErrNullArgument", "ErrInvalidUTF8", "ErrInvalidArgument", "ErrBadFd",
		"ErrInvalidState", "ErrUnsupported", "ErrIO", "ErrSpawn", "ErrProtocol", "ErrCriu",
		"ErrCriuDied", "ErrTimeout", "ErrCallback", "ErrPanic", "ErrNotFound", "ErrPidInUse",
		"ErrCancelled"}
	if int(c) < len(names) {
		return names[c]
	}
	return "?"
}
