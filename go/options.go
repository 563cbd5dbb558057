package ckpt

import (
	"strconv"
	"strings"
	"time"
)

// Options holds every setting of a checkpoint, restore or other operation. The zero value is
// ready to use and means "CRIU's and runc's defaults": a field left at its zero value is not
// sent to CRIU at all. Fields named like runc's libcontainer CriuOpts mean what they mean
// there; the others follow the library's C setters (see include/ckpt.h).
//
// An Options value is only read by the operations, which copy what they need into a fresh
// library handle for each call: one Options may serve many goroutines at once as long as
// nobody modifies it meanwhile.
type Options struct {
	// CriuPath is the criu binary: a path, or a name looked up in PATH. Default "criu".
	CriuPath string

	// ImagesDirectory holds the image files (runc --image-path). Required for Checkpoint
	// and Restore; created 0700 when missing on checkpoint, must exist on restore.
	ImagesDirectory string
	// WorkDirectory holds CRIU's log and work files (runc --work-path); created 0700 when
	// missing. Default: the images directory.
	WorkDirectory string
	// ParentImage names the images of a previous pre-dump, relative to and inside the
	// images directory (runc --parent-path). Needs memory tracking in the kernel.
	ParentImage string

	LeaveRunning            bool // keep the tree running after the dump (runc --leave-running)
	LeaveStopped            bool // leave the tree stopped after the dump
	TcpEstablished          bool // dump and restore established TCP connections (runc --tcp-established)
	TcpSkipInFlight         bool // skip in-flight TCP connections (runc --tcp-skip-in-flight)
	TcpClose                bool // restore TCP connections closed (runc restore --tcp-close)
	LinkRemap               bool // allow link remaps of deleted-but-open files (runc --link-remap)
	ExternalUnixConnections bool // allow external unix sockets (runc --ext-unix-sk)
	ShellJob                bool // allow a tree attached to a shell's session and terminal (runc --shell-job)
	FileLocks               bool // dump and restore file locks (runc --file-locks); a container restore whose images hold locks sets it unless in ExplicitFalse
	PreDump                 bool // make Checkpoint a single pre-dump (runc --pre-dump); needs memory tracking
	TrackMem                bool // have CRIU track memory changes for a later incremental dump
	AutoDedup               bool // deduplicate pages against the parent images (runc --auto-dedup)
	LazyPages               bool // dump or restore with lazy pages over the page server (runc --lazy-pages)
	EvasiveDevices          bool // let CRIU use any path to a device file when the original is gone
	ForceIrmap              bool // force resolving inotify and fsnotify watch names
	AutoExtMnt              bool // treat mounts from outside the mount namespace as external
	ExtSharing              bool // allow external mounts' sharing groups
	ExtMasters              bool // allow external mounts' master groups
	WeakSysctls             bool // skip sysctls this kernel lacks on restore
	OrphanPtsMaster         bool // have CRIU pass the master of an orphaned pty back on restore
	ManageCgroups           bool // the old boolean form of ManageCgroupsMode
	MntnsCompatMode         bool // restore mount namespaces in CRIU's compatibility mode
	SkipFileRwxCheck        bool // skip checking file permissions on restore
	Unprivileged            bool // run CRIU unprivileged (CAP_CHECKPOINT_RESTORE)
	DisplayStats            bool // have CRIU print its statistics to its log
	LogToStderr             bool // have CRIU log to its standard error instead of a log file; the error's LogExcerpt quotes it
	TLS                     bool // encrypt page-server traffic with TLS
	TLSNoCNVerify           bool // do not verify the TLS peer's common name

	// PageServer is where pages go on checkpoint (runc --page-server), or where a page
	// server or the lazy-pages daemon listens or connects. Unset when both fields are zero.
	PageServer CriuPageServerInfo
	// VethPairs are veth pairs to restore (CRIU deprecates them in favour of External).
	VethPairs []VethPairName
	// ManageCgroupsMode is runc's --manage-cgroups-mode: soft, full, strict or ignore.
	ManageCgroupsMode CgroupsMode
	// EmptyNs lists namespaces left empty on restore (runc --empty-ns); only "network".
	EmptyNs []string
	// StatusFd, when not 0, is a descriptor open for writing (not 0, 1 or 2) that receives
	// one "\0" byte when CRIU reports status-ready (runc --status-fd): a lazy-pages dump
	// whose page server listens. The caller keeps its descriptor: the library writes to and
	// closes a duplicate.
	StatusFd int
	// LsmProfile is the LSM profile as TYPE:NAME for restore (runc --lsm-profile).
	LsmProfile string
	// LsmMountContext is the SELinux mount context for restored mounts (runc --lsm-mount-context).
	LsmMountContext string

	// PidFile receives the restored root's pid, written atomically (runc --pid-file).
	PidFile string
	// ConsoleSocket is a unix socket that receives the master of the restored tree's pty,
	// as runc --console-socket does. Images without a terminal whose master was outside the
	// tree send none: Restore then succeeds without connecting to it. The path must be a
	// unix socket when the restore starts (ErrNotFound, ErrInvalidArgument before criu
	// otherwise). A container restore refuses it (ErrInvalidArgument) when config.json's
	// process.terminal is not true. ckpt keeps its own copy of the master until Restore
	// returns: a peer that closes the master at once hangs the terminal up (SIGHUP to the
	// restored processes) only once the tree runs, never while CRIU builds it. ckpt connects
	// when CRIU hands the master over, not before CRIU starts as runc does: a socket file
	// nobody listens on any more fails the restore only then (ErrIO), once CRIU built the
	// tree, which is killed (Error.Outcome RestoredKilled, Error.Pid).
	ConsoleSocket string

	// ContainerStatus is the container's state as the runtime sees it; a checkpoint of a
	// created or stopped container is refused, and a pid that is gone or a zombie counts as
	// stopped.
	ContainerStatus ContainerState
	// NetworkLock selects how CRIU locks the network.
	NetworkLock NetworkLockMethod
	// PreDumpMode selects how a pre-dump reads memory.
	PreDumpMode PreDumpMode

	Root            string // the tree's root directory (CRIU --root)
	FreezeCgroup    string // the freezer cgroup to freeze the tree with
	ConfigFile      string // a CRIU configuration file for this request; CRIU ignores one that does not exist (runc names /etc/criu/runc.conf whether or not it exists)
	ServiceAddress  string // a running `criu service` socket to use instead of spawning criu
	LogFile         string // CRIU's log file name in the work directory, without '/'
	CgroupProps     string // cgroup properties to restore (CRIU --cgroup-props)
	CgroupPropsFile string // a file of cgroup properties (CRIU --cgroup-props-file)
	CgroupYard      string // a prepared cgroup yard directory (CRIU --cgroup-yard)
	TLSCACert       string // the TLS CA certificate file
	TLSCACRL        string // the TLS certificate revocation list file
	TLSCert         string // the TLS certificate file
	TLSKey          string // the TLS private key file

	External              []string      // resources marked external, in CRIU's --external syntax
	CgroupDumpControllers []string      // dump only these cgroup controllers
	SkipMounts            []string      // mount points not to dump
	EnableFs              []string      // file system types whose mounts' contents are dumped
	IrmapScanPaths        []string      // where to look for inotify watch targets
	ExecCmd               []string      // the command CRIU execs after restore, word by word
	ExtMounts             []ExtMount    // external mount maps
	CgroupRoots           []CgroupRoot  // cgroup roots for restore
	UnixSocketInodes      []uint32      // external unix sockets by inode (deprecated by CRIU); turns ExternalUnixConnections on unless set
	JoinNs                []JoinNs      // namespaces to join on restore
	InheritFds            []InheritFd   // the caller's descriptors given to the restored tree
	PidfdStoreSk          int           // an AF_UNIX SOCK_DGRAM socket where CRIU keeps pidfds across pre-dumps; 0 for none; the caller keeps its own
	LogLevel              *int          // CRIU's log verbosity 0..4; nil keeps the default 4
	GhostLimit            *uint32       // the largest ghost file CRIU may store, in bytes
	CPUCap                *uint32       // CPU capabilities CRIU checks on restore (CRIU's mask)
	CriuTimeout           time.Duration // CRIU's own freeze timeout, rounded up to seconds
	Timeout               time.Duration // how long to wait for CRIU before killing it; 0 waits for ever
	RestoreWait           time.Duration // restore: how long to wait, before CRIU starts, for pids a zombie or dying process still holds; 0 does not wait
	Notify                Notifications // called for each of CRIU's notifications; nil ignores them

	// ExplicitFalse lists yes/no options to send to CRIU as false. A yes/no field left false
	// is not sent at all, so CRIU's default applies, or what a CRIU configuration file
	// (ConfigFile, CRIU's own default file, runc.conf) says: list the option here to override
	// a configuration file that sets it true. An option both true and listed is refused
	// (ErrInvalidArgument).
	ExplicitFalse []Flag
}

// Flag names one yes/no option of Options, for ExplicitFalse. Its value is the field's name.
type Flag string

// The yes/no options, one per bool field of Options.
const (
	FlagLeaveRunning            Flag = "LeaveRunning"
	FlagLeaveStopped            Flag = "LeaveStopped"
	FlagTcpEstablished          Flag = "TcpEstablished"
	FlagTcpSkipInFlight         Flag = "TcpSkipInFlight"
	FlagTcpClose                Flag = "TcpClose"
	FlagLinkRemap               Flag = "LinkRemap"
	FlagExternalUnixConnections Flag = "ExternalUnixConnections"
	FlagShellJob                Flag = "ShellJob"
	FlagFileLocks               Flag = "FileLocks"
	FlagPreDump                 Flag = "PreDump"
	FlagTrackMem                Flag = "TrackMem"
	FlagAutoDedup               Flag = "AutoDedup"
	FlagLazyPages               Flag = "LazyPages"
	FlagEvasiveDevices          Flag = "EvasiveDevices"
	FlagForceIrmap              Flag = "ForceIrmap"
	FlagAutoExtMnt              Flag = "AutoExtMnt"
	FlagExtSharing              Flag = "ExtSharing"
	FlagExtMasters              Flag = "ExtMasters"
	FlagWeakSysctls             Flag = "WeakSysctls"
	FlagOrphanPtsMaster         Flag = "OrphanPtsMaster"
	FlagManageCgroups           Flag = "ManageCgroups"
	FlagMntnsCompatMode         Flag = "MntnsCompatMode"
	FlagSkipFileRwxCheck        Flag = "SkipFileRwxCheck"
	FlagUnprivileged            Flag = "Unprivileged"
	FlagDisplayStats            Flag = "DisplayStats"
	FlagLogToStderr             Flag = "LogToStderr"
	FlagTLS                     Flag = "TLS"
	FlagTLSNoCNVerify           Flag = "TLSNoCNVerify"
)

// CriuPageServerInfo is a page server's address and port, as in runc.
type CriuPageServerInfo struct {
	Address string // a host name, an IPv4 address, or an IPv6 address (with or without brackets)
	Port    int32  // 1..65535
}

// String formats the page server as the library takes it: ADDRESS:PORT, IPv6 in brackets.
func (p CriuPageServerInfo) String() string {
	a := p.Address
	if strings.Contains(a, ":") && !strings.HasPrefix(a, "[") {
		a = "[" + a + "]"
	}
	return a + ":" + strconv.Itoa(int(p.Port))
}

func (p CriuPageServerInfo) isSet() bool { return p.Address != "" || p.Port != 0 }

// VethPairName names a veth pair, as in runc: the end inside the tree and the one outside.
type VethPairName struct {
	ContainerInterfaceName string
	HostInterfaceName      string
}

// ExtMount maps an external mount. On checkpoint Key is the mount point inside the tree and
// Value the name recorded; on restore Key is that name and Value the source path to mount.
type ExtMount struct {
	Key   string
	Value string
}

// CgroupRoot sets the cgroup root of one controller on restore; Ctrl "" means all.
type CgroupRoot struct {
	Ctrl string
	Path string
}

// JoinNs makes the restored tree join an existing namespace instead of creating one.
type JoinNs struct {
	Ns       string // net, pid, mnt, ipc, uts, user or cgroup
	NsFile   string // its /proc/PID/ns/... path
	ExtraOpt string // optional
}

// InheritFd gives the restored tree the caller's descriptor Fd where the images name Key
// (CRIU --inherit-fd, e.g. "pipe:[12345]"). The caller keeps its descriptor.
type InheritFd struct {
	Key string
	Fd  int
}

// CgroupsMode is runc's --manage-cgroups-mode.
type CgroupsMode string

// The cgroup modes runc offers.
const (
	CgroupsSoft   CgroupsMode = "soft"
	CgroupsFull   CgroupsMode = "full"
	CgroupsStrict CgroupsMode = "strict"
	CgroupsIgnore CgroupsMode = "ignore"
)

// NetworkLockMethod is how CRIU locks the network during a dump.
type NetworkLockMethod string

// The network lock methods.
const (
	NetworkLockIptables NetworkLockMethod = "iptables"
	NetworkLockNftables NetworkLockMethod = "nftables"
	NetworkLockSkip     NetworkLockMethod = "skip"
)

// ContainerState is a container's state as the runtime sees it.
type ContainerState string

// The container states.
const (
	StateCreated ContainerState = "created"
	StateRunning ContainerState = "running"
	StatePaused  ContainerState = "paused"
	StateStopped ContainerState = "stopped"
)

// PreDumpMode is how a pre-dump reads the tree's memory.
type PreDumpMode string

// The pre-dump modes.
const (
	PreDumpSplice PreDumpMode = "splice"
	PreDumpRead   PreDumpMode = "read"
)
