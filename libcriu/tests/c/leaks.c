/*
 * Memory: run under valgrind (the stage script does). libcriu leaks the old copy when a
 * string option is set twice and leaves parts of the options behind in
 * criu_local_free_opts; here nothing may be lost. Also an operation and a failing one, so
 * their paths are covered.
 */
#include "harness.h"

#include <criu/criu.h>

static int notified;
static int count_notify(char *action, criu_notify_arg_t na)
{
	(void)action;
	notified += criu_notify_pid(na) >= 0;
	return 0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 200;
	char *argv_cmd[] = { "sh", "-c", "true", NULL };

	setvbuf(stdout, NULL, _IOLBF, 0);
	criu_init_opts();
	for (int i = 0; i < rounds; i++) {
		criu_set_log_file("a.log");
		criu_set_log_file("b.log");
		criu_set_root("/one");
		criu_set_root("/two");
		criu_set_parent_images("../p1");
		criu_set_parent_images("../p2");
		criu_set_freeze_cgroup("/sys/fs/cgroup/freezer/a");
		criu_set_freeze_cgroup("/sys/fs/cgroup/freezer/b");
		criu_set_lsm_profile("apparmor:a");
		criu_set_lsm_profile("apparmor:b");
		criu_set_lsm_mount_context("ctx");
		criu_set_lsm_mount_context("ctx2");
		criu_set_exec_cmd(3, argv_cmd);
		criu_set_exec_cmd(3, argv_cmd);
		criu_set_page_server_address_port("127.0.0.1", 1);
		criu_set_page_server_address_port("127.0.0.1", 2);
		criu_set_service_address("/tmp/a.sock");
		criu_set_service_binary("criu");

		criu_opts *o = NULL;
		criu_local_init_opts(&o);
		criu_local_set_log_file(o, "a.log");
		criu_local_set_log_file(o, "b.log");
		criu_local_add_ext_mount(o, "/k", "/v");
		criu_local_add_external(o, "net[1]:x");
		criu_local_add_cg_root(o, NULL, "/x");
		criu_local_add_veth_pair(o, "a", "b");
		criu_local_add_enable_fs(o, "fuse");
		criu_local_add_skip_mnt(o, "/m");
		criu_local_add_irmap_path(o, "/p");
		criu_local_add_cg_props(o, "p");
		criu_local_add_cg_props(o, "q");
		criu_local_add_cg_props_file(o, "f");
		criu_local_add_cg_dump_controller(o, "cpu");
		criu_local_add_cg_yard(o, "/y");
		criu_local_add_cg_yard(o, "/z");
		criu_local_join_ns_add(o, "net", "/proc/1/ns/net", "x");
		criu_local_add_unix_sk(o, 7);
		criu_local_set_exec_cmd(o, 3, argv_cmd);
		criu_local_init_opts(&o); /* frees the first, as libcriu */
		criu_local_free_opts(o);
	}
	criu_init_opts(); /* frees everything set above */
	int v = criu_get_version();
	criu_set_pid(0x3ffffff0);
	char *dir2 = scratch("leaks");
	int fd = open_dir(dir2);
	criu_set_images_dir_fd(fd);
	criu_set_log_file("leaks.log");
	int r = criu_dump();

	/* A real dump with notifications. */
	char *counter = path_join(dir2, "counter");
	pid_t pid = start_counter(counter);
	wait_counter(counter, 1, 5000);
	criu_set_pid(pid);
	criu_set_leave_running(true);
	criu_set_notify_cb(count_notify);
	int d = criu_dump();
	kill_wait(pid);
	free(counter);
	free(dir2);
	close(fd);
	criu_free_opts();
	CHECK(v > 0 && r == -EBADE, "%d rounds of setters, a version call (%d), a failing dump (%d)",
	      rounds, v, r);
	CHECK(d == 0 && notified >= 2, "a dump with %d notifications", notified);
	return finish();
}
