package main

// These tests run the ckpt command as a user would: a built binary, a real process tree,
// the real criu. CKPT_CMD names the binary to test; without it one is built here.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var ckptBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the ckpt command's tests run the real CRIU and need root")
		os.Exit(2)
	}
	ckptBin = os.Getenv("CKPT_CMD")
	built := ""
	if ckptBin == "" {
		dir, err := os.MkdirTemp("", "ckpt-cmd-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ckptBin = filepath.Join(dir, "ckpt")
		if out, err := exec.Command("go", "build", "-o", ckptBin, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building ckpt: %v\n%s", err, out)
			os.RemoveAll(dir)
			os.Exit(2)
		}
		built = dir
	}
	code := m.Run()
	// Not deferred: os.Exit runs no deferred calls, and every run left a /tmp/ckpt-cmd-test*
	// directory with the binary in it.
	if built != "" {
		os.RemoveAll(built)
	}
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// runCkpt runs the command in dir with args.
func runCkpt(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(ckptBin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running ckpt %v: %v", args, err)
	}
	return r
}

// workload is a shell loop writing a counter, in its own session with stdio on /dev/null;
// with limit > 0 it exits with status 7 once the counter reaches limit.
type workload struct {
	cmd  *exec.Cmd
	path string
}

func startWorkload(t *testing.T, dir string, limit int) *workload {
	t.Helper()
	path := filepath.Join(dir, "counter")
	cond := ":"
	if limit > 0 {
		cond = fmt.Sprintf("[ $i -lt %d ]", limit)
	}
	script := fmt.Sprintf("i=0; while %s; do i=$((i+1)); echo $i > %[2]s.tmp; mv %[2]s.tmp %[2]s; sleep 0.05; done; exit 7", cond, path)
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	w := &workload{cmd: cmd, path: path}
	w.waitAbove(t, 3)
	return w
}

func (w *workload) pid() int { return w.cmd.Process.Pid }

func (w *workload) value() int {
	b, err := os.ReadFile(w.path)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

func (w *workload) waitAbove(t *testing.T, n int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if v := w.value(); v > n {
			return v
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the counter did not go above %d (it is %d)", n, w.value())
	return 0
}

// reapDumped reaps the workload CRIU killed, and waits until every process of its session
// is gone, so its pids are free for the restore.
func (w *workload) reapDumped(t *testing.T) {
	t.Helper()
	_ = w.cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if out, _ := exec.Command("pgrep", "-s", strconv.Itoa(w.pid())).Output(); len(out) == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the session of %d did not end", w.pid())
}

// killTree kills a restored tree that is not the test's child and waits until it is gone.
func killTree(t *testing.T, pid int) {
	t.Helper()
	_ = syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestHelpReadsLikeManPages(t *testing.T) {
	dir := t.TempDir()
	issueFlags := map[string][]string{
		"checkpoint": {"--image-path", "--work-path", "--parent-path", "--leave-running", "--tcp-established",
			"--tcp-skip-in-flight", "--link-remap", "--ext-unix-sk", "--shell-job", "--lazy-pages", "--status-fd",
			"--page-server", "--file-locks", "--pre-dump", "--manage-cgroups-mode", "--empty-ns", "--auto-dedup",
			"--stats", "--format", "--criu", "--ext-unix-sk-ino INODE"},
		"restore": {"--image-path", "--work-path", "--tcp-established", "--tcp-close", "--ext-unix-sk",
			"--shell-job", "--file-locks", "--manage-cgroups-mode", "--empty-ns", "--auto-dedup", "--lazy-pages",
			"--detach", "--pid-file", "--console-socket", "--lsm-profile", "--lsm-mount-context", "--stats",
			"--format", "--criu", "--ext-unix-sk-ino INODE", "--inherit-fd fd[N]:KEY"},
		"check": {"--format", "--criu"},
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"help", "help"}} {
		r := runCkpt(t, dir, args...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("ckpt %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		for _, want := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "GLOBAL OPTIONS",
			"EXIT STATUS", "checkpoint", "restore", "check", "inspect", "--criu PATH", "--log FILE", "--debug",
			"--version, -v", "--bundle", "--runtime"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("ckpt %v: %q missing from the manual", args, want)
			}
		}
	}
	for cmd, flags := range issueFlags {
		for _, args := range [][]string{{cmd, "--help"}, {"help", cmd}} {
			r := runCkpt(t, dir, args...)
			if r.code != 0 || r.stderr != "" {
				t.Errorf("ckpt %v: exit %d, stderr %q", args, r.code, r.stderr)
			}
			for _, want := range append([]string{"NAME\n   ckpt " + cmd, "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "SEE ALSO"}, flags...) {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("ckpt %v: %q missing", args, want)
				}
			}
		}
	}
	// Each form of the command line is in its synopsis: a container is named by --bundle and
	// --pid, or by its runtime and id, and an archive is restored with --import.
	for cmd, want := range map[string]string{
		"checkpoint": "ckpt checkpoint [option ...] --runtime runc|crun [--runtime-root DIR] ID",
		"restore":    "ckpt restore [option ...] --import FILE [--rootfs DIR | --rootfs-image DIR]",
	} {
		r := runCkpt(t, dir, cmd, "--help")
		if syn, _, _ := strings.Cut(r.stdout, "DESCRIPTION"); !strings.Contains(syn, want) {
			t.Errorf("ckpt %s --help: the synopsis does not give %q:\n%s", cmd, want, syn)
		}
	}
	r := runCkpt(t, dir, "checkpoint", "--help")
	if !strings.Contains(r.stdout, "The default is ./checkpoint.") {
		t.Error("checkpoint's manual does not give runc's default image path")
	}
}

// restore's --namespace help names every type ckpt_archive_opts_set_namespace accepts, and
// which of them a path can be joined for (the restore refuses a path for the others).
func TestHelpNamesTheNamespaceTypes(t *testing.T) {
	r := runCkpt(t, t.TempDir(), "restore", "--help")
	help := strings.Join(strings.Fields(r.stdout), " ")
	for _, want := range []string{
		"--namespace TYPE=PATH",
		"(network, pid, ipc, uts, user, mount, cgroup, time)",
		"(network, pid, ipc, uts and user only: CRIU cannot restore into an existing mount, cgroup or time namespace)",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("%q missing from restore's manual:\n%s", want, r.stdout)
		}
	}
}

func TestCheckReportsCriu(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command("criu", "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(strings.TrimPrefix(lines(string(out))[0], "Version:"))
	r := runCkpt(t, dir, "check")
	if r.code != 0 || !strings.Contains(r.stdout, "criu "+want) || !strings.Contains(r.stdout, "lazy_pages") {
		t.Fatalf("ckpt check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("ckpt check:\n%s", r.stdout)
	r = runCkpt(t, dir, "check", "--format", "json")
	var rep checkReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.CriuVersion != want || !rep.Check {
		t.Fatalf("ckpt check --format json: %v, %+v from %q", err, rep, r.stdout)
	}
	r = runCkpt(t, dir, "--version")
	if r.code != 0 || !strings.Contains(r.stdout, "criu version "+want) {
		t.Errorf("ckpt --version: %d %q", r.code, r.stdout)
	}
}

// runc's habits: -v prints the versions, --log sends ckpt's own messages to a file, --debug says
// what ckpt did, and --format json alone prints the statistics.
func TestRuncHabits(t *testing.T) {
	dir := t.TempDir()
	if r := runCkpt(t, dir, "-v"); r.code != 0 || !strings.Contains(r.stdout, "ckpt version") {
		t.Errorf("ckpt -v: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	logFile := filepath.Join(dir, "ckpt.log")
	r := runCkpt(t, dir, "--log", logFile, "checkpoint", "abc")
	got, _ := os.ReadFile(logFile)
	if r.code != 1 || r.stderr != "" || !strings.Contains(string(got), `invalid pid "abc"`) {
		t.Errorf("ckpt --log: exit %d, stderr %q, log %q", r.code, r.stderr, got)
	}
	if r := runCkpt(t, dir, "--log", filepath.Join(dir, "no", "such", "dir", "log"), "check"); r.code != 1 || !strings.Contains(r.stderr, "cannot open --log") {
		t.Errorf("ckpt --log into a missing directory: exit %d, %q", r.code, r.stderr)
	}
	// A fifo nobody reads: refused at once (opening it blocked ckpt for ever); one a reader
	// holds open gets the messages.
	fifo := filepath.Join(dir, "log.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ckptBin, "--log", fifo, "checkpoint", "abc")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(errb.String(), "it is a fifo that nobody reads") {
			t.Errorf("ckpt --log FIFO without a reader: %v, %q", err, errb.String())
		}
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("ckpt --log FIFO without a reader still blocks after 5 s")
	}
	reader, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if r := runCkpt(t, dir, "--log", fifo, "checkpoint", "abc"); r.code != 1 || r.stderr != "" {
		t.Errorf("ckpt --log FIFO with a reader: exit %d, stderr %q", r.code, r.stderr)
	}
	if b, _ := io.ReadAll(reader); !strings.Contains(string(b), `invalid pid "abc"`) {
		t.Errorf("the reader of the --log FIFO got %q", b)
	}

	w := startWorkload(t, dir, 0)
	images := filepath.Join(dir, "img")
	r = runCkpt(t, dir, "--debug", "checkpoint", "--leave-running", "--image-path", images, "--format", "json", strconv.Itoa(w.pid()))
	if r.code != 0 {
		t.Fatalf("checkpoint --format json: exit %d\n%s", r.code, r.stderr)
	}
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Stats["pages_written"] == 0 {
		t.Errorf("checkpoint --format json without --stats printed %q: %v", r.stdout, err)
	}
	if !strings.Contains(r.stderr, "ckpt checkpoint: debug: pid ") || !strings.Contains(r.stderr, filepath.Join(images, "dump.log")) {
		t.Errorf("--debug said %q", r.stderr)
	}
}

func TestCheckpointAndRestoreDetached(t *testing.T) {
	dir := t.TempDir()
	w := startWorkload(t, dir, 0)
	// runc's default image path: ./checkpoint in the current directory.
	r := runCkpt(t, dir, "checkpoint", "--stats", strconv.Itoa(w.pid()))
	if r.code != 0 {
		t.Fatalf("checkpoint: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"frozen time", "pages written", "image size"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("checkpoint --stats lacks %q:\n%s", want, r.stdout)
		}
	}
	t.Logf("ckpt checkpoint --stats:\n%s", r.stdout)
	if _, err := os.Stat(filepath.Join(dir, "checkpoint", "inventory.img")); err != nil {
		t.Fatalf("no images in ./checkpoint: %v", err)
	}
	w.reapDumped(t)
	before := w.value()

	pidFile := filepath.Join(dir, "pid")
	r = runCkpt(t, dir, "restore", "--detach", "--pid-file", pidFile, "--stats", "--format", "json")
	if r.code != 0 {
		t.Fatalf("restore: exit %d\n%s", r.code, r.stderr)
	}
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("restore --format json printed %q: %v", r.stdout, err)
	}
	defer killTree(t, rep.Pid)
	if rep.Operation != "restore" || rep.Pid != w.pid() || rep.Stats["restore_time_us"] == 0 {
		t.Errorf("restore report %+v", rep)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(w.pid()) {
		t.Errorf("pid file holds %q (%v), want %d", b, err, w.pid())
	}
	after := w.waitAbove(t, before)
	t.Logf("counter %d at the checkpoint, %d after the detached restore", before, after)
}

func TestRestoreInForegroundForwardsSignalsAndStatus(t *testing.T) {
	dir := t.TempDir()
	w := startWorkload(t, dir, 40)
	images := filepath.Join(dir, "img")
	if r := runCkpt(t, dir, "checkpoint", "--image-path", images, strconv.Itoa(w.pid())); r.code != 0 {
		t.Fatalf("checkpoint: exit %d\n%s", r.code, r.stderr)
	}
	w.reapDumped(t)
	before := w.value()

	// A signal to ckpt reaches the tree, and ckpt exits as the tree did: 128 + SIGTERM.
	cmd := exec.Command(ckptBin, "restore", "--image-path", images)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.waitAbove(t, before)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Fatalf("foreground restore after SIGTERM: %v, want exit %d", err, 128+int(syscall.SIGTERM))
	}
	waitGone(t, w.pid())

	// The same images again: the tree counts on to 40 and exits 7, and so does ckpt.
	start := time.Now()
	r := runCkpt(t, dir, "restore", "--image-path", images)
	if r.code != 7 {
		t.Fatalf("foreground restore: exit %d, want the tree's 7\n%s", r.code, r.stderr)
	}
	if v := w.value(); v != 40 {
		t.Errorf("the tree exited with the counter at %d, want 40", v)
	}
	t.Logf("foreground restore waited %v for the tree (counter %d -> 40) and exited 7", time.Since(start).Round(time.Millisecond), before)
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if out, _ := exec.Command("pgrep", "-s", strconv.Itoa(pid)).Output(); len(out) == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("session %d still has processes", pid)
}

// Every flag's bad value, and every malformed command line, ends with a non-zero status and
// one line on stderr that names the problem; nothing on stdout.
func TestBadInputOneClearLine(t *testing.T) {
	dir := t.TempDir()
	w := startWorkload(t, dir, 0)
	pid := strconv.Itoa(w.pid())
	img := filepath.Join(dir, "img")
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(dir, "bare")
	if err := os.Mkdir(bare, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bare, "inventory.img"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctrImages := filepath.Join(dir, "container-images")
	if err := os.Mkdir(ctrImages, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"inventory.img", "descriptors.json"} {
		if err := os.WriteFile(filepath.Join(ctrImages, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// CRIU's images of pid 1 in mount namespace 9, whose mount /data is external (key "/data"):
	// the common magic, a magic word, one record each.
	mount := append([]byte{0x3a, 5}, "/data"...)
	mount = append(append(mount, 0x92, 0x01, 5), "/data"...)
	for name, rec := range map[string][]byte{"pstree.img": {0x08, 0x01}, "ids-1.img": {0x48, 0x09}, "mountpoints-9.img": mount} {
		img := append([]byte{0x19, 0x43, 0x56, 0x54, 0, 0, 0, 0, byte(len(rec)), 0, 0, 0}, rec...)
		if err := os.WriteFile(filepath.Join(ctrImages, name), img, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A character device like /dev/null, and a symbolic link: an --export onto either
	// replaced it with the archive.
	device, link := filepath.Join(dir, "null"), filepath.Join(dir, "link")
	if err := syscall.Mknod(device, syscall.S_IFCHR|0o600, 1<<8|3); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), link); err != nil {
		t.Fatal(err)
	}
	badState := filepath.Join(dir, "runc-state")
	if err := os.MkdirAll(filepath.Join(badState, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(badState, "x", "state.json"), []byte("{bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	partialSpec := filepath.Join(dir, "partial.json")
	if err := os.WriteFile(partialSpec, []byte(`{"ociVersion":"1.0.2","root":{"path":"/"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	cases := []struct {
		args []string
		want string // a phrase of the message
		code int
	}{
		{[]string{}, "no command given", 1},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`, 1},
		{[]string{"--bogus"}, "unknown option: --bogus", 1},
		{[]string{"--log", "", "check"}, "ckpt: --log is empty", 1},
		{[]string{"--criu", "", "check"}, "ckpt: --criu is empty", 1},
		{[]string{"checkpoint"}, "missing pid", 1},
		{[]string{"checkpoint", "abc"}, `invalid pid "abc"`, 1},
		{[]string{"checkpoint", "0"}, `invalid pid "0"`, 1},
		{[]string{"checkpoint", "99999999999"}, `invalid pid "99999999999"`, 1},
		{[]string{"checkpoint", pid, "extra"}, `unexpected argument "extra"`, 1},
		{[]string{"checkpoint", "--bogus", pid}, "unknown option: --bogus", 1},
		{[]string{"checkpoint", "--leave-running=maybe", pid}, "expected true or false", 1},
		{[]string{"checkpoint", "--image-path"}, "option --image-path needs an argument", 1},
		{[]string{"checkpoint", "--image-path", "", pid}, "--image-path is empty", 1},
		{[]string{"checkpoint", "--image-path", img, "--work-path", "", pid}, "--work-path is empty", 1},
		{[]string{"checkpoint", "--image-path", "/proc/version/img", pid}, "cannot create image path", 1},
		{[]string{"checkpoint", "--image-path", img, "--page-server", "localhost", pid}, "expected ADDRESS:PORT", 1},
		{[]string{"checkpoint", "--image-path", img, "--page-server", "127.0.0.1:0", pid}, "port must be in 1..65535", 1},
		{[]string{"checkpoint", "--image-path", img, "--page-server", "127.0.0.1:70000", pid}, "port must be in 1..65535", 1},
		{[]string{"checkpoint", "--image-path", img, "--page-server", "127.0.0.1:http", pid}, "port is not a number", 1},
		{[]string{"checkpoint", "--image-path", img, "--page-server", "::1:27277", pid}, "must be written in brackets", 1},
		{[]string{"checkpoint", "--image-path", img, "--page-server", "[::1:27277", pid}, "missing ']'", 1},
		{[]string{"checkpoint", "--image-path", img, "--manage-cgroups-mode", "sometimes", pid}, "invalid manage-cgroups-mode", 1},
		{[]string{"checkpoint", "--image-path", img, "--manage-cgroups-mode", "", pid}, "--manage-cgroups-mode is empty", 1},
		{[]string{"checkpoint", "--image-path", img, "--empty-ns", "pid", pid}, `invalid empty-ns "pid"`, 1},
		{[]string{"checkpoint", "--image-path", img, "--empty-ns", "network", "--empty-ns", "ipc", pid}, `invalid empty-ns "ipc"`, 1},
		{[]string{"checkpoint", "--image-path", img, "--parent-path", "../other", pid}, "invalid parent-path", 1},
		{[]string{"checkpoint", "--image-path", img, "--parent-path", "/tmp", pid}, "must be relative", 1},
		{[]string{"checkpoint", "--image-path", img, "--parent-path", "missing", pid}, "does not exist", 1},
		{[]string{"checkpoint", "--image-path", img, "--status-fd", "abc", pid}, "not a whole number", 1},
		{[]string{"checkpoint", "--image-path", img, "--status-fd", "-5", pid}, "status fd -5 is negative", 1},
		{[]string{"checkpoint", "--image-path", img, "--status-fd", "4294967297", pid}, `invalid value "4294967297" for --status-fd: out of range`, 1},
		{[]string{"checkpoint", "--image-path", img, "--status-fd", "99999999999999999999", pid}, `invalid value "99999999999999999999" for --status-fd: out of range`, 1},
		{[]string{"checkpoint", "--image-path", img, "--bundle", empty, "--pid", "4294967297"}, `invalid value "4294967297" for --pid: out of range`, 1},
		{[]string{"checkpoint", "--image-path", img, "--status-fd", "0", pid}, "status fd 0 is standard input", 1},
		{[]string{"checkpoint", "--image-path", img, "--status-fd", "1", pid}, "status fd 1 is standard input", 1},
		{[]string{"checkpoint", "--image-path", img, "--status-fd", "77", pid}, "status fd 77 is not open", 1},
		{[]string{"checkpoint", "--image-path", img, "--ext-unix-sk-ino", "abc", pid}, `invalid value "abc" for --ext-unix-sk-ino: not an inode number`, 1},
		{[]string{"checkpoint", "--image-path", img, "--ext-unix-sk-ino", "", pid}, `invalid value "" for --ext-unix-sk-ino: not an inode number`, 1},
		{[]string{"checkpoint", "--image-path", img, "--ext-unix-sk-ino", "0", pid}, `invalid value "0" for --ext-unix-sk-ino: out of range (1 to 4294967295)`, 1},
		{[]string{"checkpoint", "--image-path", img, "--ext-unix-sk-ino", "-1", pid}, `invalid value "-1" for --ext-unix-sk-ino: not an inode number`, 1},
		{[]string{"checkpoint", "--image-path", img, "--ext-unix-sk-ino", "4294967296", pid}, `invalid value "4294967296" for --ext-unix-sk-ino: out of range (1 to 4294967295)`, 1},
		{[]string{"checkpoint", "--image-path", img, "--ext-unix-sk-ino", "12", "--ext-unix-sk=false", pid}, "--ext-unix-sk-ino needs --ext-unix-sk on", 1},
		{[]string{"checkpoint", "--image-path", img, "--bundle", empty, "--pid", pid, "--ext-unix-sk-ino", "0"}, `invalid value "0" for --ext-unix-sk-ino`, 1},
		{[]string{"checkpoint", "--image-path", img, "--inherit-fd", "fd[0]:pipe:[1]", pid}, "unknown option: --inherit-fd", 1},
		{[]string{"checkpoint", "--image-path", img, "--lazy-pages", pid}, "needs a page-server", 1},
		{[]string{"checkpoint", "--image-path", img, "--pre-dump", pid}, "needs memory change tracking", 1},
		{[]string{"checkpoint", "--image-path", img, "--format", "xml", "--stats", pid}, `invalid --format "xml"`, 1},
		{[]string{"checkpoint", "--image-path", img, "--criu", "/nonexistent/criu", pid}, "cannot start /nonexistent/criu", 1},
		{[]string{"--criu", "/nonexistent/criu", "checkpoint", "--image-path", img, pid}, "cannot start /nonexistent/criu", 1},
		{[]string{"restore", "extra"}, `unexpected argument "extra"`, 1},
		{[]string{"restore", "--detach=perhaps"}, "expected true or false", 1},
		{[]string{"restore", "--image-path", filepath.Join(dir, "none")}, "cannot open image path", 1},
		{[]string{"restore", "--image-path", empty}, "holds no checkpoint", 1},
		{[]string{"restore", "--image-path", empty, "--lsm-profile", "unconfined"}, `invalid lsm-profile "unconfined"`, 1},
		{[]string{"restore", "--image-path", empty, "--manage-cgroups-mode", "lots"}, "invalid manage-cgroups-mode", 1},
		{[]string{"restore", "--image-path", empty, "--empty-ns", "mnt"}, `invalid empty-ns "mnt"`, 1},
		{[]string{"restore", "--image-path", empty, "--format", "yaml"}, `invalid --format "yaml"`, 1},
		{[]string{"restore", "--image-path", empty, "--pid-file", ""}, "--pid-file is empty", 1},
		{[]string{"restore", "--image-path", empty, "--ext-unix-sk-ino", "x1"}, `invalid value "x1" for --ext-unix-sk-ino: not an inode number`, 1},
		{[]string{"restore", "--image-path", empty, "--ext-unix-sk-ino", "0"}, `invalid value "0" for --ext-unix-sk-ino: out of range (1 to 4294967295)`, 1},
		{[]string{"restore", "--image-path", empty, "--ext-unix-sk-ino", "99999999999"}, `invalid value "99999999999" for --ext-unix-sk-ino: out of range`, 1},
		{[]string{"restore", "--image-path", empty, "--ext-unix-sk=false", "--ext-unix-sk-ino", "7"}, "--ext-unix-sk-ino needs --ext-unix-sk on", 1},
		{[]string{"restore", "--image-path", empty, "--inherit-fd", "3:socket:[12]"}, `invalid value "3:socket:[12]" for --inherit-fd: expected fd[N]:KEY`, 1},
		{[]string{"restore", "--image-path", empty, "--inherit-fd", ""}, `invalid value "" for --inherit-fd: expected fd[N]:KEY`, 1},
		{[]string{"restore", "--image-path", empty, "--inherit-fd", "fd[x]:pipe:[1]"}, `descriptor "x" is not a whole number`, 1},
		{[]string{"restore", "--image-path", empty, "--inherit-fd", "fd[-1]:pipe:[1]"}, "descriptor -1 out of range (0 to 2147483647)", 1},
		{[]string{"restore", "--image-path", empty, "--inherit-fd", "fd[4294967296]:pipe:[1]"}, "descriptor 4294967296 out of range", 1},
		{[]string{"restore", "--image-path", empty, "--inherit-fd", "fd[0]:"}, "the key after fd[N]: is empty", 1},
		{[]string{"restore", "--image-path", empty, "--inherit-fd", "fd[77]:pipe:[1]"}, `invalid value "fd[77]:pipe:[1]" for --inherit-fd: descriptor 77 is not open`, 1},
		{[]string{"restore", "--image-path", empty, "--bundle", empty, "--inherit-fd", "fd[77]:socket:[5]"}, "descriptor 77 is not open", 1},
		// Refused before the archive is unpacked (its directory is not made).
		{[]string{"restore", "--import", filepath.Join(dir, "none.tar"), "--import-dir", filepath.Join(dir, "unpacked"), "--inherit-fd", "fd[77]:socket:[5]"}, "descriptor 77 is not open", 1},
		{[]string{"restore", "--import", filepath.Join(dir, "none.tar"), "--import-dir", filepath.Join(dir, "unpacked"), "--ext-unix-sk=false", "--ext-unix-sk-ino", "5"}, "--ext-unix-sk-ino needs --ext-unix-sk on", 1},
		{[]string{"restore", "--image-path", empty, "--wait-pids", "soon"}, `invalid --wait-pids "soon"`, 1},
		{[]string{"restore", "--image-path", empty, "--wait-pids", "-1s"}, `invalid --wait-pids "-1s"`, 1},
		{[]string{"checkpoint", "-x", pid}, "unknown option: --x", 1},
		{[]string{"restore", "--image-path", empty, "--console-socket", ""}, "--console-socket is empty", 1},
		// runc dials the console socket before its restore; ckpt checks it before CRIU starts
		// (the images here are a bare inventory.img: CRIU would fail on them otherwise).
		{[]string{"restore", "--image-path", bare, "--console-socket", filepath.Join(dir, "none.sock")}, "console socket " + filepath.Join(dir, "none.sock") + ": No such file", 1},
		{[]string{"restore", "--image-path", bare, "--console-socket", partialSpec}, "is not a unix socket", 1},
		// A container's images (an external mount, descriptors.json beside them) restored as a
		// process tree: the library refuses them before CRIU, which fails on them late with
		// "No mapping for ... mountpoint".
		{[]string{"restore", "--image-path", ctrImages}, "holds a container's checkpoint (a runtime's descriptors.json is there too): its mount \"/data\" was dumped as an external mount, key \"/data\"", 1},
		{[]string{"restore", "--image-path", empty, "--lsm-mount-context", ""}, "--lsm-mount-context is empty", 1},
		{[]string{"checkpoint", "--explain", pid}, "--explain needs --bundle or --runtime", 1},
		{[]string{"checkpoint", "--pid", pid}, "--pid needs --bundle or --runtime", 1},
		{[]string{"checkpoint", "--bundle", empty, "--runtime", "runc", "x"}, "exclude each other", 1},
		{[]string{"checkpoint", "--runtime", "runc"}, "needs the container id", 1},
		{[]string{"checkpoint", "--runtime", "runc", "x", "extra"}, `unexpected argument "extra" after pid or container id x`, 1},
		{[]string{"checkpoint", "--bundle", empty, pid}, `unexpected argument "` + pid + `" with --bundle`, 1},
		{[]string{"checkpoint", "--image-path", img, "--runtime", "docker", "x"}, `unknown runtime "docker"`, 1},
		{[]string{"checkpoint", "--image-path", img, "--runtime", "runc", "--runtime-root", empty, "x"}, "runc container x", 1},
		{[]string{"checkpoint", "--image-path", img, "--runtime", "runc", "--runtime-root", badState, "x"}, "runc container x: " + filepath.Join(badState, "x", "state.json") + ": runc state.json is not runc 1.x's format", 1},
		{[]string{"checkpoint", "--image-path", img, "--bundle", filepath.Join(dir, "none"), "--pid", pid}, "is not a directory", 1},
		{[]string{"checkpoint", "--image-path", img, "--bundle", empty, "--pid", pid}, "config.json does not exist", 1},
		{[]string{"checkpoint", "--image-path", img, "--bundle", empty}, "--bundle needs --pid", 1},
		{[]string{"checkpoint", "--image-path", img, "--runtime", "runc", "--pid", pid, "x"}, "--pid and --runtime exclude each other", 1},
		{[]string{"checkpoint", "--image-path", img, "--bundle", empty, "--pid", "0"}, "invalid --pid 0", 1},
		{[]string{"checkpoint", "--image-path", img, "--bundle", empty, "--pid", pid, "--runtime-root", empty}, "--runtime-root goes with --runtime, not --bundle", 1},
		// The archive's values without --export: refused, not dropped (before the checkpoint,
		// which would kill the workload).
		{[]string{"checkpoint", "--image-path", img, "--name", "web", pid}, "--name goes with --export", 1},
		{[]string{"checkpoint", "--image-path", img, "--compression", "gzip", pid}, "--compression goes with --export", 1},
		{[]string{"checkpoint", "--image-path", img, "--image", "busybox", pid}, "--image goes with --export", 1},
		{[]string{"checkpoint", "--image-path", img, "--image-id", "abc", pid}, "--image-id goes with --export", 1},
		{[]string{"checkpoint", "--image-path", img, "--config-json", "{}", pid}, "--config-json goes with --export", 1},
		{[]string{"checkpoint", "--image-path", img, "--spec", "/etc/passwd", pid}, "--spec goes with --export", 1},
		{[]string{"restore", "--image-path", empty, "--bundle", empty}, "config.json does not exist", 1},
		{[]string{"restore", "--explain"}, "--explain needs --bundle", 1},
		{[]string{"restore", "--image-path", empty, "--keep-network"}, "--keep-network needs --bundle, or --import with --rootfs or --rootfs-image", 1},
		{[]string{"check", "extra"}, `unexpected argument "extra"`, 1},
		{[]string{"check", "--format", "xml"}, `invalid --format "xml"`, 1},
		// Export values are checked before the checkpoint (which, without --leave-running,
		// kills the tree): the workload must survive these.
		{[]string{"checkpoint", "--image-path", img, "--export", filepath.Join(dir, "a.tar"), "--compression", "lz4", pid}, `unknown compression "lz4"`, 1},
		{[]string{"checkpoint", "--image-path", img, "--export", filepath.Join(dir, "a.tar"), "--config-json", "[1]", pid}, "config", 1},
		{[]string{"checkpoint", "--image-path", img, "--export", filepath.Join(dir, "none", "a.tar"), pid}, "does not exist", 1},
		{[]string{"checkpoint", "--image-path", img, "--export", empty, pid}, "exists and is not a regular file but a directory", 1},
		{[]string{"checkpoint", "--image-path", img, "--export", device, pid}, "exists and is not a regular file", 1},
		{[]string{"checkpoint", "--image-path", img, "--export", link, pid}, "exists and is not a regular file", 1},
		// A directory that takes no new file: the export failed only after the checkpoint
		// had killed the workload.
		{[]string{"checkpoint", "--image-path", img, "--export", "/proc/a.tar", pid}, "cannot create the archive in /proc", 1},
		{[]string{"checkpoint", "--image-path", img, "--export", filepath.Join(dir, "a.tar"), "--spec", "/etc/passwd", pid}, "--spec /etc/passwd is not an OCI spec", 1},
		{[]string{"checkpoint", "--image-path", img, "--export", filepath.Join(dir, "a.tar"), "--spec", filepath.Join(dir, "none.json"), pid}, "--spec: open", 1},
		{[]string{"checkpoint", "--image-path", img, "--export", filepath.Join(dir, "a.tar"), "--spec", partialSpec, pid}, `has no "process"`, 1},
	}
	for _, c := range cases {
		r := runCkpt(t, dir, c.args...)
		l := lines(r.stderr)
		switch {
		case r.code == 0:
			t.Errorf("ckpt %q: accepted", c.args)
		case c.code != 0 && r.code != c.code:
			t.Errorf("ckpt %q: exit %d, want %d: %s", c.args, r.code, c.code, r.stderr)
		case len(l) != 1:
			t.Errorf("ckpt %q: %d lines on stderr, want one:\n%s", c.args, len(l), r.stderr)
		case !strings.HasPrefix(l[0], "ckpt") || !strings.Contains(l[0], c.want):
			t.Errorf("ckpt %q: %q does not say %q", c.args, l[0], c.want)
		case r.stdout != "":
			t.Errorf("ckpt %q: printed %q on stdout", c.args, r.stdout)
		default:
			t.Logf("exit %d  %s", r.code, l[0])
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "unpacked")); !os.IsNotExist(err) {
		t.Errorf("a refused restore --import made its directory: %v", err)
	}
	if st, err := os.Lstat(device); err != nil || st.Mode().Type() != os.ModeDevice|os.ModeCharDevice {
		t.Errorf("the device at %s: %v %v", device, st, err)
	}
	// The workload survived all of it.
	w.waitAbove(t, w.value())
}

// When CRIU fails, the command prints its message, the explaining lines of CRIU's log and
// the log's path.
func TestCriuFailurePrintsLogExcerpt(t *testing.T) {
	dir := t.TempDir()
	// A process in the test's own session: CRIU refuses it without --shell-job, as the
	// session's leader is outside the tree.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	r := runCkpt(t, dir, "checkpoint", "--image-path", filepath.Join(dir, "img"), "--leave-running", strconv.Itoa(sleeper.Process.Pid))
	if r.code != 1 {
		t.Fatalf("checkpoint of a shell job without --shell-job: exit %d\n%s", r.code, r.stderr)
	}
	l := lines(r.stderr)
	if len(l) < 3 || !strings.HasPrefix(l[0], "ckpt checkpoint: ") || !strings.Contains(l[0], "criu dump failed") ||
		!strings.Contains(r.stderr, "CRIU's log says:") || !strings.HasPrefix(l[len(l)-1], "full log: ") {
		t.Fatalf("CRIU failure reported as:\n%s", r.stderr)
	}
	logPath := strings.TrimPrefix(l[len(l)-1], "full log: ")
	if _, err := os.Stat(logPath); err != nil {
		t.Errorf("the log %s: %v", logPath, err)
	}
	t.Logf("ckpt checkpoint of a shell job:\n%s", r.stderr)
}

// examples returns the command lines of a manual page's EXAMPLES section, with /tmp/ made dir
// and ckpt the binary under test.
func examples(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := runCkpt(t, dir, args...)
	_, ex, ok := strings.Cut(r.stdout, "\nEXAMPLES\n")
	if !ok {
		t.Fatalf("ckpt %v has no EXAMPLES", args)
	}
	ex, _, _ = strings.Cut(ex, "\n\n")
	var b strings.Builder
	for _, l := range lines(ex) {
		l = strings.ReplaceAll(strings.TrimSpace(l), "/tmp/", dir+"/")
		if strings.HasPrefix(l, "ckpt ") {
			l = ckptBin + strings.TrimPrefix(l, "ckpt")
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// The examples of checkpoint's and restore's manuals work as written when pasted into an
// interactive shell (job control on): there setsid started as a background job forks, and
// $! named the setsid that had already exited, so the checkpoint said "process N does not
// exist".
func TestManualExamplesRunAsWritten(t *testing.T) {
	dir := t.TempDir()
	script := "set -m -e\n" + examples(t, dir, "checkpoint", "--help") + examples(t, dir, "restore", "--help")
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if b, _ := os.ReadFile(filepath.Join(dir, "app.pid")); len(b) > 0 {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
			defer killTree(t, pid)
		}
	}
	if err != nil {
		t.Fatalf("the manuals' examples:\n%s\nfailed: %v\n%s", script, err, out)
	}
	if !strings.Contains(string(out), "pages written") {
		t.Errorf("the checkpoint example printed no statistics:\n%s", out)
	}
	t.Logf("ran:\n%s%s", script, out)
}
