#define _GNU_SOURCE
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int t_failures = 0;

void t_check_ok(ckpt_status st, ckpt_error *err, const char *file, int line, const char *what) {
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

char *t_tmpdir(const char *tag) {
    char *p = NULL;
    if (asprintf(&p, "/tmp/ckpt-ctest-%s-%d", tag, (int)getpid()) < 0)
        abort();
    t_sh("rm -rf '%s'", p);
    return p;
}

pid_t t_start_counter(const char *counter) {
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        setsid();
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        char *script = NULL;
        if (asprintf(&script, "i=0; while :; do i=$((i+1)); echo $i > %s; sleep 0.05; done", counter) < 0)
            _exit(127);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    t_wait_counter_above(counter, 2, 5000);
    return pid;
}

long t_read_counter(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    if (fscanf(f, "%ld", &v) != 1)
        v = -1;
    fclose(f);
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

void t_kill(pid_t pid) {
    if (pid <= 0)
        return;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int t_count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

int t_count_zombies(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "ps -o stat= --ppid %d 2>/dev/null | grep -c Z", (int)getpid());
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = 0;
        pclose(p);
    }
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
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

int t_finish(const char *name, int checks) {
    int failed = t_failures > 0 ? 1 : 0;
    printf("%s: %d checks, %d failures\n", name, checks, t_failures);
    printf("%d passed, %d failed\n", failed ? 0 : 1, failed);
    return failed;
}
