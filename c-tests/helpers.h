/* Shared helpers for ckpt's C tests: workloads, checks, and fd/zombie accounting.
 *
 * Every test is a standalone program run as root against the real criu. It counts its checks,
 * prints "FAIL ..." for each one that fails and "not exercised: ..." for whatever this machine
 * cannot show, and ends with the plain "N passed, N failed" line (checks, not programs). */
#ifndef CKPT_TEST_HELPERS_H
#define CKPT_TEST_HELPERS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "ckpt.h"

extern int t_checks;
extern int t_failures;

#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        t_checks++;                                                                           \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                   \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fprintf(stderr, "\n");                                                            \
            t_failures++;                                                                     \
        }                                                                                     \
    } while (0)

/* Checks a status, printing the error's message, log path and excerpt when it fails. */
#define CHECK_OK(st, err) t_check_ok((st), (err), __FILE__, __LINE__, #st)
void t_check_ok(ckpt_status st, ckpt_error *err, const char *file, int line, const char *what);

/* Checks that `st` is `want`, printing both names when not. */
#define CHECK_ST(st, want, ...)                                                               \
    do {                                                                                      \
        ckpt_status t_st_ = (st);                                                             \
        CHECK(t_st_ == (want), "got %u (%s), want %u (%s): %s", t_st_, ckpt_status_str(t_st_), \
              (unsigned)(want), ckpt_status_str(want), t_fmt(__VA_ARGS__));                   \
    } while (0)

/* A formatted string in a static rotating buffer, for messages. */
const char *t_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a line saying what this machine could not show, and why. */
void t_not_exercised(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Starts the test: sets up line-buffered output and makes this process a child subreaper,
 * so trees restored by `criu restore -d` are reaped here rather than by init. */
void t_begin(const char *name);

/* A fresh, empty directory path under /tmp named after `tag` (not created); free it. */
char *t_tmpdir(const char *tag);

/* The shell loop every workload runs: writes an increasing counter to `counter` 20 times a
 * second. Free the result. */
char *t_counter_script(const char *counter);

/* Workload start flags. */
#define T_NEW_SESSION 1 /* setsid(): the tree is its own session, as a container's init is */

/* Forks `sh -c script` with stdio on /dev/null and every fd closed except `keep` (kept at the
 * same numbers). With T_NEW_SESSION it leads its own session. Returns its pid. */
pid_t t_start_script(const char *script, int flags, const int *keep, int nkeep);

/* t_start_script(t_counter_script(counter), T_NEW_SESSION) and waits for the counter to move. */
pid_t t_start_counter(const char *counter_path);

/* `<dir>.counter`: where the workload of the image directory `dir` writes. Free it. */
char *t_counter_path(const char *dir);

/* The usual start of a test: *dir = t_tmpdir(tag), *counter = t_counter_path(*dir), and a
 * counter workload on it (t_start_counter). Returns the workload's pid; free both strings
 * (t_remove does). */
pid_t t_start_workload(const char *tag, char **dir, char **counter);

/* A fresh handle writing images (and dump.log) into `dir` and leaving the tree running, so one
 * workload serves several dumps. Both settings are counted as checks. */
ckpt_opts *t_opts_leave_running(const char *dir);

/* Removes `a` and `b` (rm -rf; `b` may be NULL) and frees both strings. */
void t_remove(char *a, char *b);

/* t_remove when every check so far passed; after a failure keeps both paths for inspection,
 * says so, and only frees the strings. */
void t_remove_if_passed(char *a, char *b);

/* Reads the integer in `path`, -1 when missing or empty. */
long t_read_counter(const char *path);

/* Waits until the counter in `path` exceeds `above` (up to `ms`); returns the value seen. */
long t_wait_counter_above(const char *path, long above, int ms);

/* True when `pid` exists and is neither a zombie nor dead. */
bool t_alive(pid_t pid);

/* Waits up to `ms` for `pid` to stop being alive. */
bool t_wait_gone(pid_t pid, int ms);

/* Kills the process group and the process `pid`, then reaps it and the rest of its group
 * (which comes to us as subreaper). Reaps other exited children too. */
void t_kill(pid_t pid);

/* Reaps every exited child without blocking; returns how many. */
int t_reap(void);

/* Number of open fds of this process. */
int t_count_fds(void);

/* Number of zombie children of this process. */
int t_count_zombies(void);

/* Runs a shell command, returns its exit status (128+ on a signal). */
int t_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The whole content of `path`, NUL-terminated, or NULL; free it. */
char *t_read_file(const char *path);

/* True when the file at `path` contains `needle`. */
bool t_file_contains(const char *path, const char *needle);

/* Number of entries of `dir` whose name starts with `prefix`. */
int t_count_prefix(const char *dir, const char *prefix);

/* True when `path` exists. */
bool t_exists(const char *path);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int t_free_port(void);

/* A pid that no process has: a child that exited and was reaped. */
pid_t t_free_pid(void);

/* Prints the closing lines: "<name>: N checks" and "N passed, N failed". Returns the exit
 * status for main: 0 when every check passed. */
int t_finish(const char *name);

#endif
