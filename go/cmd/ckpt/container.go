package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	ckpt "ckpt.dev/go/ckpt"
)

// containerFlags select the container layer: a bundle (and, for checkpoint, its init's
// pid), or a container runc or crun started.
type containerFlags struct {
	bundle, runtime, runtimeRoot *string
	pid                          *int
	explain, keepNetwork         *bool
	restore                      bool
	importsContainer             bool // restore --import with --rootfs or --rootfs-image
}

func containerOptions(fs *flagSet, restore bool) *containerFlags {
	f := &containerFlags{restore: restore}
	f.bundle = fs.String("bundle", "", "DIR",
		"Work on the OCI container whose bundle (config.json and rootfs) is DIR: the container-level CRIU "+
			"options (external mounts, namespaces, cgroups, freezer, network lock, descriptors.json) are worked out "+
			"from it, as docs/containers.md describes.")
	if !restore {
		f.pid = fs.Int("pid", 0, "PID", "With --bundle: the container's init pid, as the host sees it.")
		f.runtime = fs.String("runtime", "", "RUNTIME",
			"Checkpoint the container of id given as the argument that RUNTIME (runc or crun) started: its bundle "+
				"and init pid are read from the runtime's state.")
		f.runtimeRoot = fs.String("runtime-root", "", "DIR", "With --runtime: the runtime's state root (default /run/runc, /run/crun).")
	} else {
		none, zero := "", 0
		f.pid, f.runtime, f.runtimeRoot = &zero, &none, &none
	}
	with := "With --bundle or --runtime"
	if restore {
		with = "With --bundle"
	}
	keepWith := with
	if restore {
		keepWith = "With --bundle, or --import with --rootfs or --rootfs-image"
	}
	f.keepNetwork = fs.Bool("keep-network",
		keepWith+": keep the network namespace's contents (by default it is checkpointed and restored empty, as runc does).")
	f.explain = fs.Bool("explain",
		with+": print, as JSON, the CRIU options and host actions the operation would use, each "+
			"with the reason it was derived, and do nothing.")
	return f
}

func (f *containerFlags) active() bool { return *f.bundle != "" || *f.runtime != "" }

// check refuses flags that need --bundle or --runtime without them, and a mix of both.
func (f *containerFlags) check(fs *flagSet, args []string) error {
	if !f.active() {
		needs := "--bundle or --runtime"
		if f.restore {
			needs = "--bundle"
		}
		for _, n := range []string{"pid", "explain", "keep-network", "runtime-root"} {
			if n == "keep-network" && f.importsContainer {
				continue
			}
			if fs.isSet(n) {
				if n == "keep-network" && f.restore {
					return errors.New("--keep-network needs --bundle, or --import with --rootfs or --rootfs-image")
				}
				return fmt.Errorf("--%s needs %s", n, needs)
			}
		}
		return nil
	}
	switch {
	case *f.bundle != "" && *f.runtime != "":
		return errors.New("--bundle and --runtime exclude each other")
	case *f.bundle != "" && !f.restore && fs.isSet("runtime-root"):
		return errors.New("--runtime-root goes with --runtime, not --bundle: the bundle is not looked up in a runtime's state")
	case *f.runtime != "" && len(args) != 1:
		return errors.New("--runtime needs the container id as the argument")
	case *f.bundle != "" && len(args) != 0:
		return fmt.Errorf("unexpected argument %q with --bundle (give the pid with --pid)", args[0])
	case *f.runtime != "" && fs.isSet("pid"):
		return errors.New("--pid and --runtime exclude each other (the runtime's state gives the init pid)")
	case *f.bundle != "" && !f.restore && fs.isSet("pid") && *f.pid == 0:
		return errors.New("invalid --pid 0: expected the container's init pid as the host sees it")
	case *f.bundle != "" && !f.restore && *f.pid == 0:
		return errors.New("--bundle needs --pid PID, the container's init pid")
	}
	return nil
}

func (f *containerFlags) container(args []string, stdio bool) (*ckpt.Container, error) {
	c := &ckpt.Container{Bundle: *f.bundle, Pid: *f.pid, Runtime: *f.runtime, RuntimeRoot: *f.runtimeRoot,
		KeepNetwork: *f.keepNetwork}
	if c.Bundle != "" {
		b, err := absolute(c.Bundle)
		if err != nil {
			return nil, err
		}
		c.Bundle = b
	}
	if c.Runtime != "" {
		c.ID = args[0]
	}
	if stdio {
		c.Stdio = standardFiles()
	}
	return c, nil
}

// standardFiles are ckpt's stdin, stdout and stderr, handed to a restored container where its
// own were pipes at checkpoint. One that is closed (ckpt started with <&-) is left out: the
// library then refuses the restore only if the container needs it (it was a pipe), instead of
// every container restore failing with "stdio fd 0 is not open".
func standardFiles() [3]*os.File {
	var files [3]*os.File
	for i, f := range []*os.File{os.Stdin, os.Stdout, os.Stderr} {
		if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(i), syscall.F_GETFD, 0); errno == 0 {
			files[i] = f
		}
	}
	return files
}

func printExplain(w io.Writer, js string) int {
	fmt.Fprintln(w, js)
	return exitOK
}

// maxStateFileBytes is the library's limit on a runtime's state file (container/statefile.rs).
const maxStateFileBytes = 4 << 20

// runtimeInitPid is the init pid the runtime's state records for container id, which the
// library reads to find the container (runc's state.json, crun's status): what the command
// reports as the checkpoint's pid with --runtime. 0 when the state cannot be read (the
// library then refuses the container with its own message). Only a regular file within the
// library's size limit is read: opening a FIFO planted there would block for ever.
func runtimeInitPid(runtime, root, id string) int {
	file, key := "state.json", "init_process_pid"
	if runtime == "crun" {
		file, key = "status", "pid"
	}
	if root == "" {
		root = "/run/" + runtime
	}
	path := filepath.Join(root, id, file)
	if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() || st.Size() > maxStateFileBytes {
		return 0
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var state map[string]json.RawMessage
	if json.Unmarshal(b, &state) != nil {
		return 0
	}
	var pid int
	if json.Unmarshal(state[key], &pid) != nil {
		return 0
	}
	return pid
}
