package ckpt

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// The README's option tables name, for each C setter, the Go field that reaches it. A field
// renamed, a setter moved to another field, or a field missing from the tables fails here, so
// the Go column cannot drift from the package as it did when it said "—" for fields that exist.
func TestReadmeGoColumn(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("handle.go")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	fields := map[string]bool{}
	ty := reflect.TypeOf(Options{})
	for i := 0; i < ty.NumField(); i++ {
		if ty.Field(i).IsExported() {
			fields[ty.Field(i).Name] = true
		}
	}

	setterRe := regexp.MustCompile("`(ckpt_opts_(?:set|add)_\\w+)`")
	goRe := regexp.MustCompile("^`([A-Z]\\w*)`$")
	named := map[string]bool{}
	rows := 0
	for _, row := range strings.Split(string(readme), "\n") {
		cells := strings.Split(row, "|")
		if !strings.HasPrefix(row, "| ") || len(cells) < 6 {
			continue
		}
		// The Go column follows the first cell that names a setter.
		for i, c := range cells[:len(cells)-1] {
			m := setterRe.FindStringSubmatch(c)
			if m == nil {
				continue
			}
			goCell := strings.TrimSpace(cells[i+1])
			g := goRe.FindStringSubmatch(goCell)
			if g == nil {
				t.Errorf("README row for %s: Go column %q names no field", m[1], goCell)
				break
			}
			rows++
			field := g[1]
			named[field] = true
			if !fields[field] {
				t.Errorf("README row for %s names Go field %s, which Options does not have", m[1], field)
				break
			}
			if !fieldCallsSetter(lines, field, m[1]) {
				t.Errorf("README row for %s names Go field %s, but handle.go does not pass that field to that setter", m[1], field)
			}
			break
		}
	}
	if rows < 70 {
		t.Fatalf("found only %d setter rows in the README's tables", rows)
	}
	// ExplicitFalse is not a setter of its own: it sends the yes/no setters' false, and the
	// README says so by name.
	if !strings.Contains(string(readme), "`ExplicitFalse`") {
		t.Error("the README does not mention Options.ExplicitFalse")
	}
	named["ExplicitFalse"] = true
	for f := range fields {
		if !named[f] {
			t.Errorf("Options.%s is in no row of the README's option tables", f)
		}
	}
	t.Logf("%d README rows, each naming an Options field that calls its setter", rows)
}

// fieldCallsSetter reports whether handle.go calls setter with field: on the same line (the
// tables of booleans and strings), or in the lines of the if block or loop that reads the
// field just before the call. A setter called only from the cgo preamble (the notification
// trampoline) has no Go call site to check.
func fieldCallsSetter(lines []string, field, setter string) bool {
	call := "C." + setter + "("
	use := regexp.MustCompile(`\bo\.` + field + `\b`)
	found := false
	for i, l := range lines {
		if !strings.Contains(l, call) {
			continue
		}
		found = true
		if strings.Contains(l, "{o.") {
			if use.MatchString(l) {
				return true
			}
			continue
		}
		for j := i; j >= 0 && j >= i-16; j-- {
			if use.MatchString(lines[j]) {
				return true
			}
		}
	}
	return !found && strings.Contains(strings.Join(lines, "\n"), setter+"(")
}
