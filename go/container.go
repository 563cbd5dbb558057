package ckpt

/*
#include <stdlib.h>
#include <ckpt.h>
*/
import "C"

import (
	"context"
	"os"
	"runtime"
	"unsafe"
)

// Container names an OCI container for the container layer: its bundle (the directory
// holding config.json) and, for a checkpoint, its init's pid; or, instead of both, the id of a
// container runc or crun started. The layer works out every container-level CRIU option
// itself (external mounts, namespaces, cgroups, freezer, network lock, descriptors.json; see
// docs/containers.md); the Options carry the user's flags.
type Container struct {
	Bundle string
	Pid    int
	// Runtime ("runc" or "crun"), its state root ("" for /run/runc, /run/crun) and the
	// container's id: the bundle and pid are read from the runtime's state, so Bundle and
	// Pid must be left empty (ErrInvalidArgument otherwise).
	Runtime, RuntimeRoot, ID string
	// KeepNetwork keeps the network namespace's contents (default: empty, as runc).
	KeepNetwork bool
	// Stdio, for a restore: the files the restored init gets as stdin, stdout, stderr where
	// those were pipes at checkpoint. nil entries are not passed.
	Stdio [3]*os.File
}

// withContainer builds the C container handle for one call.
func (c *Container) with(f func(h *C.ckpt_container) C.ckpt_status) error {
	if c == nil {
		return newError(ErrNullArgument, "container is nil")
	}
	if err := noNUL("Container.Runtime", c.Runtime, "Container.RuntimeRoot", c.RuntimeRoot, "Container.ID", c.ID,
		"Container.Bundle", c.Bundle); err != nil {
		return err
	}
	if c.Runtime != "" && (c.Bundle != "" || c.Pid != 0) {
		return newError(ErrInvalidArgument, "Container.Runtime excludes Bundle and Pid: the runtime's state gives both")
	}
	h := C.ckpt_container_new()
	if h == nil {
		return newError(ErrInvalidArgument, "out of memory")
	}
	defer C.ckpt_container_free(h)
	cs := func(s string) *C.char {
		p := C.CString(s)
		return p
	}
	set := func(st C.ckpt_status, what string) error {
		if st != 0 {
			if m := C.ckpt_container_last_error(h); m != nil {
				return newError(Code(st), "%s", goTerms.Replace(C.GoString(m)))
			}
			return newError(Code(st), "container %s refused: %s", what, C.GoString(C.ckpt_status_str(st)))
		}
		return nil
	}
	if c.Runtime != "" {
		rt, id := cs(c.Runtime), cs(c.ID)
		defer C.free(unsafe.Pointer(rt))
		defer C.free(unsafe.Pointer(id))
		var root *C.char
		if c.RuntimeRoot != "" {
			root = cs(c.RuntimeRoot)
			defer C.free(unsafe.Pointer(root))
		}
		if err := set(C.ckpt_container_set_runtime(h, rt, root, id), "runtime "+c.Runtime+" id "+c.ID); err != nil {
			return err
		}
	}
	if c.Bundle != "" {
		b := cs(c.Bundle)
		defer C.free(unsafe.Pointer(b))
		if err := set(C.ckpt_container_set_bundle(h, b), "bundle"); err != nil {
			return err
		}
	}
	if c.Pid != 0 {
		if err := checkPid(c.Pid); err != nil {
			return err
		}
		if err := set(C.ckpt_container_set_pid(h, C.int32_t(c.Pid)), "pid"); err != nil {
			return err
		}
	}
	if err := set(C.ckpt_container_set_keep_network(h, C.bool(c.KeepNetwork)), "keep-network"); err != nil {
		return err
	}
	for i, f := range c.Stdio {
		if f != nil {
			fd := f.Fd()
			if fd == ^uintptr(0) {
				// Fd's answer for a closed file, which the library would see as fd -1.
				return newError(ErrBadFd, "Container.Stdio[%d] (%s) is closed", i, f.Name())
			}
			err := set(C.ckpt_container_set_stdio_fd(h, C.int(i), C.int(fd)), "stdio")
			// The library duplicated fd above; until then the file's finalizer must not
			// close it, should the caller hold the *os.File nowhere else.
			runtime.KeepAlive(f)
			if err != nil {
				return err
			}
		}
	}
	if st := f(h); st != 0 {
		return newError(Code(st), "%s", C.GoString(C.ckpt_status_str(st)))
	}
	return nil
}

// named checks, in the package's terms, that c names a container: a bundle, and with
// needPid its init's pid, or a runtime's container.
func (c *Container) named(needPid bool) error {
	switch {
	case c == nil || c.Runtime != "":
		return nil
	case c.Bundle == "":
		return newError(ErrInvalidArgument, "the container has no bundle: set Container.Bundle, or Container.Runtime and ID")
	case needPid && c.Pid == 0:
		return newError(ErrInvalidArgument, "the container has no init pid: set Container.Pid, or Container.Runtime and ID")
	}
	return nil
}

// CheckpointContainer checkpoints the container into opts.ImagesDirectory, with
// descriptors.json (runc's format) and ckpt-container.json beside CRIU's images.
func CheckpointContainer(c *Container, opts *Options) (*DumpStats, error) {
	return CheckpointContainerContext(context.Background(), c, opts)
}

// CheckpointContainerContext is CheckpointContainer under ctx: see "Contexts" in the
// package documentation.
func CheckpointContainerContext(ctx context.Context, c *Container, opts *Options) (*DumpStats, error) {
	if err := c.named(true); err != nil {
		return nil, err
	}
	var stats *C.ckpt_stats
	var inner error
	err := c.with(func(h *C.ckpt_container) C.ckpt_status {
		inner = runCtx(ctx, opts, func(p *C.ckpt_opts, e **C.ckpt_error) C.ckpt_status {
			return C.ckpt_container_checkpoint(h, p, &stats, e)
		})
		return 0
	})
	if err != nil {
		return nil, err
	}
	if inner != nil {
		return nil, inner
	}
	return takeDumpStats(stats), nil
}

// RestoreContainer restores the checkpoint in opts.ImagesDirectory into the container's
// bundle. The restored init becomes the caller's child (reap it); its pid is returned.
// opts.Notify sees setup-namespaces and post-restore, where a runtime runs its hooks. A
// terminal container needs opts.ConsoleSocket (or opts.Notify, which sees the new terminal
// master at orphan-pts-master); without either it is refused before CRIU starts. A
// container whose v1 cgroups (config.json's linux.cgroupsPath) already hold processes is
// refused before CRIU starts (ErrInvalidState): another container runs there. The stats'
// MadeCgroups lists the cgroup directories created for this restore, which the caller
// removes after the container is gone, deepest first.
func RestoreContainer(c *Container, opts *Options) (int, *RestoreStats, error) {
	return RestoreContainerContext(context.Background(), c, opts)
}

// RestoreContainerContext is RestoreContainer under ctx: see "Contexts" in the package
// documentation.
func RestoreContainerContext(ctx context.Context, c *Container, opts *Options) (int, *RestoreStats, error) {
	if err := c.named(false); err != nil {
		return 0, nil, err
	}
	var pid C.int32_t
	var stats *C.ckpt_stats
	var inner error
	err := c.with(func(h *C.ckpt_container) C.ckpt_status {
		inner = runCtx(ctx, opts, func(p *C.ckpt_opts, e **C.ckpt_error) C.ckpt_status {
			return C.ckpt_container_restore(h, p, &pid, &stats, e)
		})
		return 0
	})
	if err == nil {
		err = inner
	}
	if err != nil {
		return 0, nil, err
	}
	return int(pid), takeRestoreStats(stats), nil
}

// ExplainContainer returns, as JSON, the checkpoint (restore false) or restore the container
// layer would run: every CRIU option with the reason it was derived, and the host actions.
// Nothing is done.
func ExplainContainer(c *Container, opts *Options, restore bool) (string, error) {
	if err := c.named(!restore); err != nil {
		return "", err
	}
	var out string
	var inner error
	err := c.with(func(h *C.ckpt_container) C.ckpt_status {
		inner = run(opts, func(p *C.ckpt_opts, e **C.ckpt_error) C.ckpt_status {
			var js *C.char
			st := C.ckpt_container_explain(h, p, C.bool(restore), &js, e)
			if js != nil {
				out = C.GoString(js)
				C.ckpt_string_free(js)
			}
			return st
		})
		return 0
	})
	if err == nil {
		err = inner
	}
	return out, err
}
