/* Which way ckpt watches criu in this run: through a pidfd (pidfd_open; signals with
 * pidfd_send_signal, waits with waitid(P_PIDFD)), or, where pidfd_open fails, by pid with
 * waitpid. A notification callback looks for the pidfd among this process's descriptors while
 * criu runs. A plain run and the AddressSanitizer run (scripts/test.d/50-faults.sh) must take
 * the pidfd path. valgrind 3.19 does not know pidfd_open (it returns ENOSYS), so under valgrind
 * (CKPT_CTEST_VALGRIND) ckpt must take the waitpid path and still succeed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

/* Whether one of this process's descriptors is a pidfd. */
static bool holds_a_pidfd(void) {
    DIR *d = opendir("/proc/self/fd");
    bool found = false;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char link[256] = "";
        ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
        if (n > 0 && strcmp(link, "anon_inode:[pidfd]") == 0)
            found = true;
    }
    if (d)
        closedir(d);
    return found;
}

static int seen_pidfd = -1;

static int look(void *userdata, const ckpt_notification *n) {
    (void)userdata;
    if (strcmp(ckpt_notification_script(n), "pre-dump") == 0)
        seen_pidfd = holds_a_pidfd();
    return 0;
}

int main(void) {
    t_begin("pidfd");
    bool valgrind = getenv("CKPT_CTEST_VALGRIND") != NULL;
    char *dir, *counter;
    pid_t pid = t_start_workload("pidfd", &dir, &counter);
    ckpt_opts *o = t_opts_leave_running(dir);
    CHECK_OK(ckpt_opts_set_notify(o, look, NULL), NULL);
    CHECK(!holds_a_pidfd(), "no pidfd before the call");
    ckpt_error *err = NULL;
    CHECK_OK(ckpt_checkpoint(o, pid, NULL, &err), err);
    ckpt_error_free(err);
    CHECK(seen_pidfd >= 0, "the pre-dump notification came");
    CHECK(!holds_a_pidfd(), "no pidfd after the call");
    if (valgrind) {
        CHECK(seen_pidfd == 0, "under valgrind ckpt watches criu by pid (no pidfd_open)");
        t_not_exercised("the pidfd path under valgrind 3.19 (it does not know pidfd_open); "
                        "ckpt used waitpid, and the plain and AddressSanitizer runs of this "
                        "test check the pidfd path");
    } else {
        CHECK(seen_pidfd == 1, "ckpt watches criu through a pidfd while it runs");
    }
    printf("criu watched through %s\n", seen_pidfd == 1 ? "a pidfd" : "its pid (waitpid)");
    ckpt_opts_free(o);
    t_kill(pid);
    t_remove(dir, counter);
    return t_finish("pidfd");
}
