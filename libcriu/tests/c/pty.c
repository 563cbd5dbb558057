/*
 * The orphaned pty master: a process on a pty is dumped with orphan_pts_master; on restore
 * CRIU creates a new pty pair and sends its master with the `orphan-pts-master`
 * notification, which the callback takes with criu_get_orphan_pts_master_fd() (as crun does
 * to pass it to its console socket). The restored process then talks through that master.
 */
#include "harness.h"

#include <criu/criu.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <termios.h>

static int master_in_cb = -1;
static int cb_calls;

static int on_notify(char *action, criu_notify_arg_t na)
{
	(void)na;
	if (!strcmp(action, "orphan-pts-master")) {
		cb_calls++;
		master_in_cb = criu_get_orphan_pts_master_fd();
	}
	return 0;
}

static void *other_thread(void *arg)
{
	*(int *)arg = criu_get_orphan_pts_master_fd();
	return NULL;
}

static void write_line(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		die("write to the pty");
}

/* Reads from `fd` until `want` appears (or 5 s pass). */
static int read_until(int fd, const char *want)
{
	char buf[4096] = "";
	size_t n = 0;
	double end = now_ms() + 5000;
	while (now_ms() < end && !strstr(buf, want)) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			break;
		n += r;
		buf[n] = 0;
	}
	return strstr(buf, want) != NULL;
}

int main(void)
{
	char *dir = scratch("pty"), *img = path_join(dir, "img");
	int master, slave_fd, fd, r, st;
	char *slave;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	become_subreaper();
	mkdir(img, 0700);
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) || unlockpt(master) || !(slave = ptsname(master)))
		die("posix_openpt");
	pid = fork();
	if (pid == 0) {
		setsid();
		die_with_parent();
		slave_fd = open(slave, O_RDWR);
		if (slave_fd < 0 || ioctl(slave_fd, TIOCSCTTY, 0))
			_exit(126);
		dup2(slave_fd, 0);
		dup2(slave_fd, 1);
		dup2(slave_fd, 2);
		closefrom(3);
		execl("/bin/sh", "sh", "-c", "i=0; while read l; do i=$((i+1)); echo \"n=$i $l\"; done",
		      (char *)NULL);
		_exit(127);
	}
	write_line(master, "one\n");
	CHECK(read_until(master, "n=1 one"), "the workload answers on its pty");

	fd = open_dir(img);
	criu_init_opts();
	criu_set_images_dir_fd(fd);
	criu_set_pid(pid);
	criu_set_log_file("dump.log");
	criu_set_log_level(4);
	criu_set_orphan_pts_master(true);
	r = criu_dump();
	st = wait_exit(pid, 5000);
	CHECK(r == 0 && st != -1, "dumped with orphan_pts_master: %d", r);
	reap_orphans(200);
	close(master);

	criu_init_opts();
	criu_set_images_dir_fd(fd);
	criu_set_log_file("restore.log");
	criu_set_log_level(4);
	criu_set_orphan_pts_master(true);
	criu_set_notify_cb(on_notify);
	r = criu_restore_child();
	CHECK(r == pid, "criu_restore_child = %d (the dumped pid %d)", r, pid);
	CHECK(cb_calls == 1 && master_in_cb >= 0,
	      "criu_get_orphan_pts_master_fd() inside the callback gave fd %d", master_in_cb);
	CHECK(criu_get_orphan_pts_master_fd() == master_in_cb,
	      "criu_get_orphan_pts_master_fd() after the call gives the same fd");
	int in_other = -2;
	pthread_t t;
	if (pthread_create(&t, NULL, other_thread, &in_other) || pthread_join(t, NULL))
		die("pthread");
	CHECK(in_other == -1,
	      "another thread's criu_get_orphan_pts_master_fd() gives -1 (%d): the master is the "
	      "calling thread's, not process-wide as in libcriu",
	      in_other);
	CHECK(fcntl(master_in_cb, F_GETFD) == FD_CLOEXEC,
	      "the master is open and close-on-exec (no leak into other children)");
	write_line(master_in_cb, "two\n");
	CHECK(read_until(master_in_cb, "n=2 two"), "the restored process answers on the new master");
	close(master_in_cb);
	kill_wait(pid);
	reap_orphans(100);
	return finish();
}
