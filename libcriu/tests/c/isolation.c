/*
 * What starting criu costs and shares. libcriu forks the caller (copying its page tables, so
 * a call gets slower as the caller grows) and criu inherits every descriptor the caller did
 * not mark close-on-exec. Here criu is started with posix_spawn, receives only its socket
 * (and the fds a restore asks for), and every descriptor the library itself opens is
 * close-on-exec, so no other child of the caller inherits one either.
 */
#include "harness.h"

#include <criu/criu.h>
#include <sys/mman.h>
#include <sys/resource.h>

static char canary_path[4096];
static int canary_fd;
static int base_fds[1024], n_base;
static int leaks_in_caller, criu_seen, criu_has_canary;

static int in_base(int fd)
{
	for (int i = 0; i < n_base; i++)
		if (base_fds[i] == fd)
			return 1;
	return 0;
}

static void snapshot_fds(void)
{
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	n_base = 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d) && n_base < 1024)
			base_fds[n_base++] = atoi(e->d_name);
	closedir(d);
}

/* criu: the child of ours whose command is criu. */
static pid_t find_criu(void)
{
	char path[64], buf[4096] = "";
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", getpid(), getpid());
	FILE *f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
		char comm[64] = "";
		snprintf(path, sizeof(path), "/proc/%s/comm", tok);
		FILE *c = fopen(path, "r");
		if (c && fgets(comm, sizeof(comm), c) && !strncmp(comm, "criu", 4)) {
			fclose(c);
			return atoi(tok);
		}
		if (c)
			fclose(c);
	}
	return -1;
}

/* During the dump: look at our descriptors and at criu's. */
static int inspect(char *action, criu_notify_arg_t na)
{
	(void)na;
	if (strcmp(action, "pre-dump"))
		return 0;
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	int dfd = dirfd(d);
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == dfd || in_base(fd))
			continue;
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC)) {
			leaks_in_caller++;
			printf("     fd %d opened by the library is not close-on-exec\n", fd);
		}
	}
	closedir(d);

	pid_t criu = find_criu();
	if (criu < 0)
		return 0;
	criu_seen = 1;
	char dir[64], link[4200], target[4096];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", criu);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = 0;
		if (!strcmp(target, canary_path))
			criu_has_canary = 1;
	}
	if (d)
		closedir(d);
	return 0;
}

/* Median time of five criu_get_version calls, in ms. */
static long minor_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static double version_ms(void)
{
	double t[5];
	for (int i = 0; i < 5; i++) {
		double s = now_ms();
		if (criu_get_version() <= 0)
			die("criu_get_version");
		t[i] = now_ms() - s;
	}
	for (int i = 0; i < 5; i++)
		for (int j = i + 1; j < 5; j++)
			if (t[j] < t[i]) {
				double x = t[i];
				t[i] = t[j];
				t[j] = x;
			}
	return t[2];
}

int main(int argc, char **argv)
{
	char *dir = scratch("isolation"), *counter = path_join(dir, "counter");
	size_t big = (size_t)(argc > 1 ? atoi(argv[1]) : 1024) << 20;
	pid_t pid;
	int fd, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	become_subreaper();
	snprintf(canary_path, sizeof(canary_path), "%s/canary", dir);
	canary_fd = open(canary_path, O_CREAT | O_RDWR, 0600); /* deliberately inheritable */
	pid = start_counter(counter);
	wait_counter(counter, 1, 5000);

	fd = open_dir(dir);
	criu_init_opts();
	criu_set_images_dir_fd(fd);
	criu_set_pid(pid);
	criu_set_leave_running(true);
	criu_set_log_file("dump.log");
	criu_set_notify_cb(inspect);
	snapshot_fds();
	r = criu_dump();
	CHECK(r == 0 && criu_seen, "dump with a callback that inspects descriptors: %d", r);
	CHECK(leaks_in_caller == 0, "every descriptor the library opened is close-on-exec");
	CHECK(!criu_has_canary, "criu did not inherit the caller's inheritable descriptor %d",
	      canary_fd);
	kill_wait(pid);

	criu_init_opts();
	double small = version_ms();
	char *mem = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap %zu MiB", big >> 20);
	memset(mem, 1, big);
	double large = version_ms();
	/* Wall time only informs: under load it moves more than a copy costs. The proof is the
	 * memory itself: a fork write-protects every page of it (or every huge page), so writing
	 * it again afterwards faults at least once per 2 MiB; spawned without a copy, it does not
	 * fault at all. */
	long before = minor_faults();
	memset(mem, 2, big);
	long faults = minor_faults() - before;
	printf("     criu_get_version: %.2f ms from a small caller, %.2f ms with %zu MiB resident; "
	       "%ld page faults rewriting it afterwards\n",
	       small, large, big >> 20, faults);
	CHECK(faults < (long)(big >> 21) / 8,
	      "starting criu does not copy the caller: %ld page faults rewriting its %zu MiB after "
	      "5 starts (a copy write-protects them: at least %zu)",
	      faults, big >> 20, big >> 21);
	munmap(mem, big);
	reap_orphans(100);
	return finish();
}
