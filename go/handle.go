package ckpt

/*
#cgo pkg-config: ckpt
#include <stdint.h>
#include <stdlib.h>
#include <ckpt.h>

// Defined in notify.go (//export ckptGoNotify).
extern int ckptGoNotify(uintptr_t handle, ckpt_notification *n);

// The library passes userdata back untouched: here it is a cgo.Handle, an integer, so no Go
// pointer ever reaches C.
static int ckpt_go_trampoline(void *userdata, const ckpt_notification *n) {
	return ckptGoNotify((uintptr_t)userdata, (ckpt_notification *)n);
}

static ckpt_status ckpt_go_set_notify(ckpt_opts *o, uintptr_t handle) {
	return ckpt_opts_set_notify(o, ckpt_go_trampoline, (void *)handle);
}

// Defined in notify.go (//export ckptGoPredump).
extern int32_t ckptGoPredump(uintptr_t handle, uint32_t round, ckpt_stats *stats);

static int32_t ckpt_go_predump_trampoline(void *userdata, uint32_t round, const ckpt_stats *stats) {
	return ckptGoPredump((uintptr_t)userdata, round, (ckpt_stats *)stats);
}

static ckpt_status ckpt_go_checkpoint_iterative(const ckpt_opts *o, int32_t pid, uint32_t max_rounds,
		uintptr_t handle, ckpt_stats **stats, ckpt_error **err) {
	return ckpt_checkpoint_iterative(o, pid, max_rounds, handle ? ckpt_go_predump_trampoline : NULL,
		(void *)handle, stats, err);
}
*/
import "C"

import (
	"time"
	"unsafe"
)

// handle is one library options handle, built from an Options for a single call and freed
// when the call returns; nothing in it outlives the call.
type handle struct {
	p    *C.ckpt_opts
	strs []*C.char // C copies of the strings, freed with the handle
}

// newHandle copies o into a fresh library handle, validating every value the way the C
// setters do. The caller frees it with free.
func newHandle(o *Options) (*handle, error) {
	if o == nil {
		o = &Options{}
	}
	p := C.ckpt_opts_new()
	if p == nil {
		return nil, newError(ErrIO, "ckpt_opts_new: out of memory")
	}
	h := &handle{p: p}
	if err := h.apply(o); err != nil {
		h.free()
		return nil, err
	}
	return h, nil
}

func (h *handle) free() {
	C.ckpt_opts_free(h.p)
	for _, s := range h.strs {
		C.free(unsafe.Pointer(s))
	}
	h.p, h.strs = nil, nil
}

// check turns a setter's status into an error carrying the library's reason.
func (h *handle) check(st C.ckpt_status) error {
	if st == 0 {
		return nil
	}
	msg := Code(st).Error()
	if m := C.ckpt_opts_last_error(h.p); m != nil {
		msg = goTerms.Replace(C.GoString(m))
	}
	return &Error{Code: Code(st), Message: msg}
}

// cstr copies s to C memory. A Go string may hold a NUL byte, which C would silently cut
// short; it is refused as the library refuses it. Bytes that are not UTF-8 are left to the
// library: paths take them (Linux paths are bytes), text CRIU reads as text refuses them.
func (h *handle) cstr(what, s string) (*C.char, error) {
	if err := noNUL(what, s); err != nil {
		return nil, err
	}
	c := C.CString(s)
	h.strs = append(h.strs, c)
	return c, nil
}

// setters for each kind of value; a zero Go value means "not set" and calls nothing.
type (
	boolSetter func(*C.ckpt_opts, C.bool) C.ckpt_status
	strSetter  func(*C.ckpt_opts, *C.char) C.ckpt_status
)

func (h *handle) str(what, v string, set strSetter) error {
	if v == "" {
		return nil
	}
	c, err := h.cstr(what, v)
	if err != nil {
		return err
	}
	return h.check(set(h.p, c))
}

func (h *handle) list(what string, vs []string, add strSetter) error {
	for _, v := range vs {
		c, err := h.cstr(what, v)
		if err != nil {
			return err
		}
		if err := h.check(add(h.p, c)); err != nil {
			return err
		}
	}
	return nil
}

// boolOptions is every yes/no option, once: its Flag (the Options field's name), how to read
// the field, and the C setter. A new yes/no option is one line here, its field and its Flag.
var boolOptions = []struct {
	flag  Flag
	field func(*Options) bool
	set   boolSetter
}{
	{FlagLeaveRunning, func(o *Options) bool { return o.LeaveRunning }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_leave_running(p, b) }},
	{FlagLeaveStopped, func(o *Options) bool { return o.LeaveStopped }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_leave_stopped(p, b) }},
	{FlagTcpEstablished, func(o *Options) bool { return o.TcpEstablished }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_tcp_established(p, b) }},
	{FlagTcpSkipInFlight, func(o *Options) bool { return o.TcpSkipInFlight }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_tcp_skip_in_flight(p, b) }},
	{FlagTcpClose, func(o *Options) bool { return o.TcpClose }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_tcp_close(p, b) }},
	{FlagLinkRemap, func(o *Options) bool { return o.LinkRemap }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_link_remap(p, b) }},
	{FlagExternalUnixConnections, func(o *Options) bool { return o.ExternalUnixConnections }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_ext_unix_sk(p, b) }},
	{FlagShellJob, func(o *Options) bool { return o.ShellJob }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_shell_job(p, b) }},
	{FlagLazyPages, func(o *Options) bool { return o.LazyPages }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_lazy_pages(p, b) }},
	{FlagFileLocks, func(o *Options) bool { return o.FileLocks }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_file_locks(p, b) }},
	{FlagPreDump, func(o *Options) bool { return o.PreDump }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_pre_dump(p, b) }},
	{FlagTrackMem, func(o *Options) bool { return o.TrackMem }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_track_mem(p, b) }},
	{FlagAutoDedup, func(o *Options) bool { return o.AutoDedup }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_auto_dedup(p, b) }},
	{FlagEvasiveDevices, func(o *Options) bool { return o.EvasiveDevices }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_evasive_devices(p, b) }},
	{FlagForceIrmap, func(o *Options) bool { return o.ForceIrmap }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_force_irmap(p, b) }},
	{FlagAutoExtMnt, func(o *Options) bool { return o.AutoExtMnt }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_auto_ext_mnt(p, b) }},
	{FlagExtSharing, func(o *Options) bool { return o.ExtSharing }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_ext_sharing(p, b) }},
	{FlagExtMasters, func(o *Options) bool { return o.ExtMasters }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_ext_masters(p, b) }},
	{FlagWeakSysctls, func(o *Options) bool { return o.WeakSysctls }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_weak_sysctls(p, b) }},
	{FlagOrphanPtsMaster, func(o *Options) bool { return o.OrphanPtsMaster }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_orphan_pts_master(p, b) }},
	{FlagManageCgroups, func(o *Options) bool { return o.ManageCgroups }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_manage_cgroups(p, b) }},
	{FlagMntnsCompatMode, func(o *Options) bool { return o.MntnsCompatMode }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_mntns_compat_mode(p, b) }},
	{FlagSkipFileRwxCheck, func(o *Options) bool { return o.SkipFileRwxCheck }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_skip_file_rwx_check(p, b) }},
	{FlagUnprivileged, func(o *Options) bool { return o.Unprivileged }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_unprivileged(p, b) }},
	{FlagDisplayStats, func(o *Options) bool { return o.DisplayStats }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_display_stats(p, b) }},
	{FlagLogToStderr, func(o *Options) bool { return o.LogToStderr }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_log_to_stderr(p, b) }},
	{FlagTLS, func(o *Options) bool { return o.TLS }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_tls(p, b) }},
	{FlagTLSNoCNVerify, func(o *Options) bool { return o.TLSNoCNVerify }, func(p *C.ckpt_opts, b C.bool) C.ckpt_status { return C.ckpt_opts_set_tls_no_cn_verify(p, b) }},
}

func (h *handle) apply(o *Options) error {
	if err := h.applyBools(o); err != nil {
		return err
	}

	var pageServer string
	if o.PageServer.isSet() {
		pageServer = o.PageServer.String()
	}
	strs := []struct {
		what string
		v    string
		set  strSetter
	}{
		{"criu path", o.CriuPath, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_criu_path(p, s) }},
		{"image path", o.ImagesDirectory, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_image_path(p, s) }},
		{"work path", o.WorkDirectory, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_work_path(p, s) }},
		{"parent path", o.ParentImage, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_parent_path(p, s) }},
		{"page-server", pageServer, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_page_server(p, s) }},
		{"manage-cgroups-mode", string(o.ManageCgroupsMode), func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_manage_cgroups_mode(p, s) }},
		{"lsm-profile", o.LsmProfile, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_lsm_profile(p, s) }},
		{"lsm-mount-context", o.LsmMountContext, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_lsm_mount_context(p, s) }},
		{"pid file", o.PidFile, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_pid_file(p, s) }},
		{"console socket", o.ConsoleSocket, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_console_socket(p, s) }},
		{"container status", string(o.ContainerStatus), func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_container_status(p, s) }},
		{"network lock", string(o.NetworkLock), func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_network_lock(p, s) }},
		{"pre-dump mode", string(o.PreDumpMode), func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_pre_dump_mode(p, s) }},
		{"root", o.Root, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_root(p, s) }},
		{"freeze cgroup", o.FreezeCgroup, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_freeze_cgroup(p, s) }},
		{"config file", o.ConfigFile, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_config_file(p, s) }},
		{"service address", o.ServiceAddress, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_service_address(p, s) }},
		{"log file", o.LogFile, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_log_file(p, s) }},
		{"cgroup props", o.CgroupProps, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_cgroup_props(p, s) }},
		{"cgroup props file", o.CgroupPropsFile, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_cgroup_props_file(p, s) }},
		{"cgroup yard", o.CgroupYard, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_cgroup_yard(p, s) }},
		{"TLS CA certificate", o.TLSCACert, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_tls_cacert(p, s) }},
		{"TLS CRL", o.TLSCACRL, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_tls_cacrl(p, s) }},
		{"TLS certificate", o.TLSCert, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_tls_cert(p, s) }},
		{"TLS key", o.TLSKey, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_set_tls_key(p, s) }},
	}
	for _, s := range strs {
		if err := h.str(s.what, s.v, s.set); err != nil {
			return err
		}
	}

	lists := []struct {
		what string
		vs   []string
		add  strSetter
	}{
		{"empty-ns", o.EmptyNs, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_add_empty_ns(p, s) }},
		{"external", o.External, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_add_external(p, s) }},
		{"cgroup dump controller", o.CgroupDumpControllers, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_add_cgroup_dump_controller(p, s) }},
		{"skip mount", o.SkipMounts, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_add_skip_mount(p, s) }},
		{"enable fs", o.EnableFs, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_add_enable_fs(p, s) }},
		{"irmap scan path", o.IrmapScanPaths, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_add_irmap_scan_path(p, s) }},
		{"exec cmd", o.ExecCmd, func(p *C.ckpt_opts, s *C.char) C.ckpt_status { return C.ckpt_opts_add_exec_cmd(p, s) }},
	}
	for _, l := range lists {
		if err := h.list(l.what, l.vs, l.add); err != nil {
			return err
		}
	}

	return h.applyStructured(o)
}

// applyBools sends each yes/no option that is true, or listed in o.ExplicitFalse (as false);
// the others are left out of the request, so CRIU's default or its config file decides.
func (h *handle) applyBools(o *Options) error {
	falses := make(map[Flag]bool, len(o.ExplicitFalse))
	for _, f := range o.ExplicitFalse {
		if !knownFlag(f) {
			return newError(ErrInvalidArgument, "ExplicitFalse names %q, which is not a yes/no option", string(f))
		}
		falses[f] = true
	}
	for _, b := range boolOptions {
		v := b.field(o)
		if v && falses[b.flag] {
			return newError(ErrInvalidArgument, "%s is true and also listed in ExplicitFalse", string(b.flag))
		}
		if v || falses[b.flag] {
			if err := h.check(b.set(h.p, C.bool(v))); err != nil {
				return err
			}
		}
	}
	return nil
}

func knownFlag(f Flag) bool {
	for _, b := range boolOptions {
		if b.flag == f {
			return true
		}
	}
	return false
}

// applyStructured sets the options that are numbers, pairs or descriptors.
func (h *handle) applyStructured(o *Options) error {
	p := h.p
	if o.LogLevel != nil {
		if err := h.check(C.ckpt_opts_set_log_level(p, C.int32_t(clampInt32(*o.LogLevel)))); err != nil {
			return err
		}
	}
	if o.GhostLimit != nil {
		if err := h.check(C.ckpt_opts_set_ghost_limit(p, C.uint32_t(*o.GhostLimit))); err != nil {
			return err
		}
	}
	if o.CPUCap != nil {
		if err := h.check(C.ckpt_opts_set_cpu_cap(p, C.uint32_t(*o.CPUCap))); err != nil {
			return err
		}
	}
	if o.CriuTimeout != 0 {
		secs, err := durationUnits(o.CriuTimeout, time.Second, "CriuTimeout")
		if err != nil {
			return err
		}
		if err := h.check(C.ckpt_opts_set_criu_timeout(p, C.uint32_t(secs))); err != nil {
			return err
		}
	}
	if o.Timeout != 0 {
		ms, err := durationUnits(o.Timeout, time.Millisecond, "Timeout")
		if err != nil {
			return err
		}
		if err := h.check(C.ckpt_opts_set_timeout_ms(p, C.uint32_t(ms))); err != nil {
			return err
		}
	}
	if o.RestoreWait != 0 {
		ms, err := durationUnits(o.RestoreWait, time.Millisecond, "RestoreWait")
		if err != nil {
			return err
		}
		if err := h.check(C.ckpt_opts_set_restore_wait_ms(p, C.uint32_t(ms))); err != nil {
			return err
		}
	}
	if o.StatusFd != 0 {
		// The library checks the descriptor and duplicates it; the caller keeps its own.
		if err := h.check(C.ckpt_opts_set_status_fd_dup(p, C.int(clampInt32(o.StatusFd)))); err != nil {
			return err
		}
	}
	if o.PidfdStoreSk != 0 {
		// The library duplicates the socket; the caller keeps its own.
		if err := h.check(C.ckpt_opts_set_pidfd_store_sk(p, C.int(clampInt32(o.PidfdStoreSk)))); err != nil {
			return err
		}
	}
	for _, m := range o.ExtMounts {
		k, err := h.cstr("external mount key", m.Key)
		if err != nil {
			return err
		}
		v, err := h.cstr("external mount value", m.Value)
		if err != nil {
			return err
		}
		if err := h.check(C.ckpt_opts_add_ext_mount(p, k, v)); err != nil {
			return err
		}
	}
	for _, r := range o.CgroupRoots {
		var ctrl *C.char
		if r.Ctrl != "" {
			c, err := h.cstr("cgroup root controller", r.Ctrl)
			if err != nil {
				return err
			}
			ctrl = c
		}
		path, err := h.cstr("cgroup root path", r.Path)
		if err != nil {
			return err
		}
		if err := h.check(C.ckpt_opts_add_cgroup_root(p, ctrl, path)); err != nil {
			return err
		}
	}
	for _, v := range o.VethPairs {
		in, err := h.cstr("veth pair inside name", v.ContainerInterfaceName)
		if err != nil {
			return err
		}
		out, err := h.cstr("veth pair outside name", v.HostInterfaceName)
		if err != nil {
			return err
		}
		if err := h.check(C.ckpt_opts_add_veth_pair(p, in, out)); err != nil {
			return err
		}
	}
	for _, ino := range o.UnixSocketInodes {
		if err := h.check(C.ckpt_opts_add_unix_sk_ino(p, C.uint32_t(ino))); err != nil {
			return err
		}
	}
	for _, j := range o.JoinNs {
		ns, err := h.cstr("join-ns namespace", j.Ns)
		if err != nil {
			return err
		}
		file, err := h.cstr("join-ns file", j.NsFile)
		if err != nil {
			return err
		}
		var extra *C.char
		if j.ExtraOpt != "" {
			if extra, err = h.cstr("join-ns extra option", j.ExtraOpt); err != nil {
				return err
			}
		}
		if err := h.check(C.ckpt_opts_add_join_ns(p, ns, file, extra)); err != nil {
			return err
		}
	}
	for _, f := range o.InheritFds {
		k, err := h.cstr("inherit-fd key", f.Key)
		if err != nil {
			return err
		}
		// The library duplicates the descriptor; the caller keeps its own.
		if err := h.check(C.ckpt_opts_add_inherit_fd(p, k, C.int(clampInt32(f.Fd)))); err != nil {
			return err
		}
	}
	return nil
}

// setNotify points the handle's callback at the call state behind handle value hv.
func (h *handle) setNotify(hv uintptr) error {
	return h.check(C.ckpt_go_set_notify(h.p, C.uintptr_t(hv)))
}

// checkpointIterative calls the library with the C wrapper above, which lives in this file.
func checkpointIterative(p *C.ckpt_opts, pid C.int32_t, maxRounds C.uint32_t, hv uintptr,
	stats **C.ckpt_stats, e **C.ckpt_error) C.ckpt_status {
	return C.ckpt_go_checkpoint_iterative(p, pid, maxRounds, C.uintptr_t(hv), stats, e)
}

// durationUnits converts d to a whole number of units, rounding up, within uint32.
func durationUnits(d, unit time.Duration, what string) (uint32, error) {
	if d < 0 {
		return 0, newError(ErrInvalidArgument, "%s %v is negative", what, d)
	}
	n := (d + unit - 1) / unit
	if n > 1<<32-1 {
		return 0, newError(ErrInvalidArgument, "%s %v is too long", what, d)
	}
	return uint32(n), nil
}

// clampInt32 keeps out-of-range ints out of range after conversion, so the library refuses
// them instead of seeing a truncated, possibly valid, number.
func clampInt32(v int) int32 {
	switch {
	case v > 1<<31-1:
		return 1<<31 - 1
	case v < -1<<31:
		return -1 << 31
	}
	return int32(v)
}

// CheckStatusFd reports whether fd would be accepted as Options.StatusFd (a command can then
// refuse a bad --status-fd, including 0, before anything runs). The library decides, with its
// own message.
func CheckStatusFd(fd int) error {
	h, err := newHandle(nil)
	if err != nil {
		return err
	}
	defer h.free()
	return h.check(C.ckpt_opts_set_status_fd_dup(h.p, C.int(clampInt32(fd))))
}
