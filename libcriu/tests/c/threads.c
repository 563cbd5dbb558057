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

/* A notification callback that ends its thread, as C runtimes' code may: pthread_exit, or a
 * cancellation it enables. The process must survive (libcriu's own C code just unwinds; a Rust
 * drop-in would abort), criu must be reaped and no descriptor left open. */
static int exit_cb(char *action, criu_notify_arg_t na)
{
	(void)na;
	if (!strcmp(action, "pre-dump"))
		pthread_exit((void *)42);
	return 0;
}

static int cancel_cb(char *action, criu_notify_arg_t na)
{
	(void)na;
	if (!strcmp(action, "pre-dump")) {
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		pthread_cancel(pthread_self());
		pthread_testcancel();
	}
	return 0;
}

static void *dump_with_cb(void *arg)
{
	struct dumper *d = arg;
	criu_opts *o = NULL;
	int fd = open_dir(d->dir);
	criu_local_init_opts(&o);
	criu_local_set_images_dir_fd(o, fd);
	criu_local_set_pid(o, d->pid);
	criu_local_set_leave_running(o, true);
	criu_local_set_log_file(o, "dump.log");
	criu_local_set_notify_cb(o, d->ret ? cancel_cb : exit_cb);
	d->ret = criu_local_dump(o);
	/* Not reached: the callback ended the thread. */
	criu_local_free_opts(o);
	close(fd);
	return (void *)7;
}

static void thread_ending_callbacks(void)
{
	static const char *const what[] = { "pthread_exit", "a self-cancel" };
	for (int i = 0; i < 2; i++) {
		struct dumper d = { 0 };
		char name[32];
		snprintf(name, sizeof(name), "threads-exit%d", i);
		d.dir = scratch(name);
		char *counter = path_join(d.dir, "counter");
		d.pid = start_counter(counter);
		wait_counter(counter, 1, 5000);
		d.ret = i; /* which callback */
		int fds = count_fds();
		pthread_t t;
		void *ret = NULL;
		pthread_create(&t, NULL, dump_with_cb, &d);
		pthread_join(t, &ret);
		void *want = i ? PTHREAD_CANCELED : (void *)42;
		CHECK(ret == want, "a callback ending its thread with %s: the thread returned %p", what[i],
		      ret);
		reap_orphans(100);
		long v = read_counter(counter);
		/* The handle the dead thread held is not freed: one fd (the images dir) stays. */
		CHECK(count_fds() <= fds + 1 && wait_counter(counter, v, 5000) > v,
		      "after %s in a callback: %d fds (%d before), the workload still counts", what[i],
		      count_fds(), fds);
		kill_wait(d.pid);
	}
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
	thread_ending_callbacks();
	return finish();
}
