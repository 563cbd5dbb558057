/* A caller that is a child subreaper (PR_SET_CHILD_SUBREAPER, as container runtimes and
 * their shims are; t_begin makes every C test one) and ckpt_page_server_start. The page
 * server is forked from criu; once criu exits, the kernel hands it to the nearest subreaper:
 * this caller. So, as docs/restore.md says:
 *  - a running page server is the caller's child: it exits after the dump that feeds it and
 *    the caller reaps it (exit status 0);
 *  - a page server that fails to start (its port is taken) is a zombie child of the caller
 *    when ckpt returns the failure, and the caller reaps it.
 * Without a subreaper, init adopts and reaps both. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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

int main(void) {
    t_begin("subreaper");
    int is = 0;
    prctl(PR_GET_CHILD_SUBREAPER, &is);
    CHECK(is == 1, "this test runs as a child subreaper");
    running_server();
    failed_server();
    return t_finish("subreaper");
}
