/*
 * Side-by-side costs of talking to CRIU, from a caller with 0, 2 and 8 GiB resident:
 *   version: ckpt_criu_version  vs  `criu --version`  vs  libcriu's criu_get_version
 *   dump:    ckpt_checkpoint (leave-running)  vs  `criu dump -R` spawned directly  vs  the same
 *            through `sh -c`, as run from a shell  vs  libcriu's criu_dump
 * Each round runs ckpt and the command lines once, each starting a round in turn, so machine
 * noise hits them alike; libcriu runs in rounds of its own (see measure_all). Figures are
 * medians. libcriu (the distribution's libcriu.so.2, dlopened) forks the caller to
 * start criu, which is what makes its cost grow with the caller's memory.
 *
 * usage: ckpt-bench [--sizes 0,2,8] [--version-rounds N] [--dump-rounds N] [--libcriu PATH]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"

extern char **environ;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Runs argv with posix_spawnp (no copy of this process) and waits; returns the exit status. */
static int run(char *const argv[]) {
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A small process to dump: a shell loop in its own session, stdio on /dev/null. */
static pid_t start_workload(void) {
    char *argv[] = {"setsid", "sh", "-c", "while :; do sleep 0.1; done", NULL};
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int fd = 0; fd < 3; fd++)
        posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", O_RDWR, 0);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
    if (posix_spawnp(&pid, "sh", &fa, &at, argv + 1, environ) != 0) {
        perror("spawn workload");
        exit(2);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    usleep(200 * 1000);
    return pid;
}

struct libcriu {
    void *h;
    int (*init_opts)(void);
    int (*get_version)(void);
    void (*set_pid)(int);
    void (*set_images_dir_fd)(int);
    void (*set_leave_running)(bool);
    void (*set_log_level)(int);
    int (*set_log_file)(const char *);
    int (*dump)(void);
};

static bool load_libcriu(struct libcriu *l, const char *path) {
    memset(l, 0, sizeof *l);
    l->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!l->h)
        return false;
#define SYM(f, n) *(void **)&l->f = dlsym(l->h, n)
    SYM(init_opts, "criu_init_opts");
    SYM(get_version, "criu_get_version");
    SYM(set_pid, "criu_set_pid");
    SYM(set_images_dir_fd, "criu_set_images_dir_fd");
    SYM(set_leave_running, "criu_set_leave_running");
    SYM(set_log_level, "criu_set_log_level");
    SYM(set_log_file, "criu_set_log_file");
    SYM(dump, "criu_dump");
#undef SYM
    return l->init_opts && l->get_version && l->dump;
}

static void fresh_dir(const char *dir) {
    char *argv[] = {"rm", "-rf", (char *)dir, NULL};
    run(argv);
    mkdir(dir, 0700);
}


struct ctx {
    struct libcriu *lc;
    ckpt_opts *opts;
    pid_t workload;
    char dir[128];
    char pid[32];
};

static void die(const char *what) {
    fprintf(stderr, "%s failed\n", what);
    exit(1);
}

static void version_ckpt(struct ctx *cx) {
    (void)cx;
    int32_t v = 0;
    ckpt_error *err = NULL;
    if (ckpt_criu_version(NULL, &v, &err) != CKPT_OK) {
        fprintf(stderr, "%s\n", ckpt_error_message(err));
        die("ckpt_criu_version");
    }
}

static void version_cli(struct ctx *cx) {
    (void)cx;
    char *av[] = {"criu", "--version", NULL};
    if (run(av) != 0)
        die("criu --version");
}

static void version_libcriu(struct ctx *cx) {
    cx->lc->init_opts();
    if (cx->lc->get_version() <= 0)
        die("libcriu criu_get_version");
}

static void dump_ckpt(struct ctx *cx) {
    ckpt_error *err = NULL;
    if (ckpt_checkpoint(cx->opts, cx->workload, NULL, &err) != CKPT_OK) {
        fprintf(stderr, "%s\n", ckpt_error_message(err));
        die("ckpt_checkpoint");
    }
}

static void dump_cli(struct ctx *cx) {
    char *av[] = {"criu", "dump", "-t", cx->pid, "-D", cx->dir, "-R", "-v4", "-o", "dump.log", NULL};
    if (run(av) != 0)
        die("criu dump");
}

/* `criu dump` as an operator types it: through a shell, which is what the target compares to. */
static void dump_shell(struct ctx *cx) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "criu dump -t %s -D %s -R -v4 -o dump.log", cx->pid, cx->dir);
    char *av[] = {"sh", "-c", cmd, NULL};
    if (run(av) != 0)
        die("sh -c 'criu dump'");
}

static void dump_libcriu(struct ctx *cx) {
    int dfd = open(cx->dir, O_DIRECTORY | O_CLOEXEC);
    cx->lc->init_opts();
    cx->lc->set_pid(cx->workload);
    cx->lc->set_images_dir_fd(dfd);
    cx->lc->set_leave_running(true);
    cx->lc->set_log_level(4);
    cx->lc->set_log_file("dump.log");
    if (cx->lc->dump() < 0)
        die("libcriu criu_dump");
    close(dfd);
}

typedef void (*contender)(struct ctx *);
/* The last entry of each list is libcriu's; the ones before it are interleaved. */
static contender version_fns[] = {version_ckpt, version_cli, version_libcriu};
static contender dump_fns[] = {dump_ckpt, dump_cli, dump_shell, dump_libcriu};

/* Runs every contender once per round, starting each round with a different one so that
 * neither order nor drift favours any; stores each contender's median in ms. Dumps get a fresh
 * image directory, prepared outside the timed part. */
static void measure(contender *fns, int n, int rounds, struct ctx *cx, double *out) {
    double *t = calloc((size_t)n * rounds, sizeof(double));
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < n; k++) {
            int i = (r + k) % n;
            if (fns[i] == dump_ckpt || fns[i] == dump_cli || fns[i] == dump_shell || fns[i] == dump_libcriu)
                fresh_dir(cx->dir);
            double t0 = now_ms();
            fns[i](cx);
            t[i * rounds + r] = now_ms() - t0;
        }
    for (int i = 0; i < n; i++)
        out[i] = median(t + i * rounds, rounds);
    free(t);
}

/* ckpt and the command line alternate, each going first every other round; libcriu runs in
 * rounds of its own afterwards, because the fork it makes of a large caller leaves the kernel
 * tearing down a copied address space while the next contender runs. */
static void measure_all(contender *fns, int n, bool with_libcriu, int rounds, struct ctx *cx,
                        double *out) {
    measure(fns, n - 1, rounds, cx, out);
    if (with_libcriu)
        measure(fns + n - 1, 1, rounds, cx, out + n - 1);
    else
        out[n - 1] = NAN;
}

int main(int argc, char **argv) {
    const char *sizes_arg = "0,2,8";
    const char *libcriu_path = getenv("CKPT_LIBCRIU_DIR") ? NULL : "libcriu.so.2";
    char libcriu_buf[4096];
    if (!libcriu_path) {
        snprintf(libcriu_buf, sizeof libcriu_buf, "%s/libcriu.so.2", getenv("CKPT_LIBCRIU_DIR"));
        libcriu_path = libcriu_buf;
    }
    int vrounds = 30, drounds = 10;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
            sizes_arg = argv[++i];
        else if (!strcmp(argv[i], "--version-rounds") && i + 1 < argc)
            vrounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dump-rounds") && i + 1 < argc)
            drounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--libcriu") && i + 1 < argc)
            libcriu_path = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--sizes 0,2,8] [--version-rounds N] [--dump-rounds N] [--libcriu PATH]\n", argv[0]);
            return 2;
        }
    }
    if (vrounds < 1 || drounds < 1 || vrounds > 10000 || drounds > 1000) {
        fprintf(stderr, "rounds out of range\n");
        return 2;
    }
    struct libcriu lc;
    bool have_libcriu = load_libcriu(&lc, libcriu_path);
    if (!have_libcriu)
        fprintf(stderr, "note: %s not loadable (%s); libcriu columns skipped\n", libcriu_path, dlerror());

    printf("%-7s | %-32s | %-50s\n", "", "version round trip (median ms)", "leave-running dump (median ms)");
    printf("%-7s | %7s %7s %7s %8s | %7s %7s %7s %7s %9s\n", "RSS", "ckpt", "cli", "libcriu",
           "ckpt-cli", "ckpt", "cli", "shell", "libcriu", "ckpt/shell");

    char sizes[256];
    snprintf(sizes, sizeof sizes, "%s", sizes_arg);
    for (char *tok = strtok(sizes, ","); tok; tok = strtok(NULL, ",")) {
        long gib = atol(tok);
        if (gib < 0 || gib > 16) {
            fprintf(stderr, "size %ld GiB out of range 0..16\n", gib);
            return 2;
        }
        size_t bytes = (size_t)gib << 30;
        char *mem = NULL;
        if (bytes) {
            mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (mem == MAP_FAILED) {
                perror("mmap");
                return 2;
            }
            memset(mem, 1, bytes); /* resident, not just reserved */
        }
        struct ctx cx = {.lc = have_libcriu ? &lc : NULL};
        double v[3] = {0}, d[4] = {0};
        measure_all(version_fns, 3, have_libcriu, vrounds, &cx, v);

        cx.workload = start_workload();
        snprintf(cx.dir, sizeof cx.dir, "/tmp/ckpt-bench-%d", (int)getpid());
        snprintf(cx.pid, sizeof cx.pid, "%d", (int)cx.workload);
        cx.opts = ckpt_opts_new();
        ckpt_opts_set_image_path(cx.opts, cx.dir);
        ckpt_opts_set_leave_running(cx.opts, true);
        measure_all(dump_fns, 4, have_libcriu, drounds, &cx, d);
        ckpt_opts_free(cx.opts);
        kill(cx.workload, SIGKILL);
        waitpid(cx.workload, NULL, 0);
        fresh_dir(cx.dir);
        rmdir(cx.dir);
        printf("%3ld GiB | %7.2f %7.2f %7.2f %+8.2f | %7.1f %7.1f %7.1f %7.1f %9.2f\n", gib, v[0],
               v[1], v[2], v[0] - v[1], d[0], d[1], d[2], d[3], d[0] / d[2]);
        fflush(stdout);
        if (mem)
            munmap(mem, bytes);
    }
    printf("(%d version rounds and %d dump rounds per size, contenders interleaved; "
           "targets: ckpt-cli <= +1 ms, ckpt/shell <= 1.00)\n", vrounds, drounds);
    return 0;
}
