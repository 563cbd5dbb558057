package ckpt

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"ckpt.dev/go/ckpt/internal/wiretest"
)

// Every bool field of Options has its Flag, named after it, in the one table handle.go
// applies them from.
func TestEveryBoolFieldHasAFlag(t *testing.T) {
	ty := reflect.TypeOf(Options{})
	inTable := map[Flag]bool{}
	for _, b := range boolOptions {
		inTable[b.flag] = true
	}
	n := 0
	for i := 0; i < ty.NumField(); i++ {
		f := ty.Field(i)
		if f.Type.Kind() != reflect.Bool {
			continue
		}
		n++
		if !inTable[Flag(f.Name)] {
			t.Errorf("Options.%s has no Flag in boolOptions", f.Name)
		}
		o := &Options{}
		reflect.ValueOf(o).Elem().Field(i).SetBool(true)
		for _, b := range boolOptions {
			if got := b.field(o); got != (b.flag == Flag(f.Name)) {
				t.Errorf("boolOptions entry %s reads %v with only %s set", b.flag, got, f.Name)
			}
		}
	}
	if n != len(boolOptions) {
		t.Errorf("%d bool fields, %d table entries", n, len(boolOptions))
	}
}

// criuOptsFields maps each Go field to its criu_opts field number, from the README's table.
func criuOptsFields(t *testing.T) map[string]int {
	m, err := wiretest.CriuOptsFields("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sentOpts runs a Checkpoint against a criu that saves the request it receives and exits, and
// returns the varint fields of the request's criu_opts.
func sentOpts(t *testing.T, pid int, o Options) map[int]uint64 {
	dir := t.TempDir()
	req := filepath.Join(dir, "request")
	o.CriuPath = fakeCriu(t, "dd bs=1048576 count=1 of="+req+" <&\"$2\" 2>/dev/null; exit 1")
	o.ImagesDirectory = filepath.Join(dir, "images")
	if _, err := Checkpoint(pid, &o); !errors.Is(err, ErrCriuDied) {
		t.Fatalf("Checkpoint with the recording criu: %v", err)
	}
	b, err := os.ReadFile(req)
	if err != nil || len(b) == 0 {
		t.Fatalf("no request recorded: %v", err)
	}
	opts, err := wiretest.RequestOpts(b)
	if err != nil {
		t.Fatalf("the recorded request: %v", err)
	}
	return opts
}

// A field listed in ExplicitFalse reaches CRIU as false (present, 0), which overrides a CRIU
// configuration file that sets it; a field left false is not sent at all; a true one is 1.
func TestExplicitFalseReachesCriu(t *testing.T) {
	w := startCounter(t, t.TempDir())
	fields := criuOptsFields(t)
	var all []Flag
	for _, b := range boolOptions {
		all = append(all, b.flag)
	}
	// Options that need more than a request (a page server, memory tracking) stay unset.
	var listed []Flag
	for _, f := range all {
		if f != FlagLazyPages && f != FlagPreDump {
			listed = append(listed, f)
		}
	}
	none := sentOpts(t, w.pid(), Options{LeaveRunning: true})
	falses := sentOpts(t, w.pid(), Options{ExplicitFalse: listed})
	checked := 0
	for _, f := range listed {
		n, ok := fields[string(f)]
		if !ok {
			t.Logf("%s is not a criu_opts field (the README lists it among ckpt's own settings)", f)
			continue
		}
		checked++
		if v, ok := falses[n]; !ok || v != 0 {
			t.Errorf("%s (criu_opts field %d): listed in ExplicitFalse, sent %v (present %v)", f, n, v, ok)
		}
		if f == FlagLeaveRunning {
			if none[n] != 1 {
				t.Errorf("LeaveRunning true sent as %v", none[n])
			}
			continue
		}
		if v, ok := none[n]; ok {
			t.Errorf("%s (criu_opts field %d): left false, yet sent as %v", f, n, v)
		}
	}
	if checked < 20 {
		t.Fatalf("only %d options checked on the wire", checked)
	}
	t.Logf("%d yes/no options sent as explicit false, none sent when left false", checked)
}

// Conflicts and unknown names are refused before criu starts.
func TestExplicitFalseRefusals(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "criu-ran")
	criu := fakeCriu(t, "touch "+marker+"; exit 1")
	for _, o := range []Options{
		{LeaveRunning: true, ExplicitFalse: []Flag{FlagLeaveRunning}},
		{ExplicitFalse: []Flag{"leave-running"}},
		{ExplicitFalse: []Flag{""}},
	} {
		o.CriuPath = criu
		o.ImagesDirectory = filepath.Join(dir, "images")
		_, err := Checkpoint(os.Getpid(), &o)
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%v: %v, want ErrInvalidArgument", o.ExplicitFalse, err)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("message %q is not one line", err)
		}
		t.Log(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("criu was started")
	}
}
