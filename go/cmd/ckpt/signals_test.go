package main

import (
	"bytes"
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

// startBigWorkload starts a counter loop, in a session of its own, that first fills mb
// megabytes of memory with non-zero bytes, so that CRIU takes a while to dump or restore it.
func startBigWorkload(t *testing.T, dir string, mb int) *workload {
	t.Helper()
	path := filepath.Join(dir, "counter")
	script := `my $s = "x" x (` + strconv.Itoa(mb) + ` << 20); my $p = shift; my $i = 0;
while (1) { open(F, ">", "$p.tmp") or die; print F ++$i; close F; rename "$p.tmp", $p; select(undef, undef, undef, 0.05) }`
	cmd := exec.Command("perl", "-e", script, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	w := &workload{cmd: cmd, path: path}
	deadline := time.Now().Add(60 * time.Second)
	for w.value() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	w.waitAbove(t, 1)
	return w
}

// procField reads one "Name:\tvalue" line of /proc/PID/status ("" when the process is gone).
func procField(pid int, name string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+":") {
			return strings.TrimSpace(strings.TrimPrefix(l, name+":"))
		}
	}
	return ""
}

// startCkpt starts the command in the background, with its output in buffers.
func startCkpt(t *testing.T, dir string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(ckptBin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, &out
}

// waitFor polls cond every 5 ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

// A SIGINT (and a SIGTERM) while CRIU dumps a leave-running tree: criu is stopped, ckpt exits 1
// with the library's message at once (one signal), and the tree runs on: not stopped, not
// traced, counting; criu is gone, not a zombie.
func TestSignalCancelsCheckpoint(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		dir := t.TempDir()
		w := startBigWorkload(t, dir, 512)
		images := filepath.Join(dir, "images")
		cmd, out := startCkpt(t, dir, "checkpoint", "--leave-running", "--image-path", images, strconv.Itoa(w.pid()))
		var criu int
		if !waitFor(30*time.Second, func() bool {
			criu, _ = strconv.Atoi(procField(w.pid(), "TracerPid"))
			return criu != 0
		}) {
			t.Fatalf("criu never seized the workload; ckpt said: %s", out)
		}
		// Into the memory dump, which takes seconds for this much memory.
		time.Sleep(300 * time.Millisecond)
		sent := time.Now()
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		took := time.Since(sent)
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err == nil {
			code = 0
		}
		msg := out.String()
		t.Logf("%v after criu (pid %d) seized the tree: exit %d after %v: %s", sig, criu, code, took.Round(time.Millisecond), strings.TrimSpace(msg))
		if code != 1 {
			t.Errorf("%v: exit %d, want 1 (err %v)", sig, code, err)
		}
		if !strings.HasPrefix(msg, "ckpt checkpoint: ") || !strings.Contains(msg, "cancelled") ||
			!strings.Contains(msg, fmt.Sprintf("criu (pid %d)", criu)) {
			t.Errorf("%v: message %q", sig, msg)
		}
		if took > 5*time.Second {
			t.Errorf("%v: ckpt took %v to stop", sig, took)
		}
		if s := procField(criu, "State"); s != "" && !strings.Contains(procField(criu, "Name"), "perl") {
			t.Errorf("criu (pid %d) is left, state %s", criu, s)
		}
		// Not stopped, traced or dead (a moment of D, writing the counter, is no harm).
		if s := procField(w.pid(), "State"); s == "" || strings.ContainsAny(s[:1], "TtZX") {
			t.Errorf("%v: the workload is in state %q", sig, s)
		}
		if tr := procField(w.pid(), "TracerPid"); tr != "0" {
			t.Errorf("%v: the workload is still traced by %s", sig, tr)
		}
		v := w.value()
		w.waitAbove(t, v+2)
	}
}

// A SIGINT while CRIU restores a tree, once the tree exists: the half-restored tree is killed,
// its pid reported, and ckpt exits 1; nothing of the tree is left.
func TestSignalCancelsRestore(t *testing.T) {
	dir := t.TempDir()
	w := startBigWorkload(t, dir, 512)
	images := filepath.Join(dir, "images")
	if r := runCkpt(t, dir, "checkpoint", "--image-path", images, strconv.Itoa(w.pid())); r.code != 0 {
		t.Fatalf("checkpoint: exit %d: %s", r.code, r.stderr)
	}
	w.reapDumped(t)
	cmd, out := startCkpt(t, dir, "restore", "--detach", "--image-path", images)
	if !waitFor(30*time.Second, func() bool { return procField(w.pid(), "State") != "" }) {
		t.Fatalf("the tree never appeared; ckpt said: %s", out)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	msg := strings.TrimSpace(out.String())
	t.Logf("SIGINT once pid %d existed: %v: %s", w.pid(), err, msg)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		if err == nil {
			// CRIU finished first: the restore stands, so the tree is ours to end.
			killTree(t, w.pid())
			t.Skip("the restore finished before the signal landed; nothing to check")
		}
		t.Fatalf("exit: %v", err)
	}
	if !strings.HasPrefix(msg, "ckpt restore: ") || !strings.Contains(msg, "cancel") ||
		!strings.Contains(msg, fmt.Sprintf("the restored tree (pid %d) was killed", w.pid())) {
		t.Errorf("message %q", msg)
	}
	if !waitFor(5*time.Second, func() bool { return procField(w.pid(), "State") == "" }) {
		t.Errorf("pid %d is left, state %s", w.pid(), procField(w.pid(), "State"))
	}
}

// A SIGTERM while --export writes the archive (after the checkpoint, which the library cannot
// stop) ends ckpt as it ends any program, killed by the signal, without leaving the archive's
// hidden partial file beside it (here 20 MB and more) or the spec ckpt wrote for the tree in
// $TMPDIR (/tmp/ckpt-spec-*.json); the tree, checkpointed with --leave-running, runs on.
func TestSignalDuringExportLeavesNoPartialArchive(t *testing.T) {
	dir := t.TempDir()
	w := startRandomWorkload(t, dir, 150)

	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "big.tar.gz")
	cmd := exec.Command(ckptBin, "checkpoint", "--leave-running", "--image-path", filepath.Join(dir, "img"),
		"--export", archive, "--compression", "gzip:9", strconv.Itoa(w.pid()))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	partial := filepath.Join(dir, ".big.tar.gz.ckpt-partial-*")
	if !waitFor(60*time.Second, func() bool { m, _ := filepath.Glob(partial); return len(m) > 0 }) {
		t.Fatalf("the export never started writing %s: %s", partial, out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("ckpt after SIGTERM during the export: %v, want killed by SIGTERM\n%s", cmd.ProcessState, out.String())
	}
	if m, _ := filepath.Glob(partial); len(m) > 0 {
		t.Errorf("the export's partial archive was left: %v", m)
	}
	if _, err := os.Stat(archive); err == nil {
		t.Errorf("an archive %s exists after the export was interrupted", archive)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) > 0 {
		t.Errorf("left in $TMPDIR: %v", left)
	}
	w.waitAbove(t, w.value())
}

// startRandomWorkload is startBigWorkload with mb megabytes of random bytes, which no
// compressor shrinks: archives of it take a while to write and to unpack.
func startRandomWorkload(t *testing.T, dir string, mb int) *workload {
	t.Helper()
	path := filepath.Join(dir, "counter")
	script := `open(R, "<", "/dev/urandom") or die; my $n = shift; my $s; read(R, $s, $n << 20) == $n << 20 or die;
my $p = shift; my $i = 0;
while (1) { open(F, ">", "$p.tmp") or die; print F ++$i; close F; rename "$p.tmp", $p; select(undef, undef, undef, 0.05) }`
	cmd := exec.Command("perl", "-e", script, strconv.Itoa(mb), path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	w := &workload{cmd: cmd, path: path}
	w.waitAbove(t, 1)
	return w
}

// A SIGTERM while restore --import unpacks the archive (which the library cannot stop) ends
// ckpt, killed by the signal, without leaving the half-unpacked import directory, which made
// the same command fail next time ("import target ... is not empty"): a directory the import
// made is removed, an empty one given with --import-dir is emptied.
func TestSignalDuringImportLeavesNoPartialDir(t *testing.T) {
	dir := t.TempDir()
	w := startRandomWorkload(t, dir, 200)
	archive := filepath.Join(dir, "big.tar")
	r := runCkpt(t, dir, "checkpoint", "--leave-running", "--image-path", filepath.Join(dir, "img"), "--export", archive,
		"--compression", "none", strconv.Itoa(w.pid()))
	if r.code != 0 {
		t.Fatalf("checkpoint --export: exit %d\n%s", r.code, r.stderr)
	}
	given := filepath.Join(dir, "given")
	if err := os.Mkdir(given, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		importDir string // "" for the default, made by the import
		left      string // what must be there afterwards: "" nothing, else an empty directory
	}{{"", ""}, {given, given}} {
		args := []string{"restore", "--import", archive, "--detach"}
		target := archive + ".d"
		if c.importDir != "" {
			args = append(args, "--import-dir", c.importDir)
			target = c.importDir
		}
		cmd, out := startCkpt(t, dir, args...)
		images := filepath.Join(target, "checkpoint")
		if !waitFor(30*time.Second, func() bool { e, _ := os.ReadDir(images); return len(e) > 0 }) {
			t.Fatalf("ckpt %v never unpacked into %s: %s", args, images, out.String())
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Errorf("ckpt %v after SIGTERM: %v, want killed by SIGTERM\n%s", args, cmd.ProcessState, out.String())
		}
		entries, err := os.ReadDir(target)
		switch {
		case c.left == "" && !os.IsNotExist(err):
			t.Errorf("ckpt %v interrupted left %s (%v, %d entries)", args, target, err, len(entries))
		case c.left != "" && (err != nil || len(entries) > 0):
			t.Errorf("ckpt %v interrupted: %s holds %d entries (%v), want it empty", args, target, len(entries), err)
		}
	}
	w.waitAbove(t, w.value())
}
