package ckpt

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

func pageFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "pages-*.img"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// copyImages copies the image files of src that dst lacks: "sending the images over".
func copyImages(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".img") {
			continue
		}
		if _, err := os.Stat(filepath.Join(dst, e.Name())); err == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrationThroughPageServer(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	ps := CriuPageServerInfo{Address: "127.0.0.1", Port: freePort(t)}
	spid, port, err := StartPageServer(&Options{ImagesDirectory: dst, PageServer: ps})
	if err != nil {
		t.Fatalf("StartPageServer: %v", err)
	}
	if int32(port) != ps.Port || spid <= 0 || syscall.Kill(spid, 0) != nil {
		t.Fatalf("page server pid %d port %d, asked for port %d", spid, port, ps.Port)
	}
	w := startCounter(t, filepath.Join(dir, "w"))
	w.waitAbove(t, 3)
	st, err := Checkpoint(w.pid(), &Options{ImagesDirectory: src, PageServer: ps})
	if err != nil {
		t.Fatalf("Checkpoint to the page server: %v", err)
	}
	w.reapDumped(t)
	before := w.value()
	// The server exits once the dump that fed it is over (init reaps it).
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(spid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if syscall.Kill(spid, 0) == nil {
		t.Errorf("page server %d still runs after the dump", spid)
	}
	if len(pageFiles(t, src)) != 0 || len(pageFiles(t, dst)) == 0 {
		t.Fatalf("pages in src %v, in dst %v: they did not go through the page server",
			pageFiles(t, src), pageFiles(t, dst))
	}
	copyImages(t, src, dst)
	pid, _, err := Restore(&Options{ImagesDirectory: dst})
	if err != nil {
		t.Fatalf("Restore from the page server's images: %v", err)
	}
	defer killChild(pid)
	after := w.waitAbove(t, before)
	t.Logf("%d pages written to page server pid %d on port %d; counter %d -> %d", st.PagesWritten, spid, port, before, after)
}

// A post-copy restore: the tree starts before its memory is in place and the lazy-pages
// daemon, reading the local images, fills it in on demand.
func TestLazyRestoreServedByDaemon(t *testing.T) {
	requireLazyPages(t)
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	w := dumpedCounter(t, filepath.Join(dir, "w"), images)
	before := w.value()

	ready, readyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	dpid, err := StartLazyPages(&Options{ImagesDirectory: images, StatusFd: int(readyW.Fd())})
	readyW.Close()
	if err != nil {
		t.Fatalf("StartLazyPages: %v", err)
	}
	defer killChild(dpid)
	if b, err := readByte(ready, 10*time.Second); err != nil || b != 0 {
		t.Fatalf("the lazy-pages daemon never said it was ready: %v %v", b, err)
	}
	// A lazy restore whose daemon dies hangs in CRIU; the timeout bounds it.
	pid, _, err := Restore(&Options{ImagesDirectory: images, LazyPages: true, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("lazy Restore: %v", err)
	}
	defer killChild(pid)
	after := w.waitAbove(t, before)
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(dpid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Errorf("the lazy-pages daemon ended with %v (%v)", ws, err)
	}
	t.Logf("lazy restore of pid %d served by daemon %d; counter %d -> %d", pid, dpid, before, after)
}

// A lazy migration on loopback: the dump writes everything but the memory, says so on the
// status fd and serves the pages from its page server; the lazy-pages daemon fetches them for
// the restored tree on demand. The workload is the init of its own pid namespace, so the
// restored tree (in a fresh one) never collides with the source, frozen until its pages are
// served.
func TestLazyMigration(t *testing.T) {
	requireLazyPages(t)
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	counterPath := filepath.Join(dir, "counter")
	script := fmt.Sprintf("i=0; while :; do i=$((i+1)); echo $i > %[1]s.tmp; mv %[1]s.tmp %[1]s; sleep 0.05; done", counterPath)
	// setsid inside: the tree's session must belong to its pid namespace.
	outer := exec.Command("unshare", "--pid", "--fork", "setsid", "sh", "-c", script)
	if err := outer.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = outer.Process.Kill(); _ = outer.Wait() }()
	root := firstChild(t, outer.Process.Pid)
	waitCounterAbove(t, counterPath, 3)

	ps := CriuPageServerInfo{Address: "127.0.0.1", Port: freePort(t)}
	ready, readyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	defer readyW.Close()
	// The library duplicates the descriptor as the call starts: the goroutine needs only
	// the number, and the test keeps (and closes) its own copy.
	statusFd := int(readyW.Fd())
	type result struct {
		st  *DumpStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The timeout makes sure a failing test never leaves criu waiting for a client.
		st, err := Checkpoint(root, &Options{ImagesDirectory: src, LazyPages: true, PageServer: ps,
			StatusFd: statusFd, Timeout: 30 * time.Second})
		done <- result{st, err}
	}()
	if b, err := readByte(ready, 10*time.Second); err != nil || b != 0 {
		_ = syscall.Kill(root, syscall.SIGKILL)
		t.Fatalf("no readiness byte on the status fd (%v, %v); dump: %v", b, err, (<-done).err)
	}
	atDump := readCounter(counterPath)
	time.Sleep(200 * time.Millisecond)
	if v := readCounter(counterPath); v != atDump {
		t.Errorf("the counter moved from %d to %d while the lazy dump holds the tree", atDump, v)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	copyImages(t, src, dst)

	daemonReady, daemonW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer daemonReady.Close()
	dpid, err := StartLazyPages(&Options{ImagesDirectory: dst, PageServer: ps, StatusFd: int(daemonW.Fd())})
	daemonW.Close()
	if err != nil {
		t.Fatalf("StartLazyPages: %v", err)
	}
	defer killChild(dpid)
	if b, err := readByte(daemonReady, 10*time.Second); err != nil || b != 0 {
		t.Fatalf("the lazy-pages daemon never said it was ready: %v %v", b, err)
	}
	// A lazy restore whose daemon dies hangs in CRIU; the timeout bounds it.
	pid, _, err := Restore(&Options{ImagesDirectory: dst, LazyPages: true, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("lazy Restore: %v (dump: %v)", err, (<-done).err)
	}
	defer killChild(pid)
	// The first value after the restore follows the one at the dump: the memory arrived.
	after := waitCounterAbove(t, counterPath, atDump)
	if after > atDump+3 {
		t.Errorf("counter %d at the dump, %d right after the restore", atDump, after)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("lazy dump: %v", r.err)
	}
	// Every page served, the daemon exits on its own.
	if st, ok := waitExited(dpid, 10*time.Second); !ok || st.ExitStatus() != 0 {
		t.Errorf("the lazy-pages daemon: exited %v, status %v", ok, st)
	}
	t.Logf("lazy migration: restored root %d in a fresh pid namespace; counter %d -> %d", pid, atDump, after)
	t.Log("NOT EXERCISED: the pages_lazy statistic (CRIU 4.1.1 rewrites stats-dump with its page " +
		"counters at 0 once the lazy pages are served)")
}

// waitExited reaps child pid if it exits within timeout.
func waitExited(pid int, timeout time.Duration) (syscall.WaitStatus, bool) {
	var ws syscall.WaitStatus
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); got == pid || err != nil {
			return ws, err == nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ws, false
}

func requireLazyPages(t *testing.T) {
	t.Helper()
	f, err := FeatureCheck(nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.LazyPages != Supported {
		t.Skip("NOT EXERCISED: lazy pages (CRIU says userfaultfd is unavailable on this kernel)")
	}
}

func readByte(f *os.File, timeout time.Duration) (byte, error) {
	if err := f.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	var b [1]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// firstChild waits for pid's first child to appear and returns it.
func firstChild(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if f := strings.Fields(string(b)); len(f) > 0 {
			c, _ := strconv.Atoi(f[0])
			return c
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d has no child", pid)
	return 0
}
