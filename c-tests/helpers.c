#define _GNU_SOURCE
#include "helpers.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int t_checks = 0;
int t_failures = 0;

void t_check_ok(ckpt_status st, ckpt_error *err, const char *file, int line, const char *what) {
    t_checks++;
    if (st == CKPT_OK)
        return;
    t_failures++;
    fprintf(stderr, "FAIL %s:%d: %s returned %u (%s)\n", file, line, what, st, ckpt_status_str(st));
    if (err) {
        fprintf(stderr, "  message: %s\n  criu errno: %d\n  log: %s\n", ckpt_error_message(err),
                ckpt_error_criu_errno(err),
                ckpt_error_log_path(err) ? ckpt_error_log_path(err) : "(none)");
        if (ckpt_error_log_excerpt(err))
            fprintf(stderr, "  excerpt:\n%s\n", ckpt_error_log_excerpt(err));
    }
}

const char *t_fmt(const char *fmt, ...) {
    static char bufs[4][512];
    static int next = 0;
    char *b = bufs[next++ % 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof bufs[0], fmt, ap);
    va_end(ap);
    return b;
}

void t_not_exercised(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("not exercised: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

void t_begin(const char *name) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    setvbuf(stderr, NULL, _IOLBF, 0);
    /* `criu restore -d` leaves the restored tree to the nearest subreaper when it exits. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        perror("PR_SET_CHILD_SUBREAPER");
    printf("== %s (pid %d)\n", name, (int)getpid());
}

char *t_tmpdir(const char *tag) {
    char *p = NULL;
    if (asprintf(&p, "/tmp/ckpt-ctest-%s-%d", tag, (int)getpid()) < 0)
        abort();
    t_sh("rm -rf '%s'", p);
    return p;
}

char *t_counter_script(const char *counter) {
    char *s = NULL;
    if (asprintf(&s, "i=0; while :; do i=$((i+1)); echo $i > %s; sleep 0.05; done", counter) < 0)
        abort();
    return s;
}

static bool kept(int fd, const int *keep, int nkeep) {
    for (int i = 0; i < nkeep; i++)
        if (keep[i] == fd)
            return true;
    return false;
}

pid_t t_start_script(const char *script, int flags, const int *keep, int nkeep) {
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        /* The subreaper flag is not inherited, and signals stay at their defaults. */
        if (flags & T_NEW_SESSION)
            setsid();
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        for (int fd = 3; fd < 1024; fd++)
            if (!kept(fd, keep, nkeep))
                close(fd);
        for (int i = 0; i < nkeep; i++)
            fcntl(keep[i], F_SETFD, 0);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    return pid;
}

pid_t t_start_counter(const char *counter) {
    char *script = t_counter_script(counter);
    pid_t pid = t_start_script(script, T_NEW_SESSION, NULL, 0);
    free(script);
    t_wait_counter_above(counter, 2, 5000);
    return pid;
}

char *t_counter_path(const char *dir) {
    char *c = NULL;
    if (asprintf(&c, "%s.counter", dir) < 0)
        abort();
    return c;
}

pid_t t_start_workload(const char *tag, char **dir, char **counter) {
    *dir = t_tmpdir(tag);
    *counter = t_counter_path(*dir);
    return t_start_counter(*counter);
}

ckpt_opts *t_opts_leave_running(const char *dir) {
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    CHECK_OK(ckpt_opts_set_leave_running(o, true), NULL);
    return o;
}

void t_remove(char *a, char *b) {
    if (b)
        t_sh("rm -rf '%s' '%s'", a, b);
    else
        t_sh("rm -rf '%s'", a);
    free(a);
    free(b);
}

void t_remove_if_passed(char *a, char *b) {
    if (t_failures == 0) {
        t_remove(a, b);
        return;
    }
    printf("kept %s for inspection\n", a);
    free(a);
    free(b);
}

/* The workload rewrites its counter with `echo $i > FILE`, which empties the file before the
 * number lands: a read that finds it empty looks again, for up to 200 ms. */
long t_read_counter(const char *path) {
    long v = -1;
    for (int tries = 0; tries < 20; tries++) {
        FILE *f = fopen(path, "r");
        if (!f)
            return -1;
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
        if (v >= 0)
            break;
        usleep(10 * 1000);
    }
    return v;
}

long t_wait_counter_above(const char *path, long above, int ms) {
    long v = -1;
    for (int waited = 0; waited <= ms; waited += 20) {
        v = t_read_counter(path);
        if (v > above)
            return v;
        usleep(20 * 1000);
    }
    return v;
}

/* The state letter of /proc/<pid>/stat, 0 when the process does not exist. */
static char proc_stat(pid_t pid, pid_t *ppid, pid_t *pgrp) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p || p[1] == 0)
        return 0;
    char st = 0;
    int pp = 0, pg = 0;
    if (sscanf(p + 2, "%c %d %d", &st, &pp, &pg) != 3)
        return 0;
    if (ppid)
        *ppid = pp;
    if (pgrp)
        *pgrp = pg;
    return st;
}

static char proc_state(pid_t pid, pid_t *ppid) {
    return proc_stat(pid, ppid, NULL);
}

/* True when a process (zombies included) is in process group `pgrp`. */
static bool group_exists(pid_t pgrp) {
    DIR *d = opendir("/proc");
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        pid_t pid = (pid_t)atoi(e->d_name);
        pid_t pg = 0;
        if (pid > 0 && proc_stat(pid, NULL, &pg) != 0 && pg == pgrp)
            found = true;
    }
    closedir(d);
    return found;
}

bool t_alive(pid_t pid) {
    char s = proc_state(pid, NULL);
    return s != 0 && s != 'Z' && s != 'X';
}

bool t_wait_gone(pid_t pid, int ms) {
    for (int waited = 0; waited <= ms; waited += 10) {
        if (!t_alive(pid))
            return true;
        usleep(10 * 1000);
    }
    return false;
}

void t_kill(pid_t pid) {
    if (pid <= 0)
        return;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    t_wait_gone(pid, 2000);
    /* The rest of the group (the loop's sleep) comes to us as subreaper: reap it too, so no
     * pid of the tree stays taken by a zombie. */
    for (int waited = 0; waited < 2000 && group_exists(pid); waited += 10) {
        t_reap();
        usleep(10 * 1000);
    }
}

int t_reap(void) {
    int n = 0;
    while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
        n++;
    return n;
}

int t_count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

int t_count_zombies(void) {
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    pid_t me = getpid();
    while ((e = readdir(d))) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0)
            continue;
        pid_t ppid = 0;
        if (proc_state(pid, &ppid) == 'Z' && ppid == me)
            n++;
    }
    closedir(d);
    return n;
}

int t_sh(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL;
    if (vasprintf(&cmd, fmt, ap) < 0)
        abort();
    va_end(ap);
    int rc = system(cmd);
    free(cmd);
    if (rc == -1)
        return 127;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + (WIFSIGNALED(rc) ? WTERMSIG(rc) : 0);
}

char *t_read_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                buf = NULL;
            } else {
                buf = nb;
            }
        }
    }
    fclose(f);
    if (buf)
        buf[len] = 0;
    return buf;
}

bool t_file_contains(const char *path, const char *needle) {
    char *s = t_read_file(path);
    bool found = s && strstr(s, needle);
    free(s);
    return found;
}

int t_count_prefix(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

bool t_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

int t_free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = 0;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

pid_t t_free_pid(void) {
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

int t_finish(const char *name) {
    int passed = t_checks - t_failures;
    printf("%s: %d checks, %d failed\n", name, t_checks, t_failures);
    printf("%d passed, %d failed\n", passed, t_failures);
    return t_failures > 0 ? 1 : 0;
}
