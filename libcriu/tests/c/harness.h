/*
 * Shared helpers for the libcriu C tests: pass/fail accounting, a counting workload, and
 * small /proc readers. Every test program includes this header once; everything is static.
 */
#ifndef LIBCRIU_TEST_HARNESS_H
#define LIBCRIU_TEST_HARNESS_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Not every program uses every helper. */
#define HELPER static __attribute__((unused))

static int t_passed, t_failed;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (cond) {                                                     \
			t_passed++;                                             \
			printf("ok   - ");                                          \
		} else {                                                        \
			t_failed++;                                             \
			printf("FAIL - %s:%d: (%s) ", __FILE__, __LINE__, #cond); \
		}                                                               \
		printf(__VA_ARGS__);                                            \
		printf("\n");                                                   \
		fflush(stdout);                                                 \
	} while (0)

/* Something the test needs is missing: stop with a clear message. */
HELPER void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("FATAL - ");
	vprintf(fmt, ap);
	printf(" (errno %d: %s)\n", errno, strerror(errno));
	va_end(ap);
	exit(2);
}

HELPER int finish(void)
{
	printf("%d passed, %d failed\n", t_passed, t_failed);
	return t_failed ? 1 : 0;
}

HELPER double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

HELPER void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* What `criu --version` says, as criu_get_version encodes it. */
HELPER int cli_version(void)
{
	int maj = 0, min = 0, sub = 0;
	FILE *p = popen("criu --version", "r");
	if (!p || fscanf(p, "Version: %d.%d.%d", &maj, &min, &sub) < 2)
		die("criu --version");
	pclose(p);
	return maj * 10000 + min * 100 + sub;
}

/* A fresh, empty directory under the test's scratch root ($LIBCRIU_TEST_DIR or /tmp). */
HELPER char *scratch(const char *name)
{
	const char *root = getenv("LIBCRIU_TEST_DIR");
	char *path, *cmd;
	if (asprintf(&path, "%s/%s.%d", root ? root : "/tmp", name, getpid()) < 0 ||
	    asprintf(&cmd, "rm -rf '%s' && mkdir -p '%s'", path, path) < 0)
		die("asprintf");
	if (system(cmd) != 0)
		die("cannot create %s", path);
	free(cmd);
	return path;
}

HELPER int open_dir(const char *path)
{
	int fd = open(path, O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die("open %s", path);
	return fd;
}

/* Stdio on /dev/null and no other descriptor: what CRIU can dump without help. */
HELPER void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	closefrom(3);
}

/*
 * A workload is killed when the test process dies (a crash included), so a failing run
 * leaves nothing behind. CRIU dumps and restores this setting with the process.
 */
HELPER void die_with_parent(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/*
 * A process of its own session writing an increasing counter to `file` every 50 ms; it dies
 * with the test unless `outlive` (a tree restored by criu_restore has criu as its parent,
 * which exits at once).
 */
HELPER pid_t start_counter_ex(const char *file, int outlive)
{
	char *script;
	pid_t pid;
	/* Rewritten in place at a fixed width (1<> neither truncates nor replaces it): a reader
	 * never sees it empty, and the file a dump catches open is still there for every later
	 * restore of those images. A counter.tmp renamed over it was gone once a first restore
	 * had run on, and a second restore of the same images failed ("Can't open file
	 * .../counter.tmp"). */
	if (asprintf(&script,
		     "i=0; while :; do i=$((i+1)); printf '%%010d\\n' $i 1<>'%s'; sleep 0.05; done",
		     file) < 0)
		die("asprintf");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		setsid();
		if (!outlive)
			die_with_parent();
		detach_stdio();
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	free(script);
	return pid;
}

HELPER pid_t start_counter(const char *file)
{
	return start_counter_ex(file, 0);
}

HELPER long read_counter(const char *file)
{
	char buf[64] = "";
	FILE *f = fopen(file, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return buf[0] ? atol(buf) : -1;
}

/* Waits up to `ms` for the counter to exceed `above`; returns its value (or -1). */
HELPER long wait_counter(const char *file, long above, int ms)
{
	double end = now_ms() + ms;
	long v;
	do {
		v = read_counter(file);
		if (v > above)
			return v;
		sleep_ms(20);
	} while (now_ms() < end);
	return v > above ? v : -1;
}

HELPER int alive(pid_t pid)
{
	return kill(pid, 0) == 0;
}

/* Kills and reaps a child; returns its wait status. */
HELPER int kill_wait(pid_t pid)
{
	int st = 0;
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR)
		;
	return st;
}

/* Waits (reaping) for a child to end within `ms`; returns its status or -1. */
HELPER int wait_exit(pid_t pid, int ms)
{
	double end = now_ms() + ms;
	int st;
	do {
		pid_t r = waitpid(pid, &st, WNOHANG | __WALL);
		if (r == pid)
			return st;
		if (r < 0)
			return -1;
		sleep_ms(10);
	} while (now_ms() < end);
	return -1;
}

/*
 * Orphans of the processes a test kills (a shell's `sleep`) must not linger as zombies under
 * an init that does not reap them: a zombie keeps its pid, process group and session numbers
 * taken, and CRIU then cannot restore those pids (EEXIST). As a subreaper the test reaps them.
 */
HELPER void become_subreaper(void)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		die("PR_SET_CHILD_SUBREAPER");
}

/* Reaps every child that has ended, for `ms` milliseconds. */
HELPER void reap_orphans(int ms)
{
	double end = now_ms() + ms;
	do {
		while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
			;
		sleep_ms(10);
	} while (now_ms() < end);
}

HELPER int count_fds(void)
{
	int n = 0;
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		die("opendir /proc/self/fd");
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

/* Whether `path` (a regular file) contains `needle`. */
HELPER int file_contains(const char *path, const char *needle)
{
	char *buf;
	long n;
	int found;
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, n + 1);
	n = fread(buf, 1, n, f);
	fclose(f);
	found = strstr(buf, needle) != NULL;
	free(buf);
	return found;
}

HELPER char *path_join(const char *dir, const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		die("asprintf");
	return p;
}

/* criu swrk started by the caller on a socketpair (its pid in *pid): the caller's end, for
 * criu_set_service_fd. */
HELPER int own_swrk_pid(pid_t *pid)
{
	int sk[2];
	char num[16];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sk))
		die("socketpair");
	*pid = fork();
	if (*pid == 0) {
		die_with_parent();
		close(sk[0]);
		snprintf(num, sizeof(num), "%d", sk[1]);
		execlp("criu", "criu", "swrk", num, (char *)NULL);
		_exit(127);
	}
	close(sk[1]);
	return sk[0];
}

#endif
