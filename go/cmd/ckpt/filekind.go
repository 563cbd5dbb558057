package main

import "os"

// fileKind names what a file that is not a regular one is, for a refusal's message.
func fileKind(t os.FileMode) string {
	switch {
	case t&os.ModeDir != 0:
		return "a directory"
	case t&os.ModeSymlink != 0:
		return "a symbolic link"
	case t&os.ModeDevice != 0:
		return "a device node"
	case t&os.ModeNamedPipe != 0:
		return "a fifo"
	case t&os.ModeSocket != 0:
		return "a socket"
	}
	return "a special file"
}
