package ckpt

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeImage writes the CRIU image name in dir: the common magic, a magic word, one record.
func writeImage(t *testing.T, dir, name string, rec []byte) {
	t.Helper()
	b := []byte{0x19, 0x43, 0x56, 0x54, 0, 0, 0, 0}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(rec)))
	if err := os.WriteFile(filepath.Join(dir, name), append(b, rec...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A container's checkpoint restored as a process tree is refused before CRIU starts, with
// ErrInvalidArgument naming the external mount CRIU would find no mapping for (CRIU failed
// late, "No mapping for N:(null) mountpoint"), in Go's terms. The images are made here: pid 1
// in mount namespace 9, whose mount /data is external under the key "/data".
func TestContainerImagesRestoredAsATreeAreRefused(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, dir, "inventory.img", []byte{0x08, 0x02})
	writeImage(t, dir, "pstree.img", []byte{0x08, 0x01})
	writeImage(t, dir, "ids-1.img", []byte{0x48, 0x09})
	mount := append([]byte{0x3a, 5}, "/data"...)
	mount = append(append(mount, 0x92, 0x01, 5), "/data"...)
	writeImage(t, dir, "mountpoints-9.img", mount)
	pid, _, err := Restore(&Options{ImagesDirectory: dir})
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrInvalidArgument || pid != 0 {
		t.Fatalf("restore: pid %d, %v; want ErrInvalidArgument", pid, err)
	}
	for _, want := range []string{"holds a container's checkpoint", `key "/data"`, "RestoreContainer", "Options.ExtMounts"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q lacks %q", e.Message, want)
		}
	}
	if strings.Contains(e.Message, "ckpt_") || e.LogPath != "" {
		t.Errorf("message %q names a C function, or a log (%q) of a CRIU that never ran", e.Message, e.LogPath)
	}
}
