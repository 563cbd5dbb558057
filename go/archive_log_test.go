package ckpt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A RestoreArchive that CRIU fails removes the bundle directory, and with it CRIU's log when
// it was there (the default: the images' directory, BUNDLE/checkpoint). The error then names
// no log path that no longer exists, and says where a log would be kept; with
// Options.WorkDirectory the log is kept there and named.
func TestRestoreArchiveLogOutlivesTheBundle(t *testing.T) {
	r := newRuncBundle(t, "archive-log")
	if _, err := r.runc("run", "-d", "--bundle", r.bundle, r.tag); err != nil {
		t.Fatalf("runc run: %v", err)
	}
	waitCounterAbove(t, filepath.Join(r.rootfs, "counter"), 2)
	c := &Container{Runtime: "runc", RuntimeRoot: r.state, ID: r.tag}
	images := filepath.Join(r.work, "img")
	if _, err := CheckpointContainer(c, &Options{ImagesDirectory: images}); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	archive := filepath.Join(r.work, "c.tar")
	if err := ExportContainerArchive(c, images, archive, &ArchiveOptions{Compression: "none"}); err != nil {
		t.Fatalf("export: %v", err)
	}
	r.runc("delete", "-f", r.tag)
	// CRIU fails the restore: the rootfs lost the container's binary.
	if err := os.Rename(filepath.Join(r.rootfs, "bin"), filepath.Join(r.rootfs, "bin.gone")); err != nil {
		t.Fatal(err)
	}
	for _, wd := range []string{"", filepath.Join(r.work, "work")} {
		bundle := filepath.Join(r.work, "restored")
		_, _, _, err := RestoreArchive(archive, bundle, &ArchiveOptions{NewRootfs: r.rootfs}, nil,
			&Options{WorkDirectory: wd, RestoreWait: 5 * time.Second})
		var e *Error
		if !errors.As(err, &e) || e.Code != ErrCriu || e.LogExcerpt == "" {
			t.Fatalf("work directory %q: %v, want CRIU's failure with its excerpt", wd, err)
		}
		t.Logf("work directory %q: %v", wd, e)
		if _, serr := os.Stat(bundle); !os.IsNotExist(serr) {
			t.Errorf("the bundle is left: %v", serr)
		}
		if wd == "" {
			if e.LogPath != "" || strings.Contains(e.Error(), "(log: ") {
				t.Errorf("names a log that was removed with the bundle: %q", e.LogPath)
			}
			if !strings.Contains(e.Message, "Options.WorkDirectory") {
				t.Errorf("does not say how to keep the log: %s", e.Message)
			}
		} else if _, serr := os.Stat(e.LogPath); serr != nil || !strings.HasPrefix(e.LogPath, wd) {
			t.Errorf("the log %q in the work directory: %v", e.LogPath, serr)
		}
	}
}

// CheckArchivePath answers, writing nothing, what the export would refuse of the path.
func TestCheckArchivePath(t *testing.T) {
	dir := t.TempDir()
	if err := CheckArchivePath(filepath.Join(dir, "a.tar")); err != nil {
		t.Errorf("a new file in an existing directory: %v", err)
	}
	for _, c := range []struct {
		path string
		code Code
		want string
	}{
		{filepath.Join(dir, "none", "a.tar"), ErrNotFound, "does not exist"},
		{dir, ErrInvalidArgument, "not a regular file but a directory"},
		{"/dev/null", ErrInvalidArgument, "not a regular file but a character device"},
		{"", ErrInvalidArgument, "archive path is empty"},
		{"a\x00b", ErrInvalidUTF8, "NUL"},
	} {
		err := CheckArchivePath(c.path)
		if !errors.Is(err, c.code) || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %v %q", c.path, err, c.code, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the check wrote %v", entries)
	}
}
