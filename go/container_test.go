package ckpt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	r := newRuncBundle(t, "containers")
	var restored int
	t.Cleanup(func() { // runs before the bundle's own cleanup deletes the container
		if restored > 0 {
			killChild(restored)
		}
	})
	counter, err := r.run()
	if err != nil {
		t.Fatalf("runc run: %v", err)
	}
	waitCounterAbove(t, counter, 5)
	c := &Container{Runtime: "runc", RuntimeRoot: r.state, ID: r.tag}
	o := &Options{ImagesDirectory: filepath.Join(r.work, "img")}
	js, err := ExplainContainer(c, o, false)
	if err != nil || !strings.Contains(js, `"option": "freeze_cgroup"`) {
		t.Fatalf("explain: %v\n%s", err, js)
	}
	if _, err := CheckpointContainer(c, o); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	atDump := readCounter(counter)
	r.runc("delete", "-f", r.tag)
	pid, _, err := RestoreContainer(&Container{Bundle: r.bundle}, o)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	restored = pid
	waitCounterAbove(t, counter, atDump)
}
