/* A caller at its descriptor limit (RLIMIT_NOFILE): every operation that runs out of
 * descriptors inside ckpt says so (CKPT_ERR_IO naming EMFILE), never CKPT_ERR_BAD_FD, which
 * would blame a descriptor the caller passed. The table is filled with /dev/null up to the
 * limit, then 0, 1, 2, ... descriptors are freed before each operation until it succeeds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "helpers.h"

#define LIMIT 256

static int fillers[LIMIT];
static int nfillers;

/* Opens /dev/null until the table is full. */
static void fill(void) {
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
        fillers[nfillers++] = fd;
    }
}

/* Frees `k` descriptors (the lowest numbers, which ckpt's next open takes). */
static void free_some(int k) {
    for (int i = 0; i < k && nfillers > 0; i++)
        close(fillers[--nfillers]);
}

static void release_all(void) {
    while (nfillers > 0)
        close(fillers[--nfillers]);
}

/* One operation at the limit with `k` descriptors free: its status and message. */
typedef ckpt_status (*op_fn)(void *arg, ckpt_error **err);

static ckpt_status op_version(void *arg, ckpt_error **err) {
    (void)arg;
    int32_t v = 0;
    return ckpt_criu_version(NULL, &v, err);
}

struct dump_arg {
    ckpt_opts *o;
    pid_t pid;
};

static ckpt_status op_dump(void *arg, ckpt_error **err) {
    struct dump_arg *d = arg;
    return ckpt_checkpoint(d->o, d->pid, NULL, err);
}

/* Runs `op` with 0, 1, 2, ... descriptors free until it succeeds. */
static void at_the_limit(const char *what, op_fn op, void *arg) {
    int succeeded_at = -1, io_failures = 0;
    for (int k = 0; k <= 24 && succeeded_at < 0; k++) {
        fill();
        free_some(k);
        ckpt_error *err = NULL;
        ckpt_status st = op(arg, &err);
        release_all();
        const char *m = ckpt_error_message(err);
        if (st == CKPT_OK) {
            succeeded_at = k;
        } else {
            CHECK(st != CKPT_ERR_BAD_FD, "%s with %d fds free: BAD_FD blames the caller: %s", what,
                  k, m ? m : "(none)");
            CHECK_ST(st, CKPT_ERR_IO, "%s with %d fds free: %s", what, k, m ? m : "(none)");
            CHECK(m && (strstr(m, "EMFILE") || strstr(m, "Too many open files")),
                  "%s with %d fds free: the message names EMFILE: %s", what, k, m ? m : "(none)");
            if (k == 3 || k == 4)
                printf("%s with %d fds free: %s: %s\n", what, k, ckpt_status_str(st),
                       m ? m : "(none)");
            io_failures++;
        }
        ckpt_error_free(err);
    }
    CHECK(succeeded_at > 0, "%s succeeds once enough descriptors are free", what);
    printf("%s: CKPT_ERR_IO naming EMFILE with 0..%d fds free, success with %d\n", what,
           succeeded_at - 1, succeeded_at);
    (void)io_failures;
}

int main(void) {
    t_begin("fd_limit");
    char *dir, *counter;
    pid_t pid = t_start_workload("fd-limit", &dir, &counter);
    ckpt_opts *o = t_opts_leave_running(dir);

    struct rlimit old;
    getrlimit(RLIMIT_NOFILE, &old);
    struct rlimit low = {LIMIT, old.rlim_max};
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0, "setrlimit: %s", strerror(errno));

    at_the_limit("version", op_version, NULL);
    struct dump_arg d = {o, pid};
    at_the_limit("checkpoint", op_dump, &d);

    printf("-- ckpt_opts_add_inherit_fd with the table full\n");
    ckpt_opts *o2 = ckpt_opts_new();
    fill();
    ckpt_status st = ckpt_opts_add_inherit_fd(o2, "fd:0", 0);
    release_all();
    const char *m = ckpt_opts_last_error(o2);
    CHECK_ST(st, CKPT_ERR_IO, "inherit fd 0 with no descriptor free: %s", m ? m : "(none)");
    CHECK(m && strstr(m, "EMFILE"), "the message names EMFILE: %s", m ? m : "(none)");
    printf("inherit fd with the table full: %s: %s\n", ckpt_status_str(st), m ? m : "(none)");
    ckpt_opts_free(o2);

    setrlimit(RLIMIT_NOFILE, &old);
    ckpt_opts_free(o);
    t_kill(pid);
    t_remove(dir, counter);
    return t_finish("fd_limit");
}
