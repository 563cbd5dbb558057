package ckpt

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A container created but not started, named by its bundle and the pid its runtime reports
// (not by the runtime's id, which the runtime's state refuses already): the pid is still the
// runtime's own init, holding exec.fifo until `start`. The checkpoint is refused with
// ErrInvalidState before CRIU runs (CRIU failed with "Can't lookup mount=N for fd=-3 path=/"),
// and the container can still be started.
func TestCreatedContainerByBundleAndPid(t *testing.T) {
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("NOT EXERCISED: a created runc container (runc is not installed)")
	}
	tag := fmt.Sprintf("ckpt-created-%d-go", os.Getpid())
	work := filepath.Join(os.TempDir(), tag)
	os.RemoveAll(work)
	bundle := filepath.Join(work, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	state := filepath.Join(work, "state")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runc := func(args ...string) ([]byte, error) {
		cmd := exec.Command("runc", append([]string{"--root", state}, args...)...)
		if args[0] == "create" {
			return nil, cmd.Run() // stdio /dev/null: the container inherits it
		}
		return cmd.Output()
	}
	t.Cleanup(func() {
		runc("delete", "-f", tag)
		time.Sleep(300 * time.Millisecond)
		ms, _ := filepath.Glob("/sys/fs/cgroup/*/" + tag)
		for _, m := range ms {
			os.Remove(m)
		}
		os.RemoveAll(work)
	})
	if out, err := exec.Command("cp", "/bin/busybox", filepath.Join(rootfs, "bin")).CombinedOutput(); err != nil {
		t.Fatalf("cp busybox: %v %s", err, out)
	}
	for _, a := range []string{"sh", "sleep"} {
		os.Symlink("busybox", filepath.Join(rootfs, "bin", a))
	}
	spec := exec.Command("runc", "spec")
	spec.Dir = bundle
	if err := spec.Run(); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	json.Unmarshal(b, &cfg)
	p := cfg["process"].(map[string]any)
	p["terminal"] = false
	p["args"] = []string{"sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /counter; sleep 0.1; done"}
	cfg["root"].(map[string]any)["readonly"] = false
	cfg["linux"].(map[string]any)["cgroupsPath"] = "/" + tag
	b, _ = json.Marshal(cfg)
	os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644)
	if _, err := runc("create", "--bundle", bundle, tag); err != nil {
		t.Fatalf("runc create: %v", err)
	}
	status := func() (string, int) {
		out, _ := runc("state", tag)
		var st struct {
			Status string
			Pid    int
		}
		json.Unmarshal(out, &st)
		return st.Status, st.Pid
	}
	st, pid := status()
	if st != "created" || pid <= 0 {
		t.Fatalf("runc state: %s pid %d", st, pid)
	}
	images := filepath.Join(work, "img")
	_, err := CheckpointContainer(&Container{Bundle: bundle, Pid: pid}, &Options{ImagesDirectory: images})
	t.Logf("created, by bundle and pid: %v", err)
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrInvalidState || !strings.Contains(e.Message, "not started") {
		t.Errorf("checkpoint of a created container: %v, want ErrInvalidState saying it was not started", err)
	}
	if e != nil && e.LogPath != "" {
		t.Errorf("CRIU ran: %s", e.LogPath)
	}
	if st, _ := status(); st != "created" {
		t.Errorf("the container is %s after the refusal", st)
	}
	if _, err := runc("start", tag); err != nil {
		t.Fatalf("runc start after the refusal: %v", err)
	}
	waitCounterAbove(t, filepath.Join(rootfs, "counter"), 1)
}
