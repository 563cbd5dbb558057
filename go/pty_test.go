package ckpt

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPty opens a pseudo-terminal pair; the master is non-blocking, so reads can time out.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	fd, err := syscall.Open("/dev/ptmx", syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	master = os.NewFile(uintptr(fd), "ptmx")
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return master, slave
}

// readUntil reads from f until want appears, for up to 5 seconds.
func readUntil(t *testing.T, f *os.File, want string) {
	t.Helper()
	var got strings.Builder
	buf := make([]byte, 256)
	deadline := time.Now().Add(5 * time.Second)
	_ = f.SetReadDeadline(deadline)
	for !strings.Contains(got.String(), want) {
		n, err := f.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("waiting for %q on the terminal, read %q: %v", want, got.String(), err)
		}
	}
}

type ptyCatcher struct {
	NoNotifications
	master *os.File
}

func (p *ptyCatcher) OrphanPtsMaster(f *os.File) error {
	p.master = f
	return nil
}

// A tree on a terminal whose master is outside it: the restore hands the new master to
// Notifications.OrphanPtsMaster, which owns it.
func TestOrphanPtsMasterReachesCallback(t *testing.T) {
	dir := t.TempDir()
	master, slave := openPty(t)
	sh := exec.Command("sh", "-c", `i=0; while read l; do i=$((i+1)); echo "n=$i $l"; done`)
	sh.Stdin, sh.Stdout, sh.Stderr = slave, slave, slave
	sh.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sh.Process.Kill(); _ = sh.Wait() }()
	slave.Close()
	if _, err := master.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, master, "n=1 one")

	images := filepath.Join(dir, "img")
	if _, err := Checkpoint(sh.Process.Pid, &Options{ImagesDirectory: images, OrphanPtsMaster: true}); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	_ = sh.Wait()
	waitSessionGone(t, sh.Process.Pid)
	master.Close()

	catch := &ptyCatcher{}
	pid, _, err := Restore(&Options{ImagesDirectory: images, OrphanPtsMaster: true, Notify: catch})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	defer killChild(pid)
	if catch.master == nil {
		t.Fatal("OrphanPtsMaster was not called")
	}
	defer catch.master.Close()
	if _, err := catch.master.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, catch.master, "n=2 two")
	t.Logf("the restored shell answered on the new terminal's master (%s)", catch.master.Name())
}
