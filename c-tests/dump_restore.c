/* Checkpoint a real process tree through the C API, with and without leave-running, then
 * restore it with the criu CLI and see its counter continue. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* Restores `dir` with the criu CLI; returns the restored root pid or -1. */
static pid_t cli_restore(const char *dir) {
    int rc = t_sh("criu restore -D '%s' -d -v4 -o restore-cli.log --pidfile '%s/restored.pid' "
                  "</dev/null >/dev/null 2>&1",
                  dir, dir);
    CHECK(rc == 0, "criu restore -D %s exited %d (see %s/restore-cli.log)", dir, rc, dir);
    if (rc != 0)
        return -1;
    char *pf = NULL;
    if (asprintf(&pf, "%s/restored.pid", dir) < 0)
        abort();
    long pid = t_read_counter(pf);
    free(pf);
    return (pid_t)pid;
}

static void run(bool leave_running) {
    const char *tag = leave_running ? "dr-leave" : "dr-kill";
    printf("-- checkpoint %s leave-running, restore with the criu CLI\n",
           leave_running ? "with" : "without");
    char *dir, *counter;
    pid_t pid = t_start_workload(tag, &dir, &counter);
    long before = t_read_counter(counter);

    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    if (leave_running)
        CHECK_OK(ckpt_opts_set_leave_running(o, true), NULL);
    ckpt_stats *st = NULL;
    ckpt_error *err = NULL;
    CHECK_OK(ckpt_checkpoint(o, pid, &st, &err), err);
    ckpt_error_free(err);
    uint64_t written = 0, bytes = 0;
    CHECK(ckpt_stats_get(st, CKPT_STAT_PAGES_WRITTEN, &written) == CKPT_OK && written > 0,
          "pages written %llu", (unsigned long long)written);
    CHECK(ckpt_stats_get(st, CKPT_STAT_IMAGE_BYTES, &bytes) == CKPT_OK && bytes > 0,
          "image bytes %llu", (unsigned long long)bytes);
    ckpt_stats_free(st);
    CHECK(t_exists(t_fmt("%s/dump.log", dir)), "dump.log in the image directory");
    CHECK(t_count_prefix(dir, "pages-") > 0, "pages images written");

    long at_dump = t_read_counter(counter);
    if (leave_running) {
        CHECK(t_alive(pid), "tree alive after a leave-running dump");
        CHECK(t_wait_counter_above(counter, at_dump, 3000) > at_dump,
              "counter moves on after a leave-running dump");
        /* The original must go before its pid can be restored. */
        t_kill(pid);
    } else {
        CHECK(t_wait_gone(pid, 3000), "CRIU killed the tree after the dump");
        /* Reap it and its sleep child (ours as subreaper), or their pids stay taken by
         * zombies and the restore fails. */
        t_kill(pid);
        long after = t_read_counter(counter);
        usleep(300 * 1000);
        CHECK(t_read_counter(counter) == after, "counter stopped with the tree");
    }

    /* Start the file afresh so the first value read after restore is the restored tree's. */
    unlink(counter);
    pid_t restored = cli_restore(dir);
    if (restored > 0) {
        CHECK(restored == pid, "restored with the same pid %d (got %d)", (int)pid,
              (int)restored);
        CHECK(t_alive(restored), "restored tree alive");
        long r1 = t_wait_counter_above(counter, 0, 2000);
        long r2 = t_wait_counter_above(counter, r1, 3000);
        CHECK(r2 > r1, "restored counter moves: %ld then %ld", r1, r2);
        /* It resumed from the checkpointed state, not from a fresh start at 1. */
        CHECK(r1 > before, "restored counter %ld continues past %ld, the value before the dump",
              r1, before);
        printf("counter: %ld before the dump, %ld at the dump, %ld and %ld after restore\n",
               before, at_dump, r1, r2);
        t_kill(restored);
    }
    t_reap();
    ckpt_opts_free(o);
    t_remove_if_passed(dir, counter);
}

/* With a work path, CRIU writes stats-dump and stats-restore there, not into the image
 * directory: both operations still hand CRIU's statistics and the image bytes. They handed an
 * empty statistics object. */
static void with_a_work_path(void) {
    printf("-- checkpoint and restore with a work path: statistics\n");
    char *dir, *counter;
    pid_t pid = t_start_workload("dr-work", &dir, &counter);
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, t_fmt("%s/images", dir)), NULL);
    CHECK_OK(ckpt_opts_set_work_path(o, t_fmt("%s/work", dir)), NULL);
    CHECK_OK(ckpt_opts_set_restore_wait_ms(o, 5000), NULL);
    ckpt_stats *st = NULL;
    ckpt_error *err = NULL;
    CHECK_OK(ckpt_checkpoint(o, pid, &st, &err), err);
    ckpt_error_free(err);
    uint64_t frozen = 0, bytes = 0;
    CHECK(ckpt_stats_get(st, CKPT_STAT_FROZEN_TIME_US, &frozen) == CKPT_OK && frozen > 0,
          "dump: frozen time %llu us", (unsigned long long)frozen);
    CHECK(ckpt_stats_get(st, CKPT_STAT_IMAGE_BYTES, &bytes) == CKPT_OK && bytes > 0,
          "dump: image bytes %llu", (unsigned long long)bytes);
    ckpt_stats_free(st);
    CHECK(t_exists(t_fmt("%s/work/stats-dump", dir)), "stats-dump in the work directory");
    t_kill(pid);

    int32_t restored = 0;
    st = NULL;
    err = NULL;
    CHECK_OK(ckpt_restore(o, &restored, &st, &err), err);
    ckpt_error_free(err);
    uint64_t pages = 0, rbytes = 0;
    CHECK(ckpt_stats_get(st, CKPT_STAT_PAGES_RESTORED, &pages) == CKPT_OK && pages > 0,
          "restore: pages restored %llu", (unsigned long long)pages);
    CHECK(ckpt_stats_get(st, CKPT_STAT_IMAGE_BYTES, &rbytes) == CKPT_OK && rbytes == bytes,
          "restore: image bytes %llu, as the dump's", (unsigned long long)rbytes);
    ckpt_stats_free(st);
    if (restored > 0)
        t_kill(restored);
    t_reap();
    ckpt_opts_free(o);
    t_remove_if_passed(dir, counter);
}

int main(void) {
    t_begin("dump_restore");
    run(false);
    run(true);
    with_a_work_path();
    return t_finish("dump_restore");
}
