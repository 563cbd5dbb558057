/*
 * fork() while another thread is inside the library. libcriu's options are plain memory with
 * no lock, so a child forked at any moment can use them (it gets a copy, perhaps mid-change,
 * and criu_init_opts starts it afresh). A library that guards its options with a lock must not
 * let a fork copy that lock held by a thread the child does not have: the child's first call
 * would wait for ever. Threads hammer global setters, a local handle's setters,
 * criu_local_init_opts / criu_local_free_opts and CRIU calls while the main thread forks; each child calls
 * setters and a real CRIU operation (get_version, check, or a dump of a counting process). The
 * test, not the child, enforces the time limit: a child still running after it is killed
 * and counted as hung.
 */
#include "harness.h"

#include <criu/criu.h>
#include <pthread.h>
#include <stdatomic.h>

#define CHILDREN 40
#define LIMIT_MS 30000

static atomic_int stop;
static criu_opts *shared;

static void *hammer_global(void *arg)
{
	(void)arg;
	char name[64];
	for (long i = 0; !atomic_load(&stop); i++) {
		snprintf(name, sizeof(name), "hammer-%ld.log", i);
		criu_set_log_file(name);
		criu_set_root("/");
		criu_set_leave_running(i & 1);
		criu_add_external("mnt[x]:y");
		if (i % 64 == 0)
			criu_init_opts(); /* drops the growing list (libcriu would leak it) */
	}
	return NULL;
}

static void *hammer_local(void *arg)
{
	(void)arg;
	for (long i = 0; !atomic_load(&stop); i++) {
		criu_opts *mine = NULL;
		criu_local_init_opts(&mine);
		criu_local_set_log_file(mine, "mine.log");
		criu_local_free_opts(mine);
		criu_local_set_log_file(shared, "shared.log");
		criu_local_set_log_level(shared, (int)(i & 3));
	}
	return NULL;
}

/* Real CRIU calls in the parent while it forks (each spawns criu and talks to it). */
static void *hammer_ops(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		criu_get_version();
		criu_local_get_version(shared);
	}
	return NULL;
}

/* Child i's work; its exit status says which step failed (0: none). */
static int child(int i, const char *dumpdir, pid_t workload)
{
	criu_opts *o = NULL;
	if (criu_set_log_level(4), criu_set_log_file("child.log") != 0)
		return 10;
	if (criu_local_set_log_file(shared, "child.log") != 0)
		return 11;
	if (criu_local_init_opts(&o) != 0 || criu_local_set_log_file(o, "child.log") != 0)
		return 12;
	criu_local_free_opts(o);
	if (criu_init_opts() != 0)
		return 13;
	if (i == 0) {
		int fd = open(dumpdir, O_DIRECTORY);
		criu_set_images_dir_fd(fd);
		criu_set_pid(workload);
		criu_set_leave_running(true);
		criu_set_log_file("dump.log");
		criu_set_log_level(4);
		return criu_dump() == 0 ? 0 : 20;
	}
	if (i % 8 == 1) {
		criu_set_log_file("check.log");
		return criu_check() == 0 ? 0 : 21;
	}
	if (criu_get_version() <= 0)
		return 22;
	return criu_local_get_version(shared) > 0 ? 0 : 23;
}

int main(void)
{
	pthread_t tg, tl, to;
	pid_t kids[CHILDREN];
	int hung = 0, failed = 0, dumped = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	become_subreaper();
	char *dir = scratch("forks");
	char *counter = path_join(dir, "counter");
	pid_t workload = start_counter(counter);
	wait_counter(counter, 1, 5000);

	criu_init_opts();
	criu_local_init_opts(&shared);
	pthread_create(&tg, NULL, hammer_global, NULL);
	pthread_create(&tl, NULL, hammer_local, NULL);
	pthread_create(&to, NULL, hammer_ops, NULL);
	for (int i = 0; i < CHILDREN; i++) {
		sleep_ms(i % 3); /* forks at different points of the hammering */
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (kids[i] == 0) {
			int fd = open("/dev/null", O_WRONLY);
			dup2(fd, 1); /* criu_check prints "Looks good." */
			_exit(child(i, dir, workload));
		}
	}
	atomic_store(&stop, 1);
	pthread_join(tg, NULL);
	pthread_join(tl, NULL);
	pthread_join(to, NULL);

	double end = now_ms() + LIMIT_MS;
	for (int i = 0; i < CHILDREN; i++) {
		int left = (int)(end - now_ms());
		int st = wait_exit(kids[i], left > 0 ? left : 0);
		if (st < 0) {
			hung++;
			kill_wait(kids[i]);
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			failed++;
			printf("child %d: %s %d\n", i, WIFEXITED(st) ? "exit status" : "signal",
			       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		} else if (i == 0) {
			dumped = 1;
		}
	}
	CHECK(hung == 0, "%d children forked amid setters and CRIU calls in three threads: %d still blocked after %d s",
	      CHILDREN, hung, LIMIT_MS / 1000);
	CHECK(failed == 0, "children whose setters and CRIU calls failed: %d", failed);
	CHECK(dumped && file_contains(path_join(dir, "dump.log"), "Dumping finished successfully"),
	      "a forked child dumped a counting process with criu_dump");

	/* The parent still works after all those forks. */
	criu_init_opts();
	CHECK(criu_set_log_file("after.log") == 0 && criu_get_version() > 0,
	      "the parent's setters and criu_get_version after the forks");
	criu_local_free_opts(shared);
	kill_wait(workload);
	reap_orphans(100);
	return finish();
}
