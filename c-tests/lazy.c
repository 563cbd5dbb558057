/* A lazy-pages dump served to `criu lazy-pages` and restored with `criu restore --lazy-pages`
 * on the same host:
 *  - the dump (ckpt_checkpoint with lazy-pages, a page server on 127.0.0.1 and a status fd)
 *    runs in a thread; ckpt writes '\0' to the status fd once CRIU's page server listens;
 *  - then `criu lazy-pages` connects to that page server and `criu restore --lazy-pages -d`
 *    brings the tree back, its memory fetched on demand;
 *  - the dump returns once every page is served, and CRIU kills the source tree.
 * The source stays frozen (not gone) until then, so its pids are taken: the workload runs as
 * the init of its own pid namespace, which the restore recreates with the same inner pids.
 * Not with --mount-proc: a mount namespace of its own makes CRIU 4.1.1 fail on the tree's
 * /dev/null ("Can't lookup mount"); the pid namespace alone is enough. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* CRIU's lazy page server splices through a pipe it sizes to 4 MiB (F_SETPIPE_SZ). Without
 * CAP_SYS_RESOURCE that fails above fs.pipe-max-size (1 MiB by default); CRIU 4.1.1 ignores the
 * failure and the first page request dies with "splice: -1: Bad file descriptor". */
#define CRIU_LAZY_PIPE_BYTES (4 * 1024 * 1024)
static const char PIPE_MAX[] = "/proc/sys/fs/pipe-max-size";

static long write_pipe_max(long v) {
    long old = t_read_counter(PIPE_MAX);
    FILE *f = fopen(PIPE_MAX, "w");
    if (f) {
        fprintf(f, "%ld\n", v);
        fclose(f);
    }
    return old;
}

struct dump_job {
    ckpt_opts *opts;
    pid_t pid;
    ckpt_status status;
    ckpt_error *err;
    ckpt_stats *stats;
};

static void *dump_thread(void *arg) {
    struct dump_job *j = arg;
    j->status = ckpt_checkpoint(j->opts, j->pid, &j->stats, &j->err);
    return NULL;
}

/* The single child of `pid` (unshare's child: the init of the new pid namespace). */
static pid_t child_of(pid_t pid) {
    for (int i = 0; i < 250; i++) {
        long c = t_read_counter(t_fmt("/proc/%d/task/%d/children", (int)pid, (int)pid));
        if (c > 0)
            return (pid_t)c;
        usleep(20 * 1000);
    }
    return -1;
}

static pid_t spawn_lazy_pages(const char *dir, int port) {
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        char portstr[16];
        snprintf(portstr, sizeof portstr, "%d", port);
        execlp("criu", "criu", "lazy-pages", "--page-server", "--address", "127.0.0.1", "--port",
               portstr, "-D", dir, "-v4", "-o", "lazy-pages.log", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits for a child with a deadline; returns its wait status, or -1 after killing it. */
static int wait_child(pid_t pid, int ms) {
    int st = 0;
    for (int waited = 0; waited <= ms; waited += 20) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        usleep(20 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

int main(void) {
    t_begin("lazy");
    long restore_pipe_max = -1;
    if (t_read_counter(PIPE_MAX) < CRIU_LAZY_PIPE_BYTES) {
        restore_pipe_max = write_pipe_max(CRIU_LAZY_PIPE_BYTES);
        printf("fs.pipe-max-size raised from %ld to %d for CRIU's lazy page server (this root "
               "lacks CAP_SYS_RESOURCE); restored at the end\n",
               restore_pipe_max, CRIU_LAZY_PIPE_BYTES);
    }

    char *dir = t_tmpdir("lazy"), *counter = t_counter_path(dir);
    char *loop = t_counter_script(counter), *script = NULL;
    /* setsid inside the namespace makes its init a session leader, as a container's is. */
    if (asprintf(&script, "exec unshare -pf setsid sh -c '%s'", loop) < 0)
        abort();
    pid_t unshare_pid = t_start_script(script, T_NEW_SESSION, NULL, 0);
    pid_t init = child_of(unshare_pid);
    CHECK(init > 0, "the pid namespace's init");
    CHECK(t_wait_counter_above(counter, 2, 5000) > 2, "workload runs");

    int port = t_free_port();
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    CHECK_OK(ckpt_opts_set_lazy_pages(o, true), NULL);
    CHECK_OK(ckpt_opts_set_page_server(o, t_fmt("127.0.0.1:%d", port)), NULL);
    CHECK_OK(ckpt_opts_set_status_fd(o, p[1]), NULL); /* ckpt owns p[1] from here */
    /* Bounded, so a broken run fails instead of hanging the suite. */
    CHECK_OK(ckpt_opts_set_timeout_ms(o, 60000), NULL);

    struct dump_job job = {.opts = o, .pid = init};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, dump_thread, &job) == 0, "dump thread");

    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    char byte = 1;
    bool ready = poll(&pfd, 1, 20000) == 1 && read(p[0], &byte, 1) == 1 && byte == 0;
    CHECK(ready, "'\\0' on the status fd once the lazy page server listens");
    char more;
    CHECK(read(p[0], &more, 1) == 0, "ckpt closed the status fd after writing");
    close(p[0]);
    long at_dump = t_read_counter(counter);
    usleep(200 * 1000);
    CHECK(t_read_counter(counter) == at_dump && t_alive(init),
          "the source is frozen while its pages wait to be served");

    pid_t daemon = -1;
    pid_t restored = -1;
    if (ready) {
        daemon = spawn_lazy_pages(dir, port);
        for (int i = 0; i < 250 && !t_exists(t_fmt("%s/lazy-pages.socket", dir)); i++)
            usleep(20 * 1000);
        CHECK(t_exists(t_fmt("%s/lazy-pages.socket", dir)), "criu lazy-pages is listening");
        int rc = t_sh("criu restore -D '%s' --lazy-pages -d -v4 -o restore.log --pidfile "
                      "'%s/restored.pid' </dev/null >/dev/null 2>&1",
                      dir, dir);
        CHECK(rc == 0, "criu restore --lazy-pages exited %d (see %s/restore.log)", rc, dir);
        if (rc == 0)
            restored = (pid_t)t_read_counter(t_fmt("%s/restored.pid", dir));
    } else {
        /* Let the dump fail instead of waiting for a lazy-pages daemon that never comes. */
        kill(init, SIGKILL);
    }

    pthread_join(th, NULL);
    CHECK_OK(job.status, job.err);
    uint64_t lazy = 0, written = 0;
    ckpt_stats_get(job.stats, CKPT_STAT_PAGES_LAZY, &lazy);
    ckpt_stats_get(job.stats, CKPT_STAT_PAGES_WRITTEN, &written);
    printf("dump statistics: %llu pages lazy, %llu written\n", (unsigned long long)lazy,
           (unsigned long long)written);
    if (lazy == 0)
        t_not_exercised("the pages_lazy statistic: CRIU 4.1.1 rewrites stats-dump once the "
                        "lazy pages are served, with its page counters at 0");
    ckpt_stats_free(job.stats);
    ckpt_error_free(job.err);
    CHECK(t_file_contains(t_fmt("%s/dump.log", dir), "Lazy pages transfer finished successfully"),
          "CRIU's log: lazy pages transfer finished");

    if (daemon > 0) {
        int st = wait_child(daemon, 20000);
        CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "criu lazy-pages served every page and exited 0 (status %d)", st);
    }
    CHECK(t_wait_gone(init, 5000), "CRIU killed the source once its pages were served");
    if (restored > 0) {
        CHECK(t_alive(restored), "restored tree alive");
        long r1 = t_wait_counter_above(counter, at_dump, 3000);
        long r2 = t_wait_counter_above(counter, r1, 3000);
        CHECK(r1 > at_dump && r2 > r1, "restored counter continues: %ld at the dump, then %ld, %ld",
              at_dump, r1, r2);
        printf("counter %ld at the dump, %ld and %ld after the lazy restore\n", at_dump, r1, r2);
        CHECK(t_file_contains(t_fmt("%s/lazy-pages.log", dir), "#PF"),
              "criu lazy-pages served page faults");
        t_kill(restored);
    }
    t_kill(unshare_pid);
    t_kill(init);
    t_reap();
    ckpt_opts_free(o);
    if (restore_pipe_max > 0)
        write_pipe_max(restore_pipe_max);
    t_remove_if_passed(dir, counter);
    free(loop);
    free(script);
    return t_finish("lazy");
}
