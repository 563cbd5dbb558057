package ckpt

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Imports racing into one target directory: one wins and its directory is whole; each other
// is refused (the target is in use, or no longer empty) and removes nothing. Before, a loser
// met the winner's files ("config.dump appears twice"), took them for its own and removed
// them, and often every import failed.
func TestConcurrentImportsIntoOneTarget(t *testing.T) {
	dir := t.TempDir()
	images, archive := exportedCounter(t, dir, "")
	var want []string
	ents, _ := os.ReadDir(images)
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ".img" {
			want = append(want, e.Name())
		}
	}
	for round := 0; round < 10; round++ {
		target := filepath.Join(dir, "target")
		os.RemoveAll(target)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, errs[i] = ImportArchive(archive, target, nil)
			}(i)
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			var e *Error
			switch {
			case err == nil:
				won++
			case !errors.As(err, &e) || (e.Code != ErrInvalidState && e.Code != ErrInvalidArgument):
				t.Errorf("round %d: a losing import: %v, want the target in use or not empty", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d imports succeeded: %v", round, won, errs)
		}
		for _, name := range append(want, "../config.json", "../spec.dump", "../config.dump") {
			if _, err := os.Stat(filepath.Join(target, "checkpoint", name)); err != nil {
				t.Errorf("round %d: the winner's %s: %v (losers: %v)", round, name, err, errs)
			}
		}
	}
}
