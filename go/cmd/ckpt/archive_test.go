package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ckpt checkpoint --export writes an archive ckpt inspect reads (text and JSON), and ckpt
// restore --import --name restores the tree from it; the counter carries on.
func TestArchiveExportInspectImport(t *testing.T) {
	dir := t.TempDir()
	w := startWorkload(t, dir, 0)
	name := "ckpt-archive-" + strconv.Itoa(os.Getpid()) + "-go"
	archive := filepath.Join(dir, "tree.tar.zst")
	r := runCkpt(t, dir, "checkpoint", "--export", archive, "--name", name, strconv.Itoa(w.pid()))
	if r.code != 0 {
		t.Fatalf("checkpoint --export: exit %d\n%s", r.code, r.stderr)
	}
	w.reapDumped(t)
	before := w.value()

	r = runCkpt(t, dir, "inspect", archive)
	if r.code != 0 || !strings.Contains(r.stdout, name) || !strings.Contains(r.stdout, "] sh") {
		t.Fatalf("inspect: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// checkpointctl shows when the archive was checkpointed; so does ckpt inspect (it left it out).
	if !strings.Contains(r.stdout, "\ncheckpointed: 20") {
		t.Errorf("inspect shows no checkpointed time:\n%s", r.stdout)
	}
	t.Logf("ckpt inspect:\n%s", r.stdout)
	r = runCkpt(t, dir, "inspect", "--format", "json", archive)
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["name"] != name || v["engine"] != "Podman" {
		t.Fatalf("inspect --format json: %v %q", err, r.stdout)
	}
	r = runCkpt(t, dir, "inspect", "--format", "yaml", archive)
	if r.code != 1 {
		t.Errorf("inspect --format yaml: exit %d, want 1 (as every failure, like runc)", r.code)
	}
	bad := filepath.Join(dir, "bad.tar")
	if err := os.WriteFile(bad, []byte("not an archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCkpt(t, dir, "inspect", bad)
	if r.code != 1 || !strings.Contains(r.stderr, "not a checkpoint archive") {
		t.Errorf("inspect of garbage: exit %d, %q", r.code, r.stderr)
	}

	pidFile := filepath.Join(dir, "pid")
	// The archive named relative to the working directory, as users type it.
	r = runCkpt(t, dir, "--debug", "restore", "--import", filepath.Base(archive), "--name", name+"-new", "--detach",
		"--pid-file", pidFile, "--format", "json")
	if r.code != 0 {
		t.Fatalf("restore --import: exit %d\n%s", r.code, r.stderr)
	}
	// The report names the images by an absolute path, as after any other restore (it was
	// "tree.tar.zst.d/checkpoint", relative to where ckpt ran).
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.ImagePath != archive+".d/checkpoint" {
		t.Errorf("restore --import --format json: %v, image_path %q, want %q", err, rep.ImagePath, archive+".d/checkpoint")
	}
	if !strings.Contains(r.stderr, "into "+archive+".d\n") || !strings.Contains(r.stderr, "criu log "+archive+".d/checkpoint/restore.log") {
		t.Errorf("restore --import --debug does not name the import directory by its absolute path: %q", r.stderr)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid != w.pid() {
		t.Fatalf("restored pid %d, want %d (%s)", pid, w.pid(), r.stderr)
	}
	defer killTree(t, pid)
	// Named on a --debug line: without --debug a restore that worked writes nothing on
	// stderr, where a "ckpt restore: ..." line means a failure (docs/command.md).
	if !strings.Contains(r.stderr, "ckpt restore: debug: imported "+name+"-new") {
		t.Errorf("restore --import --debug does not name the new container: %q", r.stderr)
	}
	after := w.waitAbove(t, before)
	t.Logf("counter %d at the checkpoint, %d after restore --import", before, after)
	if _, err := os.Stat(archive + ".d/checkpoint/inventory.img"); err != nil {
		t.Errorf("the import directory: %v", err)
	}
}

// ckpt restore --import's container flags: each misuse is one clear line before anything is
// written, and a namespace path absent here is refused before the archive is even opened.
func TestArchiveRestoreContainerFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "a.tar.zst")
	if err := os.WriteFile(archive, []byte("not an archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	imp := filepath.Join(dir, "bundle")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"restore", "--rootfs", dir}, "go with --import"},
		{[]string{"restore", "--namespace", "network=/x"}, "go with --import"},
		{[]string{"restore", "--import", archive, "--rootfs", dir, "--rootfs-image", dir}, "exclude each other"},
		{[]string{"restore", "--import", archive, "--namespace", "network=/x"}, "--namespace goes with --rootfs"},
		{[]string{"restore", "--import", archive, "--rootfs-image", dir, "--namespace", "network"}, "expected TYPE=PATH"},
		{[]string{"restore", "--import", archive, "--import-dir", imp, "--rootfs-image", dir,
			"--namespace", "network=" + filepath.Join(dir, "no-netns")}, "absent here"},
		{[]string{"restore", "--import", archive, "--import-dir", imp, "--rootfs-image", filepath.Join(dir, "none")},
			"is not a directory"},
	} {
		r := runCkpt(t, dir, c.args...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want 1 and %q", c.args, r.code, r.stderr, c.want)
		}
		if _, err := os.Stat(imp); err == nil {
			t.Fatalf("%v left %s behind", c.args, imp)
		}
	}
}

// podmanEnv is a Podman 4.3 set up as the archive tests need it here: ulimits within the
// machine's hard limits, and a busybox image imported from a local rootfs.
type podmanEnv struct {
	t               *testing.T
	ids             []string
	tag, dir, image string
	env             []string
}

func newPodman(t *testing.T, what string) *podmanEnv {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("not exercised: podman is not installed (scripts/setup.sh installs it)")
	}
	p := &podmanEnv{t: t, tag: "ckpt-archive-" + strconv.Itoa(os.Getpid()) + "-go" + what, dir: t.TempDir()}
	root := filepath.Join(p.dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"sh", "sleep", "cat", "mv"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", c)); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(p.dir, "containers.conf")
	if err := os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = [\"nofile=20000:20000\",\"nproc=32768:32768\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.env = append(os.Environ(), "CONTAINERS_CONF="+conf)
	p.image = "localhost/" + p.tag + "-img"
	tarball := filepath.Join(p.dir, "rootfs.tar")
	p.must("tar", "-C", root, "-cf", tarball, ".")
	p.must("podman", "import", tarball, p.image)
	t.Cleanup(func() {
		out, _ := p.run("podman", "ps", "-a", "--format", "{{.Names}}")
		for _, n := range strings.Fields(out) {
			if strings.HasPrefix(n, p.tag) {
				p.run("podman", "rm", "-f", "-t", "0", n)
			}
		}
		p.run("podman", "rmi", "-f", p.image)
		// runc under Podman leaves the container's (empty) cgroup2 directory here; CRIU's
		// restore makes the restored container's in every hierarchy.
		for _, id := range p.ids {
			removeCgroups(id)
		}
	})
	return p
}

func (p *podmanEnv) run(args ...string) (string, error) {
	c := exec.Command(args[0], args[1:]...)
	c.Env = p.env
	out, err := c.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (p *podmanEnv) must(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return out
}

// removeCgroups removes the (empty) cgroup directories named with id, deepest first.
func removeCgroups(id string) {
	var found []string
	_ = filepath.WalkDir("/sys/fs/cgroup", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.Count(path, "/") > 8 {
			return filepath.SkipDir
		}
		if strings.Contains(filepath.Base(path), id) {
			found = append(found, path)
		}
		return nil
	})
	for i := len(found) - 1; i >= 0; i-- {
		_ = os.Remove(found[i])
	}
}

func (p *podmanEnv) counter(name string) string {
	id := p.must("podman", "run", "-d", "--runtime", "runc", "--name", name, p.image, "sh", "-c",
		"i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done")
	p.ids = append(p.ids, id)
	return id
}

// waitCount waits until read() gives at least min, and returns it.
func waitCount(t *testing.T, what string, min int, read func() (int, error)) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v, err := read(); err == nil && v >= min {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach %d", what, min)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func atoiFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The first number: core/tests/data/workloads/wl.c writes "ROUND FAULT".
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("empty")
	}
	return strconv.Atoi(f[0])
}

// The command end to end with Podman 4.3.1, both ways: ckpt checkpoint --export --runtime runc
// of a Podman container is restored by podman container restore --import, and the counter
// carries on; Podman's export of a container is restored by ckpt restore --import
// --rootfs-image (an overlay over the image's rootfs, a new name, a network namespace made
// here) and the counter carries on.
func TestArchiveContainerWithPodman(t *testing.T) {
	p := newPodman(t, "pod")
	dir := p.dir

	// ckpt's archive, Podman's restore.
	name := p.tag + "-c"
	id := p.counter(name)
	count := func() (int, error) {
		out, err := p.run("podman", "exec", name, "cat", "/tmp/count")
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(out)
	}
	waitCount(t, "the counter", 5, count)
	imageID := p.must("podman", "image", "inspect", "--format", "{{.Id}}", p.image)
	archive := filepath.Join(dir, "ckpt.tar.zst")
	r := runCkpt(t, dir, "checkpoint", "--image-path", filepath.Join(dir, "img"), "--export", archive,
		"--runtime", "runc", "--name", name, "--image", p.image+":latest", "--image-id", imageID,
		"--config-json", `{"createNetNS":true,"networkMode":"bridge"}`, id)
	if r.code != 0 {
		t.Fatalf("checkpoint --export --runtime runc: exit %d\n%s", r.code, r.stderr)
	}
	p.must("podman", "rm", "-f", "-t", "0", name)
	p.must("podman", "container", "restore", "--import", archive)
	first := waitCount(t, "the counter Podman restored", 1, count)
	later := waitCount(t, "the counter Podman restored", first+5, count)
	t.Logf("Podman restored ckpt's archive: counter %d, then %d", first, later)
	p.must("podman", "rm", "-f", "-t", "0", name)

	// Podman's archive, ckpt's restore.
	name2 := p.tag + "-p"
	p.counter(name2)
	count2 := func() (int, error) {
		out, err := p.run("podman", "exec", name2, "cat", "/tmp/count")
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(out)
	}
	atDump := waitCount(t, "the counter", 5, count2)
	parchive := filepath.Join(dir, "podman.tar.gz")
	p.must("podman", "container", "checkpoint", "--export", parchive, name2)
	p.must("podman", "rm", "-f", "-t", "0", name2)
	netns := p.tag + "-net"
	p.must("ip", "netns", "add", netns)
	defer p.run("ip", "netns", "del", netns)
	bundle := filepath.Join(dir, "bundle")
	pidFile := filepath.Join(dir, "pid")
	logf, err := os.Create(filepath.Join(dir, "restore.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// Files, not pipes: the detached container keeps the command's stdout and stderr.
	c := exec.Command(ckptBin, "restore", "--import", parchive, "--import-dir", bundle, "--rootfs-image",
		filepath.Join(dir, "rootfs"), "--name", p.tag+"-new", "--namespace", "network=/run/netns/"+netns,
		"--detach", "--pid-file", pidFile)
	c.Dir, c.Stdout, c.Stderr = dir, logf, logf
	if err := c.Run(); err != nil {
		out, _ := os.ReadFile(logf.Name())
		t.Fatalf("restore --import --rootfs-image: %v\n%s", err, out)
	}
	pid, err := atoiFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	restoredCount := func() (int, error) { return atoiFile(fmt.Sprintf("/proc/%d/root/tmp/count", pid)) }
	first = waitCount(t, "the counter ckpt restored", atDump, restoredCount)
	later = waitCount(t, "the counter ckpt restored", first+5, restoredCount)
	t.Logf("ckpt restored Podman's archive (counter %d at the checkpoint): counter %d, then %d", atDump, first, later)
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	killTree(t, pid)
	for _, line := range strings.Split(string(cg), "\n") {
		if i := strings.LastIndex(line, "libpod-"); i >= 0 {
			p.ids = append(p.ids, line[i+len("libpod-"):])
			break
		}
	}
}
