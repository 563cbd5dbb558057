/* A caller that is a child subreaper (PR_SET_CHILD_SUBREAPER, as container runtimes and
 * their shims are; t_begin makes every C test one) and ckpt_page_server_start. The page
 * server is forked from criu; once criu exits, the kernel hands it to the nearest subreaper:
 * this caller. So, as docs/restore.md says:
 *  - a running page server is the caller's child: it exits after the dump that feeds it and
 *    the caller reaps it (exit status 0);
 *  - a page server that fails to start (its port is taken) is a zombie child of the caller
 *    when ckpt returns the failure, and the caller reaps it.
 * Without a subreaper, init adopts and reaps both.
 * A subreaper also adopts what other programs leave, another criu's helper among them: a dump
 * whose criu dies leaves such a child alone (docs/guarantees.md, "Timeouts and failed
 * restores"; only a restore's criu makes children of the calling thread). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* The parent pid /proc shows for `pid`, -1 when it has none. */
static pid_t parent_of(pid_t pid) {
    char *st = t_read_file(t_fmt("/proc/%d/stat", (int)pid));
    if (!st)
        return -1;
    char *after = strrchr(st, ')');
    char state = 0;
    int ppid = -1;
    if (after)
        sscanf(after + 1, " %c %d", &state, &ppid);
    free(st);
    return ppid;
}

/* This process's children that are zombies named criu. */
static int criu_zombies(pid_t *first) {
    char *kids = t_read_file(t_fmt("/proc/%d/task/%d/children", (int)getpid(), (int)getpid()));
    int n = 0;
    char *save = NULL;
    for (char *tok = kids ? strtok_r(kids, " \n", &save) : NULL; tok;
         tok = strtok_r(NULL, " \n", &save)) {
        pid_t p = atoi(tok);
        char *st = t_read_file(t_fmt("/proc/%d/stat", (int)p));
        if (st && strstr(st, "(criu) Z")) {
            if (n++ == 0 && first)
                *first = p;
        }
        free(st);
    }
    free(kids);
    return n;
}

static void running_server(void) {
    printf("-- a running page server, then a dump to it\n");
    char *dir = t_tmpdir("subreaper-ps"), *counter = t_counter_path(dir);
    char *srv = NULL, *img = NULL;
    if (asprintf(&srv, "%s/server", dir) < 0 || asprintf(&img, "%s/img", dir) < 0)
        abort();
    ckpt_opts *s = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(s, srv), NULL);
    CHECK_OK(ckpt_opts_set_page_server(s, t_fmt("127.0.0.1:%d", t_free_port())), NULL);
    int32_t spid = 0, port = 0;
    ckpt_error *err = NULL;
    CHECK_OK(ckpt_page_server_start(s, &spid, &port, &err), err);
    ckpt_error_free(err);
    CHECK(parent_of(spid) == getpid(), "the running page server %d is the caller's child "
          "(parent %d)", spid, parent_of(spid));

    pid_t pid = t_start_counter(counter);
    ckpt_opts *o = t_opts_leave_running(img);
    CHECK_OK(ckpt_opts_set_page_server(o, t_fmt("127.0.0.1:%d", port)), NULL);
    err = NULL;
    CHECK_OK(ckpt_checkpoint(o, pid, NULL, &err), err);
    ckpt_error_free(err);
    int status = -1;
    pid_t w = waitpid(spid, &status, 0);
    CHECK(w == spid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the caller reaps the page server after the dump: waitpid %d, status %#x", w, status);
    printf("page server %d: the caller's child, reaped after the dump (exit %d)\n", spid,
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    t_kill(pid);
    ckpt_opts_free(o);
    ckpt_opts_free(s);
    free(srv);
    free(img);
    t_remove(dir, counter);
}

static void failed_server(void) {
    printf("-- a page server whose port is taken\n");
    char *dir = t_tmpdir("subreaper-taken");
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0 &&
              getsockname(l, (struct sockaddr *)&a, &len) == 0,
          "a listener takes a port: %s", strerror(errno));
    ckpt_opts *s = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(s, dir), NULL);
    CHECK_OK(ckpt_opts_set_page_server(s, t_fmt("127.0.0.1:%d", ntohs(a.sin_port))), NULL);
    int32_t spid = 0, port = 0;
    ckpt_error *err = NULL;
    ckpt_status st = ckpt_page_server_start(s, &spid, &port, &err);
    const char *m = ckpt_error_message(err);
    printf("page server on a taken port: %s: %s\n", ckpt_status_str(st), m ? m : "(none)");
    CHECK_ST(st, CKPT_ERR_CRIU, "the page server fails: %s", m ? m : "(none)");
    pid_t zombie = -1;
    int n = 0;
    for (int i = 0; i < 100 && (n = criu_zombies(&zombie)) == 0; i++)
        usleep(10 * 1000);
    CHECK(n == 1, "the failed page server is a zombie child of the caller (%d found)", n);
    if (n > 0) {
        int status = -1;
        CHECK(waitpid(zombie, &status, WNOHANG) == zombie, "the caller reaps it");
        printf("failed page server %d: a zombie child of the caller, reaped (exit %d)\n",
               zombie, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    ckpt_error_free(err);
    ckpt_opts_free(s);
    close(l);
    t_remove(dir, NULL);
}

/* A child of this thread that runs criu (comm "criu"), other than `not`; -1 when none. */
static pid_t criu_child(pid_t not) {
    char *kids = t_read_file(t_fmt("/proc/%d/task/%d/children", (int)getpid(), (int)getpid()));
    pid_t found = -1;
    char *save = NULL;
    for (char *tok = kids ? strtok_r(kids, " \n", &save) : NULL; tok && found < 0;
         tok = strtok_r(NULL, " \n", &save)) {
        pid_t p = atoi(tok);
        char *comm = t_read_file(t_fmt("/proc/%d/comm", (int)p));
        if (p != not && comm && strcmp(comm, "criu\n") == 0)
            found = p;
        free(comm);
    }
    free(kids);
    return found;
}

struct stray {
    const char *marker; /* the action script writes its pid there once criu waits for it */
    pid_t criu, pid;    /* the dump's criu (killed), the stray criu-like process */
};

/* Waits for criu to sit in its pre-dump action script, then makes a stray: criu's program,
 * titled "criu: stray" as CRIU titles itself, started after the dump's criu and adopted by
 * this process (its launcher exits), as a helper another criu left behind is adopted by a
 * runtime that is a subreaper. It waits for a request on a socket whose peer it holds itself,
 * so it runs until killed. Then kills the dump's criu, as the OOM killer might. */
static void *make_stray_then_kill_criu(void *arg) {
    struct stray *s = arg;
    for (int i = 0; i < 3000 && !t_exists(s->marker); i++)
        usleep(10 * 1000);
    s->criu = criu_child(-1);
    char exe[PATH_MAX] = "";
    ssize_t n = s->criu > 0 ? readlink(t_fmt("/proc/%d/exe", (int)s->criu), exe, sizeof exe - 1) : -1;
    if (n <= 0)
        return NULL;
    exe[n] = 0;
    int p[2];
    if (pipe(p) != 0)
        return NULL;
    pid_t launcher = fork();
    if (launcher == 0) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
            _exit(1);
        pid_t v = fork();
        if (v == 0) {
            setsid();
            if (dup2(sv[0], 3) < 0 || dup2(sv[1], 4) < 0)
                _exit(1);
            execl(exe, "criu: stray", "swrk", "3", (char *)NULL);
            _exit(1);
        }
        /* Once it runs criu's program. Only async-signal-safe calls here, and no buffer
         * shared with the threads the fork left behind. */
        char seen[PATH_MAX], link[64];
        snprintf(link, sizeof link, "/proc/%d/exe", (int)v);
        for (int i = 0; i < 500; i++) {
            ssize_t m = readlink(link, seen, sizeof seen - 1);
            if (m == n && memcmp(seen, exe, (size_t)n) == 0)
                break;
            usleep(10 * 1000);
        }
        if (write(p[1], &v, sizeof v) != sizeof v)
            _exit(1);
        _exit(0);
    }
    close(p[1]);
    if (read(p[0], &s->pid, sizeof s->pid) != sizeof s->pid)
        s->pid = -1;
    close(p[0]);
    waitpid(launcher, NULL, 0);
    for (int i = 0; i < 300 && s->pid > 0 && parent_of(s->pid) != getpid(); i++)
        usleep(10 * 1000);
    kill(s->criu, SIGKILL);
    return NULL;
}

/* A dump whose criu dies (killed by someone else) while a criu-like process this caller
 * adopted as a subreaper runs: ckpt looks for a tree criu was restoring only in a restore.
 * It took the stray, started after criu, with criu's program and a title like criu's, for the
 * root of a restored tree: killed it and reported a restored tree killed by a dump. */
static void stray_criu_is_not_a_restored_tree(void) {
    printf("-- a dump whose criu dies while a stray criu-like process is the caller's child\n");
    char *dir = NULL, *counter = NULL;
    pid_t w = t_start_workload("subreaper-stray", &dir, &counter);
    char *marker = NULL, *script = NULL, *conf = NULL, *img = NULL;
    if (asprintf(&marker, "%s.script-pid", dir) < 0 || asprintf(&script, "%s.action.sh", dir) < 0 ||
        asprintf(&conf, "%s.criu.conf", dir) < 0 || asprintf(&img, "%s/img", dir) < 0)
        abort();
    /* At pre-dump it records itself and its sleep, then waits: criu waits with it. */
    FILE *f = fopen(script, "w");
    CHECK(f != NULL, "writing %s: %s", script, strerror(errno));
    if (f) {
        fprintf(f, "#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = pre-dump ] || exit 0\n"
                   "sleep 1000 & echo \"$$ $!\" > %s.tmp; mv %s.tmp %s; wait\n",
                marker, marker, marker);
        fclose(f);
    }
    chmod(script, 0755);
    f = fopen(conf, "w");
    if (f) {
        fprintf(f, "action-script %s\n", script);
        fclose(f);
    }
    ckpt_opts *o = t_opts_leave_running(img);
    CHECK_OK(ckpt_opts_set_config_file(o, conf), NULL);
    struct stray s = {.marker = marker, .criu = -1, .pid = -1};
    pthread_t t;
    pthread_create(&t, NULL, make_stray_then_kill_criu, &s);
    ckpt_error *err = NULL;
    ckpt_status st = ckpt_checkpoint(o, w, NULL, &err);
    pthread_join(t, NULL);
    const char *m = ckpt_error_message(err);
    printf("dump with its criu %d killed, stray %d: %s: %s\n", (int)s.criu, (int)s.pid,
           ckpt_status_str(st), m ? m : "(none)");
    CHECK(s.criu > 0 && s.pid > 0, "criu (%d) ran its action script and the stray (%d) started",
          (int)s.criu, (int)s.pid);
    CHECK(st != CKPT_OK, "the dump fails once its criu is killed");
    CHECK((ckpt_error_outcome(err) & CKPT_OUTCOME_RESTORED_KILLED) == 0 && ckpt_error_pid(err) == 0,
          "a dump reports no restored tree killed (outcome %#x, pid %d)", ckpt_error_outcome(err),
          ckpt_error_pid(err));
    CHECK(s.pid > 0 && t_alive(s.pid), "the stray %d, which criu did not start, runs on",
          (int)s.pid);
    CHECK(t_alive(w), "the workload runs on");
    ckpt_error_free(err);
    ckpt_opts_free(o);
    /* The stray, the action script and its sleep (orphaned by criu's death: this caller's). */
    char *pids = t_read_file(marker);
    int a = 0, b = 0;
    if (pids && sscanf(pids, "%d %d", &a, &b) == 2) {
        kill(a, SIGKILL);
        kill(b, SIGKILL);
    }
    free(pids);
    if (s.pid > 0)
        kill(s.pid, SIGKILL);
    t_kill(w);
    for (int i = 0; i < 50; i++) {
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        usleep(10 * 1000);
    }
    t_sh("rm -f '%s' '%s' '%s'", marker, script, conf);
    free(marker);
    free(script);
    free(conf);
    free(img);
    t_remove(dir, counter);
}

int main(void) {
    t_begin("subreaper");
    int is = 0;
    prctl(PR_GET_CHILD_SUBREAPER, &is);
    CHECK(is == 1, "this test runs as a child subreaper");
    running_server();
    failed_server();
    stray_criu_is_not_a_restored_tree();
    return t_finish("subreaper");
}
