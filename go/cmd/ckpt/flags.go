package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	ckpt "ckpt.dev/go/ckpt"
)

var errHelp = flag.ErrHelp

// flagSet is the standard library's flag.FlagSet plus what the manual pages need: each
// flag's placeholder and description, in the order they were defined.
type flagSet struct {
	fs         *flag.FlagSet
	specs      []flagSpec
	positional []string
}

type flagSpec struct {
	name  string
	short string // a one-letter alias, as runc's -d
	arg   string // the placeholder for the value, "" for a switch
	text  string // a sentence or two for the manual
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by the caller
	fs.Usage = func() {}
	return &flagSet{fs: fs}
}

func (f *flagSet) String(name, value, arg, text string) *string {
	f.specs = append(f.specs, flagSpec{name: name, arg: arg, text: text})
	return f.fs.String(name, value, text)
}

func (f *flagSet) Bool(name, text string) *bool {
	f.specs = append(f.specs, flagSpec{name: name, text: text})
	return f.fs.Bool(name, false, text)
}

// BoolShort is Bool with a one-letter alias.
func (f *flagSet) BoolShort(name, short, text string) *bool {
	p := f.Bool(name, text)
	f.specs[len(f.specs)-1].short = short
	f.fs.BoolVar(p, short, false, text)
	return p
}

// Int reads a whole number; a value that is not one is refused by the parser.
func (f *flagSet) Int(name string, value int, arg, text string) *int {
	f.specs = append(f.specs, flagSpec{name: name, arg: arg, text: text})
	p := new(int)
	*p = value
	f.fs.Var((*intValue)(p), name, text)
	return p
}

// List is a flag that may be given several times; each use adds a value.
func (f *flagSet) List(name, arg, text string) *[]string {
	f.specs = append(f.specs, flagSpec{name: name, arg: arg, text: text})
	p := new([]string)
	f.fs.Var((*listValue)(p), name, text)
	return p
}

// isSet reports whether the flag was given on the command line.
func (f *flagSet) isSet(name string) bool {
	set := false
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == name {
			set = true
		}
	})
	return set
}

// parse reads flags and arguments in any order (flags may follow the pid, as users type
// them); "--" ends the flags.
func (f *flagSet) parse(args []string) error {
	for {
		if err := f.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return errHelp
			}
			return tidy(err)
		}
		rest := f.fs.Args()
		if len(rest) == 0 {
			return nil
		}
		// flag.Parse stops at the first argument, or after "--": tell the two apart by
		// what came before.
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			f.positional = append(f.positional, rest...)
			return nil
		}
		f.positional = append(f.positional, rest[0])
		args = rest[1:]
	}
}

// parseUntilCommand reads the global options, which end at the first argument: the command.
func (f *flagSet) parseUntilCommand(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return tidy(err)
	}
	f.positional = f.fs.Args()
	return nil
}

func (f *flagSet) args() []string { return f.positional }

// refuseEmpty reports an option given an empty value, which would otherwise silently mean
// "not set".
func (f *flagSet) refuseEmpty() error {
	var err error
	f.fs.Visit(func(fl *flag.Flag) {
		if err == nil && fl.Value.String() == "" {
			err = fmt.Errorf("--%s is empty", fl.Name)
		}
	})
	return err
}

// tidy rewrites the flag package's messages in the words and double dashes users type.
var tidyRules = []struct{ re, with string }{
	{`^flag provided but not defined: -+(\S+)`, "unknown option: --$1"},
	{`^flag needs an argument: -+(\S+)`, "option --$1 needs an argument"},
	{`^invalid boolean value "(.*)" for -+(\S+): .*`, `invalid value "$1" for --$2: expected true or false`},
	{`^invalid value "(.*)" for flag -+(\S+): (.*)`, `invalid value "$1" for --$2: $3`},
}

func tidy(err error) error {
	s := err.Error()
	for _, r := range tidyRules {
		re := regexp.MustCompile(r.re)
		if re.MatchString(s) {
			return errors.New(re.ReplaceAllString(s, r.with))
		}
	}
	return err
}

type intValue int

func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

// Set reads a C int (descriptors and pids are): the library takes nothing wider, and a larger
// value was clamped on the way, so that "--status-fd 4294967297" was reported as fd 2147483647.
func (v *intValue) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 32)
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("out of range (%d to %d)", math.MinInt32, math.MaxInt32)
	}
	if err != nil {
		return errors.New("not a whole number")
	}
	*v = intValue(n)
	return nil
}

type listValue []string

func (v *listValue) String() string { return strings.Join(*v, ",") }

func (v *listValue) Set(s string) error {
	*v = append(*v, s)
	return nil
}

// options renders the OPTIONS section of a manual page from the flags.
func (f *flagSet) options() string {
	var b strings.Builder
	for _, s := range f.specs {
		b.WriteString("   --" + s.name)
		if s.short != "" {
			b.WriteString(", -" + s.short)
		}
		if s.arg != "" {
			b.WriteString(" " + s.arg)
		}
		b.WriteString("\n")
		b.WriteString(wrap(s.text, "          ", 80))
	}
	return b.String()
}

// wrap fills text to width, each line starting with indent.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, w := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += w
	}
	if len(line) > len(indent) {
		b.WriteString(line + "\n")
	}
	return b.String()
}

// manual assembles a manual page in the layout of runc's.
func manual(name, summary, synopsis, description string, fs *flagSet, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "NAME\n   %s - %s\n\nSYNOPSIS\n   %s\n\nDESCRIPTION\n", name, summary, synopsis)
	for i, p := range strings.Split(strings.TrimSpace(description), "\n\n") {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(wrap(p, "   ", 80))
	}
	if fs != nil {
		b.WriteString("\nOPTIONS\n")
		b.WriteString(fs.options())
	}
	for _, e := range extra {
		b.WriteString("\n" + e)
	}
	return b.String()
}

// InodeList is a repeatable flag of unix socket inodes (CRIU's --ext-unix-sk INODE list):
// each use adds one, a positive number that fits CRIU's 32 bits; anything else is refused by
// the parser, in one line, before anything is done.
func (f *flagSet) InodeList(name, arg, text string) *[]uint32 {
	f.specs = append(f.specs, flagSpec{name: name, arg: arg, text: text})
	p := new([]uint32)
	f.fs.Var((*inodeList)(p), name, text)
	return p
}

type inodeList []uint32

func (v *inodeList) String() string {
	s := make([]string, len(*v))
	for i, n := range *v {
		s[i] = strconv.FormatUint(uint64(n), 10)
	}
	return strings.Join(s, ",")
}

func (v *inodeList) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if errors.Is(err, strconv.ErrRange) || err == nil && n == 0 {
		return fmt.Errorf("out of range (1 to %d)", uint32(math.MaxUint32))
	}
	if err != nil {
		return errors.New("not an inode number")
	}
	*v = append(*v, uint32(n))
	return nil
}

// InheritList is a repeatable flag in CRIU's --inherit-fd form, fd[N]:KEY: the command's own
// open descriptor N is given to the restored tree where its images name KEY. The parser
// refuses a malformed value, an empty key and a descriptor that is not open.
func (f *flagSet) InheritList(name, arg, text string) *[]ckpt.InheritFd {
	f.specs = append(f.specs, flagSpec{name: name, arg: arg, text: text})
	p := new([]ckpt.InheritFd)
	f.fs.Var((*inheritList)(p), name, text)
	return p
}

type inheritList []ckpt.InheritFd

func (v *inheritList) String() string {
	s := make([]string, len(*v))
	for i, f := range *v {
		s[i] = fmt.Sprintf("fd[%d]:%s", f.Fd, f.Key)
	}
	return strings.Join(s, ",")
}

func (v *inheritList) Set(s string) error {
	num, key, ok := strings.Cut(strings.TrimPrefix(s, "fd["), "]:")
	if !strings.HasPrefix(s, "fd[") || !ok {
		return errors.New("expected fd[N]:KEY, as fd[3]:socket:[12345]")
	}
	fd, err := strconv.ParseInt(num, 10, 32)
	if errors.Is(err, strconv.ErrRange) || err == nil && fd < 0 {
		return fmt.Errorf("descriptor %s out of range (0 to %d)", num, math.MaxInt32)
	}
	if err != nil {
		return fmt.Errorf("descriptor %q is not a whole number", num)
	}
	if key == "" {
		return errors.New("the key after fd[N]: is empty")
	}
	// The descriptor must be one ckpt was started with; the library would refuse it only
	// after an --import had unpacked its archive.
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0); errno != 0 {
		return fmt.Errorf("descriptor %d is not open", fd)
	}
	*v = append(*v, ckpt.InheritFd{Key: key, Fd: int(fd)})
	return nil
}
