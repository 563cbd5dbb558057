package ckpt

import (
	"sort"
	"strings"
)

// noNUL refuses the first of the (name, value) pairs whose value holds a NUL byte, as Options'
// setters do: C would cut the string short there and act on another path or name than the
// caller's.
func noNUL(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.IndexByte(pairs[i+1], 0) >= 0 {
			return newError(ErrInvalidUTF8, "%s contains a NUL byte", pairs[i])
		}
	}
	return nil
}

// noNUL checks every string of o, the namespace map's keys and values included.
func (o *ArchiveOptions) noNUL() error {
	if err := noNUL("ArchiveOptions.Name", o.Name, "ArchiveOptions.ID", o.ID, "ArchiveOptions.ImageName", o.ImageName,
		"ArchiveOptions.ImageID", o.ImageID, "ArchiveOptions.Runtime", o.Runtime, "ArchiveOptions.Manager", o.Manager,
		"ArchiveOptions.Compression", o.Compression, "ArchiveOptions.SpecPath", o.SpecPath,
		"ArchiveOptions.WorkPath", o.WorkPath, "ArchiveOptions.RootfsUpper", o.RootfsUpper,
		"ArchiveOptions.RootfsLower", o.RootfsLower, "ArchiveOptions.RootfsCompare", o.RootfsCompare,
		"ArchiveOptions.ConfigJSON", o.ConfigJSON, "ArchiveOptions.NewRootfs", o.NewRootfs,
		"ArchiveOptions.RootfsImage", o.RootfsImage); err != nil {
		return err
	}
	types := make([]string, 0, len(o.Namespaces))
	for t := range o.Namespaces {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if err := noNUL("ArchiveOptions.Namespaces key", t, "ArchiveOptions.Namespaces["+strings.ReplaceAll(t, "\x00", `\x00`)+"]", o.Namespaces[t]); err != nil {
			return err
		}
	}
	return nil
}
