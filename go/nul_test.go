package ckpt

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A Go string holding a NUL byte is refused with ErrInvalidUTF8 everywhere, not only in
// Options: in a Container, in ArchiveOptions and in the archive functions' paths. C cut each
// short at the NUL, so it named another path than the caller's ("DIR/t" for "DIR/t\x00x").
func TestNulBytesRefusedOutsideOptions(t *testing.T) {
	dir := t.TempDir()
	want := func(what string, err error) {
		t.Helper()
		var e *Error
		if !errors.As(err, &e) || e.Code != ErrInvalidUTF8 {
			t.Errorf("%s: %v, want ErrInvalidUTF8", what, err)
		}
	}
	o := &Options{ImagesDirectory: filepath.Join(dir, "img")}
	_, err := CheckpointContainer(&Container{Runtime: "runc", RuntimeRoot: dir, ID: "a\x00b"}, o)
	want("Container.ID", err)
	_, err = CheckpointContainer(&Container{Runtime: "runc", RuntimeRoot: dir + "\x00x", ID: "a"}, o)
	want("Container.RuntimeRoot", err)
	_, err = CheckpointContainer(&Container{Bundle: dir + "\x00/x", Pid: 1}, o)
	want("Container.Bundle", err)
	_, _, err = RestoreContainer(&Container{Bundle: dir + "\x00/x"}, o)
	want("RestoreContainer Container.Bundle", err)

	for name, ao := range map[string]*ArchiveOptions{
		"Name":           {Name: "a\x00b"},
		"SpecPath":       {SpecPath: "/etc\x00/x"},
		"RootfsUpper":    {RootfsUpper: dir + "\x00x"},
		"RootfsLower":    {RootfsUpper: dir, RootfsLower: dir + "\x00x"},
		"Namespaces key": {Namespaces: map[string]string{"network\x00x": ""}},
		"Namespaces val": {Namespaces: map[string]string{"network": "/proc/self/ns/net\x00x"}},
	} {
		want("ArchiveOptions."+name, ao.Check())
	}

	spec := filepath.Join(dir, "config.json")
	if err := os.WriteFile(spec, []byte(`{"process": {}, "root": {"path": "rootfs"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.tar")
	want("ExportArchive path", ExportArchive(dir, out+"\x00.evil", &ArchiveOptions{SpecPath: spec}))
	want("ExportArchive images", ExportArchive(dir+"\x00x", out, &ArchiveOptions{SpecPath: spec}))
	want("ExportContainerArchive path", ExportContainerArchive(&Container{Bundle: dir}, dir, out+"\x00.evil", nil))
	target := filepath.Join(dir, "t")
	_, err = ImportArchive(out, target+"\x00x", nil)
	want("ImportArchive target", err)
	_, err = ImportArchive(out+"\x00x", target, nil)
	want("ImportArchive archive", err)
	_, err = InspectArchive(out+"\x00x", nil)
	want("InspectArchive archive", err)
	_, _, _, err = RestoreArchive(out, target+"\x00x", &ArchiveOptions{NewRootfs: dir}, nil, nil)
	want("RestoreArchive bundle", err)
	for _, p := range []string{out, target} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists: %v", p, err)
		}
	}
}
