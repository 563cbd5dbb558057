package ckpt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An error a Go caller can fix by setting something names the Go field to set, not the C
// setter (the library's messages are written for C callers).
func TestErrorsNameGoFields(t *testing.T) {
	dir := t.TempDir()
	want := func(what string, err error, field string) {
		t.Helper()
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %v, want an *Error", what, err)
		}
		if strings.Contains(e.Message, "ckpt_") || !strings.Contains(e.Message, field) {
			t.Errorf("%s: %q, want it to name %s and no C function", what, e.Message, field)
		}
	}
	want("export without a spec", ExportArchive(dir, filepath.Join(dir, "a.tar"), &ArchiveOptions{}),
		"ArchiveOptions.SpecPath")
	_, _, _, err := RestoreArchive(filepath.Join(dir, "a.tar"), filepath.Join(dir, "b"), nil, nil, nil)
	want("archive restore without a rootfs", err, "ArchiveOptions.NewRootfs")

	bundle := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	images := filepath.Join(dir, "images")
	if err := os.MkdirAll(images, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(images, "inventory.img"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A container's checkpoint: a process tree's images are refused before these checks.
	stdio := []byte(`["/dev/null","/dev/null","/dev/null"]`)
	if err := os.WriteFile(filepath.Join(images, "descriptors.json"), stdio, 0o600); err != nil {
		t.Fatal(err)
	}
	writeSpec := func(terminal string) {
		spec := `{"ociVersion": "1.0.2", "process": {"terminal": ` + terminal + `, "args": ["sh"], "cwd": "/",
			"user": {"uid": 0, "gid": 0}}, "root": {"path": "rootfs"}, "linux": {}}`
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeSpec("true")
	_, _, err = RestoreContainer(&Container{Bundle: bundle}, &Options{ImagesDirectory: images})
	want("terminal container without a console socket", err, "Options.ConsoleSocket")
	writeSpec("false")
	_, _, err = RestoreContainer(&Container{Bundle: bundle}, &Options{ImagesDirectory: images,
		ConsoleSocket: filepath.Join(dir, "console.sock")})
	want("console socket for a container without a terminal", err, "Options.ConsoleSocket")
}

// ErrNullArgument comes from this package for a nil *Container, and only there (docs/go.md).
func TestNilContainerIsErrNullArgument(t *testing.T) {
	dir := t.TempDir()
	o := &Options{ImagesDirectory: dir}
	_, err1 := CheckpointContainer(nil, o)
	_, _, err2 := RestoreContainer(nil, o)
	_, err3 := ExplainContainer(nil, o, true)
	err4 := ExportContainerArchive(nil, dir, filepath.Join(dir, "a.tar"), nil)
	for i, err := range []error{err1, err2, err3, err4} {
		if !errors.Is(err, ErrNullArgument) || !strings.Contains(err.Error(), "container is nil") {
			t.Errorf("call %d with a nil container: %v", i+1, err)
		}
	}
}

// A closed *os.File in Container.Stdio is named as such, not as "stdio fd -1 is negative"
// (os.File.Fd's answer for a closed file).
func TestClosedStdioFileNamed(t *testing.T) {
	dir := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.Close()
	_, _, err = RestoreContainer(&Container{Bundle: dir, Stdio: [3]*os.File{nil, w, nil}}, &Options{ImagesDirectory: dir})
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrBadFd || !strings.Contains(e.Message, "Container.Stdio[1]") ||
		!strings.Contains(e.Message, "closed") {
		t.Errorf("a closed stdio file: %v, want ErrBadFd naming Container.Stdio[1] as closed", err)
	}
}
