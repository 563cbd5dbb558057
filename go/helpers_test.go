package ckpt

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests drive the real criu against real processes and need root.
func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "ckpt's Go tests run the real CRIU and need root")
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// counter is a workload: a shell loop writing an increasing number to a file, in its own
// session with stdio on /dev/null, so CRIU can dump it without --shell-job.
type counter struct {
	cmd  *exec.Cmd
	path string
}

func startCounter(t testing.TB, dir string) *counter {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "counter")
	// Written to a temporary file and renamed, so a reader never sees it half written.
	script := fmt.Sprintf("i=0; while :; do i=$((i+1)); echo $i > %[1]s.tmp; mv %[1]s.tmp %[1]s; sleep 0.05; done", path)
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the workload: %v", err)
	}
	c := &counter{cmd: cmd, path: path}
	t.Cleanup(func() {
		// Harmless when the process is gone already.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c.waitAbove(t, 0)
	return c
}

func (c *counter) pid() int { return c.cmd.Process.Pid }

// readCounter reads the number in path, -1 when there is none. A container's workload rewrites
// its counter with `echo $i > /counter`, which empties the file before the number lands: a read
// that finds it empty looks again, for up to 200 ms.
func readCounter(path string) int {
	for tries := 0; ; tries++ {
		b, err := os.ReadFile(path)
		if err != nil {
			return -1
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
		if tries == 20 {
			return -1
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *counter) value() int { return readCounter(c.path) }

// waitAbove waits until the counter exceeds n and returns the value seen.
func (c *counter) waitAbove(t testing.TB, n int) int {
	t.Helper()
	return waitCounterAbove(t, c.path, n)
}

func waitCounterAbove(t testing.TB, path string, n int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if v := readCounter(path); v > n {
			return v
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("counter %s did not go above %d within 5s (it is %d)", path, n, readCounter(path))
	return 0
}

// reapDumped waits for a workload CRIU killed after the dump, and for every other process of
// its session (the loop's sleep, reaped by init), so all its pids are free to restore.
func (c *counter) reapDumped(t testing.TB) {
	t.Helper()
	_ = c.cmd.Wait()
	waitSessionGone(t, c.pid())
}

// dumpedCounter starts a counter in dir, lets it count past 3, checkpoints it into images
// (the dump kills it) and reaps it.
func dumpedCounter(t testing.TB, dir, images string) *counter {
	t.Helper()
	w := startCounter(t, dir)
	w.waitAbove(t, 3)
	if _, err := Checkpoint(w.pid(), &Options{ImagesDirectory: images}); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	w.reapDumped(t)
	return w
}

// waitSessionGone waits until no process belongs to session sid.
func waitSessionGone(t testing.TB, sid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if len(sessionMembers(sid)) == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("processes %v of session %d still exist after 5s", sessionMembers(sid), sid)
}

func sessionMembers(sid int) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// After the command name: state ppid pgrp session ...
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 3 && f[3] == strconv.Itoa(sid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killChild kills and reaps a restored tree, which is a child of the test process.
func killChild(pid int) {
	if pid <= 0 {
		// kill(0) or kill(-1) would hit the test's own process group, or everything.
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &ws, 0, nil)
}

func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

func openFds(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// recorder is a Notifications that records the notifications in order, and can fail one.
type recorder struct {
	NoNotifications
	seen    []string
	pids    map[string]int
	failOn  string
	failErr error
}

func (r *recorder) note(name string, pid int) error {
	r.seen = append(r.seen, name)
	if r.pids == nil {
		r.pids = map[string]int{}
	}
	r.pids[name] = pid
	if name == r.failOn {
		return r.failErr
	}
	return nil
}

func (r *recorder) PreDump() error                     { return r.note("pre-dump", 0) }
func (r *recorder) PostDump() error                    { return r.note("post-dump", 0) }
func (r *recorder) NetworkLock() error                 { return r.note("network-lock", 0) }
func (r *recorder) NetworkUnlock() error               { return r.note("network-unlock", 0) }
func (r *recorder) PreRestore() error                  { return r.note("pre-restore", 0) }
func (r *recorder) SetupNamespaces(pid int) error      { return r.note("setup-namespaces", pid) }
func (r *recorder) PostSetupNamespaces() error         { return r.note("post-setup-namespaces", 0) }
func (r *recorder) PostRestore(pid int) error          { return r.note("post-restore", pid) }
func (r *recorder) PreResume() error                   { return r.note("pre-resume", 0) }
func (r *recorder) PostResume() error                  { return r.note("post-resume", 0) }
func (r *recorder) StatusReady() error                 { return r.note("status-ready", 0) }
func (r *recorder) Other(script string, pid int) error { return r.note(script, pid) }
