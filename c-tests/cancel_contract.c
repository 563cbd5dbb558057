/* The cancellation token and the duplicating status-fd setter used the way a runtime would,
 * each check one promise of include/ckpt.h or docs/c-api.md:
 * - a token's eventfd is closed once both the handle and every options holding it are freed,
 *   in either order, and a token replaced on the options is released;
 * - one token on two handles, used from two threads at once: one trigger stops both dumps;
 * - a triggered token stays triggered: a second call with it fails at once, queries included
 *   (a cached CRIU version too); a new token on the same options lets the next call run;
 * - ckpt_container_checkpoint/_restore with a triggered token fail at once, creating nothing;
 * - ckpt_opts_set_status_fd_dup leaves the caller's descriptor open and its flags as they were,
 *   and the library's duplicate is gone once the handle is freed or the option replaced: the
 *   pipe's reader sees end-of-file when the caller closes its own end. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static sem_t in_callback;

static int hold_cb(void *ud, const ckpt_notification *n) {
    (void)ud;
    if (strcmp(ckpt_notification_script(n), "pre-dump") == 0) {
        sem_post(&in_callback);
        usleep(300 * 1000);
    }
    return 0;
}

struct job {
    ckpt_opts *opts;
    pid_t pid;
    ckpt_status st;
};

static void *dump_thread(void *arg) {
    struct job *j = arg;
    ckpt_error *err = NULL;
    j->st = ckpt_checkpoint(j->opts, j->pid, NULL, &err);
    ckpt_error_free(err);
    return NULL;
}

static void token_descriptors(void) {
    printf("-- token descriptors\n");
    int base = t_count_fds();
    ckpt_cancel *c[64];
    for (int i = 0; i < 64; i++)
        c[i] = ckpt_cancel_new();
    CHECK(t_count_fds() == base + 64, "one eventfd per token: %d, base %d", t_count_fds(), base);
    for (int i = 0; i < 64; i++)
        ckpt_cancel_free(c[i]);
    CHECK(t_count_fds() == base, "freed tokens closed their eventfd: %d, base %d", t_count_fds(),
          base);

    /* Token freed first, then the options; and the other order. */
    ckpt_opts *o = ckpt_opts_new();
    ckpt_cancel *a = ckpt_cancel_new();
    CHECK_ST(ckpt_opts_set_cancel(o, a), CKPT_OK, "attach");
    ckpt_cancel_free(a);
    CHECK(t_count_fds() == base + 1, "the options keep the token alive");
    ckpt_opts_free(o);
    CHECK(t_count_fds() == base, "freeing the options released it");
    o = ckpt_opts_new();
    a = ckpt_cancel_new();
    CHECK_ST(ckpt_opts_set_cancel(o, a), CKPT_OK, "attach");
    ckpt_opts_free(o);
    CHECK(ckpt_cancel_trigger(a) == CKPT_OK && ckpt_cancel_is_triggered(a),
          "the handle outlives the options");
    ckpt_cancel_free(a);
    CHECK(t_count_fds() == base, "both gone, no eventfd left");

    /* Replaced or detached: the options drop their reference. */
    o = ckpt_opts_new();
    a = ckpt_cancel_new();
    ckpt_cancel *b = ckpt_cancel_new();
    CHECK_ST(ckpt_opts_set_cancel(o, a), CKPT_OK, "attach a");
    CHECK_ST(ckpt_opts_set_cancel(o, b), CKPT_OK, "replace with b");
    ckpt_cancel_free(a);
    CHECK(t_count_fds() == base + 1, "a released by the replacement");
    CHECK_ST(ckpt_opts_set_cancel(o, NULL), CKPT_OK, "detach");
    ckpt_cancel_free(b);
    CHECK(t_count_fds() == base, "b released by detaching");
    ckpt_opts_free(o);

    /* No descriptor left: NULL, as documented, and nothing else changes. */
    struct rlimit old, low;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0, "getrlimit");
    int top = 0;
    for (int fd = 0; fd < 64; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            top = fd;
    low = old;
    low.rlim_cur = (rlim_t)top + 1;
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0, "setrlimit");
    int filled[64], nfilled = 0, fill;
    while (nfilled < 64 && (fill = dup(0)) != -1)
        filled[nfilled++] = fill;
    ckpt_cancel *none = ckpt_cancel_new();
    CHECK(none == NULL, "a token without a descriptor for its eventfd is NULL");
    ckpt_cancel_free(none);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0, "setrlimit back");
    for (int i = 0; i < nfilled; i++)
        close(filled[i]);
    CHECK(t_count_fds() == base, "%d fds, base %d", t_count_fds(), base);
}

static void one_token_two_handles(void) {
    printf("-- one token, two handles, two threads\n");
    char *dir[2], *counter[2];
    pid_t pid[2];
    ckpt_opts *o[2];
    ckpt_cancel *c = ckpt_cancel_new();
    sem_init(&in_callback, 0, 0);
    for (int i = 0; i < 2; i++) {
        pid[i] = t_start_workload(i ? "review-share-b" : "review-share-a", &dir[i], &counter[i]);
        o[i] = t_opts_leave_running(dir[i]);
        CHECK_ST(ckpt_opts_set_cancel(o[i], c), CKPT_OK, "attach %d", i);
        CHECK_ST(ckpt_opts_set_notify(o[i], hold_cb, NULL), CKPT_OK, "notify %d", i);
    }
    int fds = t_count_fds();
    struct job j[2] = {{o[0], pid[0], 999}, {o[1], pid[1], 999}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, dump_thread, &j[i]) == 0, "thread %d", i);
    sem_wait(&in_callback);
    sem_wait(&in_callback);
    CHECK_ST(ckpt_cancel_trigger(c), CKPT_OK, "trigger");
    for (int i = 0; i < 2; i++) {
        CHECK(pthread_join(t[i], NULL) == 0, "join %d", i);
        CHECK_ST(j[i].st, CKPT_ERR_CANCELLED, "dump %d", i);
    }
    CHECK(t_count_fds() == fds, "%d fds open, %d before", t_count_fds(), fds);
    CHECK(t_count_zombies() == 0, "%d zombies", t_count_zombies());
    for (int i = 0; i < 2; i++) {
        long v = t_read_counter(counter[i]);
        CHECK(t_wait_counter_above(counter[i], v, 5000) > v, "workload %d stopped", i);
        ckpt_opts_free(o[i]);
        t_kill(pid[i]);
        t_remove_if_passed(dir[i], counter[i]);
    }
    ckpt_cancel_free(c);
    sem_destroy(&in_callback);
}

static void reused_after_trigger(void) {
    printf("-- a triggered token reused\n");
    char *dir, *counter;
    pid_t pid = t_start_workload("review-reuse", &dir, &counter);
    ckpt_opts *o = t_opts_leave_running(dir);
    ckpt_error *err = NULL;
    int32_t v = 0;
    CHECK_OK(ckpt_criu_version(o, &v, &err), err); /* cached on the handle from here */
    ckpt_error_free(err);
    err = NULL;
    ckpt_cancel *c = ckpt_cancel_new();
    CHECK_ST(ckpt_opts_set_cancel(o, c), CKPT_OK, "attach");
    ckpt_cancel_trigger(c);
    for (int round = 0; round < 2; round++) {
        CHECK_ST(ckpt_checkpoint(o, pid, NULL, &err), CKPT_ERR_CANCELLED, "dump, round %d", round);
        ckpt_error_free(err);
        err = NULL;
    }
    CHECK_ST(ckpt_criu_version(o, &v, &err), CKPT_ERR_CANCELLED,
             "a cached version under a triggered token");
    ckpt_error_free(err);
    err = NULL;
    ckpt_feature sup = 0, ans = 0;
    CHECK_ST(ckpt_feature_check(o, &sup, &ans, &err), CKPT_ERR_CANCELLED, "feature check");
    ckpt_error_free(err);
    err = NULL;
    CHECK_ST(ckpt_check(o, &err), CKPT_ERR_CANCELLED, "check");
    ckpt_error_free(err);
    err = NULL;
    CHECK(!t_exists(dir), "nothing was created (check)");
    ckpt_opts *ps = t_opts_leave_running(dir);
    CHECK_OK(ckpt_opts_set_page_server(ps, t_fmt("127.0.0.1:%d", t_free_port())), NULL);
    CHECK_ST(ckpt_opts_set_cancel(ps, c), CKPT_OK, "attach to the page server's options");
    int32_t spid = 7, port = 7;
    CHECK_ST(ckpt_page_server_start(ps, &spid, &port, &err), CKPT_ERR_CANCELLED, "page server");
    CHECK(spid == 0 && port == 0, "a failed page server start leaves pid and port 0");
    ckpt_error_free(err);
    err = NULL;
    CHECK(!t_exists(dir), "nothing was created (page server)");
    CHECK_ST(ckpt_lazy_pages_start(ps, &spid, &err), CKPT_ERR_CANCELLED, "lazy pages");
    ckpt_error_free(err);
    err = NULL;
    ckpt_opts_free(ps);
    /* A new token: the next call runs. */
    ckpt_cancel *fresh = ckpt_cancel_new();
    CHECK_ST(ckpt_opts_set_cancel(o, fresh), CKPT_OK, "attach a new token");
    ckpt_status st = ckpt_checkpoint(o, pid, NULL, &err);
    CHECK_OK(st, err);
    ckpt_error_free(err);
    CHECK(t_alive(pid), "the workload runs");
    ckpt_cancel_free(c);
    ckpt_cancel_free(fresh);
    ckpt_opts_free(o);
    t_kill(pid);
    t_remove_if_passed(dir, counter);
}

static void container_ops(void) {
    printf("-- container operations with a triggered token\n");
    char *dir = t_tmpdir("review-ctr-cancel");
    char *bundle = t_tmpdir("review-ctr-bundle");
    CHECK(mkdir(bundle, 0700) == 0, "bundle dir");
    ckpt_container *k = ckpt_container_new();
    CHECK_ST(ckpt_container_set_bundle(k, bundle), CKPT_OK, "bundle");
    CHECK_ST(ckpt_container_set_pid(k, getpid()), CKPT_OK, "pid");
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    ckpt_cancel *c = ckpt_cancel_new();
    ckpt_opts_set_cancel(o, c);
    ckpt_cancel_trigger(c);
    ckpt_error *err = NULL;
    ckpt_stats *stats = NULL;
    CHECK_ST(ckpt_container_checkpoint(k, o, &stats, &err), CKPT_ERR_CANCELLED, "%s",
             ckpt_error_message(err));
    CHECK(stats == NULL, "no statistics");
    ckpt_error_free(err);
    err = NULL;
    CHECK(!t_exists(dir), "no image directory");
    int32_t pid = -1;
    CHECK_ST(ckpt_container_restore(k, o, &pid, NULL, &err), CKPT_ERR_CANCELLED, "%s",
             ckpt_error_message(err));
    CHECK(pid == 0, "no pid: %d", pid);
    ckpt_error_free(err);
    CHECK(t_count_zombies() == 0, "no criu started");
    ckpt_cancel_free(c);
    ckpt_opts_free(o);
    ckpt_container_free(k);
    t_remove(dir, bundle);
}

static void status_fd_dup(void) {
    printf("-- status fd, duplicated\n");
    int p[2];
    CHECK(pipe2(p, O_NONBLOCK) == 0, "pipe");
    int flags = fcntl(p[1], F_GETFL), fdflags = fcntl(p[1], F_GETFD);
    int base = t_count_fds();
    ckpt_opts *o = ckpt_opts_new();
    CHECK_ST(ckpt_opts_set_status_fd_dup(o, p[1]), CKPT_OK, "dup");
    CHECK_ST(ckpt_opts_set_status_fd_dup(o, p[1]), CKPT_OK, "dup again (replaces)");
    CHECK(t_count_fds() == base + 1, "one duplicate held: %d, base %d", t_count_fds(), base);
    /* A refused replacement keeps the duplicate held (no half-applied option). */
    CHECK_ST(ckpt_opts_set_status_fd_dup(o, p[0]), CKPT_ERR_BAD_FD, "read end refused");
    CHECK(t_count_fds() == base + 1, "the held duplicate is kept after a refusal");
    CHECK(fcntl(p[1], F_GETFL) == flags && fcntl(p[1], F_GETFD) == fdflags,
          "the caller's descriptor's flags are as they were");
    /* Replaced by an owning set: the duplicate goes, the given descriptor is the handle's. */
    int owned = dup(p[1]);
    CHECK_ST(ckpt_opts_set_status_fd(o, owned), CKPT_OK, "owning set");
    CHECK(t_count_fds() == base + 1, "the duplicate was closed when replaced");
    ckpt_opts_free(o);
    CHECK(t_count_fds() == base, "free closed the handle's descriptor");
    o = ckpt_opts_new();
    CHECK_ST(ckpt_opts_set_status_fd_dup(o, p[1]), CKPT_OK, "dup");
    ckpt_opts_free(o);
    CHECK(fcntl(p[1], F_GETFD) != -1, "the caller's descriptor is open");
    char byte;
    CHECK(read(p[0], &byte, 1) == -1, "nothing was written to the caller's pipe");
    close(p[1]);
    CHECK(read(p[0], &byte, 1) == 0, "end-of-file: no duplicate of the write end is left");
    close(p[0]);
}

int main(void) {
    t_begin("cancel_contract");
    token_descriptors();
    status_fd_dup();
    container_ops();
    reused_after_trigger();
    one_token_two_handles();
    return t_finish("cancel_contract");
}
