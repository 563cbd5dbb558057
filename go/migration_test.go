package ckpt

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
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

// A post-copy restore: the tree starts before its memory is in place and the lazy-pages
// daemon, reading the local images, fills it in on demand.
func TestLazyRestoreServedByDaemon(t *testing.T) {
	requireLazyPages(t)
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	w := startCounter(t, filepath.Join(dir, "w"))
	w.waitAbove(t, 3)
	if _, err := Checkpoint(w.pid(), &Options{ImagesDirectory: images}); err != nil {
		t.Fatal(err)
	}
	w.reapDumped(t)
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

// A lazy dump reports readiness on the status fd, then serves the tree's memory from its page
// server while the tree stays frozen. CRIU 4.1.1 cannot serve those pages on this machine
// (see below), so the dump is ended by the operation timeout, which must leave the source
// running.
func TestLazyDumpStatusFd(t *testing.T) {
	requireLazyPages(t)
	dir := t.TempDir()
	w := startCounter(t, filepath.Join(dir, "w"))
	w.waitAbove(t, 3)
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
	done := make(chan error, 1)
	go func() {
		_, err := Checkpoint(w.pid(), &Options{ImagesDirectory: filepath.Join(dir, "images"),
			LazyPages: true, PageServer: ps, StatusFd: statusFd, Timeout: 3 * time.Second})
		done <- err
	}()
	if b, err := readByte(ready, 10*time.Second); err != nil || b != 0 {
		t.Fatalf("no readiness byte on the status fd (%v, %v); dump: %v", b, err, <-done)
	}
	frozen := w.value()
	time.Sleep(200 * time.Millisecond)
	if v := w.value(); v != frozen {
		t.Errorf("the counter moved from %d to %d while the lazy dump holds the tree", frozen, v)
	}
	err = <-done
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("the unserved lazy dump ended with %v, want ErrTimeout", err)
	}
	w.waitAbove(t, w.value())
	t.Log("NOT EXERCISED: the page transfer of a lazy migration (a lazy dump serving a lazy " +
		"restore). CRIU 4.1.1's page server on the dumping side fails to read its own page " +
		"pipes on this machine (\"page-pipe: splice: -1: Bad file descriptor\", with the criu " +
		"command line too; see the Rust test lazy_migration_from_a_lazy_dump). Checked: the " +
		"status-fd handshake, the frozen source, the timeout ending the dump with the source " +
		"running again, and the daemon-served lazy restore in TestLazyRestoreServedByDaemon.")
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
