package ckpt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A criu that dies before it writes its log (here /bin/false: a binary that is no criu, or a
// criu killed as it starts) leaves the log of an earlier operation in the same directory as
// it was. The error must not quote that log as this failure's explanation, nor name it as
// this operation's log: Error.LogPath is "" when CRIU did not log.
func TestStaleLogIsNotQuoted(t *testing.T) {
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	// A real CRIU failure writes dump.log with its Error lines.
	_, err := Checkpoint(shellJob(t), &Options{ImagesDirectory: images})
	var first *Error
	if !errors.As(err, &first) || first.LogPath == "" || first.LogExcerpt == "" {
		t.Fatalf("a CRIU failure without its log: %v", err)
	}
	before, err := os.ReadFile(first.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Checkpoint(shellJob(t), &Options{ImagesDirectory: images, CriuPath: "/bin/false"})
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrCriuDied {
		t.Fatalf("criu /bin/false: %v, want ErrCriuDied", err)
	}
	t.Logf("criu that never logged: %v", e)
	if e.LogPath != "" || e.LogExcerpt != "" {
		t.Errorf("the earlier operation's log is reported: LogPath %q, excerpt %q", e.LogPath, e.LogExcerpt)
	}
	if strings.Contains(e.Message, "(log:") {
		t.Errorf("the message names a log: %s", e.Message)
	}
	if after, _ := os.ReadFile(first.LogPath); string(after) != string(before) {
		t.Errorf("the earlier log changed")
	}
	// Without an earlier log, no path either.
	_, err = Checkpoint(shellJob(t), &Options{ImagesDirectory: filepath.Join(dir, "fresh"), CriuPath: "/bin/false"})
	if !errors.As(err, &e) || e.LogPath != "" {
		t.Errorf("no log written, LogPath %q: %v", e.LogPath, err)
	}
}
