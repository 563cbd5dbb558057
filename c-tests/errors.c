/* What a failure tells the caller: a failing CRIU (a pid that does not exist) gives
 * CKPT_ERR_CRIU with CRIU's errno, the log path and the excerpt; the error object's accessors,
 * ckpt_status_str for every code, the statistics accessors, and the _free(NULL) no-ops. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

static void failing_criu(void) {
    printf("-- a pid that does not exist reaches CRIU\n");
    char *dir = t_tmpdir("e-nopid");
    pid_t nopid = t_free_pid();
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    ckpt_error *err = NULL;
    ckpt_stats *st = (ckpt_stats *)1;
    ckpt_status s = ckpt_checkpoint(o, nopid, &st, &err);
    CHECK_ST(s, CKPT_ERR_CRIU, "dump of pid %d", (int)nopid);
    CHECK(st == NULL, "no statistics on failure");
    CHECK(err != NULL, "an error object");
    CHECK(ckpt_error_code(err) == s, "ckpt_error_code matches the status");
    CHECK(ckpt_error_criu_errno(err) == ESRCH, "CRIU's errno is ESRCH (%d), got %d", ESRCH,
          ckpt_error_criu_errno(err));
    const char *m = ckpt_error_message(err), *lp = ckpt_error_log_path(err),
               *ex = ckpt_error_log_excerpt(err);
    char *want_log = NULL;
    if (asprintf(&want_log, "%s/dump.log", dir) < 0)
        abort();
    CHECK(m && strstr(m, "criu dump failed"), "message: %s", m ? m : "(none)");
    CHECK(m && strstr(m, "errno 3"), "message quotes the errno: %s", m ? m : "(none)");
    CHECK(lp && strcmp(lp, want_log) == 0, "log path %s, want %s", lp ? lp : "(none)", want_log);
    CHECK(lp && lp[0] == '/', "log path is absolute");
    CHECK(lp && t_exists(lp), "the log exists");
    CHECK(ex && strstr(ex, "Error ("), "excerpt holds CRIU's Error lines:\n%s", ex ? ex : "(none)");
    CHECK(ex && lp && t_file_contains(lp, "Error ("), "and so does the log");
    /* Context: the excerpt keeps lines before each error, as runc prints them. */
    CHECK(ex && strchr(ex, '\n') && strstr(ex, "Error (") != ex, "excerpt has context lines");
    printf("message: %s\ncriu errno: %d\nlog: %s\nexcerpt:\n%s", m ? m : "(none)",
           ckpt_error_criu_errno(err), lp ? lp : "(none)", ex ? ex : "(none)\n");
    ckpt_error_free(err);

    /* A NULL err pointer is allowed: the status alone. */
    CHECK_ST(ckpt_checkpoint(o, nopid, NULL, NULL), CKPT_ERR_CRIU, "same failure, no error wanted");

    /* A log file name with '/' is refused by the setter, before CRIU could refuse it: CRIU
     * allows no subdirectories in its log name, and ckpt keeps the log in the work directory
     * where it reads the excerpt back. */
    CHECK_ST(ckpt_opts_set_log_file(o, "sub/dump.log"), CKPT_ERR_INVALID_ARGUMENT, "log with /");
    const char *why = ckpt_opts_last_error(o);
    CHECK(why && strstr(why, "'/'"), "reason: %s", why ? why : "(none)");
    printf("log file \"sub/dump.log\" refused: %s\n", why ? why : "(none)");
    CHECK_OK(ckpt_opts_set_log_file(o, "mine.log"), NULL);
    err = NULL;
    CHECK_ST(ckpt_checkpoint(o, nopid, NULL, &err), CKPT_ERR_CRIU, "with a custom log name");
    lp = ckpt_error_log_path(err);
    CHECK(lp && strstr(lp, "/mine.log"), "the log path follows the log name: %s",
          lp ? lp : "(none)");
    ckpt_error_free(err);
    ckpt_opts_free(o);
    free(want_log);
    t_remove(dir, NULL);
}

static void criu_missing(void) {
    printf("-- a criu binary that does not exist\n");
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_criu_path(o, "/nonexistent/criu"), NULL);
    ckpt_error *err = NULL;
    int32_t v = -1;
    ckpt_status st = ckpt_criu_version(o, &v, &err);
    const char *m = ckpt_error_message(err);
    if (getenv("CKPT_CTEST_VALGRIND") && st == CKPT_ERR_CRIU_DIED) {
        /* valgrind runs posix_spawn's child without CLONE_VM, so the exec failure cannot be
         * reported back: the child exits 127 and ckpt sees criu die. */
        CHECK(m && strstr(m, "127"), "under valgrind: %s", m ? m : "(none)");
        t_not_exercised("CKPT_ERR_SPAWN for a missing binary under valgrind (posix_spawn "
                        "cannot report exec errors there)");
    } else {
        CHECK_ST(st, CKPT_ERR_SPAWN, "version with a missing criu");
        CHECK(ckpt_error_criu_errno(err) == ENOENT,
              "criu_errno carries the spawn errno ENOENT, got %d", ckpt_error_criu_errno(err));
        CHECK(m && strstr(m, "/nonexistent/criu"), "message names the binary: %s",
              m ? m : "(none)");
    }
    CHECK(ckpt_error_log_path(err) == NULL && ckpt_error_log_excerpt(err) == NULL,
          "no log when criu never ran");
    ckpt_error_free(err);
    ckpt_opts_free(o);
}

/* The daemon's pid is one the caller must reap: a failure must not leave the caller's old value
 * there, which a cleanup path would wait for or kill (ckpt_restore and ckpt_page_server_start
 * clear theirs too). */
static void lazy_pages_failure_clears_pid(void) {
    printf("-- ckpt_lazy_pages_start that fails leaves *pid 0\n");
    ckpt_opts *o = ckpt_opts_new();
    ckpt_error *err = NULL;
    int32_t pid = 12345;
    CHECK_ST(ckpt_lazy_pages_start(o, &pid, &err), CKPT_ERR_INVALID_ARGUMENT, "no image path");
    CHECK(pid == 0, "*pid after a failed lazy-pages start: %d", (int)pid);
    ckpt_error_free(err);
    ckpt_opts_free(o);
}

static void error_accessors(void) {
    printf("-- error accessors on NULL, status strings\n");
    CHECK(ckpt_error_code(NULL) == CKPT_ERR_NULL_ARGUMENT, "code(NULL)");
    CHECK(ckpt_error_message(NULL) == NULL, "message(NULL)");
    CHECK(ckpt_error_criu_errno(NULL) == 0, "criu_errno(NULL)");
    CHECK(ckpt_error_log_path(NULL) == NULL, "log_path(NULL)");
    CHECK(ckpt_error_log_excerpt(NULL) == NULL, "log_excerpt(NULL)");
    ckpt_error_free(NULL);
    ckpt_stats_free(NULL);
    ckpt_opts_free(NULL);

    const ckpt_status codes[] = {
        CKPT_OK, CKPT_ERR_NULL_ARGUMENT, CKPT_ERR_INVALID_UTF8, CKPT_ERR_INVALID_ARGUMENT,
        CKPT_ERR_BAD_FD, CKPT_ERR_INVALID_STATE, CKPT_ERR_UNSUPPORTED, CKPT_ERR_IO,
        CKPT_ERR_SPAWN, CKPT_ERR_PROTOCOL, CKPT_ERR_CRIU, CKPT_ERR_CRIU_DIED, CKPT_ERR_TIMEOUT,
        CKPT_ERR_CALLBACK, CKPT_ERR_PANIC, CKPT_ERR_NOT_FOUND, CKPT_ERR_PID_IN_USE,
        CKPT_ERR_CANCELLED,
    };
    const char *unknown = ckpt_status_str(9999);
    CHECK(unknown && strstr(unknown, "unknown"), "status 9999: %s", unknown ? unknown : "(null)");
    CHECK(ckpt_status_str(UINT32_MAX) == unknown, "UINT32_MAX is unknown too");
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        CHECK(codes[i] == i, "codes are 0..17 in order");
        const char *s = ckpt_status_str(codes[i]);
        CHECK(s && s[0] && s != unknown, "status %u has its own text", codes[i]);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(s, ckpt_status_str(codes[j])) != 0, "status %u and %u differ", codes[i],
                  codes[j]);
        printf("  %2u %s\n", codes[i], s ? s : "(null)");
    }
    CHECK(ckpt_status_str(n) == unknown, "the first number past the last code is unknown");
    const char *v = ckpt_version();
    CHECK(v && strchr(v, '.'), "ckpt_version %s", v ? v : "(null)");
}

static void statistics(void) {
    printf("-- statistics\n");
    char *dir, *counter;
    pid_t pid = t_start_workload("e-stats", &dir, &counter);
    ckpt_opts *o = t_opts_leave_running(dir);
    ckpt_stats *st = NULL;
    ckpt_error *err = NULL;
    CHECK_OK(ckpt_checkpoint(o, pid, &st, &err), err);
    ckpt_error_free(err);
    size_t count = ckpt_stats_count(st);
    CHECK(count >= 8, "dump statistics: %zu", count);
    const ckpt_stat_key dump_keys[] = {
        CKPT_STAT_FREEZING_TIME_US, CKPT_STAT_FROZEN_TIME_US, CKPT_STAT_MEMDUMP_TIME_US,
        CKPT_STAT_MEMWRITE_TIME_US, CKPT_STAT_PAGES_SCANNED, CKPT_STAT_PAGES_SKIPPED_PARENT,
        CKPT_STAT_PAGES_WRITTEN, CKPT_STAT_IMAGE_BYTES,
    };
    for (size_t i = 0; i < sizeof dump_keys / sizeof dump_keys[0]; i++) {
        uint64_t v = UINT64_MAX;
        CHECK_ST(ckpt_stats_get(st, dump_keys[i], &v), CKPT_OK, "%s", ckpt_stat_name(dump_keys[i]));
        CHECK(v != UINT64_MAX, "%s has a value", ckpt_stat_name(dump_keys[i]));
    }
    uint64_t frozen = 0, scanned = 0, written = 0;
    ckpt_stats_get(st, CKPT_STAT_FROZEN_TIME_US, &frozen);
    ckpt_stats_get(st, CKPT_STAT_PAGES_SCANNED, &scanned);
    ckpt_stats_get(st, CKPT_STAT_PAGES_WRITTEN, &written);
    CHECK(frozen > 0 && written > 0 && scanned >= written, "frozen %llu us, %llu/%llu pages",
          (unsigned long long)frozen, (unsigned long long)written, (unsigned long long)scanned);
    /* Every listed key has a name and reads back the same value. */
    for (size_t i = 0; i < count; i++) {
        ckpt_stat_key k = 0;
        uint64_t v = 0, again = 1;
        CHECK_OK(ckpt_stats_at(st, i, &k, &v), NULL);
        CHECK(ckpt_stat_name(k) != NULL, "key %u has a name", k);
        CHECK(ckpt_stats_get(st, k, &again) == CKPT_OK && again == v, "at(%zu) == get(%s)", i,
              ckpt_stat_name(k));
        printf("  %-24s %llu\n", ckpt_stat_name(k), (unsigned long long)v);
    }
    CHECK_OK(ckpt_stats_at(st, 0, NULL, NULL), NULL);
    CHECK_ST(ckpt_stats_at(st, count, NULL, NULL), CKPT_ERR_NOT_FOUND, "index == count");
    CHECK_ST(ckpt_stats_at(st, SIZE_MAX, NULL, NULL), CKPT_ERR_NOT_FOUND, "index SIZE_MAX");
    CHECK_ST(ckpt_stats_at(NULL, 0, NULL, NULL), CKPT_ERR_NULL_ARGUMENT, "at(NULL)");
    uint64_t v = 42;
    CHECK_ST(ckpt_stats_get(st, CKPT_STAT_PAGES_RESTORED, &v), CKPT_ERR_NOT_FOUND,
             "a restore statistic in dump statistics");
    CHECK(v == 42, "a missing statistic leaves *value alone");
    CHECK_ST(ckpt_stats_get(st, 0, &v), CKPT_ERR_INVALID_ARGUMENT, "key 0");
    CHECK_ST(ckpt_stats_get(st, 15, &v), CKPT_ERR_INVALID_ARGUMENT, "key 15 (unassigned)");
    CHECK_ST(ckpt_stats_get(st, 9999, &v), CKPT_ERR_INVALID_ARGUMENT, "key 9999");
    CHECK_ST(ckpt_stats_get(st, CKPT_STAT_FROZEN_TIME_US, NULL), CKPT_ERR_NULL_ARGUMENT,
             "NULL value");
    CHECK_ST(ckpt_stats_get(NULL, CKPT_STAT_FROZEN_TIME_US, &v), CKPT_ERR_NULL_ARGUMENT,
             "NULL stats");
    CHECK(ckpt_stats_count(NULL) == 0, "count(NULL)");
    CHECK(ckpt_stat_name(0) == NULL && ckpt_stat_name(9999) == NULL, "unknown keys have no name");
    CHECK(strcmp(ckpt_stat_name(CKPT_STAT_FROZEN_TIME_US), "frozen_time_us") == 0,
          "frozen_time_us");
    const ckpt_stat_key all[] = {
        CKPT_STAT_FREEZING_TIME_US, CKPT_STAT_FROZEN_TIME_US, CKPT_STAT_MEMDUMP_TIME_US,
        CKPT_STAT_MEMWRITE_TIME_US, CKPT_STAT_PAGES_SCANNED, CKPT_STAT_PAGES_SKIPPED_PARENT,
        CKPT_STAT_PAGES_WRITTEN, CKPT_STAT_IRMAP_RESOLVE_US, CKPT_STAT_PAGES_LAZY,
        CKPT_STAT_PAGE_PIPES, CKPT_STAT_PAGE_PIPE_BUFS, CKPT_STAT_SHPAGES_SCANNED,
        CKPT_STAT_SHPAGES_SKIPPED_PARENT, CKPT_STAT_SHPAGES_WRITTEN, CKPT_STAT_PAGES_COMPARED,
        CKPT_STAT_PAGES_SKIPPED_COW, CKPT_STAT_FORKING_TIME_US, CKPT_STAT_RESTORE_TIME_US,
        CKPT_STAT_PAGES_RESTORED, CKPT_STAT_IMAGE_BYTES,
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        CHECK(ckpt_stat_name(all[i]) != NULL, "CKPT_STAT %u has a name", all[i]);
    ckpt_stats_free(st);
    t_kill(pid);
    ckpt_opts_free(o);
    t_remove(dir, counter);
}

/* A runtime that started the workload itself and has not reaped it yet: the dumped root is
 * the caller's own zombie, and the restore's error says so instead of blaming "another
 * process". */
static void unreaped_zombie_child(void) {
    printf("-- restore while the dumped root is the caller's unreaped zombie\n");
    char *dir, *counter;
    pid_t pid = t_start_workload("e-zombie", &dir, &counter);
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    ckpt_error *err = NULL;
    CHECK_OK(ckpt_checkpoint(o, pid, NULL, &err), err);
    ckpt_error_free(err);
    err = NULL;
    int32_t rpid = 0;
    CHECK_ST(ckpt_restore(o, &rpid, NULL, &err), CKPT_ERR_PID_IN_USE, "%s",
             ckpt_error_message(err));
    const char *m = ckpt_error_message(err);
    CHECK(m && strstr(m, t_fmt("process %d, a zombie child of this process", (int)pid)) &&
              strstr(m, "waitpid"),
          "the message names the caller's zombie child %d: %s", (int)pid, m);
    ckpt_error_free(err);
    t_kill(pid);
    ckpt_opts_free(o);
    t_remove_if_passed(dir, counter);
}

/* A pid of the tree below its root is taken: CRIU forks the root, and the root's fork of the
 * child fails with "Can't fork for N: File exists" in the root's process, so CRIU's errno
 * does not say EEXIST. Still CKPT_ERR_PID_IN_USE (it was CKPT_ERR_CRIU), the tree CRIU had
 * made killed and reported. */
static void child_pid_in_use(void) {
    printf("-- restore while a child's pid is taken by a running process\n");
    char *dir = t_tmpdir("e-childpid");
    /* The child leads a session of its own, so the root's pid, group and session stay free
     * once the root alone is killed. */
    pid_t root = t_start_script("setsid sleep 1000 & wait", T_NEW_SESSION, NULL, 0);
    pid_t child = 0;
    for (int i = 0; i < 300 && child <= 0; i++) {
        char *c = t_read_file(t_fmt("/proc/%d/task/%d/children", (int)root, (int)root));
        child = c ? atoi(c) : 0;
        free(c);
        if (child <= 0 || getsid(child) != child) {
            child = 0;
            usleep(10000);
        }
    }
    CHECK(child > 0, "the workload's child started its own session");
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    CHECK_OK(ckpt_opts_set_leave_running(o, true), NULL);
    ckpt_error *err = NULL;
    CHECK_OK(ckpt_checkpoint(o, root, NULL, &err), err);
    ckpt_error_free(err);
    err = NULL;
    kill(root, SIGKILL);
    waitpid(root, NULL, 0);
    int32_t rpid = 0;
    ckpt_status st = ckpt_restore(o, &rpid, NULL, &err);
    CHECK_ST(st, CKPT_ERR_PID_IN_USE, "%s", ckpt_error_message(err));
    const char *m = ckpt_error_message(err);
    CHECK(m && strstr(m, "in use"), "the message says a pid is in use: %s", m);
    CHECK(rpid == 0, "no pid handed out");
    if (ckpt_error_outcome(err) & CKPT_OUTCOME_RESTORED_KILLED)
        CHECK(!t_alive(ckpt_error_pid(err)), "the reported tree is gone");
    CHECK(t_alive(child), "the process holding the pid is untouched");
    ckpt_error_free(err);
    if (child > 0)
        kill(child, SIGKILL);
    usleep(100000);
    t_reap();
    ckpt_opts_free(o);
    t_remove_if_passed(dir, NULL);
}

/* Writes the CRIU image `name` in `dir`: the common magic, a magic word, then one record. */
static void write_image(const char *dir, const char *name, const unsigned char *rec, size_t n) {
    FILE *f = fopen(t_fmt("%s/%s", dir, name), "w");
    CHECK(f != NULL, "creating %s", name);
    if (!f)
        return;
    const unsigned char head[8] = {0x19, 0x43, 0x56, 0x54, 0, 0, 0, 0};
    uint32_t len = (uint32_t)n;
    fwrite(head, 1, sizeof head, f);
    fwrite(&len, 1, sizeof len, f);
    fwrite(rec, 1, n, f);
    fclose(f);
}

/* A container's checkpoint restored as a process tree: its external mount has no mapping, and
 * the restore is refused before CRIU starts (CRIU failed late, "No mapping for N:(null)
 * mountpoint"). The images are made here: pid 1 in mount namespace 9, whose mount /data is
 * external under the key "/data". */
static void container_images_as_a_tree(void) {
    printf("-- a container's checkpoint restored as a process tree\n");
    char *dir = t_tmpdir("e-ctrimg");
    CHECK(mkdir(dir, 0700) == 0, "creating %s", dir);
    const unsigned char inventory[] = {0x08, 0x02};
    const unsigned char pstree[] = {0x08, 0x01};
    const unsigned char ids[] = {0x48, 0x09};
    const unsigned char mount[] = {0x3a, 0x05, '/', 'd', 'a', 't', 'a',
                                   0x92, 0x01, 0x05, '/', 'd', 'a', 't', 'a'};
    write_image(dir, "inventory.img", inventory, sizeof inventory);
    write_image(dir, "pstree.img", pstree, sizeof pstree);
    write_image(dir, "ids-1.img", ids, sizeof ids);
    write_image(dir, "mountpoints-9.img", mount, sizeof mount);
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    ckpt_error *err = NULL;
    int32_t rpid = 0;
    CHECK_ST(ckpt_restore(o, &rpid, NULL, &err), CKPT_ERR_INVALID_ARGUMENT, "%s",
             ckpt_error_message(err));
    const char *m = ckpt_error_message(err);
    CHECK(m && strstr(m, "holds a container's checkpoint") && strstr(m, "key \"/data\"") &&
              strstr(m, "ckpt_container_restore"),
          "the message names the container's checkpoint, the unmapped key and the C function "
          "to restore it with: %s",
          m);
    CHECK(ckpt_error_log_path(err) == NULL, "CRIU did not run, so no log is named");
    CHECK(rpid == 0, "no pid handed out");
    ckpt_error_free(err);
    err = NULL;
    /* With the key mapped, the refusal is gone (CRIU then fails on these made-up images). */
    CHECK_OK(ckpt_opts_add_ext_mount(o, "/data", "/tmp"), NULL);
    ckpt_status st = ckpt_restore(o, &rpid, NULL, &err);
    m = ckpt_error_message(err);
    CHECK(st != CKPT_OK && !(m && strstr(m, "holds a container's checkpoint")),
          "a mapped key is not refused: %s", m);
    ckpt_error_free(err);
    ckpt_opts_free(o);
    t_remove_if_passed(dir, NULL);
}

/* An image directory whose name is not UTF-8 (path setters take bytes): the error's log path
 * is that directory's log, byte for byte. It came back with U+FFFD in place of the bytes,
 * naming a file that does not exist. */
static void non_utf8_log_path(void) {
    printf("-- a log path that is not UTF-8\n");
    char *dir = t_tmpdir("e-bytes");
    char *img = NULL, *want_log = NULL;
    if (asprintf(&img, "%s/img-\xff\xfe", dir) < 0 || asprintf(&want_log, "%s/dump.log", img) < 0)
        abort();
    CHECK(mkdir(dir, 0700) == 0 && mkdir(img, 0700) == 0, "mkdir %s", img);
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, img), NULL);
    ckpt_error *err = NULL;
    CHECK_ST(ckpt_checkpoint(o, t_free_pid(), NULL, &err), CKPT_ERR_CRIU, "dump of a free pid");
    const char *lp = ckpt_error_log_path(err);
    CHECK(lp && strcmp(lp, want_log) == 0, "log path is the directory's bytes");
    CHECK(lp && t_exists(lp), "the log path names the log");
    ckpt_error_free(err);
    ckpt_opts_free(o);
    free(img);
    free(want_log);
    t_remove(dir, NULL);
}

int main(void) {
    t_begin("errors");
    container_images_as_a_tree();
    child_pid_in_use();
    unreaped_zombie_child();
    failing_criu();
    non_utf8_log_path();
    criu_missing();
    lazy_pages_failure_clears_pid();
    error_accessors();
    statistics();
    return t_finish("errors");
}
