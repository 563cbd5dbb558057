/* A container restore's statistics list the cgroup directories made for it
 * (ckpt_stats_made_cgroup_count / _at): NULL and out-of-range refused, none for a plain
 * checkpoint, and for a real runc container restored below missing parents every hierarchy's,
 * deepest first, which rmdir in that order removes once the container is gone; the one that
 * existed before is not listed. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void runc_container(void) {
    if (t_sh("runc --version >/dev/null 2>&1") != 0) {
        t_not_exercised("runc is not installed: the container restore's made cgroups");
        return;
    }
    char *work = t_tmpdir("leftovers-made");
    char id[64];
    snprintf(id, sizeof id, "leftovers-%d-cmade", (int)getpid());
    const char *bundle = t_fmt("%s/bundle", work);
    char *b = strdup(bundle);
    /* runc's default spec without a terminal, on a writable root, a counting loop as init,
     * in nested cgroups. */
    CHECK(t_sh("mkdir -p %s/rootfs/bin %s/rootfs/proc %s/rootfs/sys %s/rootfs/dev %s/rootfs/tmp"
               " && cp /bin/busybox %s/rootfs/bin/ && ln -s busybox %s/rootfs/bin/sh"
               " && ln -s busybox %s/rootfs/bin/sleep && cd %s && runc spec"
               " && sed -i -e 's/\"terminal\": true/\"terminal\": false/'"
               " -e 's/\"readonly\": true/\"readonly\": false/'"
               " -e 's|^\\t\\t\\t\"sh\"$|\"sh\", \"-c\", \"i=0; while :; do i=$((i+1)); echo $i > /counter; sleep 0.1; done\"|'"
               " -e 's|^\\t\"linux\": {|\"linux\": {\"cgroupsPath\": \"/%s/nest/ctr\",|' config.json",
               b, b, b, b, b, b, b, b, b, id) == 0,
         "bundle");
    CHECK(t_sh("runc --root %s/state run -d --pid-file %s/init.pid --bundle %s %s"
               " </dev/null >/dev/null 2>&1",
               work, work, b, id) == 0,
         "runc run");
    long init = t_read_counter(t_fmt("%s/init.pid", work));
    CHECK(init > 0, "init pid %ld", init);
    /* `runc run -d` returns once the container is started, maybe before its init has left
     * runc's binary for the container's program: checkpointed then, it is refused as created
     * but not started. Its counter moving says it runs. */
    CHECK(t_wait_counter_above(t_fmt("%s/rootfs/counter", b), 0, 5000) > 0, "the container counts");
    ckpt_error *err = NULL;
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, t_fmt("%s/images", work)), NULL);
    CHECK_OK(ckpt_opts_set_timeout_ms(o, 60000), NULL);
    ckpt_container *c = ckpt_container_new();
    CHECK_OK(ckpt_container_set_bundle(c, b), NULL);
    if (init > 0) CHECK_OK(ckpt_container_set_pid(c, (int32_t)init), NULL);
    ckpt_stats *st = NULL;
    CHECK_OK(ckpt_container_checkpoint(c, o, &st, &err), err);
    ckpt_error_free(err);
    err = NULL;
    CHECK(ckpt_stats_made_cgroup_count(st) == 0, "a checkpoint made no cgroup");
    ckpt_stats_free(st);
    st = NULL;
    ckpt_container_free(c);
    if (init > 0) t_wait_gone((pid_t)init, 5000);
    t_reap();
    /* runc's delete removes the container's own cgroup; the parents above it go here. */
    t_sh("runc --root %s/state delete -f %s >/dev/null 2>&1;"
         " for d in $(find /sys/fs/cgroup/*/%s -depth -type d 2>/dev/null); do rmdir $d; done",
         work, id, id);
    CHECK(t_sh("ls -d /sys/fs/cgroup/*/%s >/dev/null 2>&1", id) != 0, "no cgroup left");
    /* Made before the restore: not listed, and stays. */
    char pids_top[256];
    snprintf(pids_top, sizeof pids_top, "/sys/fs/cgroup/pids/%s", id);
    CHECK(mkdir(pids_top, 0755) == 0, "mkdir %s: %s", pids_top, strerror(errno));

    c = ckpt_container_new();
    CHECK_OK(ckpt_container_set_bundle(c, b), NULL);
    int32_t rpid = 0;
    ckpt_status s = ckpt_container_restore(c, o, &rpid, &st, &err);
    CHECK_OK(s, err);
    ckpt_error_free(err);
    err = NULL;
    size_t n = ckpt_stats_made_cgroup_count(st);
    CHECK(n > 0, "made cgroups reported");
    const char *paths[64] = {0};
    if (n > 64) n = 64;
    int nest_at = -1, ctr_at = -1, top_at = -1;
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(ckpt_stats_made_cgroup_at(st, i, &paths[i]), NULL);
        CHECK(paths[i] && strncmp(paths[i], "/sys/fs/cgroup/", 15) == 0 && strstr(paths[i], id),
              "not the container's: %s", paths[i] ? paths[i] : "(null)");
        if (!paths[i]) continue;
        if (strcmp(paths[i], t_fmt("/sys/fs/cgroup/memory/%s/nest/ctr", id)) == 0) ctr_at = (int)i;
        if (strcmp(paths[i], t_fmt("/sys/fs/cgroup/memory/%s/nest", id)) == 0) nest_at = (int)i;
        if (strcmp(paths[i], t_fmt("/sys/fs/cgroup/memory/%s", id)) == 0) top_at = (int)i;
        CHECK(strcmp(paths[i], pids_top) != 0, "the pids cgroup made before is listed");
    }
    CHECK(ctr_at >= 0 && ctr_at < nest_at && nest_at < top_at, "memory: ctr %d, nest %d, top %d",
          ctr_at, nest_at, top_at);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (paths[i] && paths[j]) {
                size_t l = strlen(paths[i]);
                CHECK(!(strncmp(paths[j], paths[i], l) == 0 && paths[j][l] == '/'),
                      "%s after %s, which holds it", paths[j], paths[i]);
            }
    const char *p = (const char *)1;
    CHECK_ST(ckpt_stats_made_cgroup_at(st, n, &p), CKPT_ERR_NOT_FOUND, "index at the count");
    CHECK(p == NULL, "path NULL past the count");
    p = (const char *)1;
    CHECK_ST(ckpt_stats_made_cgroup_at(st, SIZE_MAX, &p), CKPT_ERR_NOT_FOUND, "SIZE_MAX");
    CHECK(p == NULL, "path NULL at SIZE_MAX");
    CHECK_ST(ckpt_stats_made_cgroup_at(st, 0, NULL), CKPT_ERR_NULL_ARGUMENT, "NULL path");

    if (rpid > 0) {
        kill(rpid, SIGKILL);
        waitpid(rpid, NULL, 0);
    }
    /* In the order given, once the tasks have left. */
    size_t left = n;
    for (int tries = 0; left > 0 && tries < 250; tries++) {
        left = 0;
        for (size_t i = 0; i < n; i++)
            if (paths[i] && rmdir(paths[i]) != 0 && errno != ENOENT) left++;
        if (left) sleep_ms(20);
    }
    CHECK(left == 0, "%zu made cgroups not removable in the order given", left);
    CHECK(t_sh("test \"$(ls -d /sys/fs/cgroup/*/%s)\" = %s", id, pids_top) == 0,
          "only the cgroup made before stays");
    ckpt_stats_free(st);
    ckpt_container_free(c);
    ckpt_opts_free(o);
    /* Whatever a failure left. */
    t_sh("runc --root %s/state delete -f %s >/dev/null 2>&1;"
         " for d in $(find /sys/fs/cgroup/*/%s -depth -type d 2>/dev/null); do rmdir $d; done",
         work, id, id);
    free(b);
    t_remove_if_passed(work, NULL);
}

int main(void) {
    t_begin("made_cgroups");
    const char *p = (const char *)1;
    CHECK(ckpt_stats_made_cgroup_count(NULL) == 0, "NULL stats count 0");
    CHECK_ST(ckpt_stats_made_cgroup_at(NULL, 0, &p), CKPT_ERR_NULL_ARGUMENT, "NULL stats");
    CHECK(p == NULL, "path NULL for NULL stats");
    CHECK_ST(ckpt_stats_made_cgroup_at(NULL, 0, NULL), CKPT_ERR_NULL_ARGUMENT, "both NULL");

    /* A process checkpoint's statistics: no cgroups. */
    char *dir, *counter;
    pid_t pid = t_start_workload("leftovers-made", &dir, &counter);
    ckpt_opts *o = t_opts_leave_running(dir);
    ckpt_stats *st = NULL;
    ckpt_error *err = NULL;
    CHECK_OK(ckpt_checkpoint(o, pid, &st, &err), err);
    ckpt_error_free(err);
    CHECK(st != NULL, "statistics");
    CHECK(ckpt_stats_made_cgroup_count(st) == 0, "a checkpoint made no cgroup");
    p = (const char *)1;
    CHECK_ST(ckpt_stats_made_cgroup_at(st, 0, &p), CKPT_ERR_NOT_FOUND, "index 0 of none");
    CHECK(p == NULL, "path NULL");
    ckpt_stats_free(st);
    ckpt_opts_free(o);
    t_kill(pid);
    t_remove_if_passed(dir, counter);

    runc_container();
    return t_finish("made_cgroups");
}
