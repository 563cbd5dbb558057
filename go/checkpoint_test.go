package ckpt

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVersionsAgreeWithCriuCLI(t *testing.T) {
	v, err := CriuVersion(nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("criu", "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	// "Version: 4.1.1" -> 40101
	var want int
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Version: ") {
			rest := strings.TrimPrefix(line, "Version: ")
			parts := strings.SplitN(strings.TrimSpace(rest), ".", 3)
			for len(parts) < 3 {
				parts = append(parts, "0")
			}
			for _, p := range parts {
				n, _ := strconv.Atoi(p)
				want = want*100 + n
			}
		}
	}
	if v != want || v < 40000 {
		t.Fatalf("CriuVersion = %d, criu --version says %d", v, want)
	}
	if Version() == "" {
		t.Fatal("empty library version")
	}
	t.Logf("criu %d, libckpt %s", v, Version())
}

func TestFeatureCheckAgreesWithCriuCLI(t *testing.T) {
	f, err := FeatureCheck(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  Support
	}{{"mem_dirty_track", f.MemTrack}, {"uffd-noncoop", f.LazyPages}, {"pidfd_store", f.PidfdStore}} {
		want := Unsupported
		if exec.Command("criu", "check", "--feature", c.name).Run() == nil {
			want = Supported
		}
		if c.got != want {
			t.Errorf("feature %s: ckpt says %v, criu check says %v", c.name, c.got, want)
		}
	}
	if err := Check(nil); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// dumpOrder and restoreOrder are the orders in which CRIU 4.x sends its notifications.
var (
	dumpOrder    = []string{"pre-dump", "network-lock", "query-ext-files", "post-dump", "network-unlock"}
	restoreOrder = []string{"pre-restore", "setup-namespaces", "post-setup-namespaces",
		"post-restore", "pre-resume", "post-resume"}
)

// checkOrder fails unless seen holds every name of must and follows order.
func checkOrder(t *testing.T, what string, seen, order, must []string) {
	t.Helper()
	pos := map[string]int{}
	for i, n := range order {
		pos[n] = i
	}
	last := -1
	for _, n := range seen {
		p, ok := pos[n]
		if !ok {
			t.Errorf("%s: unexpected notification %q in %v", what, n, seen)
			continue
		}
		if p <= last {
			t.Errorf("%s: notifications out of CRIU's order: %v (order %v)", what, seen, order)
		}
		last = p
	}
	for _, n := range must {
		if _, ok := pos[n]; !ok || !contains(seen, n) {
			t.Errorf("%s: %q missing from %v", what, n, seen)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestCheckpointAndRestore(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	w.waitAbove(t, 5)
	images := filepath.Join(dir, "images")
	rec := &recorder{}
	stats, err := Checkpoint(w.pid(), &Options{ImagesDirectory: images, Notify: rec})
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	w.reapDumped(t)
	before := w.value()
	t.Logf("dump notifications %v; frozen %v, %d pages written, %d image bytes",
		rec.seen, stats.FrozenTime, stats.PagesWritten, stats.ImageBytes)
	checkOrder(t, "dump", rec.seen, dumpOrder, []string{"pre-dump", "post-dump"})
	if stats.PagesWritten == 0 || stats.FrozenTime <= 0 || stats.ImageBytes == 0 {
		t.Errorf("implausible dump statistics %+v", stats)
	}
	if stats.Values()["pages_written"] != stats.PagesWritten {
		t.Errorf("Values() disagrees with the fields: %v", stats.Values())
	}
	if _, err := os.Stat(filepath.Join(images, "inventory.img")); err != nil {
		t.Errorf("no inventory.img after the dump: %v", err)
	}
	time.Sleep(150 * time.Millisecond)
	if v := w.value(); v != before {
		t.Fatalf("the counter moved from %d to %d after a dump without leave-running", before, v)
	}

	rrec := &recorder{}
	pid, rstats, err := Restore(&Options{ImagesDirectory: images, Notify: rrec})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	defer killChild(pid)
	if pid != w.pid() {
		t.Errorf("restored pid %d, the original was %d", pid, w.pid())
	}
	after := waitCounterAbove(t, w.path, before)
	t.Logf("restore notifications %v; counter %d before, %d after; restore stats %+v",
		rrec.seen, before, after, rstats)
	checkOrder(t, "restore", rrec.seen, restoreOrder, []string{"pre-restore", "post-restore"})
	if rrec.pids["post-restore"] != pid {
		t.Errorf("post-restore carried pid %d, want %d", rrec.pids["post-restore"], pid)
	}
	if rstats == nil || rstats.RestoreTime <= 0 {
		t.Errorf("implausible restore statistics %+v", rstats)
	}
	if after > before+5 {
		t.Errorf("counter jumped from %d to %d: restored from the start?", before, after)
	}
}

func TestLeaveRunningDumpKeepsProcessRunning(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	fds := openFds(t)
	for i := 0; i < 3; i++ {
		if _, err := Checkpoint(w.pid(), &Options{
			ImagesDirectory: filepath.Join(dir, "img"+strconv.Itoa(i)),
			LeaveRunning:    true,
		}); err != nil {
			t.Fatal(err)
		}
	}
	v := w.value()
	w.waitAbove(t, v)
	if n := openFds(t); n != fds {
		t.Errorf("%d fds open before, %d after three checkpoints", fds, n)
	}
}

type errRefused struct{ what string }

func (e errRefused) Error() string { return "refused by the test at " + e.what }

func TestCallbackErrorAbortsDump(t *testing.T) {
	for _, at := range []string{"pre-dump", "post-dump"} {
		t.Run(at, func(t *testing.T) {
			dir := t.TempDir()
			w := startCounter(t, dir)
			want := errRefused{at}
			rec := &recorder{failOn: at, failErr: want}
			_, err := Checkpoint(w.pid(), &Options{ImagesDirectory: filepath.Join(dir, "img"), Notify: rec})
			if err == nil {
				t.Fatal("Checkpoint succeeded although the callback failed")
			}
			if !errors.Is(err, ErrCallback) {
				t.Errorf("error %v is not ErrCallback", err)
			}
			var got errRefused
			if !errors.As(err, &got) || got != want {
				t.Errorf("the callback's own error is not reachable through errors.As: %v", err)
			}
			if !strings.Contains(err.Error(), want.Error()) {
				t.Errorf("message %q does not carry the callback's %q", err, want)
			}
			if rec.seen[len(rec.seen)-1] != at {
				t.Errorf("notifications went on after the failing one: %v", rec.seen)
			}
			// CRIU resumed the tree: it is neither killed nor left frozen.
			time.Sleep(100 * time.Millisecond)
			if st := processState(w.pid()); st == "" || st == "Z" || st == "T" || st == "t" {
				t.Fatalf("process state %q after an aborted dump", st)
			}
			v := w.value()
			w.waitAbove(t, v)
			t.Logf("callback error at %s: %v; the process keeps counting", at, err)
		})
	}
}

type panicker struct{ NoNotifications }

func (panicker) PreDump() error { panic("boom in PreDump") }

func TestCallbackPanicReachesCaller(t *testing.T) {
	dir := t.TempDir()
	w := startCounter(t, dir)
	defer func() {
		r := recover()
		if r != "boom in PreDump" {
			t.Fatalf("recovered %v, want the callback's panic", r)
		}
		v := w.value()
		w.waitAbove(t, v)
	}()
	_, _ = Checkpoint(w.pid(), &Options{ImagesDirectory: filepath.Join(dir, "img"), Notify: panicker{}})
	t.Fatal("Checkpoint returned although the callback panicked")
}

func TestPreDumpNeedsMemoryTracking(t *testing.T) {
	f, err := FeatureCheck(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w := startCounter(t, dir)
	rounds := 0
	goOn := func(round int, st *DumpStats) bool {
		rounds = round
		return st.PagesWritten > 0
	}
	st, err := CheckpointIterative(w.pid(), 3, &Options{ImagesDirectory: filepath.Join(dir, "iter")}, goOn)
	if f.MemTrack == Supported {
		if err != nil {
			t.Fatalf("CheckpointIterative: %v", err)
		}
		w.reapDumped(t)
		t.Logf("%d pre-dump rounds, final dump wrote %d pages", rounds, st.PagesWritten)
		return
	}
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("CheckpointIterative without memory tracking: %v, want ErrUnsupported", err)
	}
	_, err = Checkpoint(w.pid(), &Options{ImagesDirectory: filepath.Join(dir, "pre"), PreDump: true})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("a pre-dump without memory tracking: %v, want ErrUnsupported", err)
	}
	if rounds != 0 {
		t.Errorf("goOn ran %d times although nothing was dumped", rounds)
	}
	w.waitAbove(t, w.value())
	t.Logf("NOT EXERCISED: pre-dump rounds (this kernel lacks memory tracking); refused with: %v", err)
}
