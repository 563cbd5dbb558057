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
	// CRIU 4.1.1 reports the detached server's pid as 0; only the port is checked.
	if int32(port) != ps.Port {
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

// A lazy migration on loopback: the workload is the init of its own pid namespace, so the
// restored tree (in a fresh one) never collides with the source, frozen until its pages
// are served.
func TestLazyMigration(t *testing.T) {
	if f, err := FeatureCheck(nil); err != nil || f.LazyPages != Supported {
		t.Skipf("NOT EXERCISED: lazy pages (CRIU says userfaultfd is unavailable: %v %v)", f, err)
	}
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
	type result struct {
		st  *DumpStats
		err error
	}
	done := make(chan result, 1)
	// The library duplicates the status fd when the call starts; the test closes its own
	// copy once the byte has arrived.
	statusFd := int(readyW.Fd())
	defer readyW.Close()
	go func() {
		// The timeout makes sure a failing test never leaves criu waiting for a client.
		st, err := Checkpoint(root, &Options{ImagesDirectory: src, LazyPages: true, PageServer: ps,
			StatusFd: statusFd, Timeout: 30 * time.Second})
		done <- result{st, err}
	}()
	if b, err := readByte(ready, 10*time.Second); err != nil || b != 0 {
		_ = syscall.Kill(root, syscall.SIGKILL)
		r := <-done
		t.Fatalf("no readiness byte on the status fd (%v, %v); dump: %v", b, err, r.err)
	}
	atDump := readCounter(counterPath)
	for _, f := range pageFiles(t, src) {
		fi, _ := os.Stat(f)
		t.Logf("lazy dump page file %s: %d bytes", filepath.Base(f), fi.Size())
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
	t.Logf("lazy-pages daemon pid %d", dpid)
	defer killChild(dpid)
	if b, err := readByte(daemonReady, 10*time.Second); err != nil || b != 0 {
		t.Fatalf("the lazy-pages daemon never said it was ready: %v %v", b, err)
	}
	pid, _, err := Restore(&Options{ImagesDirectory: dst, LazyPages: true})
	if err != nil {
		t.Fatalf("lazy Restore: %v", err)
	}
	t.Logf("lazily restored pid %d", pid)
	defer killChild(pid)
	r := <-done
	if r.err != nil {
		t.Fatalf("lazy dump: %v", r.err)
	}
	after := waitCounterAbove(t, counterPath, atDump)
	t.Logf("lazy dump: %d pages lazy; restored root %d; counter %d -> %d", r.st.PagesLazy, pid, atDump, after)
	if r.st.PagesLazy == 0 {
		t.Errorf("no lazy pages in the dump statistics: %+v", r.st.Values())
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
