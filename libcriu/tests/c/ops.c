/*
 * libcriu's operations through this library, against the real criu: version and features,
 * dump and restore_child of a counting process, notifications, libcriu's return values and
 * errno, the fixed setters, and the three ways of reaching CRIU.
 */
#include "harness.h"

#include <criu/criu.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>

/* ---- version and features ---------------------------------------------------------- */

static int cli_feature(const char *name)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "criu check --feature %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

static void test_version(void)
{
	int want = cli_version();
	criu_init_opts();
	CHECK(criu_get_version() == want, "criu_get_version() = %d, criu --version says %d",
	      criu_get_version(), want);
	CHECK(criu_check_version(want) == 1, "criu_check_version(current) = 1");
	CHECK(criu_check_version(0) == 1, "criu_check_version(0) = 1");
	CHECK(criu_check_version(want + 1) == 0, "criu_check_version(current + 1) = 0");

	CHECK(criu_set_service_binary("/nonexistent/criu") == 0, "criu_set_service_binary");
	errno = 0;
	int r = criu_check_version(want);
	CHECK(r == -ECOMM && errno == ENOENT,
	      "check_version with a missing binary: %d (errno %d), want -ECOMM/ENOENT", r, errno);
	errno = 0;
	r = criu_dump(); /* no pid: a self-dump, whose criu is started detached */
	CHECK(r == -ECOMM && errno == ENOENT,
	      "self-dump with a missing binary: %d (errno %d), want -ECOMM/ENOENT", r, errno);
	CHECK(criu_set_service_binary(getenv("CKPT_CRIU") ? getenv("CKPT_CRIU") : "criu") == 0,
	      "criu_set_service_binary(full path)");
	CHECK(criu_get_version() == want, "version through the configured binary");
	CHECK(criu_set_service_binary(NULL) == 0, "criu_set_service_binary(NULL): back to criu");
	/* Fixed: libcriu sends CHECK without options, on which CRIU 4.1's check crashes. */
	CHECK(criu_check() == 0, "criu_check() = 0 (CRIU's CHECK request)");
}

static void test_features(void)
{
	int mt = cli_feature("mem_dirty_track"), lp = cli_feature("uffd-noncoop"),
	    ps = cli_feature("pidfd_store");
	struct criu_feature_check f = { .mem_track = true, .lazy_pages = true, .pidfd_store = true };
	int r;

	criu_init_opts();
	r = criu_feature_check(&f, sizeof(f));
	CHECK(r == 0 && f.mem_track == mt && f.lazy_pages == lp && f.pidfd_store == ps,
	      "feature check: mem_track=%d lazy_pages=%d pidfd_store=%d (criu check: %d %d %d)",
	      f.mem_track, f.lazy_pages, f.pidfd_store, mt, lp, ps);

	/* Only what is asked is answered true. */
	struct criu_feature_check g = { .lazy_pages = true };
	r = criu_feature_check(&g, sizeof(g));
	CHECK(r == 0 && !g.mem_track && g.lazy_pages == lp && !g.pidfd_store,
	      "feature check asking lazy_pages only");

	/* A caller with a newer, larger struct: refused with -1 (as libcriu), nothing written. */
	unsigned char big[16];
	memset(big, 1, sizeof(big));
	r = criu_feature_check((struct criu_feature_check *)big, 15);
	int untouched = 1;
	for (int i = 0; i < 16; i++)
		untouched &= big[i] == 1;
	CHECK(r == -1 && untouched, "feature check with size 15 > sizeof(struct) 3: -1, nothing written");

	/* An older, smaller one: only its bytes are read and written. */
	unsigned char small[3] = { 1, 1, 0x77 };
	r = criu_feature_check((struct criu_feature_check *)small, 2);
	CHECK(r == 0 && small[0] == mt && small[1] == lp && small[2] == 0x77,
	      "feature check with size 2: third byte untouched");

	errno = 0;
	r = criu_feature_check(NULL, sizeof(f));
	CHECK(r == -1 && errno == EINVAL, "feature check with NULL: -1, errno EINVAL");
}

/* ---- dump and restore ---------------------------------------------------------------- */

static void setup_dump(int dir_fd, pid_t pid, bool leave_running)
{
	criu_init_opts();
	criu_set_images_dir_fd(dir_fd);
	criu_set_pid(pid);
	criu_set_log_level(4);
	CHECK(criu_set_log_file("dump.log") == 0, "criu_set_log_file(dump.log)");
	criu_set_leave_running(leave_running);
}

static void setup_restore(int dir_fd)
{
	criu_init_opts();
	criu_set_images_dir_fd(dir_fd);
	criu_set_log_level(4);
	criu_set_log_file("restore.log");
}

/* Notifications seen, as "action:pid action:pid ...". */
static char seen[4096];
static int seen_pid_mismatch;
static int abort_on_pre_dump;
static const char *abort_on;

static int record(char *action, criu_notify_arg_t na)
{
	size_t n = strlen(seen);
	/* criu_notify_arg_t is protobuf-c's CriuNotify: its fields are readable directly. */
	if (criu_notify_pid(na) != (na->has_pid ? na->pid : 0) || strcmp(na->script, action))
		seen_pid_mismatch++;
	snprintf(seen + n, sizeof(seen) - n, "%s:%d ", action, criu_notify_pid(na));
	if (abort_on_pre_dump && !strcmp(action, "pre-dump"))
		return -42;
	if (abort_on && !strcmp(action, abort_on))
		return -43;
	return 0;
}

static void test_dump_restore(void)
{
	char *dir = scratch("dump-restore"), *counter = path_join(dir, "counter");
	char *img = path_join(dir, "img");
	pid_t pid = start_counter(counter);
	long before, after;
	int fd, r, st;

	mkdir(img, 0700);
	fd = open_dir(img);
	CHECK(wait_counter(counter, 2, 5000) > 2, "workload %d is counting", pid);

	/* leave-running: the process goes on. */
	setup_dump(fd, pid, true);
	seen[0] = 0;
	criu_set_notify_cb(record);
	r = criu_dump();
	before = read_counter(counter);
	CHECK(r == 0, "criu_dump with leave_running = %d (errno %d)", r, errno);
	CHECK(wait_counter(counter, before, 3000) > before && alive(pid),
	      "the process still counts after a leave-running dump");
	CHECK(strstr(seen, "pre-dump:0") && strstr(seen, "post-dump:0") && !seen_pid_mismatch,
	      "dump notifications: %s", seen);

	/* A callback that fails aborts the dump with its own value; the process goes on. */
	abort_on_pre_dump = 1;
	r = criu_dump();
	abort_on_pre_dump = 0;
	CHECK(r == -42 && alive(pid), "a callback returning -42 aborts the dump: %d", r);
	before = read_counter(counter);
	CHECK(wait_counter(counter, before, 3000) > before,
	      "the process still counts after the aborted dump");

	/* Restoring over the running original: its pid is taken. */
	setup_restore(fd);
	errno = 0;
	r = criu_restore_child();
	CHECK(r == -EBADE && errno == EEXIST,
	      "restore_child while the pid is taken: %d, errno %d (want -EBADE, EEXIST)", r, errno);

	/* A plain dump stops the process; restore_child brings it back as our child. */
	setup_dump(fd, pid, false);
	r = criu_dump();
	before = read_counter(counter);
	st = wait_exit(pid, 5000);
	CHECK(r == 0 && st != -1 && WIFSIGNALED(st), "criu_dump = %d; the process was killed", r);
	reap_orphans(200);
	CHECK(read_counter(counter) == before, "the counter stopped at %ld", before);

	setup_restore(fd);
	seen[0] = 0;
	criu_set_notify_cb(record);
	r = criu_restore_child();
	CHECK(r == pid, "criu_restore_child returned %d (the dumped pid %d)", r, pid);
	after = wait_counter(counter, before, 5000);
	CHECK(after > before, "the restored process counts on: %ld -> %ld", before, after);
	char want[64];
	snprintf(want, sizeof(want), "post-restore:%d", pid);
	CHECK(strstr(seen, "pre-restore:0") && strstr(seen, want) && !seen_pid_mismatch,
	      "restore notifications carry the pid: %s", seen);
	CHECK(waitpid(pid, &st, WNOHANG) == 0, "the restored tree is a child of the caller");

	kill_wait(pid);
	reap_orphans(200);

	/* A callback failing at pre-resume or post-resume (CRIU itself ignores both): the call
	 * fails with the callback's value, and the restored tree is gone, its root reaped, rather
	 * than left running as our child. */
	static const char *const late[] = { "pre-resume", "post-resume" };
	for (int i = 0; i < 2; i++) {
		setup_restore(fd);
		criu_set_notify_cb(record);
		abort_on = late[i];
		r = criu_restore_child();
		abort_on = NULL;
		CHECK(r == -43, "restore_child with a callback failing at %s: %d", late[i], r);
		CHECK(kill(pid, 0) == -1 && errno == ESRCH,
		      "after a callback failed at %s the restored tree (pid %d) is gone and reaped",
		      late[i], pid);
		reap_orphans(200);
	}

	/* criu_restore: the tree is restored under criu, which leaves it when it exits. */
	unlink(counter);
	pid = start_counter_ex(counter, 1);
	wait_counter(counter, 2, 5000);
	setup_dump(fd, pid, false);
	r = criu_dump();
	before = read_counter(counter);
	st = wait_exit(pid, 5000);
	reap_orphans(200);
	setup_restore(fd);
	r = criu_restore();
	CHECK(r == pid, "criu_restore returned %d (the dumped pid %d)", r, pid);
	after = wait_counter(counter, before, 5000);
	CHECK(after > before, "the process restored by criu_restore counts on: %ld -> %ld", before,
	      after);
	kill(pid, SIGKILL);
	reap_orphans(200);

	/* Dumping a pid that does not exist: CRIU's errno. */
	setup_dump(fd, 0x3ffffff0, false);
	errno = 0;
	r = criu_dump();
	CHECK(r == -EBADE && errno == ESRCH, "dump of a missing pid: %d, errno %d (want -EBADE, ESRCH)",
	      r, errno);
	close(fd);
}

/*
 * A log name CRIU refuses ('/', empty, NULL): the setter says so, and the value is not dropped:
 * the next dump fails as CRIU fails it (-EBADE, EBADRQC) without touching the process, until a
 * good name replaces it.
 */
static void test_log_file(void)
{
	char *dir = scratch("logfile"), *counter = path_join(dir, "counter");
	pid_t pid = start_counter(counter);
	int fd = open_dir(dir), r;
	char *log = path_join(dir, "dump.log");
	const char *bad[] = { "sub/dump.log", "../file.log", "", NULL };

	wait_counter(counter, 1, 5000);
	for (int i = 0; i < 4; i++) {
		setup_dump(fd, pid, false);
		errno = 0;
		r = criu_set_log_file(bad[i]);
		CHECK(r == -EINVAL && errno == EINVAL, "criu_set_log_file(%s%s%s) = %d, errno %d",
		      bad[i] ? "\"" : "", bad[i] ? bad[i] : "NULL", bad[i] ? "\"" : "", r, errno);
		errno = 0;
		r = criu_dump();
		long before = read_counter(counter);
		CHECK(r == -EBADE && errno == EBADRQC && wait_counter(counter, before, 3000) > before,
		      "the dump that follows fails as CRIU would: %d, errno %d; the process counts on",
		      r, errno);
	}
	setup_dump(fd, pid, true);
	criu_set_log_file("../file.log");
	CHECK(criu_set_log_file("dump.log") == 0, "a good name replaces the refused one");
	r = criu_dump();
	CHECK(r == 0 && file_contains(log, "Dumping finished successfully"),
	      "the dump runs with the good name");
	/* Non-UTF-8 bytes are a name like any other (libcriu passes them, CRIU uses them). */
	setup_dump(fd, pid, true);
	CHECK(criu_set_log_file("caf\xe9.log") == 0, "criu_set_log_file(\"caf\\xe9.log\")");
	r = criu_dump();
	CHECK(r == 0 && file_contains(path_join(dir, "caf\xe9.log"), "Dumping finished successfully"),
	      "the dump logged to caf\\xe9.log: %d", r);
	kill_wait(pid);
	close(fd);
}

/* Pre-dump needs memory tracking, which this kernel lacks: refused before CRIU dumps. */
static int more_calls;
static int more(criu_predump_info pi)
{
	(void)pi;
	more_calls++;
	return 0;
}

static void test_pre_dump_refused(void)
{
	char *dir = scratch("predump"), *counter = path_join(dir, "counter");
	pid_t pid = start_counter(counter);
	int fd = open_dir(dir), r;
	struct criu_feature_check f = { .mem_track = true };

	wait_counter(counter, 1, 5000);
	criu_init_opts();
	criu_feature_check(&f, sizeof(f));
	if (f.mem_track) {
		printf("NOTE - this kernel tracks memory changes: the refusal is not exercised\n");
		kill_wait(pid);
		return;
	}
	setup_dump(fd, pid, true);
	criu_set_track_mem(true);
	errno = 0;
	r = criu_pre_dump();
	CHECK(r == -EBADE && errno == EOPNOTSUPP,
	      "criu_pre_dump without memory tracking: %d, errno %d (want -EBADE, EOPNOTSUPP)", r,
	      errno);
	errno = 0;
	r = criu_dump_iters(more);
	CHECK(r == -EBADE && errno == EOPNOTSUPP && more_calls == 0,
	      "criu_dump_iters refused the same way, before any round: %d", r);
	long before = read_counter(counter);
	CHECK(wait_counter(counter, before, 3000) > before, "the process was not disturbed");
	printf("NOTE - pre-dump itself is not exercised: this kernel has no memory change tracking\n");

	r = criu_dump_iters(NULL);
	CHECK(r == -EINVAL, "criu_dump_iters(NULL) = -EINVAL");
	kill_wait(pid);
	close(fd);
}

/* ---- libcriu's defects, fixed ------------------------------------------------------------ */

/*
 * criu_set_timeout reaches CRIU: its freezer log line names the timeout. The workload is one
 * process that never forks (a shell loop's children would race the freezer).
 */
static void test_timeout(void)
{
	char cg[128];
	char *dir = scratch("timeout");
	char procs[256], pidbuf[32];
	int fd = open_dir(dir), r, cgfd;
	pid_t pid;

	/* Named for this run: a second run at the same time must not share its freezer. */
	snprintf(cg, sizeof(cg), "/sys/fs/cgroup/freezer/ckpt-libcriu-timeout.%d", (int)getpid());
	if (mkdir(cg, 0755) && errno != EEXIST) {
		printf("NOTE - no cgroup v1 freezer (%s): criu_set_timeout not exercised\n", cg);
		return;
	}
	pid = fork();
	if (pid == 0) {
		setsid();
		die_with_parent();
		detach_stdio();
		execl("/bin/sleep", "sleep", "1000", (char *)NULL);
		_exit(127);
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	cgfd = open(procs, O_WRONLY);
	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	if (cgfd < 0 || write(cgfd, pidbuf, strlen(pidbuf)) < 0)
		die("moving %d into %s", pid, cg);
	close(cgfd);
	sleep_ms(100); /* let it exec */

	setup_dump(fd, pid, true);
	CHECK(criu_set_freeze_cgroup(cg) == 0, "criu_set_freeze_cgroup");
	criu_set_timeout(3);
	r = criu_dump();
	char *log = path_join(dir, "dump.log");
	CHECK(r == 0 && file_contains(log, "timeout: 3s"),
	      "criu_set_timeout(3) reached CRIU (dump.log says \"timeout: 3s\", CRIU's default is 10)");
	kill_wait(pid);
	rmdir(cg);
	close(fd);
}

static void test_setters(void)
{
	criu_init_opts();
	CHECK(criu_add_inherit_fd(1 << 20, "k") == 0,
	      "add_inherit_fd of a closed fd: 0, as libcriu (the operation fails)");
	errno = 0;
	CHECK(criu_restore() == -EBADE && errno == EBADF,
	      "an operation with a closed inherited fd: -EBADE, errno EBADF, criu not started");
	criu_init_opts();
	CHECK(criu_set_page_server_address_port("127.0.0.1", 27277) == 0,
	      "criu_set_page_server_address_port returns 0 on success");
	CHECK(criu_set_page_server_address_port("127.0.0.1", 0) == -EINVAL, "port 0 refused");
	CHECK(criu_set_page_server_address_port(NULL, 1) == -EINVAL, "NULL address refused");
	CHECK(criu_set_pre_dump_mode(CRIU_PRE_DUMP_READ) == 0, "pre_dump_mode READ");
	CHECK(criu_set_pre_dump_mode(7) == -1, "pre_dump_mode 7 refused with -1, as libcriu");
	CHECK(criu_set_network_lock(CRIU_NETWORK_LOCK_SKIP) == 0, "network_lock SKIP");
	CHECK(criu_set_network_lock(0) == -1, "network_lock 0 refused with -1, as libcriu");
	CHECK(criu_add_unix_sk(1234) == 0, "add_unix_sk turns ext_unix_sk on");
	criu_set_ext_unix_sk(false);
	CHECK(criu_add_unix_sk(1235) == -1, "add_unix_sk after ext_unix_sk(false): -1, as libcriu");
	CHECK(criu_add_ext_mount("a", NULL) == -EINVAL, "add_ext_mount with NULL refused");
	char *argv[] = { "true", NULL };
	CHECK(criu_set_exec_cmd(1, argv) == 0 && criu_set_exec_cmd(0, NULL) == 0,
	      "set_exec_cmd(1) ok, (0, NULL) clears it, as libcriu");
	CHECK(criu_set_exec_cmd(-1, argv) == -EINVAL && criu_set_exec_cmd(1, NULL) == -EINVAL,
	      "set_exec_cmd(-1) and (1, NULL) refused (libcriu crashes)");
	criu_set_exec_cmd(0, NULL);
	CHECK(criu_join_ns_add("net", "/proc/1/ns/net", NULL) == 0, "join_ns_add with NULL extra");
	CHECK(criu_add_cg_root(NULL, "/x") == 0, "add_cg_root with NULL controller");
	CHECK(criu_set_service_address("") == -EINVAL, "empty service address refused");
	errno = 0;
	CHECK(criu_get_version() == -ECONNREFUSED && errno == EINVAL,
	      "an operation after a refused service address reaches no other CRIU");
	criu_opts *lo = NULL;
	criu_local_init_opts(&lo);
	CHECK(criu_local_set_service_binary(lo, "") == -EINVAL, "empty service binary refused");
	errno = 0;
	CHECK(criu_local_restore_child(lo) == -ECOMM && errno == EINVAL,
	      "not even criu_restore_child falls back to criu from PATH then (-ECOMM: libcriu's "
	      "exec of the empty name fails)");
	criu_local_free_opts(lo);
	criu_set_service_binary(NULL);
	CHECK(criu_add_inherit_fd(0, "stdin") == 0, "add_inherit_fd(0) with swrk");
	criu_set_service_address(NULL);
	CHECK(criu_add_inherit_fd(0, "stdin") == -1, "add_inherit_fd refused for a service: -1");
	criu_free_opts();
	CHECK(criu_set_root("/") == 0, "setters after criu_free_opts work on fresh defaults");
}

/* ---- transports ---------------------------------------------------------------------------- */

static void test_service_socket(void)
{
	char *dir = scratch("service"), *sock = path_join(dir, "criu.sock");
	char *pidf = path_join(dir, "pid"), cmd[8192];
	int want = cli_version(), r;

	snprintf(cmd, sizeof(cmd), "criu service -d --address %s --pidfile %s -o %s/svc.log -v4",
		 sock, pidf, dir);
	if (system(cmd) != 0) {
		CHECK(0, "criu service did not start");
		return;
	}
	criu_init_opts();
	CHECK(criu_set_service_address(sock) == 0, "criu_set_service_address");
	CHECK(criu_get_version() == want, "version through criu service at %s", sock);
	CHECK(criu_check() == 0, "check through criu service");
	long svc = read_counter(pidf);
	if (svc > 0)
		kill(svc, SIGTERM);

	CHECK(criu_set_service_address("/nonexistent/criu.sock") == 0, "address set");
	errno = 0;
	r = criu_get_version();
	CHECK(r == -ECONNREFUSED && errno == ENOENT, "no service there: %d, errno %d", r, errno);
}

/* criu swrk started by the caller itself, its socket passed with criu_set_service_fd. */
static void test_service_fd(void)
{
	int want = cli_version(), r, st;
	pid_t pid;
	int sk = own_swrk_pid(&pid);

	criu_init_opts();
	criu_set_service_fd(sk);
	/* restore_child always starts its own swrk (as libcriu) and leaves the fd alone */
	char *empty = scratch("service-fd");
	int efd = open_dir(empty);
	criu_set_images_dir_fd(efd);
	r = criu_restore_child();
	criu_set_images_dir_fd(-1);
	close(efd);
	free(empty);
	CHECK(r == -EBADE && fcntl(sk, F_GETFD) >= 0,
	      "criu_restore_child (no images: %d) did not use or close the service fd", r);
	r = criu_get_version();
	CHECK(r == want, "version through a caller's swrk socket (criu_set_service_fd)");
	CHECK(fcntl(sk, F_GETFD) < 0 && errno == EBADF,
	      "the service fd was closed after the operation, as libcriu does");
	st = wait_exit(pid, 5000);
	CHECK(st != -1 && WIFEXITED(st), "the caller's criu exited once its socket closed");
	errno = 0;
	r = criu_get_version();
	CHECK(r == -ECOMM && errno == EBADF,
	      "a second use of the consumed fd: %d, errno %d (-ECOMM as libcriu, EBADF)", r, errno);
}

/* A scripted CRIU peer on a socketpair, for the answers real CRIU cannot be made to give. */
struct peer {
	int sk;
	const unsigned char *const *replies; /* each: length byte, then bytes; NULL ends */
	char types[64];                       /* request types received, as letters */
	int keep_open_seen;
	unsigned char first[4096]; /* the first request, as sent */
	ssize_t first_len;
	unsigned char each[8][1024]; /* the first 8 requests, up to 1 KiB each */
	ssize_t each_len[8];
};

/* Whether request `i` holds the string `s`. */
static int request_has(const struct peer *p, int i, const char *s)
{
	size_t n = strlen(s);
	for (ssize_t j = 0; j + (ssize_t)n <= p->each_len[i]; j++)
		if (!memcmp(p->each[i] + j, s, n))
			return 1;
	return 0;
}

static int has_bytes(const struct peer *p, const unsigned char *seq, size_t n)
{
	for (ssize_t i = 0; i + (ssize_t)n <= p->first_len; i++)
		if (!memcmp(p->first + i, seq, n))
			return 1;
	return 0;
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	unsigned char buf[65536];
	int i = 0;
	for (;;) {
		ssize_t n = recv(p->sk, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		if (i == 0) {
			p->first_len = n < (ssize_t)sizeof(p->first) ? n : (ssize_t)sizeof(p->first);
			memcpy(p->first, buf, p->first_len);
		}
		if (i < 8) {
			p->each_len[i] = n < 1024 ? n : 1024;
			memcpy(p->each[i], buf, p->each_len[i]);
		}
		/* field 1 (type) comes first: 0x08 <type> */
		p->types[i] = n >= 2 && buf[0] == 0x08 ? 'a' + buf[1] : '?';
		/* keep_open: field 4, varint 1 */
		for (ssize_t j = 2; j + 1 < n; j++)
			if (buf[j] == 0x20 && buf[j + 1] == 0x01)
				p->keep_open_seen = 1;
		if (!p->replies[i])
			break;
		if (p->replies[i][0] == 0)
			break; /* hang up instead of answering */
		send(p->sk, p->replies[i] + 1, p->replies[i][0], 0);
		i++;
	}
	close(p->sk);
	return NULL;
}

static int with_peer(const unsigned char *const *replies, int (*op)(void), struct peer *p)
{
	int sk[2], r;
	pthread_t t;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk))
		die("socketpair");
	memset(p, 0, sizeof(*p));
	p->sk = sk[1];
	p->replies = replies;
	pthread_create(&t, NULL, peer_main, p);
	criu_init_opts();
	criu_set_service_fd(sk[0]);
	criu_set_pid(1);
	r = op();
	pthread_join(t, NULL);
	return r;
}

static int op_version(void) { return criu_get_version(); }
static int op_dump_enums(void)
{
	criu_set_manage_cgroups_mode(CRIU_CG_MODE_STRICT);
	criu_set_network_lock(CRIU_NETWORK_LOCK_NFTABLES);
	criu_set_pre_dump_mode(CRIU_PRE_DUMP_READ);
	criu_set_empty_ns(CLONE_NEWNET);
	criu_set_timeout(7);
	criu_set_leave_running(false);
	return criu_dump();
}
static int op_dump(void) { return criu_dump(); }
static int op_dump_bytes(void)
{
	criu_set_root("/r\xff");
	return criu_dump();
}
static int iters;
static int more_twice(criu_predump_info pi)
{
	(void)pi;
	return ++iters < 2;
}
static int op_dump_iters(void) { return criu_dump_iters(more_twice); }
/* As CRIU's test_iters: each round's parent is the one before (set between rounds). */
static int more_with_parent(criu_predump_info pi)
{
	char parent[16];
	(void)pi;
	snprintf(parent, sizeof(parent), "../%d", ++iters);
	criu_set_parent_images(parent);
	return iters < 2;
}
static int op_dump_iters_parent(void) { return criu_dump_iters(more_with_parent); }
static int more_refused(criu_predump_info pi)
{
	(void)pi;
	criu_set_log_file("a/b.log");
	return 1;
}
static int op_dump_iters_refused(void) { return criu_dump_iters(more_refused); }
static int more_reset(criu_predump_info pi)
{
	(void)pi;
	criu_init_opts(); /* no pid any more: the next request would be a self-dump */
	return 0;
}
static int op_dump_iters_reset(void) { return criu_dump_iters(more_reset); }

static void test_conventions(void)
{
	struct peer p;
	int r;
	/* CriuResp bytes: type (field 1), success (2), cr_errno (7), features (8), version (10) */
	static const unsigned char empty_fail[] = { 4, 0x08, 0, 0x10, 0 };
	static const unsigned char wrong_type[] = { 4, 0x08, 1, 0x10, 1 };
	static const unsigned char garbage[] = { 3, 0xff, 0xff, 0xff };
	static const unsigned char dump_fail[] = { 6, 0x08, 1, 0x10, 0, 0x38, ENOENT };
	static const unsigned char hang_up[] = { 0 };
	static const unsigned char git_version[] = { 13, 0x08, 10, 0x10, 1, 0x52, 7,
						     0x08, 4,  0x10, 1, 0x1a, 1, 'g' };
	static const unsigned char feat_ok[] = { 8, 0x08, 9, 0x10, 1, 0x42, 2, 0x08, 1 };
	static const unsigned char pre_ok[] = { 4, 0x08, 4, 0x10, 1 };
	static const unsigned char dump_ok[] = { 4, 0x08, 1, 0x10, 1 };

	const unsigned char *s1[] = { empty_fail, NULL };
	r = with_peer(s1, op_version, &p);
	CHECK(r == -EINVAL && errno == EINVAL, "EMPTY/failure answer (unknown request): %d", r);
	const unsigned char *s2[] = { wrong_type, NULL };
	r = with_peer(s2, op_version, &p);
	CHECK(r == -EBADMSG, "an answer of another type: %d (-EBADMSG)", r);
	const unsigned char *s3[] = { garbage, NULL };
	r = with_peer(s3, op_version, &p);
	CHECK(r == -ECOMM && errno == EBADMSG,
	      "bytes that are no CRIU response: %d, errno %d (-ECOMM as libcriu, EBADMSG)", r, errno);
	const unsigned char *s4[] = { hang_up, NULL };
	r = with_peer(s4, op_version, &p);
	CHECK(r == -ECOMM && errno == ECONNRESET, "CRIU hangs up: %d, errno %d (-ECOMM)", r, errno);
	const unsigned char *s5[] = { dump_fail, NULL };
	r = with_peer(s5, op_dump, &p);
	CHECK(r == -EBADE && errno == ENOENT, "failed dump carries cr_errno: %d, errno %d", r, errno);
	const unsigned char *s6[] = { git_version, NULL };
	r = with_peer(s6, op_version, &p);
	CHECK(r == 40200, "a git build of 4.1 counts as 4.2, as libcriu: %d", r);

	/* The enums of criu.h arrive as rpc.proto's values (field tag varint, then the value). */
	const unsigned char *s8[] = { dump_ok, NULL };
	r = with_peer(s8, op_dump_enums, &p);
	static const unsigned char cg_strict[] = { 0x90, 0x02, CRIU_CG_MODE_STRICT },
				   nft[] = { 0x80, 0x04, CRIU_NETWORK_LOCK_NFTABLES },
				   read_mode[] = { 0xe8, 0x03, CRIU_PRE_DUMP_READ },
				   emptyns[] = { 0xb0, 0x02, 0x80, 0x80, 0x80, 0x80, 0x04 },
				   timeout7[] = { 0xe8, 0x02, 7 }, leave_false[] = { 0x18, 0 };
	CHECK(r == 0 && has_bytes(&p, cg_strict, 3) && has_bytes(&p, nft, 3) &&
		      has_bytes(&p, read_mode, 3) && has_bytes(&p, emptyns, 7) &&
		      has_bytes(&p, timeout7, 3) && has_bytes(&p, leave_false, 2),
	      "manage_cgroups_mode, network_lock, pre_dump_mode, empty_ns, timeout and an explicit "
	      "leave_running=false are on the wire as rpc.proto says");

	/* Strings that are not UTF-8 go as the bytes they are: root (field 13). */
	r = with_peer(s8, op_dump_bytes, &p);
	static const unsigned char root_ff[] = { 0x6a, 3, '/', 'r', 0xff };
	CHECK(r == 0 && has_bytes(&p, root_ff, 5), "criu_set_root(\"/r\\xff\") reaches CRIU as bytes");

	/* dump_iters: feature check (kept open), two pre-dump rounds, the dump, one connection */
	const unsigned char *s7[] = { feat_ok, pre_ok, pre_ok, dump_ok, NULL };
	iters = 0;
	r = with_peer(s7, op_dump_iters, &p);
	CHECK(r == 0 && !strcmp(p.types, "jeeb") && p.keep_open_seen && iters == 2,
	      "dump_iters request sequence %s (want jeeb: FEATURE_CHECK PRE_DUMP PRE_DUMP DUMP)",
	      p.types);

	/* What the callback sets goes with the next request, as libcriu sends its options object
	 * itself each time: the second pre-dump has parent ../1, the dump ../2. */
	iters = 0;
	r = with_peer(s7, op_dump_iters_parent, &p);
	CHECK(r == 0 && !strcmp(p.types, "jeeb") && !request_has(&p, 1, "../") &&
		      request_has(&p, 2, "../1") && request_has(&p, 3, "../2") &&
		      !request_has(&p, 3, "../1"),
	      "dump_iters: options the callback sets reach the next round and the final dump");
	/* A value CRIU refuses, set between rounds: that round fails as CRIU would fail it. */
	r = with_peer(s7, op_dump_iters_refused, &p);
	CHECK(r == -EBADE && errno == EBADRQC && !strcmp(p.types, "je"),
	      "dump_iters: a refused value set by the callback ends it: %d, errno %d, requests %s", r,
	      errno, p.types);
	r = with_peer(s7, op_dump_iters_reset, &p);
	CHECK(r == -EINVAL && errno == EINVAL && !strcmp(p.types, "je"),
	      "dump_iters: options reset by the callback (no pid) end it before a self-dump: %d, "
	      "errno %d, requests %s",
	      r, errno, p.types);
}

/* ---- local options ------------------------------------------------------------------------ */

static void test_local(void)
{
	criu_opts *o = (criu_opts *)(uintptr_t)0xdeadbeef; /* as an uninitialised variable */
	int want = cli_version();

	CHECK(criu_local_init_opts(&o) == 0 && o != (criu_opts *)(uintptr_t)0xdeadbeef,
	      "criu_local_init_opts ignores an unknown old pointer");
	CHECK(criu_local_set_log_file(o, "x.log") == 0, "local setter");
	CHECK(criu_local_get_version(o) == want, "criu_local_get_version");
	criu_opts *o2 = NULL;
	CHECK(criu_local_init_opts(&o2) == 0 && o2 != o, "a second handle");
	criu_local_free_opts(o2);
	criu_local_free_opts(o2); /* double free: ignored */
	errno = 0;
	CHECK(criu_local_get_version(o2) == -EINVAL && errno == EINVAL,
	      "a freed handle is refused with -EINVAL");
	/* The allocator would give the next handle the freed one's memory: a stale pointer
	 * freed again must not free that handle. */
	criu_opts *o3 = NULL, *o4 = NULL;
	criu_local_init_opts(&o3);
	criu_local_free_opts(o3);
	CHECK(criu_local_init_opts(&o4) == 0 && o4 != o3, "a new handle never has a freed one's value");
	criu_local_free_opts(o3); /* stale */
	CHECK(criu_local_set_log_file(o4, "x.log") == 0 && criu_local_get_version(o4) == want,
	      "a stale handle freed again leaves the handle made after it alone");
	criu_local_free_opts(o4);
	CHECK(criu_local_set_root(NULL, "/") == -EINVAL, "NULL handle refused");
	criu_local_set_leave_running(NULL, true); /* void setter: ignored */
	CHECK(criu_local_init_opts(NULL) == -EINVAL, "criu_local_init_opts(NULL) refused");
	criu_local_free_opts(o);
}

/* ---- pids a dump cannot take, refused before criu starts ----------------------------- */

static void *sleeper(void *arg)
{
	pid_t *tid = arg;
	*tid = gettid();
	sleep(60);
	return NULL;
}

static void bad_pid(const char *what, pid_t pid, int dir_fd)
{
	setup_dump(dir_fd, pid, true);
	errno = 0;
	int r = criu_dump();
	CHECK(r == -EINVAL && errno == EINVAL, "dump of %s %d: %d (errno %d), want -EINVAL/EINVAL", what,
	      (int)pid, r, errno);
	CHECK(faccessat(dir_fd, "dump.log", F_OK, 0) != 0, "criu did not run for %s", what);
}

static void test_bad_pids(void)
{
	char dir[] = "/tmp/ckpt-libcriu-badpid-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	int dir_fd = open(dir, O_DIRECTORY | O_CLOEXEC);

	bad_pid("kernel thread", 2, dir_fd);

	pid_t zombie = fork();
	if (zombie == 0)
		_exit(0);
	for (int i = 0; i < 500; i++) {
		char path[64], buf[256] = "";
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)zombie);
		FILE *f = fopen(path, "r");
		if (f) {
			if (!fgets(buf, sizeof(buf), f))
				buf[0] = 0;
			fclose(f);
		}
		if (strstr(buf, ") Z "))
			break;
		usleep(10 * 1000);
	}
	bad_pid("zombie", zombie, dir_fd);
	waitpid(zombie, NULL, 0);

	pthread_t th;
	volatile pid_t tid = 0;
	pthread_create(&th, NULL, sleeper, (void *)&tid);
	for (int i = 0; i < 500 && tid == 0; i++)
		usleep(10 * 1000);
	bad_pid("non-leader thread", tid, dir_fd);
	pthread_cancel(th);
	pthread_join(th, NULL);

	close(dir_fd);
	rmdir(dir);
}

/* ---- the caller's descriptor table is full ------------------------------------------- */

static void test_fd_limit(void)
{
	struct rlimit old, low;
	getrlimit(RLIMIT_NOFILE, &old);
	low = old;
	low.rlim_cur = 256;
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0, "setrlimit");
	criu_init_opts();
	int fds[256], n = 0, fd;
	while (n < 256 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		fds[n++] = fd;
	errno = 0;
	int r = criu_get_version();
	int e = errno;
	errno = 0;
	int rc = criu_check();
	int ec = errno;
	while (n > 0)
		close(fds[--n]);
	setrlimit(RLIMIT_NOFILE, &old);
	/* No socket for criu: -ECONNREFUSED, as libcriu answers when its socketpair fails; errno
	 * says why (libcriu's is 0). */
	CHECK(r == -ECONNREFUSED && e == EMFILE,
	      "version with the descriptor table full: %d (errno %d), want -ECONNREFUSED/EMFILE", r, e);
	CHECK(rc == -ECONNREFUSED && ec == EMFILE,
	      "check with the descriptor table full: %d (errno %d), want -ECONNREFUSED/EMFILE", rc, ec);
	CHECK(criu_get_version() > 0, "version once descriptors are free again");
}

/* ---- restore_child cut while the root is in CRIU's restorer ------------------------- */

/*
 * A watcher thread waits until the thread calling criu_restore_child has a new child whose
 * pid in its own pid namespace is the dumped pid and that runs neither criu nor this program
 * (CRIU's restorer has switched it to the restored `sh`, before post-restore), then moves
 * pstree.img away (CRIU read it long before) and kills criu with SIGKILL, as someone else
 * would. Before, that root was not taken with the dead criu (it no longer ran criu's
 * program) nor found afterwards (no pstree.img): it ran on as the caller's child, unreported.
 */
struct restorer_watch {
	pid_t tid, want;
	int dir_fd;
	pid_t before[256];
	int nbefore;
	volatile int stop;
	pid_t criu, root;
};

static int task_children(pid_t tid, pid_t *out, int max)
{
	char path[64], buf[4096];
	int n = 0, fd;
	ssize_t len;
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return 0;
	buf[len] = 0;
	for (char *p = strtok(buf, " \n"); p && n < max; p = strtok(NULL, " \n"))
		out[n++] = atoi(p);
	return n;
}

/* The last NSpid entry of `pid`: its pid in its own pid namespace; 0 when unreadable. */
static pid_t inner_pid_of(pid_t pid)
{
	char path[64], line[256];
	pid_t last = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "NSpid:", 6))
			for (char *p = strtok(line + 6, " \t\n"); p; p = strtok(NULL, " \t\n"))
				last = atoi(p);
	fclose(f);
	return last;
}

/* The base name of the executable `pid` runs, into `out`; "" when unreadable. */
static void exe_name_of(pid_t pid, char *out, size_t size)
{
	char path[64], target[512];
	ssize_t n;
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, target, sizeof(target) - 1);
	out[0] = 0;
	if (n <= 0)
		return;
	target[n] = 0;
	snprintf(out, size, "%s", strrchr(target, '/') ? strrchr(target, '/') + 1 : target);
}

static void *watch_restorer(void *arg)
{
	struct restorer_watch *w = arg;
	char self[256];
	exe_name_of(getpid(), self, sizeof(self));
	double end = now_ms() + 30000;
	while (!w->stop && now_ms() < end) {
		pid_t kids[256], root = 0, criu = 0;
		int n = task_children(w->tid, kids, 256), ncriu = 0;
		for (int i = 0; i < n; i++) {
			int old = 0;
			for (int j = 0; j < w->nbefore; j++)
				old |= kids[i] == w->before[j];
			if (old)
				continue;
			char name[256];
			exe_name_of(kids[i], name, sizeof(name));
			if (!strcmp(name, "criu")) {
				criu = kids[i];
				ncriu++;
			} else if (name[0] && strcmp(name, self) && inner_pid_of(kids[i]) == w->want) {
				root = kids[i];
			}
		}
		if (root && ncriu == 1) {
			if (renameat(w->dir_fd, "pstree.img", w->dir_fd, "pstree.img.away"))
				die("moving pstree.img away");
			kill(criu, SIGKILL);
			w->criu = criu;
			w->root = root;
			return NULL;
		}
		if (root)
			return NULL; /* criu gone: the restore got past the window unseen */
		sched_yield();
	}
	return NULL;
}

/* Processes (not zombies) whose session or process group is `sid`, or `sid` itself. */
static int session_left(pid_t sid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int left = 0;
	while (d && (e = readdir(d))) {
		char path[300], stat[1024];
		pid_t p = atoi(e->d_name);
		if (p <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", p);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, stat, sizeof(stat) - 1);
		close(fd);
		if (n <= 0)
			continue;
		stat[n] = 0;
		char *rest = strrchr(stat, ')'), state;
		int ppid, pgrp, session;
		if (!rest || sscanf(rest + 1, " %c %d %d %d", &state, &ppid, &pgrp, &session) != 4)
			continue;
		if (state != 'Z' && (p == sid || pgrp == sid || session == sid)) {
			left++;
			kill(p, SIGKILL);
		}
	}
	if (d)
		closedir(d);
	return left;
}

static void test_restorer_cut(void)
{
	char *dir = scratch("restorer-cut"), *counter = path_join(dir, "counter");
	char *img = path_join(dir, "img");
	pid_t pid = start_counter(counter);
	int fd, r, st, hits = 0;

	mkdir(img, 0700);
	fd = open_dir(img);
	CHECK(wait_counter(counter, 2, 5000) > 2, "workload %d is counting", pid);
	setup_dump(fd, pid, false);
	r = criu_dump();
	st = wait_exit(pid, 5000);
	CHECK(r == 0 && st != -1, "criu_dump = %d; the process was killed", r);
	reap_orphans(200);

	int attempts = 0;
	for (; attempts < 24 && hits < 2; attempts++) {
		struct restorer_watch w = { .tid = gettid(), .want = pid, .dir_fd = fd };
		pthread_t t;
		w.nbefore = task_children(w.tid, w.before, 256);
		setup_restore(fd);
		seen[0] = 0;
		criu_set_notify_cb(record);
		if (pthread_create(&t, NULL, watch_restorer, &w))
			die("pthread_create");
		r = criu_restore_child();
		w.stop = 1;
		pthread_join(t, NULL);
		if (w.root)
			renameat(fd, "pstree.img.away", fd, "pstree.img");
		if (r > 0) /* got past the window unseen: the restored tree is ours to kill */
			kill_wait(r);
		reap_orphans(300);
		int root_gone = !w.root || (kill(w.root, 0) == -1 && errno == ESRCH);
		int left = session_left(pid); /* killed, and reaped below, so the next attempt can run */
		reap_orphans(300);
		if (!w.root || strstr(seen, "post-restore"))
			continue;
		hits++;
		CHECK(r < 0, "restore_child whose criu was killed in the restorer window: %d", r);
		CHECK(root_gone,
		      "the root %d CRIU had made, in its restorer when criu died, is gone and reaped",
		      w.root);
		CHECK(left == 0, "%d processes of the restored tree (session %d) were left", left, pid);
	}
	/* The window (the root's program switched, post-restore not yet sent) is about 0.1 ms
	 * on an idle machine: the watcher's kill often lands just after CRIU sent post-restore,
	 * which the library then reads and takes as the root's pid (the case other tests hold).
	 * core/tests/restorer_cut.rs holds the same window for ckpt's own restore. */
	if (hits == 0)
		printf("NOTE - the restorer window was not caught in %d attempts (CRIU sent post-restore "
		       "before each kill landed): a restore_child cut there is not exercised in this run\n",
		       attempts);
	close(fd);
}

static const struct {
	const char *name;
	void (*run)(void);
} sections[] = {
	{ "bad-pids", test_bad_pids },	     { "fd-limit", test_fd_limit },
	{ "version", test_version },	     { "features", test_features },
	{ "dump-restore", test_dump_restore }, { "log-file", test_log_file },
	{ "pre-dump", test_pre_dump_refused }, { "timeout", test_timeout },
	{ "setters", test_setters },	     { "service-socket", test_service_socket },
	{ "service-fd", test_service_fd },   { "conventions", test_conventions },
	{ "local", test_local },	     { "restorer-cut", test_restorer_cut },
};

/* usage: ops [SECTION...] (all by default) */
int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	become_subreaper();
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		int wanted = argc == 1;
		for (int a = 1; a < argc; a++)
			wanted |= !strcmp(argv[a], sections[i].name);
		if (wanted)
			sections[i].run();
	}
	return finish();
}
