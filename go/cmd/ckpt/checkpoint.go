package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	ckpt "ckpt.dev/go/ckpt"
)

// dumpFlags are checkpoint's flags, in runc's order.
type dumpFlags struct {
	imagePath, workPath, parentPath, pageServer, cgroupsMode *string
	leaveRunning, tcpEstablished, tcpSkipInFlight, linkRemap *bool
	extUnixSk, shellJob, lazyPages, fileLocks, preDump       *bool
	autoDedup                                                *bool
	ctr                                                      *containerFlags
	statusFd                                                 *int
	emptyNs                                                  *[]string
	extUnixSkIno                                             *[]uint32
	out                                                      *outputFlags
	archive                                                  *archiveFlags
}

var dumpF dumpFlags

var checkpointCmd = &command{
	name:     "checkpoint",
	summary:  "checkpoint a running process tree",
	minArgs:  0,
	maxArgs:  1,
	argsName: "pid or container id",
	flags: func(fs *flagSet) {
		f := &dumpF
		f.imagePath = fs.String("image-path", "checkpoint", "PATH",
			"Set the directory for the image files; it is created (mode 0700) when missing. The default is ./checkpoint.")
		f.workPath = fs.String("work-path", "", "PATH",
			"Set the directory for CRIU's log (dump.log) and work files. The default is the image directory.")
		f.parentPath = fs.String("parent-path", "", "PATH",
			"Set the images of a previous pre-dump, as a path relative to the image directory and inside it: "+
				"only the memory changed since is written. Needs memory change tracking in the kernel.")
		f.leaveRunning = fs.Bool("leave-running",
			"Leave the process tree running after checkpointing. Without it the tree is killed once its images are written.")
		f.tcpEstablished = fs.Bool("tcp-established", "Allow open TCP connections, and checkpoint them.")
		f.tcpSkipInFlight = fs.Bool("tcp-skip-in-flight",
			"Skip TCP connections still being established (in flight) instead of failing on them.")
		f.linkRemap = fs.Bool("link-remap", "Allow CRIU to link-remap files that are open but deleted.")
		f.extUnixSk = fs.Bool("ext-unix-sk", "Allow unix sockets connected to a peer outside the tree.")
		f.extUnixSkIno = fs.InodeList("ext-unix-sk-ino", "INODE", extUnixSkInoText+
			" Without it CRIU dumps only the datagram sockets of --ext-unix-sk, and refuses a stream socket "+
			"connected outside the tree (\"Can't dump half of stream unix connection\"); the restore then needs a "+
			"new connection for it, given with restore --inherit-fd fd[N]:socket:[INODE].")
		f.shellJob = fs.Bool("shell-job",
			"Allow a tree that shares its session and terminal with a shell, such as a job started from an interactive shell.")
		f.lazyPages = fs.Bool("lazy-pages",
			"Keep the memory and serve it on demand from the page server at --page-server, to a lazy restore on "+
				"the other side. The tree stays frozen until every page has been fetched. Needs userfaultfd.")
		f.statusFd = fs.Int("status-fd", -1, "FD",
			"Write one \\0 byte to descriptor FD once the lazy-pages page server listens, then close it. "+
				"FD must be open for writing and not 0, 1 or 2.")
		f.pageServer = fs.String("page-server", "", "ADDRESS:PORT",
			"Send the memory pages to the page server at ADDRESS:PORT instead of the image directory (with "+
				"--lazy-pages: serve them there). An IPv6 address goes in brackets, as [::1]:27277; the port is 1 to 65535.")
		f.fileLocks = fs.Bool("file-locks", "Handle file locks held by the tree.")
		f.preDump = fs.Bool("pre-dump",
			"Only dump the memory, leaving the tree running: a first pass for a later checkpoint with --parent-path. "+
				"Needs memory change tracking in the kernel.")
		f.cgroupsMode = fs.String("manage-cgroups-mode", "", "MODE",
			"Set how CRIU handles the tree's cgroups: soft, full, strict or ignore. CRIU's default is soft.")
		f.emptyNs = fs.List("empty-ns", "NAMESPACE",
			"Do not checkpoint the contents of this namespace; the runtime sets it up again on restore. "+
				"Only network is accepted. May be given more than once.")
		f.autoDedup = fs.Bool("auto-dedup", "Free the pages of the parent images that this dump writes again.")
		f.ctr = containerOptions(fs, false)
		f.out = outputOptions(fs, "checkpoint")
		f.archive = exportFlags(fs)
	},
	manual: checkpointManual,
	run:    runCheckpoint,
}

func checkpointManual(fs *flagSet) string {
	return manual("ckpt checkpoint", "checkpoint a running process tree",
		"ckpt checkpoint [option ...] pid\n"+
			"   ckpt checkpoint [option ...] --bundle DIR --pid PID\n"+
			"   ckpt checkpoint [option ...] --runtime runc|crun [--runtime-root DIR] ID",
		`The checkpoint command saves the state of the process tree rooted at pid, with the help of criu(8),
to be restored later by ckpt restore. It does for any process tree what runc checkpoint does for a
container, with the same options and defaults.

The tree must not share its session with processes outside it (use setsid(1) to start it, or
--shell-job). In a shell with job control (an interactive one), setsid forks when started as a
background job, and $! is then the pid of the setsid that exited at once: let the tree write its
own pid, as in the example. Without --leave-running the tree is killed once its images are written; a parent that
started it still has to reap it.

A yes/no option given as --option=false is sent to CRIU as false, overriding a CRIU configuration
file; left out, it is not sent. SIGINT or SIGTERM while criu works stops it and the checkpoint
fails; with --leave-running the tree runs on.

Values are checked before criu starts; a bad one is reported in one line. When CRIU fails, the lines
of its log that explain why are printed, with the path of the whole log.`,
		fs,
		exitStatusSection("0 when the tree was checkpointed"),
		`EXAMPLES
   setsid -f sh -c 'echo $$ >/tmp/app.pid; while :; do date; sleep 1; done' >/tmp/log 2>&1 </dev/null
   sleep 1
   ckpt checkpoint --image-path /tmp/img --stats $(cat /tmp/app.pid)

SEE ALSO
   ckpt(8), ckpt-restore(8), criu(8), runc-checkpoint(8)
`)
}

func runCheckpoint(c *context) int {
	f := &dumpF
	if err := f.ctr.check(c.fs, c.args); err != nil {
		return usageError(c.stderr, "ckpt checkpoint", err)
	}
	pid := *f.ctr.pid
	if !f.ctr.active() {
		if len(c.args) != 1 {
			return usageError(c.stderr, "ckpt checkpoint", errors.New("missing pid"))
		}
		var err error
		if pid, err = parsePid(c.args[0]); err != nil {
			return usageError(c.stderr, "ckpt checkpoint", err)
		}
	}
	o, err := commonOptions(c, *f.imagePath, *f.workPath, *f.cgroupsMode, *f.emptyNs)
	if err != nil {
		return fail(c.stderr, "ckpt checkpoint", err)
	}
	o.ParentImage = *f.parentPath
	o.LeaveRunning = *f.leaveRunning
	o.TcpEstablished = *f.tcpEstablished
	o.TcpSkipInFlight = *f.tcpSkipInFlight
	o.LinkRemap = *f.linkRemap
	o.ExternalUnixConnections = *f.extUnixSk
	o.ShellJob = *f.shellJob
	o.LazyPages = *f.lazyPages
	o.FileLocks = *f.fileLocks
	o.PreDump = *f.preDump
	o.AutoDedup = *f.autoDedup
	o.UnixSocketInodes = *f.extUnixSkIno
	o.ExplicitFalse = explicitFalse(c.fs)
	if err := checkInodes(o); err != nil {
		return usageError(c.stderr, "ckpt checkpoint", err)
	}
	if c.fs.isSet("page-server") {
		ps, err := ckpt.ParsePageServer(*f.pageServer)
		if err != nil {
			return fail(c.stderr, "ckpt checkpoint", err)
		}
		o.PageServer = ps
	}
	if c.fs.isSet("status-fd") {
		if err := ckpt.CheckStatusFd(*f.statusFd); err != nil {
			return fail(c.stderr, "ckpt checkpoint", err)
		}
		o.StatusFd = *f.statusFd
		// The library writes to and closes its own duplicate; closing ours too, once the
		// byte is written, lets a reader waiting for end of file go on, as with runc.
		o.Notify = statusCloser{fd: *f.statusFd}
	}
	if err := f.out.check(); err != nil {
		return fail(c.stderr, "ckpt checkpoint", err)
	}
	a := f.archive
	if *a.file == "" {
		// Without --export these would be dropped without a word (restore refuses its
		// --import flags the same way).
		for _, n := range []string{"name", "compression", "image", "image-id", "config-json", "spec"} {
			if c.fs.isSet(n) {
				return usageError(c.stderr, "ckpt checkpoint", fmt.Errorf("--%s goes with --export: it is a value of the archive", n))
			}
		}
	}
	var specPath string
	if *a.file != "" {
		if *a.spec != "" {
			specPath, err = absolute(*a.spec)
		} else if !f.ctr.active() {
			// A container's own config.json is read by the library from its bundle.
			// Read before the checkpoint: without --leave-running the tree is gone after it.
			specPath, err = processSpec(pid)
			if err == nil {
				defer os.Remove(specPath)
			}
		}
		if err != nil {
			return fail(c.stderr, "ckpt checkpoint", err)
		}
		// The archive's values and place are checked before the checkpoint: without
		// --leave-running the tree is gone once it is taken.
		if err := checkExport(a, specPath); err != nil {
			return fail(c.stderr, "ckpt checkpoint --export", err)
		}
	}
	start := time.Now()
	var st *ckpt.DumpStats
	ctx, stop := interruptible()
	defer stop()
	var ct *ckpt.Container
	if f.ctr.active() {
		if ct, err = f.ctr.container(c.args, false); err != nil {
			return fail(c.stderr, "ckpt checkpoint", err)
		}
		if *f.ctr.explain {
			js, err := ckpt.ExplainContainer(ct, o, false)
			if err != nil {
				return fail(c.stderr, "ckpt checkpoint", err)
			}
			return printExplain(c.stdout, js)
		}
		if ct.Runtime != "" {
			pid = runtimeInitPid(ct.Runtime, ct.RuntimeRoot, ct.ID)
		}
		st, err = ckpt.CheckpointContainerContext(ctx, ct, o)
	} else {
		st, err = ckpt.CheckpointContext(ctx, pid, o)
	}
	stop()
	c.debugf("pid %d, image path %s, criu log %s, %v", pid, o.ImagesDirectory, logOf(o, "dump.log", err), time.Since(start).Round(time.Millisecond))
	if err != nil {
		return fail(c.stderr, "ckpt checkpoint", err)
	}
	if *a.file != "" {
		tmpSpec := ""
		if *a.spec == "" && !f.ctr.active() {
			tmpSpec = specPath
		}
		done := onSignal(func() { removeExportLeftovers(*a.file, tmpSpec) })
		ao := &ckpt.ArchiveOptions{
			Name: *a.name, Compression: *a.compression, SpecPath: specPath, WorkPath: o.WorkDirectory,
			ImageName: *a.image, ImageID: *a.imageID, ConfigJSON: *a.configJSON,
		}
		if ct != nil {
			if ct.Runtime != "" {
				ao.Runtime, ao.ID = ct.Runtime, ct.ID
				if ao.Name == "" {
					ao.Name = ct.ID
				}
			}
			err = ckpt.ExportContainerArchive(ct, o.ImagesDirectory, *a.file, ao)
		} else {
			err = ckpt.ExportArchive(o.ImagesDirectory, *a.file, ao)
		}
		done()
		if err != nil {
			return fail(c.stderr, "ckpt checkpoint --export", afterCheckpoint(err, o))
		}
	}
	if f.out.wanted() {
		f.out.printDump(c.stdout, pid, o, st)
	}
	return exitOK
}

// checkExport refuses export values the library would refuse, a --spec the export would
// refuse, and an archive path the export would refuse or whose directory does not exist,
// before anything is done.
func checkExport(a *archiveFlags, specPath string) error {
	ao := &ckpt.ArchiveOptions{Name: *a.name, Compression: *a.compression, ImageName: *a.image,
		ImageID: *a.imageID, ConfigJSON: *a.configJSON}
	if err := ao.Check(); err != nil {
		return err
	}
	if *a.spec != "" {
		if err := checkSpec(specPath); err != nil {
			return err
		}
	}
	file, err := absolute(*a.file)
	if err != nil {
		return err
	}
	// The library's own check of the path the export will write (its directory exists; the
	// archive, renamed into place, would replace anything there that is not a regular file).
	if err := ckpt.CheckArchivePath(file); err != nil {
		return err
	}
	return checkCreatable(filepath.Dir(file), "."+filepath.Base(file))
}

// checkCreatable makes and removes a file in dir, whose name starts with prefix: a directory
// that exists but takes no new file (a read-only mount, /proc, no write permission) was found
// only when the export created its partial file, after the checkpoint had killed the tree.
func checkCreatable(dir, prefix string) error {
	f, err := os.CreateTemp(dir, prefix+".ckpt-probe-*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot create the archive in %s: %v", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// afterCheckpoint adds to the error of an export that failed what the checkpoint before it
// did: without --leave-running the tree is gone, and its images are the way back.
func afterCheckpoint(err error, o *ckpt.Options) error {
	note := fmt.Sprintf("; the checkpoint was taken, its images are in %s", o.ImagesDirectory)
	if !o.LeaveRunning {
		note += " (the tree was killed)"
	}
	var e *ckpt.Error
	if errors.As(err, &e) {
		c := *e
		c.Message += note
		return &c
	}
	return fmt.Errorf("%w%s", err, note)
}

// logOf names CRIU's log of an operation: the one the error names, else the default name in the
// work directory.
func logOf(o *ckpt.Options, name string, err error) string {
	var e *ckpt.Error
	if errors.As(err, &e) && e.LogPath != "" {
		return e.LogPath
	}
	dir := o.WorkDirectory
	if dir == "" {
		dir = o.ImagesDirectory
	}
	return filepath.Join(dir, name)
}

// statusCloser closes the command's copy of the status fd once CRIU is ready.
type statusCloser struct {
	ckpt.NoNotifications
	fd int
}

func (s statusCloser) StatusReady() error { return syscall.Close(s.fd) }

// extUnixSkInoText starts the manual's text of --ext-unix-sk-ino, the same for checkpoint
// and restore.
const extUnixSkInoText = "Let the unix socket of the tree whose inode is INODE (the number in the socket:[INODE] " +
	"that /proc/PID/fd shows) be connected to a peer outside the tree, as CRIU's --ext-unix-sk INODE; turns " +
	"--ext-unix-sk on. May be given more than once."

// checkInodes refuses --ext-unix-sk-ino with --ext-unix-sk=false: CRIU reads the inodes only
// when ext_unix_sk is on, so they would be dropped without a word.
func checkInodes(o *ckpt.Options) error {
	if len(o.UnixSocketInodes) == 0 {
		return nil
	}
	for _, f := range o.ExplicitFalse {
		if f == ckpt.FlagExternalUnixConnections {
			return errors.New("--ext-unix-sk-ino needs --ext-unix-sk on: CRIU reads the inodes only with it, and --ext-unix-sk=false turns it off")
		}
	}
	return nil
}

// commonOptions fills what checkpoint and restore share.
func commonOptions(c *context, imagePath, workPath, cgroupsMode string, emptyNs []string) (*ckpt.Options, error) {
	o := &ckpt.Options{CriuPath: c.criu, EmptyNs: emptyNs}
	// Absolute paths make CRIU's log path in messages usable from anywhere.
	var err error
	if o.ImagesDirectory, err = absolute(imagePath); err != nil {
		return nil, err
	}
	if o.WorkDirectory, err = absolute(workPath); err != nil {
		return nil, err
	}
	o.ManageCgroupsMode = ckpt.CgroupsMode(cgroupsMode)
	return o, nil
}

func absolute(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	return filepath.Abs(p)
}

func parsePid(s string) (int, error) {
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 || pid > math.MaxInt32 {
		return 0, fmt.Errorf("invalid pid %q: expected the positive process id of the tree's root", s)
	}
	return pid, nil
}

func exitStatusSection(ok string) string {
	return "EXIT STATUS\n" + wrap(ok+"; 1 when the command line is malformed, a value was refused or the "+
		"operation failed, as with runc.", "   ", 80)
}
