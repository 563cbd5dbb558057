/*
 * crun loads libcriu.so.2 with dlopen for every checkpoint or restore and unloads it after.
 * 100 cycles of dlopen / use (options set, including strings set twice and a local handle,
 * a real CRIU call, sometimes from a thread that exits before dlclose) / dlclose, leaving the
 * global options set as crun does. After each dlclose the library must really be gone (not
 * pinned by thread-local destructors or exit handlers); after all of them no descriptor, child
 * or significant memory may be left behind. The library's fork handlers must work while it is
 * loaded and be gone once it is unloaded: a fork after dlclose that ran them would jump into
 * unmapped code.
 */
#include "harness.h"

#include <criu/criu.h>
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>

#define CYCLES 100

struct api {
	int (*init_opts)(void);
	int (*set_log_file)(const char *);
	int (*set_root)(const char *);
	void (*set_leave_running)(bool);
	int (*get_version)(void);
	int (*local_init_opts)(criu_opts **);
	int (*local_set_root)(criu_opts *, const char *);
	void (*local_free_opts)(criu_opts *);
	int (*get_orphan_pts_master_fd)(void);
};

static void *need(void *h, const char *name)
{
	void *p = dlsym(h, name);
	if (!p)
		die("dlsym %s: %s", name, dlerror());
	return p;
}

/* Forks; the child calls set_log_file when given one. Whether the child exited with 0. */
static int fork_ok(int (*set_log_file)(const char *))
{
	int st;
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		_exit(set_log_file && set_log_file("child.log") != 0 ? 1 : 0);
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void *version_in_thread(void *arg)
{
	struct api *a = arg;
	return (void *)(long)a->get_version();
}

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = atol(line + 6);
	if (f)
		fclose(f);
	return kib;
}

static int mapped(const char *path)
{
	char line[4096];
	int found = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, path))
			found = 1;
	if (f)
		fclose(f);
	return found;
}

int main(void)
{
	int fds_before = count_fds(), bad_version = 0, still_loaded = 0, thread_bad = 0, bad_forks = 0;
	char lib_path[4096] = "";
	long rss_after_first = 0, rss_end;
	int want = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < CYCLES; i++) {
		void *h = dlopen("libcriu.so.2", RTLD_NOW | RTLD_LOCAL);
		if (!h)
			die("dlopen libcriu.so.2: %s", dlerror());
		if (!lib_path[0]) {
			struct link_map *lm;
			dlinfo(h, RTLD_DI_LINKMAP, &lm);
			snprintf(lib_path, sizeof(lib_path), "%s", lm->l_name);
			printf("loaded %s\n", lib_path);
		}
		struct api a = {
			.init_opts = need(h, "criu_init_opts"),
			.set_log_file = need(h, "criu_set_log_file"),
			.set_root = need(h, "criu_set_root"),
			.set_leave_running = need(h, "criu_set_leave_running"),
			.get_version = need(h, "criu_get_version"),
			.local_init_opts = need(h, "criu_local_init_opts"),
			.local_set_root = need(h, "criu_local_set_root"),
			.local_free_opts = need(h, "criu_local_free_opts"),
			.get_orphan_pts_master_fd = need(h, "criu_get_orphan_pts_master_fd"),
		};
		a.init_opts();
		a.set_log_file("dump.log");
		a.set_log_file("restore.log");
		a.set_root("/");
		a.set_leave_running(true);
		criu_opts *o = NULL;
		a.local_init_opts(&o);
		a.local_set_root(o, "/a");
		a.local_set_root(o, "/b");
		a.local_free_opts(o);
		a.get_orphan_pts_master_fd();
		bad_forks += !fork_ok(a.set_log_file);
		int v = a.get_version();
		if (!want)
			want = v;
		bad_version += v != want || v <= 0;
		if (i % 10 == 0) {
			pthread_t t;
			void *ret;
			pthread_create(&t, NULL, version_in_thread, &a);
			pthread_join(t, &ret);
			thread_bad += (long)ret != want;
		}
		/* no criu_free_opts: crun does not call it either */
		if (dlclose(h))
			die("dlclose: %s", dlerror());
		if (dlopen("libcriu.so.2", RTLD_NOW | RTLD_NOLOAD) || mapped(lib_path))
			still_loaded++;
		bad_forks += !fork_ok(NULL);
		if (i == 0)
			rss_after_first = rss_kib();
	}
	rss_end = rss_kib();
	CHECK(bad_version == 0 && want > 0, "%d cycles: criu_get_version = %d every time", CYCLES,
	      want);
	CHECK(thread_bad == 0, "calls from a thread that exited before dlclose worked");
	CHECK(still_loaded == 0, "after every dlclose the library was unmapped (%d times it stayed)",
	      still_loaded);
	CHECK(bad_forks == 0, "a fork while loaded and one after each dlclose: %d failed", bad_forks);
	CHECK(count_fds() == fds_before, "descriptors: %d before, %d after", fds_before, count_fds());
	errno = 0;
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "no child left behind");
	CHECK(rss_end - rss_after_first < 4096, "resident memory after cycle 1: %ld KiB, after %d: %ld KiB",
	      rss_after_first, CYCLES, rss_end);
	return finish();
}
