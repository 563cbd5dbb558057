package main

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// removeMadeCgroups removes, once a foreground container has exited, the cgroup directories
// the library reports it created for the restore (RestoreStats.MadeCgroups, deepest first), as
// runc restore (without -d) destroys its container's cgroups: nobody else knows them. A
// cgroup that still holds a process stays.
func removeMadeCgroups(dirs []string) {
	// The init's end kills the rest of its pid namespace, which takes the kernel a moment: a
	// cgroup still busy is tried again for up to a second, in the order given.
	for try := 0; try < 100 && len(dirs) > 0; try++ {
		if try > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		var busy []string
		for _, d := range dirs {
			if err := os.Remove(d); errors.Is(err, syscall.EBUSY) {
				busy = append(busy, d)
			}
		}
		dirs = busy
	}
}
