package main

import (
	"bufio"
	"bytes"
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

// A tree holding a unix stream socket connected to a listener outside it: CRIU refuses it
// unless the socket is named by inode (--ext-unix-sk-ino), and the restore then wants a new
// connection to the listener for it (--inherit-fd fd[N]:socket:[INODE]). Through the command
// the tree is checkpointed, restored with a new connection given as ckpt's descriptor 3, and
// carries on counting over it.
func TestExternalUnixStreamByInodeAndInheritFd(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "listener.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan *net.UnixConn, 4)
	go func() {
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	accept := func() *bufio.Scanner {
		t.Helper()
		select {
		case c, ok := <-conns:
			if !ok {
				t.Fatal("the listener closed")
			}
			t.Cleanup(func() { c.Close() })
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			return bufio.NewScanner(c)
		case <-time.After(10 * time.Second):
			t.Fatal("no connection to the listener")
		}
		return nil
	}
	// A connection to the listener, as the caller's descriptor (ours closed).
	connection := func() *os.File {
		t.Helper()
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		f, err := c.File()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	next := func(s *bufio.Scanner, what string) int {
		t.Helper()
		if !s.Scan() {
			t.Fatalf("%s: the connection ended (%v)", what, s.Err())
		}
		n, err := strconv.Atoi(s.Text())
		if err != nil {
			t.Fatalf("%s: read %q", what, s.Text())
		}
		return n
	}

	conn := connection()
	cmd := exec.Command("sh", "-c", "i=0; while :; do i=$((i+1)); echo $i >&3; sleep 0.05; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.ExtraFiles = []*os.File{conn}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	first := accept()
	for next(first, "before the checkpoint") < 3 {
	}
	pid := cmd.Process.Pid
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", pid))
	if err != nil || !strings.HasPrefix(link, "socket:[") {
		t.Fatalf("the tree's descriptor 3 is %q (%v)", link, err)
	}
	ino := strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")

	img := filepath.Join(dir, "img")
	// Without the inode CRIU refuses the stream socket, --ext-unix-sk or not.
	r := runCkpt(t, dir, "checkpoint", "--image-path", filepath.Join(dir, "img-noino"), "--leave-running",
		"--ext-unix-sk", strconv.Itoa(pid))
	if r.code == 0 || !strings.Contains(r.stderr, "stream unix connection") {
		t.Fatalf("checkpoint without --ext-unix-sk-ino: exit %d\n%s", r.code, r.stderr)
	}
	r = runCkpt(t, dir, "checkpoint", "--image-path", img, "--ext-unix-sk-ino", ino, strconv.Itoa(pid))
	if r.code != 0 {
		t.Fatalf("checkpoint --ext-unix-sk-ino %s: exit %d\n%s", ino, r.code, r.stderr)
	}
	(&workload{cmd: cmd}).reapDumped(t)
	before := 0
	for first.Scan() {
		before, _ = strconv.Atoi(first.Text())
	}

	key := "socket:[" + ino + "]"
	// Without a descriptor for the socket CRIU's restore fails, and nothing is left running.
	r = runCkpt(t, dir, "restore", "--image-path", img, "--detach")
	if r.code == 0 {
		t.Fatalf("restore without --inherit-fd succeeded:\n%s", r.stdout)
	}
	t.Logf("restore without --inherit-fd: %s", lines(r.stderr)[0])

	conn = connection()
	defer conn.Close()
	pidFile := filepath.Join(dir, "pid")
	restore := exec.Command(ckptBin, "restore", "--image-path", img, "--detach", "--pid-file", pidFile,
		"--inherit-fd", "fd[3]:"+key)
	restore.Dir = dir
	restore.ExtraFiles = []*os.File{conn}
	var stderr bytes.Buffer
	restore.Stderr = &stderr
	if err := restore.Run(); err != nil {
		t.Fatalf("restore --inherit-fd fd[3]:%s: %v\n%s", key, err, stderr.String())
	}
	conn.Close()
	defer killTree(t, pid)
	second := accept()
	after := next(second, "after the restore")
	if after != before+1 {
		t.Errorf("the restored tree wrote %d first, want %d (it wrote %d before the checkpoint)", after, before+1, before)
	}
	t.Logf("the tree wrote %d before the checkpoint, %d first after the restore over the inherited connection", before, after)
	next(second, "the restored tree carrying on")
}

// The same through the container layer: a runc container whose workload (wl ustream, of
// core/tests/data/workloads/wl.c) holds a stream connection to an echo listener on the host,
// through a bind-mounted socket file, is checkpointed with --runtime and --ext-unix-sk-ino,
// deleted, and restored with --bundle and --inherit-fd giving it a new connection; the
// workload talks on over it (it checks every round that the host echoes what it sent).
func TestContainerExternalUnixStreamByInodeAndInheritFd(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("NOT EXERCISED: the container's external stream socket (no gcc to build its workload)")
	}
	bin := filepath.Join(t.TempDir(), "wl")
	if out, err := exec.Command("gcc", "-static", "-pthread", "-O2", "-o", bin,
		"../../../core/tests/data/workloads/wl.c").CombinedOutput(); err != nil {
		t.Skipf("NOT EXERCISED: the container's external stream socket (gcc -static: %v %s)", err, out)
	}
	host := filepath.Join(t.TempDir(), "host")
	if err := os.Mkdir(host, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(host, "stream.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 8)
				for {
					if _, err := io.ReadFull(c, b); err != nil {
						return
					}
					if _, err := c.Write(b); err != nil {
						return
					}
				}
			}()
		}
	}()

	c := newRuncContainer(t, "extsk", "run", func(bundle string, spec map[string]any) {
		if out, err := exec.Command("cp", bin, filepath.Join(bundle, "rootfs", "bin", "wl")).CombinedOutput(); err != nil {
			t.Fatalf("cp wl: %v %s", err, out)
		}
		spec["process"].(map[string]any)["args"] = []string{"/bin/wl", "ustream"}
		spec["mounts"] = append(spec["mounts"].([]any), map[string]any{
			"destination": "/ext/stream.sock", "type": "bind", "source": sock, "options": []string{"bind"}})
	})
	counter := filepath.Join(c.bundle, "rootfs", "counter")
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", c.initPid()))
	if err != nil || !strings.HasPrefix(link, "socket:[") {
		t.Fatalf("the container's descriptor 3 is %q (%v)", link, err)
	}
	ino := strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")
	key := "socket:[" + ino + "]"

	// Refused without the inode, the error naming the flags to give, with the inode.
	r := runCkpt(t, c.work, "checkpoint", "--runtime", "runc", "--runtime-root", c.state, "--image-path",
		filepath.Join(c.work, "img-noino"), "--leave-running", "--ext-unix-sk", c.id)
	if r.code == 0 || !strings.Contains(r.stderr, "--ext-unix-sk-ino "+ino+")") ||
		!strings.Contains(r.stderr, "--inherit-fd fd[N]:"+key) {
		t.Fatalf("checkpoint without --ext-unix-sk-ino: exit %d\n%s", r.code, r.stderr)
	}
	images := filepath.Join(c.work, "img")
	r = runCkpt(t, c.work, "checkpoint", "--runtime", "runc", "--runtime-root", c.state, "--image-path", images,
		"--ext-unix-sk-ino", ino, c.id)
	if r.code != 0 {
		t.Fatalf("checkpoint --ext-unix-sk-ino %s: exit %d\n%s", ino, r.code, r.stderr)
	}
	if out, err := exec.Command("runc", "--root", c.state, "delete", "-f", c.id).CombinedOutput(); err != nil {
		t.Fatalf("runc delete: %v %s", err, out)
	}
	atDump, _ := atoiFile(counter)

	// Without a descriptor for the socket the restore fails, saying which to give.
	r = runCkpt(t, c.work, "restore", "--bundle", c.bundle, "--image-path", images, "--detach")
	if r.code == 0 || !strings.Contains(r.stderr, "--inherit-fd fd[N]:"+key) {
		t.Fatalf("restore without --inherit-fd: exit %d\n%s", r.code, r.stderr)
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := conn.File()
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pidFile := filepath.Join(c.work, "restored.pid")
	restore := exec.Command(ckptBin, "restore", "--bundle", c.bundle, "--image-path", images, "--detach",
		"--pid-file", pidFile, "--inherit-fd", "fd[3]:"+key)
	restore.Dir = c.work
	restore.ExtraFiles = []*os.File{f}
	var stderr bytes.Buffer
	restore.Stderr = &stderr
	if err := restore.Run(); err != nil {
		t.Fatalf("restore --bundle --inherit-fd fd[3]:%s: %v\n%s", key, err, stderr.String())
	}
	f.Close()
	pid, _ := atoiFile(pidFile)
	t.Cleanup(func() {
		if pid > 0 {
			killTree(t, pid)
		}
	})
	after := c.waitAbove(counter, atDump+10)
	b, _ := os.ReadFile(counter)
	if fields := strings.Fields(string(b)); len(fields) != 2 || fields[1] != "0" {
		t.Errorf("the restored workload saw a fault: %q", b)
	}
	t.Logf("round %d at the checkpoint, %d after the restore over the inherited connection", atDump, after)
}
