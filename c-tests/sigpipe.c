/* ckpt never raises SIGPIPE in its caller. This program keeps SIGPIPE's default disposition
 * (death), as a C program does unless it changes it, and gives ckpt peers that are gone:
 *  - a status fd whose reader is closed, written when CRIU's lazy page server listens: the
 *    dump fails with CKPT_ERR_IO naming EPIPE, the workload runs on, the caller lives;
 *  - the same with a SIGPIPE of the caller's own already pending (blocked): ckpt leaves it
 *    pending rather than consuming it;
 *  - a console socket whose peer accepts and closes at once, for the pty master of a restore:
 *    the send fails with EPIPE (when the peer is fast enough to close first) or succeeds, and
 *    the caller lives either way. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "helpers.h"

static bool sigpipe_pending(void) {
    sigset_t s;
    sigemptyset(&s);
    sigpending(&s);
    return sigismember(&s, SIGPIPE) == 1;
}

/* A lazy dump of a counter with a status fd whose reader is gone. */
static void status_fd_reader_gone(bool caller_has_one_pending) {
    printf("-- status fd whose reader is gone%s\n",
           caller_has_one_pending ? ", with a SIGPIPE of the caller's pending" : "");
    char *dir, *counter;
    pid_t pid = t_start_workload("sigpipe-status", &dir, &counter);
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
    close(p[0]);
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    CHECK_OK(ckpt_opts_set_lazy_pages(o, true), NULL);
    CHECK_OK(ckpt_opts_set_page_server(o, t_fmt("127.0.0.1:%d", t_free_port())), NULL);
    CHECK_OK(ckpt_opts_set_status_fd(o, p[1]), NULL);
    CHECK_OK(ckpt_opts_set_timeout_ms(o, 60000), NULL);

    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    if (caller_has_one_pending) {
        pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
        raise(SIGPIPE);
        CHECK(sigpipe_pending(), "the caller's SIGPIPE is pending before the call");
    }
    ckpt_error *err = NULL;
    ckpt_status st = ckpt_checkpoint(o, pid, NULL, &err);
    const char *m = ckpt_error_message(err);
    printf("lazy dump with a gone status-fd reader: %s: %s\n", ckpt_status_str(st),
           m ? m : "(none)");
    CHECK_ST(st, CKPT_ERR_IO, "the write to the status fd fails: %s", m ? m : "(none)");
    CHECK(m && strstr(m, "status fd") && strstr(m, "EPIPE"), "the message names it: %s",
          m ? m : "(none)");
    if (caller_has_one_pending) {
        CHECK(sigpipe_pending(), "the caller's own SIGPIPE is still pending after the call");
        int sig = 0;
        sigwait(&pipe_set, &sig);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    } else {
        CHECK(!sigpipe_pending(), "no SIGPIPE left pending by ckpt");
    }
    long at = t_read_counter(counter);
    CHECK(t_wait_counter_above(counter, at, 3000) > at, "the workload runs on");
    ckpt_error_free(err);
    ckpt_opts_free(o);
    t_kill(pid);
    t_remove(dir, counter);
}

/* ---- the console socket ---- */

struct closer {
    int listen_fd;
    volatile bool stop;
    int accepted;
};

/* Accepts each connection and closes it at once, until told to stop. */
static void *accept_and_close(void *arg) {
    struct closer *c = arg;
    while (!c->stop) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            c->accepted++;
        }
    }
    return NULL;
}

/* A shell on a new pty, in its own session with the pty as its controlling terminal. */
static pid_t shell_on_pty(int *master) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0)
        return -1;
    char *slave = ptsname(m);
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int s = open(slave, O_RDWR);
        if (s < 0)
            _exit(127);
        ioctl(s, TIOCSCTTY, 0);
        dup2(s, 0);
        dup2(s, 1);
        dup2(s, 2);
        /* Nothing else of the test's goes with the shell: under valgrind that would be the log
         * file, which keeps growing after the dump and fails the restore's size check. */
        closefrom(3);
        execl("/bin/sh", "sh", "-c", "while read l; do echo \"got $l\"; done", (char *)NULL);
        _exit(127);
    }
    *master = m;
    return pid;
}

static void console_peer_closes_at_once(void) {
    printf("-- console socket whose peer accepts and closes at once\n");
    char *dir = t_tmpdir("sigpipe-console");
    int master = -1;
    pid_t pid = shell_on_pty(&master);
    CHECK(pid > 0, "a shell on a pty");
    /* The shell must be blocked in read before it is dumped. */
    for (int i = 0; i < 250; i++) {
        char *st = t_read_file(t_fmt("/proc/%d/stat", (int)pid));
        bool sleeping = st && strstr(st, ") S ");
        free(st);
        if (sleeping)
            break;
        usleep(20 * 1000);
    }
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    CHECK_OK(ckpt_opts_set_orphan_pts_master(o, true), NULL);
    ckpt_error *err = NULL;
    CHECK_OK(ckpt_checkpoint(o, pid, NULL, &err), err);
    ckpt_error_free(err);
    ckpt_opts_free(o);
    waitpid(pid, NULL, 0);
    close(master);

    char *sock_path = NULL;
    if (asprintf(&sock_path, "%s/console.sock", dir) < 0)
        abort();
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock_path);
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 16) == 0,
          "console socket listens: %s", strerror(errno));
    struct closer c = {.listen_fd = l};
    pthread_t th;
    pthread_create(&th, NULL, accept_and_close, &c);

    int epipe = 0, sent = 0, other = 0;
    for (int round = 0; round < 20 && epipe < 3; round++) {
        ckpt_opts *r = ckpt_opts_new();
        CHECK_OK(ckpt_opts_set_image_path(r, dir), NULL);
        CHECK_OK(ckpt_opts_set_console_socket(r, sock_path), NULL);
        CHECK_OK(ckpt_opts_set_timeout_ms(r, 30000), NULL);
        pid_t restored = -1;
        ckpt_error *e = NULL;
        ckpt_status st = ckpt_restore(r, &restored, NULL, &e);
        const char *m = ckpt_error_message(e);
        if (st == CKPT_OK) {
            sent++;
            t_kill(restored);
        } else if (st == CKPT_ERR_IO && m && (strstr(m, "EPIPE") || strstr(m, "ECONNRESET"))) {
            if (epipe == 0)
                printf("console peer gone: %s: %s\n", ckpt_status_str(st), m);
            epipe++;
        } else {
            /* Nothing else may come of it. Before ckpt held its own copy of the master until
             * CRIU answered, the peer's close hung the terminal up under CRIU, which then
             * could not open the slave, saw the root stop (SIGTRAP), or waited for ever. */
            other++;
            CHECK(false, "round %d: %s: %s", round, ckpt_status_str(st), m ? m : "(none)");
        }
        ckpt_error_free(e);
        ckpt_opts_free(r);
        /* The restored (or half-restored, then killed) tree's pid must be free again: reap
         * what comes to us as subreaper until /proc has no such pid. */
        for (int i = 0; i < 500 && t_exists(t_fmt("/proc/%d", (int)pid)); i++) {
            t_reap();
            usleep(10 * 1000);
        }
    }
    c.stop = true;
    shutdown(l, SHUT_RDWR);
    pthread_join(th, NULL);
    close(l);
    printf("console peer closing at once: %d restores failed with EPIPE/ECONNRESET, %d sent "
           "before the close, %d otherwise; the caller lives\n",
           epipe, sent, other);
    CHECK(!sigpipe_pending(), "no SIGPIPE left pending by ckpt");
    if (epipe == 0)
        t_not_exercised("a console peer closing before ckpt's send (it never won the race in "
                        "20 restores)");
    free(sock_path);
    t_remove(dir, NULL);
}

int main(void) {
    t_begin("sigpipe");
    /* C's default: SIGPIPE kills. ckpt must never let it. */
    signal(SIGPIPE, SIG_DFL);
    status_fd_reader_gone(false);
    status_fd_reader_gone(true);
    console_peer_closes_at_once();
    return t_finish("sigpipe");
}
