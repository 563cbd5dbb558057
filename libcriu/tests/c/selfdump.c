/*
 * Self-dump: a process calls criu_dump() without a pid and CRIU dumps the caller itself.
 * criu_dump returns 0 in the process that asked (when left running) and 1 in a process
 * restored from those images (CRIU's CriuDumpResp.restored).
 */
#include "harness.h"

#include <criu/criu.h>

/*
 * The child: dumps itself, then records what criu_dump returned and errno in
 * <dir>/{dumped,restored}.<return value>. `bad_log`, when not NULL, is a log name CRIU refuses,
 * set after a good one.
 */
static void self_dumper(const char *dir, bool leave_running, const char *bad_log)
{
	char *img = path_join(dir, "img");
	int fd, r, e;
	FILE *f;
	char name[64];

	setsid();
	die_with_parent();
	detach_stdio();
	fd = open(img, O_DIRECTORY);
	criu_init_opts();
	criu_set_images_dir_fd(fd);
	criu_set_log_level(4);
	criu_set_log_file("dump.log");
	criu_set_leave_running(leave_running);
	if (bad_log)
		criu_set_log_file(bad_log);
	r = criu_dump();
	e = errno;
	/* Here twice with leave_running: once in the original, once restored. */
	snprintf(name, sizeof(name), "%s.%d", r == 1 ? "restored" : "dumped", r);
	f = fopen(path_join(dir, name), "w");
	if (f) {
		fprintf(f, "%d %d\n", r, e);
		fclose(f);
	}
	if (r == 0)
		for (;;)
			pause(); /* the original waits to be killed */
	_exit(r == 1 ? 0 : 3);
}

static int exists(const char *dir, const char *name)
{
	char *p = path_join(dir, name);
	int ok = access(p, F_OK) == 0;
	free(p);
	return ok;
}

static int wait_file(const char *dir, const char *name, int ms)
{
	double end = now_ms() + ms;
	while (now_ms() < end) {
		if (exists(dir, name))
			return 1;
		sleep_ms(20);
	}
	return 0;
}

static void restore_and_check(const char *dir, pid_t pid, const char *what)
{
	char *img = path_join(dir, "img");
	int fd = open_dir(img), r, st;

	criu_init_opts();
	criu_set_images_dir_fd(fd);
	criu_set_log_level(4);
	criu_set_log_file("restore.log");
	r = criu_restore_child();
	CHECK(r == pid, "%s: criu_restore_child = %d (the dumped pid %d)", what, r, pid);
	CHECK(wait_file(dir, "restored.1", 10000),
	      "%s: in the restored process criu_dump returned 1", what);
	st = wait_exit(pid, 5000);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "%s: the restored process exited normally (status %#x)", what, st);
	if (st == -1)
		kill_wait(pid);
	close(fd);
}

static void run(bool leave_running)
{
	const char *what = leave_running ? "self-dump, leave running" : "self-dump";
	char *dir = scratch(leave_running ? "selfdump-lr" : "selfdump");
	char *img = path_join(dir, "img");
	pid_t pid;
	int st;

	mkdir(img, 0700);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		self_dumper(dir, leave_running, NULL);

	if (leave_running) {
		CHECK(wait_file(dir, "dumped.0", 10000), "%s: criu_dump returned 0 in the caller",
		      what);
		CHECK(alive(pid), "%s: the caller still runs", what);
		kill_wait(pid);
	} else {
		st = wait_exit(pid, 10000);
		CHECK(st != -1 && WIFSIGNALED(st) && !exists(dir, "dumped.0"),
		      "%s: CRIU dumped the caller and killed it (status %#x)", what, st);
		if (st == -1)
			kill_wait(pid);
	}
	CHECK(file_contains(path_join(img, "dump.log"), "Dumping finished successfully"),
	      "%s: CRIU's log says the dump finished", what);
	restore_and_check(dir, pid, what);
}

/*
 * A log name CRIU refuses, set (and refused) after a good one: libcriu sends it and CRIU
 * refuses the request, so the caller must come through untouched, never dumped (and killed)
 * with the earlier name or a default.
 */
static void refused(const char *bad_log)
{
	char *dir = scratch("selfdump-refused"), *img = path_join(dir, "img");
	char want[32], *result;
	int st, r = 0, e = 0;
	FILE *f;

	mkdir(img, 0700);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		self_dumper(dir, false, bad_log);
	st = wait_exit(pid, 10000);
	snprintf(want, sizeof(want), "dumped.%d", -EBADE);
	result = path_join(dir, want);
	f = fopen(result, "r");
	if (f) {
		if (fscanf(f, "%d %d", &r, &e) != 2)
			r = 0;
		fclose(f);
	}
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 3,
	      "self-dump after criu_set_log_file(\"%s\"): the caller survived and went on (status %#x)",
	      bad_log, st);
	CHECK(r == -EBADE && e == EBADRQC, "criu_dump returned %d, errno %d (want -EBADE, EBADRQC)", r,
	      e);
	CHECK(!exists(img, "dump.log") && !exists(img, "core-1.img"), "nothing was dumped");
	if (st == -1)
		kill_wait(pid);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	become_subreaper();
	refused("../file.log");
	refused("");
	run(true);
	run(false);
	reap_orphans(100);
	return finish();
}
