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

func TestContainerBadInput(t *testing.T) {
	dir := t.TempDir()
	o := &Options{ImagesDirectory: filepath.Join(dir, "img")}
	cases := []struct {
		c    *Container
		want string
		code Code
	}{
		{nil, "container is nil", ErrNullArgument},
		{&Container{}, "no bundle", ErrInvalidArgument},
		{&Container{Bundle: dir}, "no init pid", ErrInvalidArgument},
		{&Container{Bundle: dir, Pid: -1}, "not a process id", ErrInvalidArgument},
		{&Container{Bundle: filepath.Join(dir, "none"), Pid: 1}, "is not a directory", ErrNotFound},
		{&Container{Bundle: dir, Pid: 1}, "config.json does not exist", ErrNotFound},
		{&Container{Runtime: "docker", ID: "x"}, `unknown runtime "docker"`, ErrInvalidArgument},
		{&Container{Runtime: "runc", RuntimeRoot: dir, ID: "x"}, "runc container x", ErrNotFound},
		// The runtime's state gives the bundle and the pid: neither is silently replaced.
		{&Container{Runtime: "runc", ID: "x", Pid: 1}, "Container.Runtime excludes Bundle and Pid", ErrInvalidArgument},
		{&Container{Runtime: "runc", ID: "x", Bundle: dir}, "Container.Runtime excludes Bundle and Pid", ErrInvalidArgument},
	}
	for _, c := range cases {
		_, err := CheckpointContainer(c.c, o)
		var e *Error
		if !errors.As(err, &e) || e.Code != c.code || !strings.Contains(e.Message, c.want) {
			t.Errorf("%+v: got %v, want %v saying %q", c.c, err, c.code, c.want)
		}
		// A Go caller is told what to set in Go, not which C function to call.
		if err != nil && strings.Contains(err.Error(), "ckpt_container_") {
			t.Errorf("%+v: %v names a C function", c.c, err)
		}
	}
	if _, err := ExplainContainer(&Container{Bundle: dir}, o, false); err == nil ||
		!strings.Contains(err.Error(), "set Container.Pid") {
		t.Errorf("explain without a pid: %v", err)
	}
	if _, _, err := RestoreContainer(&Container{}, o); err == nil ||
		!strings.Contains(err.Error(), "set Container.Bundle") {
		t.Errorf("restore without a bundle: %v", err)
	}
	if _, _, err := RestoreContainer(&Container{Bundle: dir}, o); err == nil ||
		!strings.Contains(err.Error(), "config.json does not exist") {
		t.Errorf("restore without config.json: %v", err)
	}
}

// A runc container explained, checkpointed and restored through the Go package.
func TestContainerRoundTripWithRunc(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("NOT EXERCISED: container round trip (needs root)")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("NOT EXERCISED: container round trip (runc is not installed)")
	}
	tag := fmt.Sprintf("ckpt-containers-%d-go", os.Getpid())
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
	runc := func(args ...string) error {
		cmd := exec.Command("runc", append([]string{"--root", state}, args...)...)
		return cmd.Run() // stdio /dev/null: the container inherits it
	}
	var restored int
	t.Cleanup(func() {
		if restored > 0 {
			killChild(restored)
		}
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
	pidFile := filepath.Join(work, "init.pid")
	if err := runc("run", "-d", "--pid-file", pidFile, "--bundle", bundle, tag); err != nil {
		t.Fatalf("runc run: %v", err)
	}
	counter := filepath.Join(rootfs, "counter")
	waitCounterAbove(t, counter, 5)
	c := &Container{Runtime: "runc", RuntimeRoot: state, ID: tag}
	o := &Options{ImagesDirectory: filepath.Join(work, "img")}
	js, err := ExplainContainer(c, o, false)
	if err != nil || !strings.Contains(js, `"option": "freeze_cgroup"`) {
		t.Fatalf("explain: %v\n%s", err, js)
	}
	if _, err := CheckpointContainer(c, o); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	atDump := readCounter(counter)
	runc("delete", "-f", tag)
	pid, _, err := RestoreContainer(&Container{Bundle: bundle}, o)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	restored = pid
	waitCounterAbove(t, counter, atDump)
}
