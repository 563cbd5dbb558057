/*
 * Cases whose return value and errno are compared between the real libcriu.so.2 4.1.1 and this
 * library (libcriu/tests/table.sh holds what each must print, and why they differ where they
 * do). Each case runs in a child process of its own with an alarm, so a crash or a hang of one
 * library in one case is reported as such and spoils nothing else. One line per case:
 *   CASE <name> <field>=<value> ...
 * usage: table [CASE...] (all by default)
 */
#include "harness.h"

#include <criu/criu.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

static char line[1024];

static void put(const char *fmt, ...)
{
	size_t n = strlen(line);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
}

/* -EBADE, -1, 0, or the number itself when positive. */
static const char *rname(int r)
{
	static char buf[4][64];
	static int i;
	char *b = buf[i++ % 4];
	const char *n = r < -1 ? strerrorname_np(-r) : NULL;
	if (n)
		snprintf(b, 64, "-%s", n);
	else
		snprintf(b, 64, "%d", r);
	return b;
}

static const char *ename(int e)
{
	const char *n = e ? strerrorname_np(e) : "0";
	return n ? n : "?";
}

static void ret_errno(int r, int e)
{
	put(" ret=%s errno=%s", rname(r), ename(e));
}

/* A counting child (dies with this case's process) and an images directory for it. */
struct work {
	char *dir, *counter;
	int dir_fd;
	pid_t pid;
};

static struct work workload(const char *name)
{
	struct work w;
	w.dir = scratch(name);
	w.counter = path_join(w.dir, "counter");
	w.pid = start_counter(w.counter);
	w.dir_fd = open_dir(w.dir);
	if (wait_counter(w.counter, 1, 5000) < 1)
		die("the workload does not count");
	return w;
}

static int still_counts(struct work *w)
{
	long v = read_counter(w->counter);
	return alive(w->pid) && wait_counter(w->counter, v, 3000) > v;
}

static void dump_opts(struct work *w, bool leave_running)
{
	criu_init_opts();
	criu_set_images_dir_fd(w->dir_fd);
	criu_set_pid(w->pid);
	criu_set_log_level(4);
	criu_set_leave_running(leave_running);
}

/* Dumps with the options set; prints the return, errno and whether w still counts. */
static void dump_and_report(struct work *w)
{
	errno = 0;
	int r = criu_dump();
	ret_errno(r, errno);
	put(" untouched=%d", still_counts(w));
}

/* ---- 1: a refused value is never dropped ------------------------------------------------ */

static void refused_log(const char *name)
{
	struct work w = workload("table-log");
	dump_opts(&w, false);
	int s = criu_set_log_file(name);
	put(" set=%s", rname(s));
	dump_and_report(&w);
}

static void case_log_slash(void) { refused_log("../file.log"); }
static void case_log_empty(void) { refused_log(""); }

/* A self-dump with a refused log name: the caller must come through it untouched. */
static void case_selfdump_refused(void)
{
	criu_init_opts();
	char *dir = scratch("table-self");
	criu_set_images_dir_fd(open_dir(dir));
	criu_set_shell_job(true);
	int s = criu_set_log_file("../file.log");
	errno = 0;
	int r = criu_dump(); /* no pid: this process */
	put(" set=%s", rname(s));
	ret_errno(r, errno);
	put(" survived=1");
}

static void case_cgmode_42(void)
{
	struct work w = workload("table-cgmode");
	dump_opts(&w, true);
	criu_set_manage_cgroups_mode(42);
	dump_and_report(&w);
}

/* ---- 2: bytes, not text ---------------------------------------------------------------- */

static void case_log_nonutf8(void)
{
	struct work w = workload("table-bytes");
	dump_opts(&w, true);
	int s = criu_set_log_file("caf\xe9.log");
	errno = 0;
	int r = criu_dump();
	put(" set=%s", rname(s));
	ret_errno(r, errno);
	char *log = path_join(w.dir, "caf\xe9.log");
	put(" log=%d", file_contains(log, "Dumping finished successfully"));
}

/* ---- 3: feature check ------------------------------------------------------------------ */

static void case_feature_null(void)
{
	criu_init_opts();
	errno = 0;
	int r = criu_feature_check(NULL, sizeof(struct criu_feature_check));
	ret_errno(r, errno);
}

static void case_feature_big(void)
{
	unsigned char big[16];
	memset(big, 1, sizeof(big));
	criu_init_opts();
	errno = 0;
	int r = criu_feature_check((struct criu_feature_check *)big, sizeof(big));
	int same = 1;
	for (size_t i = 0; i < sizeof(big); i++)
		same &= big[i] == 1;
	ret_errno(r, errno);
	put(" untouched=%d", same);
}

/* ---- 4: return values and errno ---------------------------------------------------------- */

static void case_missing_binary(void)
{
	criu_init_opts();
	criu_set_service_binary("/nonexistent/criu");
	errno = 0;
	int r = criu_get_version();
	ret_errno(r, errno);
}

static void case_service_fd_closed(void)
{
	int fd = 1000;
	close(fd);
	criu_init_opts();
	criu_set_service_fd(fd);
	errno = 0;
	int r = criu_get_version();
	ret_errno(r, errno);
}

static void case_network_lock_7(void)
{
	criu_opts *o = NULL;
	criu_local_init_opts(&o);
	put(" ret=%s", rname(criu_local_set_network_lock(o, 7)));
}

static void case_pre_dump_mode_9(void)
{
	criu_opts *o = NULL;
	criu_local_init_opts(&o);
	put(" ret=%s", rname(criu_local_set_pre_dump_mode(o, 9)));
}

static void case_inherit_closed(void)
{
	criu_opts *o = NULL;
	close(1001);
	criu_local_init_opts(&o);
	put(" ret=%s", rname(criu_local_add_inherit_fd(o, 1001, "k")));
}

static int abort_cb(char *action, criu_notify_arg_t na)
{
	(void)na;
	return strcmp(action, "pre-dump") ? 0 : -42;
}

static void case_notify_abort(void)
{
	struct work w = workload("table-abort");
	dump_opts(&w, true);
	criu_set_notify_cb(abort_cb);
	errno = 0;
	int r = criu_dump();
	put(" ret=%d errno=%s untouched=%d", r, ename(errno), still_counts(&w));
}

static void case_pre_dump_nomem(void)
{
	struct criu_feature_check f = { .mem_track = true };
	criu_init_opts();
	criu_feature_check(&f, sizeof(f));
	if (f.mem_track) {
		put(" skipped=this-kernel-tracks-memory");
		return;
	}
	struct work w = workload("table-predump");
	dump_opts(&w, true);
	criu_set_track_mem(true);
	errno = 0;
	int r = criu_pre_dump();
	ret_errno(r, errno);
	put(" untouched=%d", still_counts(&w));
}

static void case_sigchld_ignored(void)
{
	struct work w = workload("table-sigchld");
	signal(SIGCHLD, SIG_IGN);
	dump_opts(&w, true);
	dump_and_report(&w);
}

/* ---- 7: more of CRIU's behaviour -------------------------------------------------------- */

static int more_calls;
static int more(criu_predump_info pi)
{
	(void)pi;
	return ++more_calls < 2;
}

static void case_dump_iters(void)
{
	struct work w = workload("table-iters");
	dump_opts(&w, true);
	criu_set_log_file("iters.log");
	errno = 0;
	int r = criu_dump_iters(more);
	ret_errno(r, errno);
	put(" more_calls=%d untouched=%d", more_calls, still_counts(&w));
}

struct job {
	struct work w;
	const char *log;
	int ret;
};

static void *dump_local(void *arg)
{
	struct job *j = arg;
	criu_opts *o = NULL;
	criu_local_init_opts(&o);
	criu_local_set_images_dir_fd(o, j->w.dir_fd);
	criu_local_set_pid(o, j->w.pid);
	criu_local_set_leave_running(o, true);
	criu_local_set_log_level(o, 4);
	criu_local_set_log_file(o, j->log);
	j->ret = criu_local_dump(o);
	criu_local_free_opts(o);
	return NULL;
}

static void case_two_handles(void)
{
	struct job a = { workload("table-two-a"), "a.log", 1 }, b = { workload("table-two-b"), "b.log", 1 };
	pthread_t ta, tb;
	pthread_create(&ta, NULL, dump_local, &a);
	pthread_create(&tb, NULL, dump_local, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	put(" a=%s b=%s", rname(a.ret), rname(b.ret));
	put(" logs=%d", file_contains(path_join(a.w.dir, "a.log"), "Dumping finished") &&
				file_contains(path_join(b.w.dir, "b.log"), "Dumping finished"));
}

static int connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		die("connect %s", path);
	return fd;
}

static void case_service_fd_service(void)
{
	char *dir = scratch("table-svc"), *sock = path_join(dir, "criu.sock");
	char *pidf = path_join(dir, "pid"), cmd[4096];
	snprintf(cmd, sizeof(cmd), "criu service -d --address %s --pidfile %s -o %s/svc.log", sock,
		 pidf, dir);
	if (system(cmd) != 0)
		die("criu service did not start");
	struct work w = workload("table-svc-dump");
	criu_init_opts();
	criu_set_service_fd(connect_to(sock));
	int v = criu_get_version();
	put(" version=%s", v == cli_version() ? "criu's" : rname(v));
	dump_opts(&w, true);
	criu_set_log_file("svc-dump.log");
	criu_set_service_fd(connect_to(sock));
	dump_and_report(&w);
	long svc = read_counter(pidf);
	if (svc > 0)
		kill(svc, SIGTERM);
}

static char seen[1024];
static pid_t seen_for;
static int record(char *action, criu_notify_arg_t na)
{
	size_t n = strlen(seen);
	int pid = criu_notify_pid(na);
	snprintf(seen + n, sizeof(seen) - n, "%s%s%s", n ? "," : "", action,
		 pid == 0 ? "" : pid == seen_for ? ":pid" : ":other");
	return 0;
}

/* Dumps the workload without leave-running and waits for it to be gone; false (and the
 * dump's result put in the row) when the dump failed or the workload lived on. */
static bool killed_by_dump(struct work *w)
{
	dump_opts(w, false);
	int r = criu_dump();
	int st = wait_exit(w->pid, 5000);
	reap_orphans(300);
	if (r != 0 || st == -1) {
		put(" dump=%s", rname(r));
		kill(w->pid, SIGKILL);
		return false;
	}
	return true;
}

static void case_restore_child_notify(void)
{
	struct work w = workload("table-rchild");
	if (!killed_by_dump(&w))
		return;
	int r, st;
	criu_init_opts();
	criu_set_images_dir_fd(w.dir_fd);
	criu_set_log_file("restore.log");
	criu_set_log_level(4);
	seen_for = w.pid;
	criu_set_notify_cb(record);
	errno = 0;
	r = criu_restore_child();
	put(" ret=%s errno=%s child=%d", r == w.pid ? "pid" : rname(r), ename(errno),
	    r > 0 && waitpid(r, &st, WNOHANG) == 0);
	put(" counts=%d notified=%s", r > 0 && still_counts(&w), seen);
	if (r > 0)
		kill_wait(r);
}

/* ---- 8: exec_cmd: argc 0 is "no command"; CRIU accepts an empty argument --------------- */

static void exec_restore(const char *name, int argc, char **argv)
{
	struct work w = workload(name);
	if (!killed_by_dump(&w))
		return;
	int r;
	criu_init_opts();
	criu_set_images_dir_fd(w.dir_fd);
	criu_set_log_file("restore.log");
	criu_set_log_level(4);
	int s = criu_set_exec_cmd(argc, argv);
	errno = 0;
	r = criu_restore_child();
	put(" set=%s ret=%s errno=%s", rname(s), r == w.pid ? "pid" : rname(r), ename(errno));
	put(" counts=%d", r > 0 && still_counts(&w));
	if (r > 0)
		kill_wait(r);
}

static void case_exec_cmd_none(void)
{
	char *argv[] = { NULL };
	exec_restore("table-exec0", 0, argv);
}

/* A caller under nohup ignores SIGHUP; one that reads SIGTERM from a signalfd blocks it. Both
 * reach the caller's process group (a hangup, a kill of the job) while criu dumps: libcriu's
 * criu, which its caller forked and exec'd, ignores and blocks them as the caller does, and the
 * dump goes on. */
static int hup_and_term(char *action, criu_notify_arg_t na)
{
	(void)na;
	if (!strcmp(action, "pre-dump")) {
		kill(0, SIGHUP);
		kill(0, SIGTERM);
		sleep_ms(200);
	}
	return 0;
}

static void case_signals_kept(void)
{
	struct work w = workload("table-signals");
	sigset_t term;
	setpgid(0, 0); /* a group of its own: the table's runner must not get the signals */
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, NULL);
	dump_opts(&w, true);
	criu_set_notify_cb(hup_and_term);
	dump_and_report(&w);
}

/* The same caller ignoring SIGCHLD restores: libcriu's criu inherits the ignored SIGCHLD and
 * fails in its kernel probes (waitpid: ECHILD) before restoring anything. */
static void case_sigchld_ignored_restore_child(void)
{
	struct work w = workload("table-sigchld-rchild");
	if (!killed_by_dump(&w))
		return;
	signal(SIGCHLD, SIG_IGN);
	criu_init_opts();
	criu_set_images_dir_fd(w.dir_fd);
	criu_set_log_file("restore.log");
	criu_set_log_level(4);
	errno = 0;
	int r = criu_restore_child();
	put(" ret=%s errno=%s counts=%d", r == w.pid ? "pid" : rname(r), ename(errno),
	    r > 0 && still_counts(&w));
	if (r > 0)
		kill_wait(r);
}

static void case_exec_cmd_empty_arg(void)
{
	char *argv[] = { "", NULL };
	exec_restore("table-exec-empty", 1, argv);
}

/* ---- 9: empty strings CRIU accepts ------------------------------------------------------ */

/* Each setter given "" where CRIU 4.1.1 still dumps, then a leave-running dump; names the
 * setters whose dump failed. */
static void case_empty_accepted(void)
{
	struct work w = workload("table-empty");
	static const char *names[] = { "root", "lsm_mount_context", "enable_fs", "irmap_path",
				       "external", "ext_mount_val", "veth_in", "veth_out",
				       "cg_root_ctrl", "cg_root_path", "inherit_fd_key",
				       "cg_props", "cg_dump_controller", "cg_yard" };
	char failed[512] = "";
	int sets = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		criu_opts *o = NULL;
		criu_local_init_opts(&o);
		criu_local_set_images_dir_fd(o, w.dir_fd);
		criu_local_set_pid(o, w.pid);
		criu_local_set_leave_running(o, true);
		criu_local_set_log_file(o, "dump.log");
		int s;
		switch (i) {
		case 0: s = criu_local_set_root(o, ""); break;
		case 1: s = criu_local_set_lsm_mount_context(o, ""); break;
		case 2: s = criu_local_add_enable_fs(o, ""); break;
		case 3: s = criu_local_add_irmap_path(o, ""); break;
		case 4: s = criu_local_add_external(o, ""); break;
		case 5: s = criu_local_add_ext_mount(o, "x", ""); break;
		case 6: s = criu_local_add_veth_pair(o, "", "x"); break;
		case 7: s = criu_local_add_veth_pair(o, "x", ""); break;
		case 8: s = criu_local_add_cg_root(o, "", "/x"); break;
		case 9: s = criu_local_add_cg_root(o, NULL, ""); break;
		case 10: s = criu_local_add_inherit_fd(o, 0, ""); break;
		case 11: s = criu_local_add_cg_props(o, ""); break;
		case 12: s = criu_local_add_cg_dump_controller(o, ""); break;
		default: s = criu_local_add_cg_yard(o, ""); break;
		}
		sets += s == 0;
		if (criu_local_dump(o) != 0)
			snprintf(failed + strlen(failed), sizeof(failed) - strlen(failed), "%s%s",
				 *failed ? "," : "", names[i]);
		criu_local_free_opts(o);
	}
	put(" sets=%d dump_failed=%s untouched=%d", sets, *failed ? failed : "none",
	    still_counts(&w));
}

/* ---- 10: criu_restore whose callback fails after the tree is made ------------------------ */

static int fail_pre_resume(char *action, criu_notify_arg_t na)
{
	(void)na;
	return strcmp(action, "pre-resume") ? 0 : 7;
}

/* The restored tree is criu's child here, not this process's: it must outlive criu. */
static void case_restore_fails_late(void)
{
	struct work w;
	w.dir = scratch("table-rlate");
	w.counter = path_join(w.dir, "counter");
	w.pid = start_counter_ex(w.counter, 1);
	w.dir_fd = open_dir(w.dir);
	if (wait_counter(w.counter, 1, 5000) < 1)
		die("the workload does not count");
	if (!killed_by_dump(&w))
		return;
	int r;
	criu_init_opts();
	criu_set_images_dir_fd(w.dir_fd);
	criu_set_log_file("restore.log");
	criu_set_log_level(4);
	criu_set_notify_cb(fail_pre_resume);
	errno = 0;
	r = criu_restore();
	put(" ret=%s errno=%s", rname(r), ename(errno));
	put(" tree_runs=%d", still_counts(&w));
	kill(w.pid, SIGKILL);
	reap_orphans(300);
}

/* ---- 11: outside in: what libcriu's callers (crun, CRIU's own tests) meet ---------------- */

/* The descriptor table full: criu cannot be reached (libcriu: its socketpair fails). */
static void case_fd_full(void)
{
	struct rlimit old, low;
	int fds[256], n = 0, fd, r[3], e[3];
	char *dir = scratch("table-fdfull");
	criu_init_opts();
	criu_set_images_dir_fd(open_dir(dir));
	getrlimit(RLIMIT_NOFILE, &old);
	low = old;
	low.rlim_cur = 256;
	if (setrlimit(RLIMIT_NOFILE, &low))
		die("setrlimit");
	while (n < 256 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		fds[n++] = fd;
	errno = 0;
	r[0] = criu_get_version();
	e[0] = errno;
	errno = 0;
	r[1] = criu_check();
	e[1] = errno;
	errno = 0;
	r[2] = criu_restore_child();
	e[2] = errno;
	while (n > 0)
		close(fds[--n]);
	setrlimit(RLIMIT_NOFILE, &old);
	put(" version=%s/%s check=%s/%s restore_child=%s/%s", rname(r[0]), ename(e[0]),
	    rname(r[1]), ename(e[1]), rname(r[2]), ename(e[2]));
}

/* criu swrk started by the caller on a socketpair; the socket for criu_set_service_fd. */
static int own_swrk(void)
{
	pid_t pid;
	return own_swrk_pid(&pid);
}

/* The fd is consumed by the first operation; the second one has nothing to talk to. */
static void case_service_fd_twice(void)
{
	criu_init_opts();
	criu_set_service_fd(own_swrk());
	int v = criu_get_version();
	errno = 0;
	int r = criu_get_version();
	put(" first=%s", v == cli_version() ? "criu's" : rname(v));
	ret_errno(r, errno);
}

static void case_service_fd_negative(void)
{
	criu_init_opts();
	criu_set_service_fd(-1);
	errno = 0;
	int r = criu_get_version();
	ret_errno(r, errno);
}

/* criu.h's join_ns_add refuses a NULL namespace or file itself (-1) and stores nothing. */
static void case_join_ns_null(void)
{
	struct work w = workload("table-joinns");
	dump_opts(&w, true);
	int a = criu_join_ns_add(NULL, "/proc/self/ns/net", NULL);
	int b = criu_join_ns_add("net", NULL, NULL);
	put(" set=%s,%s", rname(a), rname(b));
	dump_and_report(&w);
}

static int positive_cb(char *action, criu_notify_arg_t na)
{
	(void)na;
	return strcmp(action, "pre-dump") ? 0 : 5;
}

/* A callback's positive value aborts too, and is what the operation returns. */
static void case_notify_positive(void)
{
	struct work w = workload("table-positive");
	dump_opts(&w, true);
	criu_set_notify_cb(positive_cb);
	errno = 0;
	int r = criu_dump();
	put(" ret=%d untouched=%d", r, still_counts(&w));
}

static void case_notify_null_cb(void)
{
	struct work w = workload("table-nullcb");
	dump_opts(&w, true);
	criu_set_notify_cb(NULL);
	dump_and_report(&w);
}

/* A callback that sets another callback (or none) during the operation: libcriu reads the
 * callback from the options at each notification, so the new one answers from then on. */
static char swap_seen[256];
static int swap_to;
static int swap_second(char *action, criu_notify_arg_t na)
{
	(void)na;
	snprintf(swap_seen + strlen(swap_seen), sizeof(swap_seen) - strlen(swap_seen), ",2:%s",
		 action);
	return 0;
}
static int swap_first(char *action, criu_notify_arg_t na)
{
	(void)na;
	snprintf(swap_seen + strlen(swap_seen), sizeof(swap_seen) - strlen(swap_seen), ",1:%s",
		 action);
	criu_set_notify_cb(swap_to ? swap_second : NULL);
	return 0;
}

static void case_notify_swap(void)
{
	struct work w = workload("table-swapcb");
	for (swap_to = 1; swap_to >= 0; swap_to--) {
		swap_seen[0] = 0;
		dump_opts(&w, true);
		criu_set_notify_cb(swap_first);
		int r = criu_dump();
		put(" %s=%s%s", swap_to ? "to_other" : "to_null", rname(r), swap_seen);
	}
}

static void case_binary_empty(void)
{
	criu_init_opts();
	int s = criu_set_service_binary("");
	errno = 0;
	int r = criu_get_version();
	put(" set=%s", rname(s));
	ret_errno(r, errno);
}

static void case_address_long(void)
{
	char path[200];
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = 0;
	criu_init_opts();
	int s = criu_set_service_address(path);
	errno = 0;
	int r = criu_get_version();
	put(" set=%s", rname(s));
	ret_errno(r, errno);
}

static void case_dump_iters_args(void)
{
	criu_init_opts();
	errno = 0;
	int a = criu_dump_iters(more); /* no pid: no self-dump in rounds */
	int ea = errno;
	criu_set_pid(getpid());
	errno = 0;
	int b = criu_dump_iters(NULL);
	put(" nopid=%s/%s nocb=%s/%s more_calls=%d", rname(a), ename(ea), rname(b), ename(errno),
	    more_calls);
}

static void case_irmap_null_opts(void)
{
	put(" ret=%s", rname(criu_local_add_irmap_path(NULL, "/x")));
}

static void case_versions(void)
{
	criu_opts *o = NULL;
	criu_init_opts();
	criu_local_init_opts(&o);
	int v = criu_get_version(), lv = criu_local_get_version(o);
	put(" version=%s local=%s", v == cli_version() ? "criu's" : rname(v), lv == v ? "same" : rname(lv));
	put(" at_least_it=%d,%d newer=%d,%d zero=%d", criu_check_version(v),
	    criu_local_check_version(o, v), criu_check_version(v + 1),
	    criu_local_check_version(o, v + 1), criu_check_version(0));
	criu_set_service_binary("/nonexistent/criu");
	errno = 0;
	int r = criu_check_version(0);
	put(" unreachable=%s", rname(r));
	criu_local_free_opts(o);
	criu_local_free_opts(NULL);
}

/* What `criu check --feature NAME` says: 1 when supported. */
static int cli_feature(const char *name)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "criu check --feature %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

/* All three features asked: each answer as `criu check --feature` gives it on this kernel;
 * none asked: all false. */
static void case_feature_all(void)
{
	struct criu_feature_check f = { .mem_track = true, .lazy_pages = true, .pidfd_store = true };
	struct criu_feature_check none = { 0 };
	criu_init_opts();
	errno = 0;
	int r = criu_feature_check(&f, sizeof(f));
	ret_errno(r, errno);
	int rn = criu_feature_check(&none, sizeof(none));
	put(" as_criu_check=%d%d%d none=%s/%d%d%d", f.mem_track == cli_feature("mem_dirty_track"),
	    f.lazy_pages == cli_feature("uffd-noncoop"), f.pidfd_store == cli_feature("pidfd_store"),
	    rname(rn), none.mem_track, none.lazy_pages, none.pidfd_store);
}

static void case_orphan_none(void)
{
	put(" fd=%d", criu_get_orphan_pts_master_fd());
}

/* CRIU takes the pidfd store socket (unnamed: it binds and connects it to itself) from the
 * caller with pidfd_getfd. */
static void case_pidfd_store(void)
{
	struct work w = workload("table-pidfd");
	int sk = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (sk < 0)
		die("socket");
	dump_opts(&w, true);
	criu_set_log_file("dump.log");
	criu_set_pidfd_store_sk(sk);
	dump_and_report(&w);
	criu_set_pidfd_store_sk(-1);
	criu_set_log_file("bad.log");
	errno = 0;
	int r = criu_dump();
	put(" bad_sk=%s/%s", rname(r), ename(errno));
}

/* criu_restore_child with a service socket set starts criu from PATH (swrk) all the same,
 * even when the address is one no socket can have (longer than sun_path). */
static void case_restore_child_service(void)
{
	struct work w = workload("table-rchild-svc");
	if (!killed_by_dump(&w))
		return;
	int r;
	char path[200];
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = 0;
	criu_init_opts();
	criu_set_images_dir_fd(w.dir_fd);
	criu_set_log_file("restore.log");
	int s = criu_set_service_address(path);
	errno = 0;
	r = criu_restore_child();
	put(" set=%s ret=%s errno=%s counts=%d", rname(s), r == w.pid ? "pid" : rname(r),
	    ename(errno), r > 0 && still_counts(&w));
	if (r > 0)
		kill_wait(r);
}

/* ---- 12: every setter on the wire, compared byte for byte ------------------------------ */

/* Exported by libcriu 4.1.1 (and this library) but missing from its criu.h. */
void criu_local_set_unprivileged(criu_opts *opts, bool unprivileged);

/* A peer on a socketpair that keeps the first request and answers "dump succeeded". */
struct wire {
	int sk;
	unsigned char req[8192];
	ssize_t len;
};

static void *wire_peer(void *arg)
{
	struct wire *w = arg;
	/* type DUMP, success, an empty dump answer (libcriu reads it) */
	static const unsigned char dump_ok[] = { 0x08, 1, 0x10, 1, 0x1a, 0 };
	w->len = recv(w->sk, w->req, sizeof(w->req), 0);
	if (send(w->sk, dump_ok, sizeof(dump_ok), 0) < 0)
		w->len = -1;
	close(w->sk);
	return NULL;
}

/* FNV-1a of the request, so a row can hold it. */
static unsigned long fnv(const unsigned char *b, ssize_t n)
{
	unsigned long h = 14695981039346656037UL;
	for (ssize_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211UL;
	return h;
}

static int nop_cb(char *action, criu_notify_arg_t na)
{
	(void)action;
	(void)na;
	return 0;
}

/* Every setter of criu.h that reaches CRIU's request (criu_set_timeout aside: libcriu never
 * sends it, see `ops timeout`), with values of its own, global or on a handle. */
#define ALL_SETTERS(P, O)                                                                   \
	do {                                                                                \
		char *argv[] = { "/bin/true", "x", NULL };                                  \
		P##set_pid(O 4242);                                                         \
		P##set_images_dir_fd(O 7);                                                  \
		P##set_work_dir_fd(O 8);                                                    \
		P##set_parent_images(O "../parent");                                        \
		P##set_track_mem(O true);                                                   \
		P##set_auto_dedup(O true);                                                  \
		P##set_force_irmap(O false);                                                \
		P##set_link_remap(O true);                                                  \
		P##set_leave_running(O true);                                               \
		P##set_ext_unix_sk(O true);                                                 \
		P##add_unix_sk(O 12345);                                                    \
		P##set_tcp_established(O true);                                             \
		P##set_tcp_skip_in_flight(O true);                                          \
		P##set_tcp_close(O false);                                                  \
		P##set_weak_sysctls(O true);                                                \
		P##set_evasive_devices(O true);                                             \
		P##set_shell_job(O true);                                                   \
		P##set_skip_file_rwx_check(O true);                                         \
		P##set_unprivileged(O false);                                               \
		P##set_orphan_pts_master(O true);                                           \
		P##set_file_locks(O true);                                                  \
		P##set_log_level(O 3);                                                      \
		P##set_log_file(O "wire.log");                                              \
		P##set_root(O "/root-dir");                                                 \
		P##set_manage_cgroups(O true);                                              \
		P##set_manage_cgroups_mode(O CRIU_CG_MODE_SOFT);                            \
		P##set_freeze_cgroup(O "/sys/fs/cgroup/f");                                 \
		P##set_lsm_profile(O "apparmor:p");                                         \
		P##set_lsm_mount_context(O "ctx");                                          \
		P##set_auto_ext_mnt(O true);                                                \
		P##set_ext_sharing(O true);                                                 \
		P##set_ext_masters(O false);                                                \
		P##set_cpu_cap(O 3);                                                        \
		P##set_exec_cmd(O 2, argv);                                                 \
		P##add_ext_mount(O "k1", "v1");                                             \
		P##add_cg_root(O "cpu", "/cg");                                             \
		P##add_cg_root(O NULL, "/all");                                             \
		P##add_veth_pair(O "in0", "out0");                                          \
		P##add_enable_fs(O "fuse");                                                 \
		P##add_skip_mnt(O "/skip");                                                 \
		P##add_irmap_path(O "/irmap");                                              \
		P##add_external(O "mnt[m]:n");                                              \
		P##set_page_server_address_port(O "10.0.0.1", 27000);                       \
		P##set_mntns_compat_mode(O true);                                           \
		P##set_ghost_limit(O 1 << 20);                                              \
		P##set_pidfd_store_sk(O 9);                                                 \
		P##set_network_lock(O CRIU_NETWORK_LOCK_SKIP);                              \
		P##join_ns_add(O "uts", "/proc/1/ns/uts", NULL);                            \
		P##join_ns_add(O "ipc", "/proc/1/ns/ipc", "extra");                         \
		P##set_pre_dump_mode(O CRIU_PRE_DUMP_READ);                                 \
		P##set_empty_ns(O CLONE_NEWNET);                                            \
		P##set_notify_cb(O nop_cb);                                                 \
	} while (0)

/* The handle as the first argument of the local setters. */
#define ON_HANDLE o,

static void wire_put(const char *what, struct wire *w, int r)
{
	put(" %s=%s/%zd/%016lx", what, rname(r), w->len, fnv(w->req, w->len));
	if (getenv("TABLE_WIRE_HEX")) {
		fprintf(stderr, "%s:", what);
		for (ssize_t i = 0; i < w->len; i++)
			fprintf(stderr, " %02x", w->req[i]);
		fprintf(stderr, "\n");
	}
}

static void case_wire_setters(void)
{
	int sk[2];
	pthread_t t;
	struct wire g = { 0 }, l = { 0 };

	criu_init_opts();
	ALL_SETTERS(criu_, );
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sk))
		die("socketpair");
	g.sk = sk[1];
	pthread_create(&t, NULL, wire_peer, &g);
	criu_set_service_fd(sk[0]);
	int rg = criu_dump();
	pthread_join(t, NULL);
	wire_put("global", &g, rg);

	criu_opts *o = NULL;
	criu_local_init_opts(&o);
	ALL_SETTERS(criu_local_, ON_HANDLE);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sk))
		die("socketpair");
	l.sk = sk[1];
	pthread_create(&t, NULL, wire_peer, &l);
	criu_local_set_service_fd(o, sk[0]);
	int rl = criu_local_dump(o);
	pthread_join(t, NULL);
	put(" local=%s", l.len == g.len && !memcmp(l.req, g.req, g.len) ? "same" : "differs");
	if (l.len != g.len || memcmp(l.req, g.req, g.len))
		wire_put("local", &l, rl);
	criu_local_free_opts(o);
}

/* A scripted peer: answers each request (or notification ack) with the next reply and keeps
 * everything it received, concatenated with a length byte before each message. */
struct script {
	int sk;
	const unsigned char *const *replies; /* each: length byte, then bytes; NULL ends */
	unsigned char got[8192];
	ssize_t len;
};

static void *script_peer(void *arg)
{
	struct script *p = arg;
	for (int i = 0; p->replies[i]; i++) {
		/* a reply that is a NOTIFY goes out before anything is read */
		const unsigned char *r = p->replies[i];
		int notify = r[0] >= 2 && r[1] == 0x08 && r[2] == 6;
		if (!notify) {
			ssize_t n = recv(p->sk, p->got + p->len + 1, sizeof(p->got) - p->len - 1, 0);
			if (n <= 0)
				break;
			p->got[p->len] = (unsigned char)n;
			p->len += n + 1;
		}
		if (send(p->sk, r + 1, r[0], 0) < 0)
			break;
		if (notify) {
			ssize_t n = recv(p->sk, p->got + p->len + 1, sizeof(p->got) - p->len - 1, 0);
			if (n <= 0)
				break;
			p->got[p->len] = (unsigned char)n;
			p->len += n + 1;
		}
	}
	close(p->sk);
	return NULL;
}

/* Runs `op` on the global options against the scripted peer; puts its result and what the
 * peer received (length and hash). */
static void scripted(const char *what, const unsigned char *const *replies, int (*op)(void))
{
	int sk[2];
	pthread_t t;
	struct script p = { .replies = replies };
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sk))
		die("socketpair");
	p.sk = sk[1];
	pthread_create(&t, NULL, script_peer, &p);
	criu_set_service_fd(sk[0]);
	int r = op();
	pthread_join(t, NULL);
	put(" %s=%s/%zd/%016lx", what, r > 0 ? "pos" : rname(r), p.len, fnv(p.got, p.len));
	if (getenv("TABLE_WIRE_HEX")) {
		fprintf(stderr, "%s:", what);
		for (ssize_t i = 0; i < p.len; i++)
			fprintf(stderr, " %02x", p.got[i]);
		fprintf(stderr, "\n");
	}
}

static int op_dump(void) { return criu_dump(); }
static int op_restore(void) { return criu_restore(); }
static int op_version(void) { return criu_get_version(); }
static int op_features(void)
{
	struct criu_feature_check f = { .mem_track = true, .pidfd_store = true };
	return criu_feature_check(&f, sizeof(f));
}
static int refuse_pre_dump(char *action, criu_notify_arg_t na)
{
	(void)na;
	return strcmp(action, "pre-dump") ? 0 : -3;
}

/* Requests, and acks of notifications, as each library writes them. */
static void case_wire_requests(void)
{
	/* CriuResp: type (1), success (2), dump (3), restore (4) {pid 1}, notify (5) {script 1,
	 * pid 2}, features (8) {mem_track 1, pidfd_store 3}, version (10) {major 1, minor 2} */
	static const unsigned char dump_ok[] = { 6, 0x08, 1, 0x10, 1, 0x1a, 0 },
				   restore_ok[] = { 8, 0x08, 2, 0x10, 1, 0x22, 2, 0x08, 77 },
				   version_ok[] = { 10, 0x08, 10, 0x10, 1, 0x52, 4, 0x08, 4, 0x10, 1 },
				   features_ok[] = { 10, 0x08, 9, 0x10, 1, 0x42, 4, 0x08, 0, 0x18, 1 },
				   pre_dump[] = { 18, 0x08, 6,	0x10, 1,   0x2a, 12,  0x0a, 8,
						  'p',	'r',  'e',	'-',  'd', 'u',	 'm',  'p', 0x10, 5 };
	const unsigned char *dump[] = { dump_ok, NULL }, *restore[] = { restore_ok, NULL },
			    *version[] = { version_ok, NULL }, *features[] = { features_ok, NULL },
			    *notified[] = { pre_dump, dump_ok, NULL };

	criu_init_opts();
	scripted("dump_defaults", dump, op_dump);
	criu_set_images_dir_fd(5);
	criu_set_log_file("v.log");
	scripted("version", version, op_version);
	scripted("features", features, op_features);
	criu_set_notify_cb(nop_cb); /* no pid: this library checks a pid before it connects */
	scripted("notify_ack", notified, op_dump);
	criu_set_notify_cb(refuse_pre_dump);
	scripted("notify_refused", notified, op_dump);
	criu_init_opts();
	criu_set_images_dir_fd(5);
	criu_set_log_file("r.log");
	scripted("restore", restore, op_restore);
}

/* ---- 13: criu_restore after criu_restore_child on the same options ---------------------- */

static int parent_at_post_restore = -1;

static int ppid_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	char *p = strrchr(buf, ')');
	int ppid = -1;
	if (p)
		sscanf(p + 2, "%*c %d", &ppid);
	return ppid;
}

static int note_parent(char *action, criu_notify_arg_t na)
{
	if (!strcmp(action, "post-restore"))
		parent_at_post_restore = ppid_of(criu_notify_pid(na)) == getpid();
	return 0;
}

/* libcriu's criu_restore_child sets rst_sibling in the caller's options and leaves it there:
 * a later criu_restore on them makes the tree the caller's child too. */
static void case_restore_after_child(void)
{
	struct work w = workload("table-rafter");
	if (!killed_by_dump(&w))
		return;
	criu_init_opts();
	criu_set_images_dir_fd(w.dir_fd);
	criu_set_log_file("restore.log");
	criu_set_notify_cb(note_parent);
	int r1 = criu_restore_child();
	int first = parent_at_post_restore;
	if (r1 > 0)
		kill_wait(r1);
	reap_orphans(300);
	parent_at_post_restore = -1;
	errno = 0;
	int r2 = criu_restore();
	put(" child=%s/%d restore=%s/%s callers_child=%d", r1 == w.pid ? "pid" : rname(r1), first,
	    r2 == w.pid ? "pid" : rname(r2), ename(errno), parent_at_post_restore);
	if (r2 > 0)
		kill(r2, SIGKILL);
	reap_orphans(300);
}

/* ---- 14: the service fd when an operation fails early ------------------------------------ */

static pid_t thread_tid;
static void *report_tid(void *arg)
{
	(void)arg;
	thread_tid = gettid();
	sleep_ms(3000);
	return NULL;
}

/* Whether the operation closed the service fd, and the caller's criu then exited. */
static void fd_fate(const char *what, int fd, pid_t criu, int r)
{
	int closed = fcntl(fd, F_GETFD) < 0;
	int exited = wait_exit(criu, closed ? 5000 : 0) != -1;
	put(" %s=%s/closed=%d/criu_exited=%d", what, r > 0 ? "pos" : rname(r), closed, exited);
	if (!closed) {
		close(fd);
		wait_exit(criu, 5000);
	}
}

/* libcriu connects before CRIU judges the request, so the fd is used and closed even when the
 * dump fails; its own argument checks (criu_dump_iters, criu_feature_check) come before it
 * connects, and the fd stays for the next operation. */
static void case_service_fd_early(void)
{
	pid_t criu;
	int fd, r;
	pthread_t t;

	pthread_create(&t, NULL, report_tid, NULL);
	while (!thread_tid)
		sleep_ms(5);
	criu_init_opts();
	fd = own_swrk_pid(&criu);
	criu_set_service_fd(fd);
	criu_set_pid(thread_tid); /* a thread, not a process */
	r = criu_dump();
	fd_fate("bad_pid", fd, criu, r);

	criu_init_opts();
	fd = own_swrk_pid(&criu);
	criu_set_service_fd(fd);
	criu_set_pid(getpid());
	criu_set_log_file("a/b.log"); /* CRIU refuses the request */
	r = criu_dump();
	fd_fate("refused_log", fd, criu, r);

	criu_init_opts();
	fd = own_swrk_pid(&criu);
	criu_set_service_fd(fd);
	int a = criu_dump_iters(NULL);
	int b = criu_feature_check(NULL, 0);
	int v = criu_get_version();
	put(" iters_args=%s feature_null=%s then_version=%s", rname(a), rname(b),
	    v == cli_version() ? "criu's" : rname(v));
	fd_fate("after", fd, criu, v);
	pthread_join(t, NULL);
}

static const struct {
	const char *name;
	void (*run)(void);
} cases[] = {
	{ "log_slash", case_log_slash },
	{ "log_empty", case_log_empty },
	{ "selfdump_refused", case_selfdump_refused },
	{ "cgmode_42", case_cgmode_42 },
	{ "log_nonutf8", case_log_nonutf8 },
	{ "feature_null", case_feature_null },
	{ "feature_big", case_feature_big },
	{ "missing_binary", case_missing_binary },
	{ "service_fd_closed", case_service_fd_closed },
	{ "network_lock_7", case_network_lock_7 },
	{ "pre_dump_mode_9", case_pre_dump_mode_9 },
	{ "inherit_closed", case_inherit_closed },
	{ "notify_abort", case_notify_abort },
	{ "pre_dump_nomem", case_pre_dump_nomem },
	{ "sigchld_ignored", case_sigchld_ignored },
	{ "sigchld_ignored_restore_child", case_sigchld_ignored_restore_child },
	{ "signals_kept", case_signals_kept },
	{ "dump_iters", case_dump_iters },
	{ "two_handles", case_two_handles },
	{ "service_fd_service", case_service_fd_service },
	{ "restore_child_notify", case_restore_child_notify },
	{ "exec_cmd_none", case_exec_cmd_none },
	{ "exec_cmd_empty_arg", case_exec_cmd_empty_arg },
	{ "empty_accepted", case_empty_accepted },
	{ "restore_fails_late", case_restore_fails_late },
	{ "fd_full", case_fd_full },
	{ "service_fd_twice", case_service_fd_twice },
	{ "service_fd_negative", case_service_fd_negative },
	{ "join_ns_null", case_join_ns_null },
	{ "notify_positive", case_notify_positive },
	{ "notify_null_cb", case_notify_null_cb },
	{ "notify_swap", case_notify_swap },
	{ "binary_empty", case_binary_empty },
	{ "address_long", case_address_long },
	{ "dump_iters_args", case_dump_iters_args },
	{ "irmap_null_opts", case_irmap_null_opts },
	{ "versions", case_versions },
	{ "feature_all", case_feature_all },
	{ "orphan_none", case_orphan_none },
	{ "pidfd_store", case_pidfd_store },
	{ "restore_child_service", case_restore_child_service },
	{ "wire_setters", case_wire_setters },
	{ "restore_after_child", case_restore_after_child },
	{ "wire_requests", case_wire_requests },
	{ "service_fd_early", case_service_fd_early },
};

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	become_subreaper();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int wanted = argc == 1, p[2], st;
		for (int a = 1; a < argc; a++)
			wanted |= !strcmp(argv[a], cases[i].name);
		if (!wanted)
			continue;
		if (pipe(p))
			die("pipe");
		pid_t c = fork();
		if (c == 0) {
			close(p[0]);
			prctl(PR_SET_CHILD_SUBREAPER, 1);
			alarm(60);
			cases[i].run();
			/* criu's own output went to stdout/stderr; the result goes on the pipe. */
			if (write(p[1], line, strlen(line)) < 0)
				_exit(3);
			_exit(0);
		}
		close(p[1]);
		char buf[1024] = "";
		ssize_t n = 0, k;
		while ((k = read(p[0], buf + n, sizeof(buf) - 1 - n)) > 0)
			n += k;
		close(p[0]);
		waitpid(c, &st, 0);
		reap_orphans(100);
		if (WIFSIGNALED(st))
			printf("CASE %s crashed=%s\n", cases[i].name, sigabbrev_np(WTERMSIG(st)));
		else
			printf("CASE %s%s\n", cases[i].name, buf);
	}
	return 0;
}
