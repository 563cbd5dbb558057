package main

// The command on real containers, as an operator runs it: a busybox container started by
// runc, checkpointed through --runtime and --bundle, restored with --bundle and from an
// archive, and what the command prints about each.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runcContainer is a busybox container counting into /counter of its rootfs, started by
// `runc run -d` under a state root of its own; everything it leaves is removed at the end.
type runcContainer struct {
	t                       *testing.T
	id, work, bundle, state string
}

func startRuncContainer(t *testing.T, what string) *runcContainer {
	t.Helper()
	return newRuncContainer(t, what, "run")
}

// newRuncContainer is startRuncContainer with runc's "run -d", or "create" (not started);
// each of edit changes the bundle and its spec last.
func newRuncContainer(t *testing.T, what, how string, edit ...func(bundle string, spec map[string]any)) *runcContainer {
	t.Helper()
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("NOT EXERCISED: the command on a runc container (runc is not installed)")
	}
	id := fmt.Sprintf("ckpt-cmd-%s-%d", what, os.Getpid())
	work := filepath.Join(os.TempDir(), id)
	os.RemoveAll(work)
	c := &runcContainer{t: t, id: id, work: work, bundle: filepath.Join(work, "bundle"), state: filepath.Join(work, "state")}
	t.Cleanup(c.remove)
	rootfs := filepath.Join(c.bundle, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "/bin/busybox", filepath.Join(rootfs, "bin")).CombinedOutput(); err != nil {
		t.Fatalf("cp busybox: %v %s", err, out)
	}
	for _, a := range []string{"sh", "sleep", "mv"} {
		_ = os.Symlink("busybox", filepath.Join(rootfs, "bin", a))
	}
	spec := exec.Command("runc", "spec")
	spec.Dir = c.bundle
	if out, err := spec.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v %s", err, out)
	}
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(c.bundle, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	p := cfg["process"].(map[string]any)
	p["terminal"] = false
	// The counter is rewritten in place at a fixed width: no temporary file is open at a
	// checkpoint (a restore on a copy of the rootfs made later would miss it), and the file's
	// size, which CRIU records, never changes.
	p["args"] = []string{"sh", "-c", "i=0; while :; do i=$((i+1)); printf '%8d\\n' $i 1<> /counter; sleep 0.05; done"}
	cfg["root"].(map[string]any)["readonly"] = false
	cfg["linux"].(map[string]any)["cgroupsPath"] = "/" + id
	for _, e := range edit {
		e(c.bundle, cfg)
	}
	b, _ = json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(c.bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	// stdio /dev/null: the container inherits it (a pipe would keep this test waiting for
	// its end).
	args := []string{"--root", c.state, "run", "-d", "--bundle", c.bundle, id}
	if how == "create" {
		args = []string{"--root", c.state, "create", "--bundle", c.bundle, id}
	}
	if err := exec.Command("runc", args...).Run(); err != nil {
		t.Fatalf("runc %s: %v", how, err)
	}
	if how == "run" {
		c.waitAbove(filepath.Join(rootfs, "counter"), 3)
	}
	return c
}

// initPid is the container's init as runc records it.
func (c *runcContainer) initPid() int {
	c.t.Helper()
	out, err := exec.Command("runc", "--root", c.state, "state", c.id).Output()
	if err != nil {
		c.t.Fatalf("runc state: %v", err)
	}
	var st struct{ Pid int }
	if err := json.Unmarshal(out, &st); err != nil {
		c.t.Fatal(err)
	}
	return st.Pid
}

func (c *runcContainer) waitAbove(counter string, n int) int {
	c.t.Helper()
	return waitCount(c.t, counter, n+1, func() (int, error) { return atoiFile(counter) })
}

// remove deletes the container, kills whatever is left in its cgroup (restored copies
// included), and removes its cgroups and files.
func (c *runcContainer) remove() {
	_ = exec.Command("runc", "--root", c.state, "delete", "-f", c.id).Run()
	for _, cg := range []string{"/sys/fs/cgroup/pids/" + c.id, "/sys/fs/cgroup/unified/" + c.id} {
		b, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				killTree(c.t, pid)
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	removeCgroups(c.id)
	os.RemoveAll(c.work)
}

// What the command reports about a container checkpoint and restore: the container's init
// pid (with --runtime the command never sees it on its command line), the image path the
// images really are in, and nothing on stderr when all went well.
func TestContainerReportsWhatItDid(t *testing.T) {
	c := startRuncContainer(t, "report")
	init := c.initPid()
	images := filepath.Join(c.work, "img")
	r := runCkpt(t, c.work, "checkpoint", "--runtime", "runc", "--runtime-root", c.state, "--image-path", images,
		"--leave-running", "--format", "json", c.id)
	var rep report
	if r.code != 0 || r.stderr != "" || json.Unmarshal([]byte(r.stdout), &rep) != nil {
		t.Fatalf("checkpoint --runtime --format json: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if rep.Pid != init || rep.ImagePath != images || rep.Stats["pages_written"] == 0 {
		t.Errorf("checkpoint --runtime reported %+v; want pid %d (runc's init) and image path %s", rep, init, images)
	}
	r = runCkpt(t, c.work, "--debug", "checkpoint", "--runtime", "runc", "--runtime-root", c.state, "--image-path", images,
		"--leave-running", "--stats", c.id)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("checkpoint of pid %d into %s", init, images)) ||
		!strings.Contains(r.stderr, fmt.Sprintf("debug: pid %d,", init)) {
		t.Errorf("checkpoint --runtime --stats --debug: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// The archive of that container, restored as a new container over a copy of its rootfs:
	// the report names the images the restore used, inside the import directory.
	archive := filepath.Join(c.work, "c.tar.zst")
	r = runCkpt(t, c.work, "checkpoint", "--runtime", "runc", "--runtime-root", c.state, "--image-path", images,
		"--leave-running", "--export", archive, c.id)
	if r.code != 0 {
		t.Fatalf("checkpoint --export: exit %d\n%s", r.code, r.stderr)
	}
	// Restored as a process tree, the container's archive is refused by the library before
	// CRIU (its external mounts have no mapping), saying how.
	r = runCkpt(t, c.work, "restore", "--import", archive, "--import-dir", filepath.Join(c.work, "as-tree"), "--detach")
	if l := lines(r.stderr); r.code != 1 || len(l) != 1 || !strings.Contains(l[0], "holds a container's checkpoint") ||
		!strings.Contains(l[0], "--rootfs after --import") {
		t.Errorf("restore --import of a container's archive without --rootfs: exit %d, %q", r.code, r.stderr)
	}
	rootfs := c.copyRootfs(t)
	importDir := filepath.Join(c.work, "imported")
	pidFile := filepath.Join(c.work, "restored.pid")
	// --keep-network goes with a container restore from an archive too (the images were
	// taken without it: the network namespace is restored as it is in them, empty).
	r = runCkpt(t, c.work, "restore", "--import", archive, "--rootfs", rootfs, "--import-dir", importDir,
		"--name", c.id+"-copy", "--detach", "--pid-file", pidFile, "--format", "json", "--keep-network")
	if r.code != 0 {
		t.Fatalf("restore --import --rootfs: exit %d\n%s", r.code, r.stderr)
	}
	pid, _ := atoiFile(pidFile)
	// The copy's cgroups are named by its new id (config.json's cgroupsPath).
	var spec struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	b, _ := os.ReadFile(filepath.Join(importDir, "config.json"))
	_ = json.Unmarshal(b, &spec)
	t.Cleanup(func() {
		if pid > 0 {
			killTree(t, pid)
		}
		if cg := filepath.Base(spec.Linux.CgroupsPath); len(cg) > 8 {
			time.Sleep(100 * time.Millisecond)
			removeCgroups(cg)
		}
	})
	rep = report{}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Pid != pid ||
		rep.ImagePath != filepath.Join(importDir, "checkpoint") {
		t.Errorf("restore --import --rootfs reported %q (%v); want pid %d and image path %s", r.stdout, err, pid,
			filepath.Join(importDir, "checkpoint"))
	}
	if r.stderr != "" {
		t.Errorf("restore --import that worked wrote on stderr (where a line means a failure): %q", r.stderr)
	}
	copyCounter := filepath.Join(rootfs, "counter")
	atRestore, _ := atoiFile(copyCounter)
	c.waitAbove(copyCounter, atRestore)
}

// procsOf lists the processes in the container's pids cgroup.
func (c *runcContainer) procsOf() []string {
	b, _ := os.ReadFile("/sys/fs/cgroup/pids/" + c.id + "/cgroup.procs")
	return strings.Fields(string(b))
}

// A restore into the cgroups of a container that still runs there (here the one just
// checkpointed with --leave-running) is refused before CRIU starts, as runc 1.2 refuses a
// non-empty cgroup: the container counts on and no second copy joins its cgroups.
func TestContainerRestoreIntoARunningContainersCgroupsIsRefused(t *testing.T) {
	c := startRuncContainer(t, "occupied")
	images := filepath.Join(c.work, "img")
	r := runCkpt(t, c.work, "checkpoint", "--runtime", "runc", "--runtime-root", c.state, "--image-path", images,
		"--leave-running", c.id)
	if r.code != 0 {
		t.Fatalf("checkpoint --leave-running: exit %d\n%s", r.code, r.stderr)
	}
	init := c.initPid()
	// A process tree's images (no descriptors.json, no ckpt-container.json) given with a
	// bundle: refused, not restored as the tree it is, outside the bundle.
	bare := filepath.Join(c.work, "bare")
	if err := os.Mkdir(bare, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bare, "inventory.img"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCkpt(t, c.work, "restore", "--bundle", c.bundle, "--image-path", bare, "--detach")
	if l := lines(r.stderr); r.code != 1 || len(l) != 1 || !strings.Contains(l[0], "holds a process tree's checkpoint, not a container's") {
		t.Errorf("restore --bundle of a process tree's images: exit %d, %q", r.code, r.stderr)
	}
	pidFile := filepath.Join(c.work, "restored.pid")
	r = runCkpt(t, c.work, "restore", "--bundle", c.bundle, "--image-path", images, "--detach", "--pid-file", pidFile)
	if pid, err := atoiFile(pidFile); err == nil {
		killTree(t, pid)
	}
	l := lines(r.stderr)
	if r.code != 1 || len(l) != 1 || !strings.Contains(l[0], "already holds") || r.stdout != "" {
		t.Errorf("restore beside the running container: exit %d, stdout %q, stderr %q; want 1 and one line", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(images, "restore.log")); err == nil {
		t.Errorf("CRIU ran (%s exists)", filepath.Join(images, "restore.log"))
	}
	// Every process in the container's cgroup is still of its own pid namespace: no copy
	// joined it.
	ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	for _, p := range c.procsOf() {
		if other, err := os.Readlink("/proc/" + p + "/ns/pid"); err == nil && other != ns {
			t.Errorf("process %s of another pid namespace (%s, the container's is %s) is in the container's cgroup", p, other, ns)
		}
	}
	counter := filepath.Join(c.bundle, "rootfs", "counter")
	now, _ := atoiFile(counter)
	c.waitAbove(counter, now)
	t.Logf("refused: %s", r.stderr)
}

// A foreground restore (no --detach) waits for the container and, once it has exited, removes
// the cgroups the restore made, as runc restore destroys its container: none is left named
// after the container, in any hierarchy.
func TestContainerForegroundRestoreRemovesItsCgroups(t *testing.T) {
	c := startRuncContainer(t, "fg")
	// runc's delete removes the checkpointed container's cgroups: the restore makes them anew.
	images := c.checkpointAndDelete(t)
	if left := cgroupsNamed(c.id); len(left) > 0 {
		t.Fatalf("runc delete left %v", left)
	}
	pidFile := filepath.Join(c.work, "restored.pid")
	fg := startForeground(t, c.work, pidFile, "restore", "--bundle", c.bundle, "--image-path", images, "--pid-file", pidFile)
	if len(cgroupsNamed(c.id)) == 0 {
		t.Errorf("the restored container has no cgroup named %s", c.id)
	}
	counter := filepath.Join(c.bundle, "rootfs", "counter")
	now, _ := atoiFile(counter)
	c.waitAbove(counter, now)
	fg.killAndWait(t, "ckpt restore")
	if left := cgroupsNamed(c.id); len(left) > 0 {
		t.Errorf("cgroups left after the container exited: %v", left)
	}
}

// checkpointAndDelete checkpoints the container through `--runtime runc` into c.work/img,
// fails the test unless it succeeds, then deletes it with runc; it returns the image path.
func (c *runcContainer) checkpointAndDelete(t *testing.T) string {
	t.Helper()
	images := filepath.Join(c.work, "img")
	r := runCkpt(t, c.work, "checkpoint", "--runtime", "runc", "--runtime-root", c.state, "--image-path", images, c.id)
	if r.code != 0 {
		t.Fatalf("checkpoint: exit %d\n%s", r.code, r.stderr)
	}
	if out, err := exec.Command("runc", "--root", c.state, "delete", "-f", c.id).CombinedOutput(); err != nil {
		t.Fatalf("runc delete: %v %s", err, out)
	}
	return images
}

// cgroupsNamed lists the cgroup directories, in every hierarchy, named id.
func cgroupsNamed(id string) []string {
	found, _ := filepath.Glob("/sys/fs/cgroup/*/" + id)
	return found
}

// A container created but not started: its pid (runc's own init, waiting for start) is
// refused with --bundle and --pid as with --runtime, before CRIU starts (CRIU failed on it
// with "Can't lookup mount"), and the container can still be started.
func TestContainerCreatedNotStartedIsRefused(t *testing.T) {
	c := newRuncContainer(t, "created", "create")
	init := c.initPid()
	images := filepath.Join(c.work, "img")
	for _, args := range [][]string{
		{"checkpoint", "--bundle", c.bundle, "--pid", strconv.Itoa(init), "--image-path", images, "--leave-running"},
		{"checkpoint", "--runtime", "runc", "--runtime-root", c.state, "--image-path", images, "--leave-running", c.id},
	} {
		os.RemoveAll(images)
		r := runCkpt(t, c.work, args...)
		if l := lines(r.stderr); r.code != 1 || len(l) != 1 || !strings.Contains(l[0], "created but not started") {
			t.Errorf("ckpt %v: exit %d, %q", args, r.code, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(images, "dump.log")); err == nil {
			t.Errorf("ckpt %v: CRIU ran", args)
		}
	}
	if out, err := exec.Command("runc", "--root", c.state, "start", c.id).CombinedOutput(); err != nil {
		t.Fatalf("runc start after the refusals: %v %s", err, out)
	}
	c.waitAbove(filepath.Join(c.bundle, "rootfs", "counter"), 3)
}

// A container restore with ckpt's stdin closed (started with <&-, as some daemons are): the
// container's stdio was /dev/null at checkpoint, so nothing of ckpt's is needed, and the
// restore works; it failed with "stdio fd 0 is not open".
func TestContainerRestoreWithStdinClosed(t *testing.T) {
	c := startRuncContainer(t, "nostdin")
	images := c.checkpointAndDelete(t)
	pidFile := filepath.Join(c.work, "restored.pid")
	cmd := exec.Command("sh", "-c", `exec "$0" restore --bundle "$1" --image-path "$2" --detach --pid-file "$3" <&-`,
		ckptBin, c.bundle, images, pidFile)
	cmd.Dir = c.work
	out, err := cmd.CombinedOutput()
	if pid, perr := atoiFile(pidFile); perr == nil && pid > 0 {
		defer killTree(t, pid)
	}
	if err != nil {
		t.Fatalf("restore --bundle with stdin closed: %v\n%s", err, out)
	}
	counter := filepath.Join(c.bundle, "rootfs", "counter")
	now, _ := atoiFile(counter)
	c.waitAbove(counter, now)
}
