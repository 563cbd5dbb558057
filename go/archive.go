package ckpt

/*
#include <stdint.h>
#include <stdlib.h>
#include <ckpt.h>
*/
import "C"

import (
	"context"
	"encoding/json"
	"sort"
	"unsafe"
)

// ArchiveOptions are the choices and engine fields for checkpoint archives (the format Podman,
// CRI-O and checkpointctl share). Empty strings leave a field unset; the library's defaults
// are in docs/archive.md.
type ArchiveOptions struct {
	// Export: config.dump's container fields; on import, Name and ID are the new container's.
	Name, ID, ImageName, ImageID, Runtime string
	// Export: the spec's io.container.manager annotation.
	Manager string
	// Export: "none", "gzip[:1-9]", "zstd[:-7..22]" (default zstd).
	Compression string
	// Export: the container's OCI spec file (required) and CRIU's work directory.
	SpecPath, WorkPath string
	// Export: the rootfs changes, from an overlay upper directory (with its lower layer for
	// opaque directories) or from comparing RootfsCompare with RootfsLower.
	RootfsUpper, RootfsLower, RootfsCompare string
	// Export: more config.dump fields, a JSON object.
	ConfigJSON string
	// Import: the new root file system (spec root.path; the rootfs diff is applied to it).
	NewRootfs string
	// RestoreArchive: instead of NewRootfs, an overlay over this directory (the image's root
	// file system, left untouched) with its upper layer in the bundle.
	RootfsImage string
	// Import: namespace type -> path to join ("" makes a new namespace).
	Namespaces map[string]string
	// Import and inspect: bounds against hostile archives (0 keeps the default).
	MaxEntries, MaxBytes, MaxDocumentBytes uint64
}

// Check gives every field to the library as an export, import or restore would and returns
// the first one it refuses, doing nothing else: a caller that writes an archive after a
// checkpoint checks its options first, before the checkpoint kills the tree.
func (o *ArchiveOptions) Check() error {
	h, err := newArchiveHandle(o)
	if err != nil {
		return err
	}
	h.free()
	return nil
}

type archiveHandle struct {
	p    *C.ckpt_archive_opts
	strs []*C.char
}

func (h *archiveHandle) cstr(s string) *C.char {
	c := C.CString(s)
	h.strs = append(h.strs, c)
	return c
}

func (h *archiveHandle) free() {
	C.ckpt_archive_opts_free(h.p)
	for _, s := range h.strs {
		C.free(unsafe.Pointer(s))
	}
}

func (h *archiveHandle) check(st C.ckpt_status, what string) error {
	if st == 0 {
		return nil
	}
	msg := Code(st).Error()
	if e := C.ckpt_archive_opts_last_error(h.p); e != nil {
		msg = goTerms.Replace(C.GoString(e))
	}
	return newError(Code(st), "%s: %s", what, msg)
}

func newArchiveHandle(o *ArchiveOptions) (*archiveHandle, error) {
	if o == nil {
		o = &ArchiveOptions{}
	}
	if err := o.noNUL(); err != nil {
		return nil, err
	}
	p := C.ckpt_archive_opts_new()
	if p == nil {
		return nil, newError(ErrIO, "ckpt_archive_opts_new: out of memory")
	}
	h := &archiveHandle{p: p}
	type setter struct {
		v, what string
		f       func(*C.ckpt_archive_opts, *C.char) C.ckpt_status
	}
	for _, s := range []setter{
		{o.Name, "name", func(p *C.ckpt_archive_opts, v *C.char) C.ckpt_status { return C.ckpt_archive_opts_set_name(p, v) }},
		{o.ID, "id", func(p *C.ckpt_archive_opts, v *C.char) C.ckpt_status { return C.ckpt_archive_opts_set_id(p, v) }},
		{o.ImageName, "image name", func(p *C.ckpt_archive_opts, v *C.char) C.ckpt_status { return C.ckpt_archive_opts_set_image_name(p, v) }},
		{o.ImageID, "image id", func(p *C.ckpt_archive_opts, v *C.char) C.ckpt_status { return C.ckpt_archive_opts_set_image_id(p, v) }},
		{o.Runtime, "runtime", func(p *C.ckpt_archive_opts, v *C.char) C.ckpt_status { return C.ckpt_archive_opts_set_runtime(p, v) }},
		{o.Manager, "manager", func(p *C.ckpt_archive_opts, v *C.char) C.ckpt_status { return C.ckpt_archive_opts_set_manager(p, v) }},
		{o.Compression, "compression", func(p *C.ckpt_archive_opts, v *C.char) C.ckpt_status {
			return C.ckpt_archive_opts_set_compression(p, v)
		}},
		{o.SpecPath, "spec path", func(p *C.ckpt_archive_opts, v *C.char) C.ckpt_status { return C.ckpt_archive_opts_set_spec_path(p, v) }},
		{o.WorkPath, "work path", func(p *C.ckpt_archive_opts, v *C.char) C.ckpt_status { return C.ckpt_archive_opts_set_work_path(p, v) }},
		{o.ConfigJSON, "config JSON", func(p *C.ckpt_archive_opts, v *C.char) C.ckpt_status {
			return C.ckpt_archive_opts_set_config_json(p, v)
		}},
		{o.NewRootfs, "new rootfs", func(p *C.ckpt_archive_opts, v *C.char) C.ckpt_status { return C.ckpt_archive_opts_set_new_rootfs(p, v) }},
		{o.RootfsImage, "image rootfs", func(p *C.ckpt_archive_opts, v *C.char) C.ckpt_status {
			return C.ckpt_archive_opts_set_rootfs_image(p, v)
		}},
	} {
		if s.v == "" {
			continue
		}
		if err := h.check(s.f(h.p, h.cstr(s.v)), s.what); err != nil {
			h.free()
			return nil, err
		}
	}
	var err error
	switch {
	case o.RootfsUpper != "":
		var lower *C.char
		if o.RootfsLower != "" {
			lower = h.cstr(o.RootfsLower)
		}
		err = h.check(C.ckpt_archive_opts_set_rootfs_upper(h.p, h.cstr(o.RootfsUpper), lower), "rootfs upper")
	case o.RootfsCompare != "":
		err = h.check(C.ckpt_archive_opts_set_rootfs_compare(h.p, h.cstr(o.RootfsCompare), h.cstr(o.RootfsLower)), "rootfs compare")
	}
	if err == nil {
		types := make([]string, 0, len(o.Namespaces))
		for t := range o.Namespaces {
			types = append(types, t)
		}
		sort.Strings(types)
		for _, t := range types {
			var path *C.char
			if p := o.Namespaces[t]; p != "" {
				path = h.cstr(p)
			}
			if err = h.check(C.ckpt_archive_opts_set_namespace(h.p, h.cstr(t), path), "namespace "+t); err != nil {
				break
			}
		}
	}
	if err == nil && (o.MaxEntries|o.MaxBytes|o.MaxDocumentBytes) != 0 {
		err = h.check(C.ckpt_archive_opts_set_limits(h.p, C.uint64_t(o.MaxEntries), C.uint64_t(o.MaxBytes), C.uint64_t(o.MaxDocumentBytes)), "limits")
	}
	if err != nil {
		h.free()
		return nil, err
	}
	return h, nil
}

// ExportArchive writes the archive file archivePath from CRIU's image directory imagesDir,
// the spec at o.SpecPath and the engine fields.
func ExportArchive(imagesDir, archivePath string, o *ArchiveOptions) error {
	if err := noNUL("images directory", imagesDir, "archive path", archivePath); err != nil {
		return err
	}
	h, err := newArchiveHandle(o)
	if err != nil {
		return err
	}
	defer h.free()
	var e *C.ckpt_error
	if st := C.ckpt_archive_export(h.p, h.cstr(imagesDir), h.cstr(archivePath), &e); st != 0 {
		return takeError(st, e)
	}
	return nil
}

// CheckArchivePath checks, writing nothing, that archivePath can name the archive
// ExportArchive or ExportContainerArchive would write: it names a file in a directory that
// exists (ErrNotFound otherwise) and does not exist as something other than a regular file
// (ErrInvalidArgument, as the export refuses it). For a caller that checks before the
// checkpoint whose images go into the archive.
func CheckArchivePath(archivePath string) error {
	if err := noNUL("archive path", archivePath); err != nil {
		return err
	}
	p := C.CString(archivePath)
	defer C.free(unsafe.Pointer(p))
	var e *C.ckpt_error
	if st := C.ckpt_archive_check_path(p, &e); st != 0 {
		return takeError(st, e)
	}
	return nil
}

// ExportContainerArchive writes the archive of a container checkpoint in imagesDir: as
// ExportArchive, but the spec is the container's config.json (of c.Bundle, or of the bundle
// c.Runtime's state names) unless o.SpecPath names another, and an overlay rootfs's upper
// directory gives the rootfs changes unless o sets them.
func ExportContainerArchive(c *Container, imagesDir, archivePath string, o *ArchiveOptions) error {
	if err := noNUL("images directory", imagesDir, "archive path", archivePath); err != nil {
		return err
	}
	h, err := newArchiveHandle(o)
	if err != nil {
		return err
	}
	defer h.free()
	var inner error
	err = c.with(func(ch *C.ckpt_container) C.ckpt_status {
		var e *C.ckpt_error
		if st := C.ckpt_archive_export_container(h.p, ch, h.cstr(imagesDir), h.cstr(archivePath), &e); st != 0 {
			inner = takeError(st, e)
		}
		return 0
	})
	if err == nil {
		err = inner
	}
	return err
}

// Imported is what ImportArchive produced: a verified directory ready for a restore.
type Imported struct {
	Dir                  string   `json:"dir"`
	ImagesDir            string   `json:"images_dir"`
	SpecPath             string   `json:"spec_path"`
	Name                 string   `json:"name"`
	ID                   string   `json:"id"`
	OldName              string   `json:"old_name"`
	OldID                string   `json:"old_id"`
	Manager              string   `json:"manager"`
	SpecChanges          []string `json:"spec_changes"`
	RootfsEntriesApplied uint64   `json:"rootfs_entries_applied"`
	DeletedApplied       uint64   `json:"deleted_applied"`
	// RestoreArchive: the per-container files ckpt made for the engine's bind mounts.
	Provided []string `json:"provided"`
}

// ImportArchive verifies and unpacks archivePath (Podman's, CRI-O's or ckpt's) into
// targetDir (new, or an empty directory) and rewrites its spec for the new container.
func ImportArchive(archivePath, targetDir string, o *ArchiveOptions) (*Imported, error) {
	if err := noNUL("archive path", archivePath, "target directory", targetDir); err != nil {
		return nil, err
	}
	h, err := newArchiveHandle(o)
	if err != nil {
		return nil, err
	}
	defer h.free()
	var e *C.ckpt_error
	var out *C.char
	if st := C.ckpt_archive_import(h.p, h.cstr(archivePath), h.cstr(targetDir), &out, &e); st != 0 {
		return nil, takeError(st, e)
	}
	defer C.ckpt_archive_string_free(out)
	var r Imported
	if err := json.Unmarshal([]byte(C.GoString(out)), &r); err != nil {
		return nil, newError(ErrIO, "decoding the import result: %v", err)
	}
	return &r, nil
}

// RestoreArchive imports archivePath into bundleDir (new or empty; it becomes the container's
// OCI bundle and stays) and restores the container through the container layer: its root file
// system is o.NewRootfs (the archive's changes applied to it) or an overlay over o.RootfsImage;
// o.Name, o.ID and o.Namespaces name the new container (a network or pid namespace the
// archived container joined by path must be named). c (nil allowed) gives KeepNetwork and
// Stdio; its Bundle, Pid and Runtime are not used. opts carries the user's flags; its
// ImagesDirectory is not used. The restored init becomes the caller's child (reap it); its
// pid is returned with the import's result; the stats' MadeCgroups as for RestoreContainer.
// On failure the bundle directory is removed, or emptied when it existed before the call.
func RestoreArchive(archivePath, bundleDir string, o *ArchiveOptions, c *Container, opts *Options) (int, *RestoreStats, *Imported, error) {
	return RestoreArchiveContext(context.Background(), archivePath, bundleDir, o, c, opts)
}

// RestoreArchiveContext is RestoreArchive under ctx: see "Contexts" in the package
// documentation. The import itself runs to its end; a context ended by then stops the
// restore before or while criu runs, and the bundle directory is removed as on any failure.
func RestoreArchiveContext(ctx context.Context, archivePath, bundleDir string, o *ArchiveOptions, c *Container,
	opts *Options) (int, *RestoreStats, *Imported, error) {
	if err := noNUL("archive path", archivePath, "bundle directory", bundleDir); err != nil {
		return 0, nil, nil, err
	}
	h, err := newArchiveHandle(o)
	if err != nil {
		return 0, nil, nil, err
	}
	defer h.free()
	var pid C.int32_t
	var stats *C.ckpt_stats
	var out *C.char
	call := func(ch *C.ckpt_container) error {
		return runCtx(ctx, opts, func(p *C.ckpt_opts, e **C.ckpt_error) C.ckpt_status {
			return C.ckpt_archive_restore(h.p, ch, p, h.cstr(archivePath), h.cstr(bundleDir), &pid, &stats, &out, e)
		})
	}
	if c == nil {
		err = call(nil)
	} else {
		c2 := *c
		c2.Bundle, c2.Pid, c2.Runtime, c2.RuntimeRoot, c2.ID = "", 0, "", "", ""
		var inner error
		err = c2.with(func(ch *C.ckpt_container) C.ckpt_status {
			inner = call(ch)
			return 0
		})
		if err == nil {
			err = inner
		}
	}
	if out != nil {
		defer C.ckpt_archive_string_free(out)
	}
	if err != nil {
		return 0, nil, nil, err
	}
	var r Imported
	if out != nil {
		if jerr := json.Unmarshal([]byte(C.GoString(out)), &r); jerr != nil {
			return int(pid), takeRestoreStats(stats), nil, newError(ErrIO, "decoding the import result: %v", jerr)
		}
	}
	return int(pid), takeRestoreStats(stats), &r, nil
}

// InspectArchive reads archivePath once, verifying it, and returns what checkpointctl shows,
// as the library's JSON document (see docs/archive.md for its fields).
func InspectArchive(archivePath string, o *ArchiveOptions) (json.RawMessage, error) {
	if err := noNUL("archive path", archivePath); err != nil {
		return nil, err
	}
	h, err := newArchiveHandle(o)
	if err != nil {
		return nil, err
	}
	defer h.free()
	var e *C.ckpt_error
	var out *C.char
	if st := C.ckpt_archive_inspect(h.p, h.cstr(archivePath), &out, &e); st != 0 {
		return nil, takeError(st, e)
	}
	defer C.ckpt_archive_string_free(out)
	return json.RawMessage(C.GoString(out)), nil
}
