/*
 * The global functions from several threads at once: setters, criu_init_opts and
 * criu_free_opts racing each other and real CRIU calls. libcriu keeps one unguarded global
 * pointer, which one thread frees while another writes through it; here every call sees
 * either the old or the new options, never freed memory. Local handles used from several
 * threads, and two dumps running concurrently, are checked too.
 */
#include "harness.h"

#include <criu/criu.h>
#include <pthread.h>

#define THREADS 8
#define ROUNDS 300

static int want_version;
static int bad_versions, bad_setters, version_calls;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

static void *hammer(void *arg)
{
	long id = (long)arg;
	char name[64];
	for (int i = 0; i < ROUNDS; i++) {
		snprintf(name, sizeof(name), "t%ld-%d.log", id, i);
		int bad = criu_set_log_file(name) != 0 || criu_set_log_file("again.log") != 0 ||
			  criu_set_root("/") != 0 || criu_add_external("mnt[x]:y") != 0 ||
			  criu_set_freeze_cgroup("/sys/fs/cgroup/freezer/x") != 0;
		criu_set_leave_running(i & 1);
		criu_set_images_dir_fd(-1);
		if (id == 0 && i % 10 == 0)
			criu_free_opts();
		if (id == 1 && i % 10 == 5)
			criu_init_opts();
		int v = 0;
		if (i % 60 == 0)
			v = criu_get_version();
		pthread_mutex_lock(&count_lock);
		bad_setters += bad;
		if (v) {
			version_calls++;
			bad_versions += v != want_version;
		}
		pthread_mutex_unlock(&count_lock);
	}
	return NULL;
}

/* Each thread with its own handle, dumping its own process (leave running). */
struct dumper {
	pid_t pid;
	char *dir;
	int ret;
};

static void *dump_own(void *arg)
{
	struct dumper *d = arg;
	criu_opts *o = NULL;
	int fd = open_dir(d->dir);
	criu_local_init_opts(&o);
	criu_local_set_images_dir_fd(o, fd);
	criu_local_set_pid(o, d->pid);
	criu_local_set_leave_running(o, true);
	criu_local_set_log_file(o, "dump.log");
	criu_local_set_log_level(o, 4);
	d->ret = criu_local_dump(o);
	criu_local_free_opts(o);
	close(fd);
	return NULL;
}

int main(void)
{
	pthread_t t[THREADS];
	setvbuf(stdout, NULL, _IOLBF, 0);
	become_subreaper();
	want_version = cli_version();

	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, hammer, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK(bad_setters == 0, "%d threads x %d rounds of global setters, init and free: %d refused",
	      THREADS, ROUNDS, bad_setters);
	CHECK(version_calls > 0 && bad_versions == 0,
	      "%d criu_get_version calls amid the races, %d wrong", version_calls, bad_versions);

	struct dumper d[2];
	pthread_t dt[2];
	char *counters[2];
	for (int i = 0; i < 2; i++) {
		char name[32];
		snprintf(name, sizeof(name), "threads-dump%d", i);
		d[i].dir = scratch(name);
		counters[i] = path_join(d[i].dir, "counter");
		d[i].pid = start_counter(counters[i]);
		wait_counter(counters[i], 1, 5000);
	}
	for (int i = 0; i < 2; i++)
		pthread_create(&dt[i], NULL, dump_own, &d[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(dt[i], NULL);
	for (int i = 0; i < 2; i++) {
		CHECK(d[i].ret == 0 && file_contains(path_join(d[i].dir, "dump.log"),
						     "Dumping finished successfully"),
		      "concurrent dump %d with its own handle: %d", i, d[i].ret);
		kill_wait(d[i].pid);
	}
	reap_orphans(100);
	return finish();
}
