/* Shared helpers for ckpt's C tests: workloads, checks, and fd/zombie accounting. */
#ifndef CKPT_TEST_HELPERS_H
#define CKPT_TEST_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "ckpt.h"

extern int t_failures;

#define CHECK(cond, ...)                                                             \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
            fprintf(stderr, __VA_ARGS__);                                            \
            fprintf(stderr, "\n");                                                   \
            t_failures++;                                                            \
        }                                                                            \
    } while (0)

/* Checks a status, printing the error's message, log path and excerpt when it fails. */
#define CHECK_OK(st, err) t_check_ok((st), (err), __FILE__, __LINE__, #st)
void t_check_ok(ckpt_status st, ckpt_error *err, const char *file, int line, const char *what);

/* A fresh empty directory under /tmp named after `tag`; the caller frees the string. */
char *t_tmpdir(const char *tag);

/* Starts `sh -c 'i=0; while :; do i=$((i+1)); echo $i > COUNTER; sleep 0.05; done'` in its own
 * session with stdio on /dev/null, as a child of this process. Returns its pid. */
pid_t t_start_counter(const char *counter_path);

/* Reads the integer in `path`, -1 when missing or empty. */
long t_read_counter(const char *path);

/* Waits until the counter in `path` exceeds `above` (up to `ms`); returns the value seen. */
long t_wait_counter_above(const char *path, long above, int ms);

/* Kills and reaps a child started by t_start_counter (or restored as our child). */
void t_kill(pid_t pid);

/* Number of open fds of this process. */
int t_count_fds(void);

/* Number of zombie children of this process. */
int t_count_zombies(void);

/* Runs a shell command, returns its exit status. */
int t_sh(const char *fmt, ...);

/* The test's final line, in the plain "N passed, N failed" form. */
int t_finish(const char *name, int checks);

#endif
