/* Version, features and a leave-running checkpoint of a real process through the C API. */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

#include "helpers.h"

int main(void) {
    t_begin("basic");
    ckpt_error *err = NULL;
    int32_t v = 0;
    CHECK_OK(ckpt_criu_version(NULL, &v, &err), err);
    ckpt_error_free(err);
    CHECK(v >= 40000, "criu version %d", v);
    printf("criu version %d, ckpt %s\n", v, ckpt_version());

    char *dir, *counter;
    pid_t pid = t_start_workload("basic", &dir, &counter);

    ckpt_opts *o = ckpt_opts_new();
    CHECK(o != NULL, "ckpt_opts_new");
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    CHECK_OK(ckpt_opts_set_leave_running(o, true), NULL);
    ckpt_stats *st = NULL;
    ckpt_status s = ckpt_checkpoint(o, pid, &st, &err);
    CHECK_OK(s, err);
    CHECK(err == NULL, "err is set to NULL on success");
    ckpt_error_free(err);
    uint64_t frozen = 0, written = 0;
    CHECK(ckpt_stats_get(st, CKPT_STAT_FROZEN_TIME_US, &frozen) == CKPT_OK, "frozen time");
    CHECK(ckpt_stats_get(st, CKPT_STAT_PAGES_WRITTEN, &written) == CKPT_OK && written > 0,
          "pages written");
    printf("frozen %llu us, %llu pages written\n", (unsigned long long)frozen,
           (unsigned long long)written);
    ckpt_stats_free(st);
    long before = t_read_counter(counter);
    CHECK(t_wait_counter_above(counter, before, 3000) > before,
          "process keeps running after leave-running dump");
    ckpt_opts_free(o);
    t_kill(pid);
    t_remove(dir, counter);
    return t_finish("basic");
}
