package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"

	ckpt "ckpt.dev/go/ckpt"
)

// archiveFlags are the archive flags of checkpoint (--export) and restore (--import).
type archiveFlags struct {
	file, name, compression, spec, dir *string
	image, imageID, configJSON         *string
	rootfs, rootfsImage                *string
	namespaces                         *[]string
}

func exportFlags(fs *flagSet) *archiveFlags {
	return &archiveFlags{
		file: fs.String("export", "", "FILE",
			"After the checkpoint, write a checkpoint archive to FILE in the format Podman, CRI-O and checkpointctl "+
				"read (zstd-compressed unless --compression says otherwise): the images, an OCI spec and the engine's config."),
		name: fs.String("name", "", "NAME",
			"The container name recorded in the archive (config.dump). The default is ckpt- and the first 12 digits of its id."),
		compression: fs.String("compression", "", "KIND",
			"Compression of the archive: none, gzip[:1-9] or zstd[:-7..22]. The default is zstd at level 1."),
		image: fs.String("image", "", "NAME",
			"The image the container runs (config.dump's rootfsImageName). Podman's restore --import needs it, with "+
				"--image-id, and the image present locally."),
		imageID: fs.String("image-id", "", "ID", "The image's id (config.dump's rootfsImageID)."),
		configJSON: fs.String("config-json", "", "JSON",
			"More config.dump fields, as a JSON object (e.g. Podman's {\"createNetNS\":true,\"networkMode\":\"bridge\"})."),
		spec: fs.String("spec", "", "FILE",
			"The OCI spec (config.json) recorded in the archive. The default is the container's config.json with "+
				"--bundle or --runtime (and, when its rootfs is an overlay mount, the upper directory's changes go in "+
				"the archive); for a process tree, a spec of its command line with / as its root."),
	}
}

func importFlags(fs *flagSet) *archiveFlags {
	return &archiveFlags{
		file: fs.String("import", "", "FILE",
			"Restore from a checkpoint archive (Podman's, CRI-O's or ckpt's): it is verified, unpacked into "+
				"--import-dir and restored from there; --image-path is not used."),
		name: fs.String("name", "", "NAME",
			"The new name for the imported checkpoint (a new id comes with it)."),
		dir: fs.String("import-dir", "", "DIR",
			"Where the archive is unpacked: a new or empty directory, kept after the restore. The default is a new "+
				"directory beside the archive, named after it with .d appended."),
		rootfs: fs.String("rootfs", "", "DIR",
			"Restore the archive as a container (its bundle is --import-dir) whose root file system is DIR: the "+
				"archive's root file system changes are applied to DIR."),
		rootfsImage: fs.String("rootfs-image", "", "DIR",
			"Restore the archive as a container whose root file system is an overlay over DIR (the image's root "+
				"file system, left untouched), its upper layer in --import-dir."),
		namespaces: fs.List("namespace", "TYPE=PATH",
			"With --rootfs or --rootfs-image: for a namespace type the archived container has (network, pid, ipc, "+
				"uts, user, mount, cgroup, time), TYPE=PATH joins the namespace at PATH (network, pid, ipc, uts and "+
				"user only: CRIU cannot restore into an existing mount, cgroup or time namespace) and TYPE= makes a "+
				"new one; a type the archived container has no namespace of is refused. A network or pid namespace "+
				"the archived container joined by path must be named. May be given more than once."),
	}
}

// namespaceMap parses --namespace TYPE=PATH values.
func namespaceMap(vals []string) (map[string]string, error) {
	m := map[string]string{}
	for _, v := range vals {
		t, p, ok := strings.Cut(v, "=")
		if !ok || t == "" {
			return nil, fmt.Errorf("invalid --namespace %q: expected TYPE=PATH", v)
		}
		m[t] = p
	}
	return m, nil
}

// processSpec writes a minimal OCI spec for the tree rooted at pid (its command line from
// /proc) into a new temporary file; the caller removes it.
func processSpec(pid int) (string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "", err
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	spec := map[string]any{
		"ociVersion": "1.0.2",
		"process":    map[string]any{"args": args, "cwd": "/"},
		"root":       map[string]any{"path": "/"},
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp("", "ckpt-spec-*.json")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// checkSpec refuses a --spec file the export would refuse (docs/archive.md: a JSON object
// with root and process), so that the checkpoint, which may kill the tree, is not taken for
// an archive that cannot be written.
func checkSpec(path string) error {
	b, err := readRegular(path, maxSpecBytes)
	if err != nil {
		return fmt.Errorf("--spec: %w", err)
	}
	var spec map[string]json.RawMessage
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("--spec %s is not an OCI spec (a JSON object): %v", path, err)
	}
	for _, k := range []string{"root", "process"} {
		if _, ok := spec[k]; !ok {
			return fmt.Errorf("--spec %s has no %q: engines restore only from a full OCI spec", path, k)
		}
	}
	return nil
}

var inspectFormat *string

var inspectCmd = &command{
	name:     "inspect",
	summary:  "show what a checkpoint archive holds",
	minArgs:  1,
	maxArgs:  1,
	argsName: "archive",
	flags: func(fs *flagSet) {
		inspectFormat = fs.String("format", "text", "FORMAT", "Output format: text or json.")
	},
	manual: func(fs *flagSet) string {
		return manual("ckpt inspect", "show what a checkpoint archive holds",
			"ckpt inspect [--format text|json] archive",
			`The inspect command reads a checkpoint archive written by Podman, CRI-O or ckpt once, verifying
every entry as an import would, and shows what checkpointctl shows: the engine, the container, its
image and runtime, the sizes, CRIU's dump statistics and the process tree. Nothing is written.`,
			fs, exitStatusSection("0 when the archive is valid"),
			"EXAMPLES\n   ckpt inspect --format json /tmp/web.tar.zst\n")
	},
	run: runInspect,
}

func runInspect(c *context) int {
	if *inspectFormat != "text" && *inspectFormat != "json" {
		return usageError(c.stderr, "ckpt inspect", fmt.Errorf("unknown format %q (text or json)", *inspectFormat))
	}
	raw, err := ckpt.InspectArchive(c.args[0], nil)
	if err != nil {
		return fail(c.stderr, "ckpt inspect", err)
	}
	if *inspectFormat == "json" {
		fmt.Fprintln(c.stdout, string(raw))
		return exitOK
	}
	var v inspection
	if err := json.Unmarshal(raw, &v); err != nil {
		return fail(c.stderr, "ckpt inspect", err)
	}
	v.print(c.stdout)
	return exitOK
}

type process struct {
	Pid      uint32    `json:"pid"`
	Comm     *string   `json:"comm"`
	Children []process `json:"children"`
}

type inspection struct {
	Engine      string            `json:"engine"`
	WrittenBy   *string           `json:"written_by"`
	Name        *string           `json:"name"`
	ID          *string           `json:"id"`
	Image       *string           `json:"image"`
	Runtime     *string           `json:"runtime"`
	Created     *string           `json:"created"`
	Checkpoint  *string           `json:"checkpointed"`
	Compression string            `json:"compression"`
	Entries     uint64            `json:"entries"`
	Sizes       map[string]uint64 `json:"sizes"`
	Statistics  map[string]uint64 `json:"statistics"`
	Tree        *process          `json:"process_tree"`
}

func str(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func (v *inspection) print(w io.Writer) {
	by := ""
	if v.WrittenBy != nil {
		by = " (written by " + *v.WrittenBy + ")"
	}
	fmt.Fprintf(w, "container:   %s\nid:          %s\nengine:      %s%s\nimage:       %s\nruntime:     %s\ncreated:     %s\n",
		str(v.Name), str(v.ID), v.Engine, by, str(v.Image), str(v.Runtime), str(v.Created))
	// checkpointctl shows it when the archive has it (ckpt's do, Podman's do not).
	if v.Checkpoint != nil && *v.Checkpoint != "" {
		fmt.Fprintf(w, "checkpointed: %s\n", *v.Checkpoint)
	}
	fmt.Fprintf(w, "archive:     %d bytes (%s, %d entries)\nimages:      %d bytes (memory pages %d)\n",
		v.Sizes["archive"], v.Compression, v.Entries, v.Sizes["checkpoint"], v.Sizes["pages"])
	if v.Sizes["rootfs_diff"] > 0 {
		fmt.Fprintf(w, "rootfs diff: %d bytes\n", v.Sizes["rootfs_diff"])
	}
	if len(v.Statistics) > 0 {
		fmt.Fprintln(w, "CRIU dump statistics:")
		keys := make([]string, 0, len(v.Statistics))
		for k := range v.Statistics {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			unit := ""
			if strings.HasSuffix(k, "_time") {
				unit = " us"
			}
			fmt.Fprintf(w, "  %s: %d%s\n", k, v.Statistics[k], unit)
		}
	}
	if v.Tree != nil {
		fmt.Fprintln(w, "process tree:")
		var walk func(p *process, depth int)
		walk = func(p *process, depth int) {
			fmt.Fprintf(w, "  %s[%d] %s\n", strings.Repeat("  ", depth), p.Pid, str(p.Comm))
			for i := range p.Children {
				walk(&p.Children[i], depth+1)
			}
		}
		walk(v.Tree, 0)
	}
}

// maxSpecBytes is the library's limit on a spec file (paths::MAX_TEXT).
const maxSpecBytes = 64 << 20

// readRegular reads path when it is a regular file of at most max bytes. It is opened without
// waiting, and its type checked on the open descriptor: a FIFO given there blocked os.ReadFile
// for ever.
func readRegular(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if t := st.Mode().Type(); t != 0 {
		return nil, fmt.Errorf("%s is not a regular file but %s", path, fileKind(t))
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return io.ReadAll(io.LimitReader(f, max))
}
