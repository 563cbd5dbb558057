/* libckpt.so.0 the way plugins use it: dlopen, use, dlclose, 100 times in one process. Each
 * round asks the real criu for its version; every tenth also checkpoints a real process
 * (leave-running). No crash, and no growth in descriptors or threads from the first round to
 * the last. This program does not link libckpt: every call goes through dlsym.
 * CKPT_LIB names the library (default: its build path, which meson compiles in);
 * CKPT_CTEST_VALGRIND runs 20 rounds instead of 100. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt.h"

static int checks, failures;
#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        checks++;                                                                             \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                   \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fprintf(stderr, "\n");                                                            \
            failures++;                                                                       \
        }                                                                                     \
    } while (0)

static int count_dir(const char *path) {
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - (strcmp(path, "/proc/self/fd") == 0); /* the DIR's own descriptor */
}

static bool mapped(const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    bool found = false;
    while (f && fgets(line, sizeof line, f))
        found |= strstr(line, name) != NULL;
    if (f)
        fclose(f);
    return found;
}

/* A counting shell loop in its own session, stdio on /dev/null, every other fd closed. */
static pid_t start_workload(const char *counter) {
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        closefrom(3);
        char *script = NULL;
        if (asprintf(&script, "i=0; while :; do i=$((i+1)); echo $i > %s; sleep 0.05; done",
                     counter) < 0)
            _exit(127);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    return pid;
}

#define SYM(h, name) ((__typeof__(name) *)dlsym((h), #name))

/* One round: load, use, unload. Returns false when the library could not be used. */
static bool round_trip(const char *lib, int round, pid_t workload, const char *images) {
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL, "round %d: dlopen %s: %s", round, lib, dlerror());
    if (!h)
        return false;
    __typeof__(ckpt_version) *version = SYM(h, ckpt_version);
    __typeof__(ckpt_criu_version) *criu_version = SYM(h, ckpt_criu_version);
    __typeof__(ckpt_error_free) *error_free = SYM(h, ckpt_error_free);
    __typeof__(ckpt_error_message) *error_message = SYM(h, ckpt_error_message);
    __typeof__(ckpt_opts_new) *opts_new = SYM(h, ckpt_opts_new);
    __typeof__(ckpt_opts_free) *opts_free = SYM(h, ckpt_opts_free);
    __typeof__(ckpt_opts_set_image_path) *set_image_path = SYM(h, ckpt_opts_set_image_path);
    __typeof__(ckpt_opts_set_leave_running) *set_leave_running =
        SYM(h, ckpt_opts_set_leave_running);
    __typeof__(ckpt_checkpoint) *checkpoint = SYM(h, ckpt_checkpoint);
    __typeof__(ckpt_stats_free) *stats_free = SYM(h, ckpt_stats_free);
    bool ok = version && criu_version && error_free && error_message && opts_new && opts_free &&
              set_image_path && set_leave_running && checkpoint && stats_free;
    CHECK(ok, "round %d: every symbol resolves", round);
    if (ok) {
        CHECK(version() && *version(), "round %d: ckpt_version", round);
        int32_t v = 0;
        ckpt_error *err = NULL;
        ckpt_status st = criu_version(NULL, &v, &err);
        CHECK(st == CKPT_OK && v >= 40000, "round %d: criu version %d: %s", round, v,
              err ? error_message(err) : "");
        error_free(err);
        if (round % 10 == 0) {
            ckpt_opts *o = opts_new();
            CHECK(set_image_path(o, images) == CKPT_OK, "round %d: image path", round);
            CHECK(set_leave_running(o, true) == CKPT_OK, "round %d: leave running", round);
            ckpt_stats *stats = NULL;
            err = NULL;
            st = checkpoint(o, workload, &stats, &err);
            CHECK(st == CKPT_OK, "round %d: checkpoint: %s", round,
                  err ? error_message(err) : "");
            stats_free(stats);
            error_free(err);
            opts_free(o);
        }
    }
    CHECK(dlclose(h) == 0, "round %d: dlclose: %s", round, dlerror());
    return ok;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("== dlopen (pid %d)\n", getpid());
    const char *lib = getenv("CKPT_LIB") ? getenv("CKPT_LIB") : CKPT_LIB_DEFAULT;
    int rounds = getenv("CKPT_CTEST_VALGRIND") ? 20 : 100;
    char images[64], counter[80];
    snprintf(images, sizeof images, "/tmp/ckpt-ctest-dlopen-%d", getpid());
    snprintf(counter, sizeof counter, "%s.counter", images);
    pid_t workload = start_workload(counter);
    usleep(200 * 1000);

    int fds_after_first = -1, threads_after_first = -1;
    int done = 0;
    for (int r = 0; r < rounds; r++) {
        if (!round_trip(lib, r, workload, images))
            break;
        done++;
        if (r == 0) {
            fds_after_first = count_dir("/proc/self/fd");
            threads_after_first = count_dir("/proc/self/task");
        }
    }
    int fds = count_dir("/proc/self/fd"), threads = count_dir("/proc/self/task");
    CHECK(fds == fds_after_first, "descriptors: %d after round 1, %d after round %d",
          fds_after_first, fds, done);
    CHECK(threads == threads_after_first, "threads: %d after round 1, %d after round %d",
          threads_after_first, threads, done);
    bool still = mapped("libckpt.so");
    printf("%d rounds of dlopen, version, %d checkpoints, dlclose: %d descriptors and %d "
           "threads after the first and after the last; libckpt %s mapped after the last "
           "dlclose\n",
           done, (done + 9) / 10, fds, threads, still ? "is still" : "is no longer");
    if (still)
        printf("not exercised: unmapping at dlclose (glibc keeps a library that registered "
               "thread-local destructors loaded; dlclose then only drops the reference)\n");

    kill(workload, SIGKILL);
    waitpid(workload, NULL, 0);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", images, counter);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", images);
    printf("dlopen: %d checks, %d failed\n", checks, failures);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
