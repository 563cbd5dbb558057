package ckpt

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Every setter of the C API is reachable from Options (or, for the cancellation token, from
// a context): a setter added to the header without a field fails here.
func TestEverySetterIsMapped(t *testing.T) {
	h, err := os.ReadFile("../include/ckpt.h")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("handle.go")
	if err != nil {
		t.Fatal(err)
	}
	// The cancellation token is set from the context of the ...Context calls, in cancel.go.
	cancel, err := os.ReadFile("cancel.go")
	if err != nil {
		t.Fatal(err)
	}
	src = append(src, cancel...)
	setters := regexp.MustCompile(`(?m)^ckpt_status (ckpt_opts_(?:set|add)_\w+)\(`).FindAllStringSubmatch(string(h), -1)
	if len(setters) < 60 {
		t.Fatalf("found only %d setters in the header", len(setters))
	}
	// Setters Go reaches through another form of the same setting.
	other := map[string]string{
		"ckpt_opts_set_status_fd": "ckpt_opts_set_status_fd_dup", // the caller keeps its descriptor
	}
	for _, m := range setters {
		if alt, ok := other[m[1]]; ok && strings.Contains(string(src), alt+"(") {
			continue
		}
		if !strings.Contains(string(src), m[1]+"(") {
			t.Errorf("%s has no Options field", m[1])
		}
	}
	t.Logf("%d setters, each mapped", len(setters))
}

func intp(v int) *int { return &v }

// Bad values are refused before criu starts, each with one clear line.
func TestBadOptionsRefusedBeforeCriuStarts(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "criu-ran")
	criu := fakeCriu(t, "touch "+marker+"; exit 1")
	images := filepath.Join(dir, "images")
	if err := os.MkdirAll(images, 0o700); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	w.Fd() // keep the pipe blocking: the test only needs its numbers

	base := func(o Options) *Options {
		o.CriuPath = criu
		if o.ImagesDirectory == "" {
			o.ImagesDirectory = images
		}
		return &o
	}
	self := os.Getpid()
	type tc struct {
		name    string
		pid     int // 0 means the test's own pid; a restore when restore is set
		restore bool
		opts    *Options
		code    Code
	}
	cases := []tc{
		{"page-server port 0", 0, false, base(Options{PageServer: CriuPageServerInfo{"127.0.0.1", 0}}), ErrInvalidArgument},
		{"page-server port too big", 0, false, base(Options{PageServer: CriuPageServerInfo{"127.0.0.1", 70000}}), ErrInvalidArgument},
		{"page-server no address", 0, false, base(Options{PageServer: CriuPageServerInfo{"", 27277}}), ErrInvalidArgument},
		{"page-server bad IPv6", 0, false, base(Options{PageServer: CriuPageServerInfo{"::1::x", 27277}}), ErrInvalidArgument},
		{"manage-cgroups-mode", 0, false, base(Options{ManageCgroupsMode: "sometimes"}), ErrInvalidArgument},
		{"empty-ns pid", 0, false, base(Options{EmptyNs: []string{"pid"}}), ErrInvalidArgument},
		{"empty-ns empty", 0, false, base(Options{EmptyNs: []string{""}}), ErrInvalidArgument},
		{"parent-path absolute", 0, false, base(Options{ParentImage: "/tmp"}), ErrInvalidArgument},
		{"parent-path outside", 0, false, base(Options{ParentImage: "../elsewhere"}), ErrInvalidArgument},
		{"parent-path missing", 0, false, base(Options{ParentImage: "no-such-parent"}), ErrNotFound},
		{"status-fd negative", 0, false, base(Options{StatusFd: -1}), ErrBadFd},
		{"status-fd stdout", 0, false, base(Options{StatusFd: 1}), ErrBadFd},
		{"status-fd stderr", 0, false, base(Options{StatusFd: 2}), ErrBadFd},
		{"status-fd not open", 0, false, base(Options{StatusFd: 987654}), ErrBadFd},
		{"status-fd read-only", 0, false, base(Options{StatusFd: int(r.Fd())}), ErrBadFd},
		{"container status", 0, false, base(Options{ContainerStatus: "zombie"}), ErrInvalidArgument},
		{"container stopped", 0, false, base(Options{ContainerStatus: StateStopped}), ErrInvalidState},
		{"network lock", 0, false, base(Options{NetworkLock: "ebtables"}), ErrInvalidArgument},
		{"pre-dump mode", 0, false, base(Options{PreDumpMode: "fast"}), ErrInvalidArgument},
		{"log file with /", 0, false, base(Options{LogFile: "../dump.log"}), ErrInvalidArgument},
		{"log level 9", 0, false, base(Options{LogLevel: intp(9)}), ErrInvalidArgument},
		{"log level -1", 0, false, base(Options{LogLevel: intp(-1)}), ErrInvalidArgument},
		{"lazy-pages without page-server", 0, false, base(Options{LazyPages: true}), ErrInvalidArgument},
		{"timeout negative", 0, false, base(Options{Timeout: -time.Second}), ErrInvalidArgument},
		{"criu timeout negative", 0, false, base(Options{CriuTimeout: -time.Second}), ErrInvalidArgument},
		{"ext mount empty key", 0, false, base(Options{ExtMounts: []ExtMount{{"", "x"}}}), ErrInvalidArgument},
		{"join-ns bogus", 0, false, base(Options{JoinNs: []JoinNs{{Ns: "bogus", NsFile: "/proc/self/ns/net"}}}), ErrInvalidArgument},
		{"inherit-fd negative", 0, true, base(Options{InheritFds: []InheritFd{{"pipe:[1]", -1}}}), ErrBadFd},
		{"inherit-fd not open", 0, true, base(Options{InheritFds: []InheritFd{{"pipe:[1]", 987654}}}), ErrBadFd},
		{"veth pair empty", 0, false, base(Options{VethPairs: []VethPairName{{"", "veth0"}}}), ErrInvalidArgument},
		{"lsm-profile without colon", 0, true, base(Options{LsmProfile: "unconfined"}), ErrInvalidArgument},
		{"NUL in a path", 0, false, base(Options{WorkDirectory: "a\x00b"}), ErrInvalidUTF8},
		{"invalid UTF-8 in a list", 0, false, base(Options{External: []string{"\xfe"}}), ErrInvalidUTF8},
		{"invalid UTF-8 in text", 0, true, base(Options{LsmProfile: "apparmor:\xfe"}), ErrInvalidUTF8},
		// A path is bytes: one that is not UTF-8 is taken, and then simply not there.
		{"a path that is not UTF-8", 0, true, base(Options{ImagesDirectory: filepath.Join(dir, "caf\xe9")}), ErrNotFound},
		{"pid 0", -1, false, base(Options{}), ErrInvalidArgument},
		{"pid negative", -5, false, base(Options{}), ErrInvalidArgument},
		{"pid beyond int32", 1 << 40, false, base(Options{}), ErrInvalidArgument},
		{"no image path", 0, false, &Options{CriuPath: criu}, ErrInvalidArgument},
		{"restore from nothing", 0, true, base(Options{ImagesDirectory: filepath.Join(dir, "none")}), ErrNotFound},
	}
	for _, c := range cases {
		var err error
		if c.restore {
			_, _, err = Restore(c.opts)
		} else {
			pid := c.pid
			switch pid {
			case 0:
				pid = self
			case -1:
				pid = 0
			}
			_, err = Checkpoint(pid, c.opts)
		}
		var e *Error
		switch {
		case err == nil:
			t.Errorf("%s: accepted", c.name)
		case !errors.As(err, &e):
			t.Errorf("%s: %T is not *Error", c.name, err)
		case !errors.Is(err, c.code):
			t.Errorf("%s: code %d (%v), want %d: %s", c.name, e.Code, e.Code, c.code, e.Message)
		case strings.Contains(e.Message, "\n") || e.Message == "":
			t.Errorf("%s: message %q is not one line", c.name, e.Message)
		default:
			t.Logf("%-32s %s", c.name+":", e.Message)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%s: criu was started", c.name)
		}
	}
}

// The caller keeps its status fd: the library writes to, and closes, a duplicate.
func TestStatusFdStaysWithCaller(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer wr.Close()
	fd := int(wr.Fd())
	fds := openFds(t)
	if err := CheckStatusFd(fd); err != nil {
		t.Fatalf("CheckStatusFd(%d): %v", fd, err)
	}
	if err := CheckStatusFd(0); !errors.Is(err, ErrBadFd) {
		t.Errorf("CheckStatusFd(0) = %v, want ErrBadFd", err)
	}
	// Bad descriptors get the library's own refusal (the Go package checks nothing itself):
	// its messages name the descriptor as the caller gave it.
	for bad, want := range map[int]string{
		-1:          "status fd -1 is negative",
		2:           "status fd 2 is standard input, output or error",
		987654:      "status fd 987654 is not open",
		int(r.Fd()): "is not open for writing",
		1 << 40:     "status fd 2147483647 is not open",
	} {
		err := CheckStatusFd(bad)
		if !errors.Is(err, ErrBadFd) || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckStatusFd(%d) = %v, want ErrBadFd saying %q", bad, err, want)
		}
		_, err = Checkpoint(w.pid(), &Options{ImagesDirectory: filepath.Join(dir, "bad"), LeaveRunning: true, StatusFd: bad})
		if !errors.Is(err, ErrBadFd) || !strings.Contains(err.Error(), want) {
			t.Errorf("Checkpoint with StatusFd %d = %v, want ErrBadFd saying %q", bad, err, want)
		}
	}
	if n := openFds(t); n != fds {
		t.Errorf("%d fds before, %d after the refusals", fds, n)
	}
	if _, err := Checkpoint(w.pid(), &Options{ImagesDirectory: filepath.Join(dir, "img"), LeaveRunning: true, StatusFd: fd}); err != nil {
		t.Fatal(err)
	}
	if n := openFds(t); n != fds {
		t.Errorf("%d fds before, %d after: the duplicate leaked", fds, n)
	}
	if _, err := wr.Write([]byte("x")); err != nil {
		t.Errorf("the caller's status fd is unusable after the call: %v", err)
	}
}
