package ckpt

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// runcBundle is a busybox bundle for runc whose container counts in /counter, with its own
// state root and cgroup, all removed when the test ends.
type runcBundle struct {
	tag, work, bundle, rootfs, state string
}

func newRuncBundle(t *testing.T, name string) *runcBundle {
	t.Helper()
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skipf("NOT EXERCISED: %s (runc is not installed)", name)
	}
	tag := fmt.Sprintf("ckpt-%s-%d-go", name, os.Getpid())
	r := &runcBundle{tag: tag, work: filepath.Join(os.TempDir(), tag)}
	os.RemoveAll(r.work)
	r.bundle = filepath.Join(r.work, "bundle")
	r.rootfs = filepath.Join(r.bundle, "rootfs")
	r.state = filepath.Join(r.work, "state")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(r.rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		r.runc("delete", "-f", tag)
		time.Sleep(300 * time.Millisecond)
		ms, _ := filepath.Glob("/sys/fs/cgroup/*/" + tag)
		for _, m := range ms {
			os.Remove(m)
		}
		os.RemoveAll(r.work)
	})
	if out, err := exec.Command("cp", "/bin/busybox", filepath.Join(r.rootfs, "bin")).CombinedOutput(); err != nil {
		t.Fatalf("cp busybox: %v %s", err, out)
	}
	for _, a := range []string{"sh", "sleep"} {
		os.Symlink("busybox", filepath.Join(r.rootfs, "bin", a))
	}
	spec := exec.Command("runc", "spec")
	spec.Dir = r.bundle
	if err := spec.Run(); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(r.bundle, "config.json"))
	json.Unmarshal(b, &cfg)
	p := cfg["process"].(map[string]any)
	p["terminal"] = false
	p["args"] = []string{"sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /counter; sleep 0.1; done"}
	cfg["root"].(map[string]any)["readonly"] = false
	cfg["linux"].(map[string]any)["cgroupsPath"] = "/" + tag
	b, _ = json.Marshal(cfg)
	os.WriteFile(filepath.Join(r.bundle, "config.json"), b, 0o644)
	return r
}

// runc runs runc on the bundle's state root; create and run get /dev/null as stdio (the
// container inherits it), the others return their output.
func (r *runcBundle) runc(args ...string) ([]byte, error) {
	cmd := exec.Command("runc", append([]string{"--root", r.state}, args...)...)
	if args[0] == "create" || args[0] == "run" {
		return nil, cmd.Run()
	}
	return cmd.Output()
}

// run starts the container detached (`runc run -d`); the path of the file it counts into.
func (r *runcBundle) run() (string, error) {
	pidFile := filepath.Join(r.work, "init.pid")
	if _, err := r.runc("run", "-d", "--pid-file", pidFile, "--bundle", r.bundle, r.tag); err != nil {
		return "", err
	}
	return filepath.Join(r.rootfs, "counter"), nil
}

// status is runc's state of the container: its status and pid.
func (r *runcBundle) status() (string, int) {
	out, _ := r.runc("state", r.tag)
	var st struct {
		Status string
		Pid    int
	}
	json.Unmarshal(out, &st)
	return st.Status, st.Pid
}
