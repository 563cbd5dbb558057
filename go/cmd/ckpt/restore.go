package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	ckpt "ckpt.dev/go/ckpt"
)

type restoreFlags struct {
	imagePath, workPath, cgroupsMode, pidFile, consoleSocket *string
	lsmProfile, lsmMountContext                              *string
	tcpEstablished, tcpClose, extUnixSk, shellJob, fileLocks *bool
	detach, autoDedup, lazyPages                             *bool
	waitPids                                                 *string
	emptyNs                                                  *[]string
	extUnixSkIno                                             *[]uint32
	inheritFds                                               *[]ckpt.InheritFd
	ctr                                                      *containerFlags
	out                                                      *outputFlags
	archive                                                  *archiveFlags
}

var restoreF restoreFlags

var restoreCmd = &command{
	name:     "restore",
	summary:  "restore a process tree from a previous checkpoint",
	minArgs:  0,
	maxArgs:  0,
	argsName: "arguments",
	flags: func(fs *flagSet) {
		f := &restoreF
		f.imagePath = fs.String("image-path", "checkpoint", "PATH",
			"Set the directory of the image files to restore from. The default is ./checkpoint.")
		f.workPath = fs.String("work-path", "", "PATH",
			"Set the directory for CRIU's log (restore.log) and work files. The default is the image directory.")
		f.tcpEstablished = fs.Bool("tcp-established", "Allow open TCP connections, and restore them.")
		f.tcpClose = fs.Bool("tcp-close", "Restore the tree's TCP connections closed instead of established.")
		f.extUnixSk = fs.Bool("ext-unix-sk", "Allow unix sockets connected to a peer outside the tree.")
		f.extUnixSkIno = fs.InodeList("ext-unix-sk-ino", "INODE", extUnixSkInoText)
		f.inheritFds = fs.InheritList("inherit-fd", "fd[N]:KEY",
			"Give the restored tree ckpt's own open descriptor N where its images name KEY, as CRIU's "+
				"--inherit-fd: socket:[INODE] for a unix socket checkpointed with --ext-unix-sk-ino INODE (N is then a "+
				"new connection to its peer), pipe:[INODE] for a pipe, or another key CRIU's --inherit-fd takes. ckpt keeps N, which must be "+
				"open when ckpt starts; a malformed value, an empty KEY or an N that is not open is refused before "+
				"anything is done. May be given more than once.")
		f.shellJob = fs.Bool("shell-job",
			"Allow a tree that was checkpointed as a shell job; it is restored into this command's session and terminal.")
		f.fileLocks = fs.Bool("file-locks", "Handle file locks, restoring those the tree held.")
		f.cgroupsMode = fs.String("manage-cgroups-mode", "", "MODE",
			"Set how CRIU handles the tree's cgroups: soft, full, strict or ignore. CRIU's default is soft.")
		f.detach = fs.BoolShort("detach", "d",
			"Detach from the restored tree: exit once it runs, leaving it to init. Without it ckpt waits for the "+
				"tree's root to exit, passes it the signals ckpt receives, and exits with its status.")
		f.pidFile = fs.String("pid-file", "", "PATH",
			"Write the restored root's process id to this file (atomically, once it is known).")
		f.consoleSocket = fs.String("console-socket", "", "PATH",
			"Send the master side of the restored tree's terminal to the unix socket at PATH, as runc does "+
				"(SCM_RIGHTS); needed for a tree checkpointed with a terminal of its own. The socket must exist when "+
				"the restore starts: a missing path, or one that is not a socket, is refused before criu runs.")
		f.emptyNs = fs.List("empty-ns", "NAMESPACE",
			"Create this namespace empty instead of restoring its contents; only network is accepted. "+
				"May be given more than once.")
		f.autoDedup = fs.Bool("auto-dedup", "Free the pages of the images as they are restored.")
		f.lazyPages = fs.Bool("lazy-pages",
			"Restore the memory lazily, on demand, from a running criu lazy-pages daemon. Needs userfaultfd.")
		f.lsmProfile = fs.String("lsm-profile", "", "TYPE:NAME",
			"Restore the tree under this LSM profile, as apparmor:NAME or selinux:LABEL, instead of the one it had.")
		f.lsmMountContext = fs.String("lsm-mount-context", "", "CONTEXT",
			"Use this SELinux context for the mounts the restore creates.")
		f.waitPids = fs.String("wait-pids", "5s", "DURATION",
			"When a pid the images need is still held by the checkpointed tree's zombies (a checkpoint without "+
				"--leave-running just before), wait up to DURATION for it to be freed before CRIU starts. "+
				"0 fails at once with \"pid in use\", as runc does.")
		f.ctr = containerOptions(fs, true)
		f.out = outputOptions(fs, "restore")
		f.archive = importFlags(fs)
	},
	manual: restoreManual,
	run:    runRestore,
}

func restoreManual(fs *flagSet) string {
	return manual("ckpt restore", "restore a process tree from a previous checkpoint",
		"ckpt restore [option ...]\n"+
			"   ckpt restore [option ...] --bundle DIR\n"+
			"   ckpt restore [option ...] --import FILE [--rootfs DIR | --rootfs-image DIR]",
		`The restore command brings back a process tree saved by ckpt checkpoint, with the help of criu(8).
It does for any process tree what runc restore does for a container, with the same options and
defaults.

The restored tree keeps its process ids, which must be free, and becomes a child of ckpt. Without
--detach ckpt stays in the foreground like runc restore: it passes the signals it receives (INT,
TERM, HUP, QUIT, USR1, USR2, WINCH) to the tree's root and exits with the root's exit status, or 128
plus the signal number that killed it. With --detach it exits at once and the tree carries on,
adopted by init. SIGINT or SIGTERM while criu restores stops it and the restore fails; a tree
it had already created is killed, and its pid reported.

A container checkpointed while paused comes back paused when the restore makes its cgroups (as
after the runtime's delete): it runs, and the signals ckpt passes it take effect, once its v1
freezer cgroup is set THAWED.

A yes/no option given as --option=false is sent to CRIU as false, overriding a CRIU configuration
file; left out, it is not sent.

Values are checked before criu starts; a bad one is reported in one line. When CRIU fails, the lines
of its log that explain why are printed, with the path of the whole log.`,
		fs,
		exitStatusSection("0 when the tree was restored with --detach, else the restored root's exit status"),
		`EXAMPLES
   ckpt restore --image-path /tmp/img --detach --pid-file /tmp/app.pid

SEE ALSO
   ckpt(8), ckpt-checkpoint(8), criu(8), runc-restore(8)
`)
}

// forwarded are the signals a foreground restore passes on to the tree's root.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

func runRestore(c *context) int {
	f := &restoreF
	// --import with --rootfs or --rootfs-image restores a container too: --keep-network
	// applies to it.
	a := f.archive
	f.ctr.importsContainer = *a.file != "" && (*a.rootfs != "" || *a.rootfsImage != "")
	if err := f.ctr.check(c.fs, c.args); err != nil {
		return usageError(c.stderr, "ckpt restore", err)
	}
	o, err := commonOptions(c, *f.imagePath, *f.workPath, *f.cgroupsMode, *f.emptyNs)
	if err != nil {
		return fail(c.stderr, "ckpt restore", err)
	}
	o.UnixSocketInodes = *f.extUnixSkIno
	o.InheritFds = *f.inheritFds
	o.ExplicitFalse = explicitFalse(c.fs)
	if err := checkInodes(o); err != nil {
		return usageError(c.stderr, "ckpt restore", err)
	}
	asContainer := *a.rootfs != "" || *a.rootfsImage != ""
	var ns map[string]string
	if *a.file != "" {
		if *a.rootfs != "" && *a.rootfsImage != "" {
			return usageError(c.stderr, "ckpt restore", fmt.Errorf("--rootfs and --rootfs-image exclude each other"))
		}
		if asContainer && f.ctr.active() {
			return usageError(c.stderr, "ckpt restore", fmt.Errorf("--import with --rootfs makes its own bundle (--import-dir): --bundle does not go with it"))
		}
		if len(*a.namespaces) > 0 && !asContainer {
			return usageError(c.stderr, "ckpt restore", fmt.Errorf("--namespace goes with --rootfs or --rootfs-image"))
		}
		if ns, err = namespaceMap(*a.namespaces); err != nil {
			return usageError(c.stderr, "ckpt restore", err)
		}
		if !asContainer {
			dir := *a.dir
			if dir == "" {
				dir = *a.file + ".d"
			}
			// Absolute, as --image-path is made: the report, --debug and CRIU's log path
			// name the images wherever the caller reads them from.
			if dir, err = absolute(dir); err != nil {
				return fail(c.stderr, "ckpt restore", err)
			}
			done := onSignal(importCleanup(dir))
			imp, err := ckpt.ImportArchive(*a.file, dir, &ckpt.ArchiveOptions{Name: *a.name})
			done()
			if err != nil {
				return fail(c.stderr, "ckpt restore --import", err)
			}
			// A --debug line: an unconditional "ckpt restore: ..." line would look like the
			// failure docs/command.md tells scripts to look for.
			c.debugf("imported %s (%s) into %s", imp.Name, imp.ID, imp.Dir)
			o.ImagesDirectory = imp.ImagesDir
		}
	} else if *a.name != "" || *a.dir != "" || asContainer || len(*a.namespaces) > 0 {
		return usageError(c.stderr, "ckpt restore", fmt.Errorf("--name, --import-dir, --rootfs, --rootfs-image and --namespace go with --import"))
	}
	o.TcpEstablished = *f.tcpEstablished
	o.TcpClose = *f.tcpClose
	o.ExternalUnixConnections = *f.extUnixSk
	o.ShellJob = *f.shellJob
	o.FileLocks = *f.fileLocks
	o.AutoDedup = *f.autoDedup
	o.LazyPages = *f.lazyPages
	o.PidFile = *f.pidFile
	o.ConsoleSocket = *f.consoleSocket
	o.LsmProfile = *f.lsmProfile
	o.LsmMountContext = *f.lsmMountContext
	if err := f.out.check(); err != nil {
		return fail(c.stderr, "ckpt restore", err)
	}
	wait, err := time.ParseDuration(*f.waitPids)
	if err != nil || wait < 0 {
		return fail(c.stderr, "ckpt restore", fmt.Errorf("invalid --wait-pids %q: expected a duration such as 5s or 0", *f.waitPids))
	}
	o.RestoreWait = wait

	ctx, stop := interruptible()
	defer stop()
	// Listen before the tree exists, so a signal that arrives while CRIU works is passed on
	// instead of killing ckpt and orphaning the tree (an INT or TERM also stops the restore
	// through ctx; it reaches the tree only when it came too late to stop it).
	var sigs chan os.Signal
	if !*f.detach {
		sigs = make(chan os.Signal, 8)
		signal.Notify(sigs, forwarded...)
		defer signal.Stop(sigs)
	}
	start := time.Now()
	var pid int
	var st *ckpt.RestoreStats
	if *a.file != "" && asContainer {
		dir := *a.dir
		if dir == "" {
			dir = *a.file + ".d"
		}
		if dir, err = absolute(dir); err != nil {
			return fail(c.stderr, "ckpt restore", err)
		}
		ao := &ckpt.ArchiveOptions{Name: *a.name, Namespaces: ns}
		if *a.rootfs != "" {
			ao.NewRootfs, err = absolute(*a.rootfs)
		} else {
			ao.RootfsImage, err = absolute(*a.rootfsImage)
		}
		if err != nil {
			return fail(c.stderr, "ckpt restore", err)
		}
		ct := &ckpt.Container{KeepNetwork: *f.ctr.keepNetwork, Stdio: standardFiles()}
		var imp *ckpt.Imported
		pid, st, imp, err = ckpt.RestoreArchiveContext(ctx, *a.file, dir, ao, ct, o)
		if err == nil {
			// The images restored are the archive's, unpacked into the bundle; --image-path
			// (left at its default) is not used.
			o.ImagesDirectory = imp.ImagesDir
			c.debugf("imported %s (%s) into %s", imp.Name, imp.ID, imp.Dir)
		}
	} else if f.ctr.active() {
		var ct *ckpt.Container
		if ct, err = f.ctr.container(c.args, true); err != nil {
			return fail(c.stderr, "ckpt restore", err)
		}
		if *f.ctr.explain {
			js, err := ckpt.ExplainContainer(ct, o, true)
			if err != nil {
				return fail(c.stderr, "ckpt restore", err)
			}
			return printExplain(c.stdout, js)
		}
		pid, st, err = ckpt.RestoreContainerContext(ctx, ct, o)
	} else {
		// The library refuses a container's images (external mounts without a mapping)
		// before CRIU starts.
		pid, st, err = ckpt.RestoreContext(ctx, o)
	}
	stop()
	c.debugf("pid %d, image path %s, criu log %s, %v", pid, o.ImagesDirectory, logOf(o, "restore.log", err), time.Since(start).Round(time.Millisecond))
	if err != nil {
		return fail(c.stderr, "ckpt restore", err)
	}
	if f.out.wanted() {
		f.out.printRestore(c.stdout, pid, o, st)
	}
	if *f.detach {
		return exitOK
	}
	go func() {
		for s := range sigs {
			_ = syscall.Kill(pid, s.(syscall.Signal))
		}
	}()
	code := waitExit(pid)
	if st != nil {
		// A container's (--bundle or --import); empty for a process tree.
		removeMadeCgroups(st.MadeCgroups)
	}
	return code
}

// waitExit waits for the restored root, our child, and turns its end into an exit status the
// way shells do.
func waitExit(pid int) int {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return exitFailure
		}
		break
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
