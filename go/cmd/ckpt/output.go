package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	ckpt "ckpt.dev/go/ckpt"
)

// outputFlags are --stats and --format, shared by checkpoint and restore.
type outputFlags struct {
	stats  *bool
	format *string
}

func outputOptions(fs *flagSet, op string) *outputFlags {
	return &outputFlags{
		stats: fs.Bool("stats", fmt.Sprintf("Print CRIU's statistics of the %s when it is done.", op)),
		format: fs.String("format", "text", "FORMAT",
			"Print the statistics as text (the default), for people, or as json: one object on one line, "+
				"with every statistic CRIU reported under its stable name, times in microseconds. "+
				"--format json prints the statistics without --stats."),
	}
}

// wanted reports whether to print the statistics: asked with --stats, or by asking for JSON,
// which is only ever wanted to be read by a program.
func (o *outputFlags) wanted() bool { return *o.stats || *o.format == "json" }

func (o *outputFlags) check() error {
	switch *o.format {
	case "text", "json":
		return nil
	}
	return fmt.Errorf("invalid --format %q: expected text or json", *o.format)
}

// report is the JSON form of the statistics.
type report struct {
	Operation string            `json:"operation"`
	Pid       int               `json:"pid"`
	ImagePath string            `json:"image_path"`
	Stats     map[string]uint64 `json:"stats"`
}

func (o *outputFlags) printDump(w io.Writer, pid int, opts *ckpt.Options, st *ckpt.DumpStats) {
	what := "checkpoint"
	if opts.PreDump {
		what = "pre-dump"
	}
	if *o.format == "json" {
		writeJSON(w, report{what, pid, opts.ImagesDirectory, st.Values()})
		return
	}
	fmt.Fprintf(w, "%s of pid %d into %s\n", what, pid, opts.ImagesDirectory)
	t := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row(t, "frozen time", duration(st.FrozenTime))
	row(t, "freezing time", duration(st.FreezingTime))
	row(t, "memory dump time", duration(st.MemdumpTime))
	row(t, "memory write time", duration(st.MemwriteTime))
	row(t, "pages scanned", fmt.Sprint(st.PagesScanned))
	row(t, "pages written", fmt.Sprintf("%d (%s)", st.PagesWritten, size(st.PagesWritten*pageSize)))
	if st.PagesSkippedParent > 0 {
		row(t, "pages in parent", fmt.Sprint(st.PagesSkippedParent))
	}
	if st.PagesLazy > 0 {
		row(t, "pages left lazy", fmt.Sprint(st.PagesLazy))
	}
	row(t, "image size", size(st.ImageBytes))
	t.Flush()
}

func (o *outputFlags) printRestore(w io.Writer, pid int, opts *ckpt.Options, st *ckpt.RestoreStats) {
	values := map[string]uint64{}
	if st != nil {
		values = st.Values()
	}
	if *o.format == "json" {
		writeJSON(w, report{"restore", pid, opts.ImagesDirectory, values})
		return
	}
	fmt.Fprintf(w, "restore of pid %d from %s\n", pid, opts.ImagesDirectory)
	if st == nil {
		fmt.Fprintln(w, "  (CRIU reported no statistics)")
		return
	}
	t := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row(t, "restore time", duration(st.RestoreTime))
	row(t, "forking time", duration(st.ForkingTime))
	row(t, "pages restored", fmt.Sprintf("%d (%s)", st.PagesRestored, size(st.PagesRestored*pageSize)))
	if st.PagesCompared > 0 || st.PagesSkippedCow > 0 {
		row(t, "pages compared", fmt.Sprint(st.PagesCompared))
		row(t, "pages shared (COW)", fmt.Sprint(st.PagesSkippedCow))
	}
	row(t, "image size", size(st.ImageBytes))
	t.Flush()
}

const pageSize = 4096

func row(w io.Writer, name, value string) { fmt.Fprintf(w, "  %s\t%s\n", name, value) }

func duration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%d µs", d.Microseconds())
}

func size(b uint64) string {
	const k = 1024
	switch {
	case b >= k*k*k:
		return fmt.Sprintf("%.1f GiB", float64(b)/(k*k*k))
	case b >= k*k:
		return fmt.Sprintf("%.1f MiB", float64(b)/(k*k))
	case b >= k:
		return fmt.Sprintf("%.0f KiB", float64(b)/k)
	}
	return fmt.Sprintf("%d bytes", b)
}

func writeJSON(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only maps of numbers and strings are marshalled here.
		panic(err)
	}
	fmt.Fprintf(w, "%s\n", b)
}
