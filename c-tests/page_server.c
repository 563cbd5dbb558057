/* A dump to a `criu page-server` on loopback (IPv4, then IPv6 in brackets): the memory pages
 * arrive in the server's directory, the rest of the images in the image path. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* Starts `criu page-server -d` (it returns once listening); returns the server's pid. */
static pid_t start_server(const char *addr, int port, const char *dir) {
    int rc = t_sh("mkdir -p '%s' && criu page-server -d --address %s --port %d -D '%s' -v4 "
                  "-o page-server.log --pidfile '%s/ps.pid' </dev/null >/dev/null 2>&1",
                  dir, addr, port, dir, dir);
    CHECK(rc == 0, "criu page-server on %s:%d started (exit %d)", addr, port, rc);
    return rc == 0 ? (pid_t)t_read_counter(t_fmt("%s/ps.pid", dir)) : -1;
}

static void run(const char *tag, const char *listen_addr, const char *ps_fmt) {
    char *dir = t_tmpdir(tag), *counter = t_counter_path(dir), *img = NULL, *srv = NULL;
    if (asprintf(&img, "%s/img", dir) < 0 || asprintf(&srv, "%s/server", dir) < 0)
        abort();
    int port = t_free_port();
    const char *ps = t_fmt(ps_fmt, port);
    printf("-- dump to criu page-server at %s\n", ps);
    pid_t server = start_server(listen_addr, port, srv);
    pid_t pid = t_start_counter(counter);

    ckpt_opts *o = t_opts_leave_running(img);
    CHECK_OK(ckpt_opts_set_page_server(o, ps), NULL);
    ckpt_stats *st = NULL;
    ckpt_error *err = NULL;
    CHECK_OK(ckpt_checkpoint(o, pid, &st, &err), err);
    ckpt_error_free(err);
    uint64_t written = 0;
    CHECK(ckpt_stats_get(st, CKPT_STAT_PAGES_WRITTEN, &written) == CKPT_OK && written > 0,
          "pages written: %llu", (unsigned long long)written);
    ckpt_stats_free(st);

    CHECK(server > 0 && t_wait_gone(server, 5000), "the page server exits after the dump");
    t_reap();
    CHECK(t_count_prefix(srv, "pages-") > 0, "pages arrived at the page server's directory");
    CHECK(t_count_prefix(srv, "pagemap-") > 0, "pagemaps arrived at the page server");
    CHECK(t_count_prefix(img, "pages-") == 0, "no pages in the local image path");
    CHECK(t_exists(t_fmt("%s/pstree.img", img)) && t_exists(t_fmt("%s/dump.log", img)),
          "the other images and dump.log stay local");
    CHECK(t_file_contains(t_fmt("%s/dump.log", img), "Connecting to server"),
          "CRIU's log shows it dialled the page server");
    CHECK(t_alive(pid), "leave-running: tree alive");
    printf("%d pages images at the server, %llu pages written\n", t_count_prefix(srv, "pages-"),
           (unsigned long long)written);
    t_kill(pid);
    ckpt_opts_free(o);
    t_remove_if_passed(dir, counter);
    free(img);
    free(srv);
}

int main(void) {
    t_begin("page_server");
    run("ps4", "127.0.0.1", "127.0.0.1:%d");
    run("ps6", "::1", "[::1]:%d");
    return t_finish("page_server");
}
