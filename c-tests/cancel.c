/* Threads that end inside ckpt: pthread_cancel of a thread inside ckpt_checkpoint, and a
 * notification callback that calls pthread_exit (the thread's value kept) or enables
 * cancellation and is cancelled. None may abort the process; criu is reaped, no descriptor
 * stays open, and the workload keeps running. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

static sem_t in_callback;
static volatile ckpt_status thread_status = 999;

struct job {
    ckpt_opts *opts;
    pid_t pid;
};

/* Says the thread is inside ckpt, then sleeps so a cancel arrives while it is. */
static int sleepy_cb(void *ud, const ckpt_notification *n) {
    (void)ud;
    if (strcmp(ckpt_notification_script(n), "pre-dump") == 0) {
        sem_post(&in_callback);
        usleep(300 * 1000);
    }
    return 0;
}

static int exiting_cb(void *ud, const ckpt_notification *n) {
    (void)ud;
    if (strcmp(ckpt_notification_script(n), "pre-dump") == 0)
        pthread_exit((void *)42);
    return 0;
}

static int self_cancel_cb(void *ud, const ckpt_notification *n) {
    (void)ud;
    if (strcmp(ckpt_notification_script(n), "pre-dump") == 0) {
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
        pthread_cancel(pthread_self());
        pthread_testcancel();
    }
    return 0;
}

static void *dump_thread(void *arg) {
    struct job *j = arg;
    ckpt_error *err = NULL;
    ckpt_status st = ckpt_checkpoint(j->opts, j->pid, NULL, &err);
    thread_status = st;
    ckpt_error_free(err);
    /* A cancel that arrived inside ckpt acts here, at the first cancellation point. */
    pthread_testcancel();
    return (void *)7;
}

static void run_case(const char *tag, const char *what, ckpt_notify_fn cb, bool cancel_from_outside,
                     void *want_ret, ckpt_status want_status) {
    char *dir, *counter;
    pid_t pid = t_start_workload(tag, &dir, &counter);
    ckpt_opts *o = t_opts_leave_running(dir);
    CHECK_ST(ckpt_opts_set_notify(o, cb, NULL), CKPT_OK, "%s", what);
    int fds = t_count_fds();
    thread_status = 999;
    sem_init(&in_callback, 0, 0);
    struct job j = {o, pid};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, dump_thread, &j) == 0, "%s", what);
    if (cancel_from_outside) {
        sem_wait(&in_callback);
        CHECK(pthread_cancel(t) == 0, "%s", what);
    }
    void *ret = NULL;
    CHECK(pthread_join(t, &ret) == 0, "%s", what);
    CHECK(ret == want_ret, "%s: thread returned %p, want %p", what, ret, want_ret);
    if (want_status != 999)
        CHECK_ST(thread_status, want_status, "%s", what);
    else
        CHECK(thread_status == 999, "%s: the thread went on after its callback ended it (%u)",
              what, thread_status);
    CHECK(t_count_fds() == fds, "%s: %d fds open, %d before", what, t_count_fds(), fds);
    CHECK(t_count_zombies() == 0, "%s: %d zombies (criu unreaped?)", what, t_count_zombies());
    long v = t_read_counter(counter);
    CHECK(t_wait_counter_above(counter, v, 5000) > v, "%s: the workload stopped", what);
    printf("%s: process alive, thread returned %p, ckpt status %u\n", what, ret, thread_status);
    ckpt_opts_free(o);
    sem_destroy(&in_callback);
    t_kill(pid);
    t_remove_if_passed(dir, counter);
}

int main(void) {
    t_begin("cancel");
    /* The cancel is deferred until ckpt returned: the dump completes, then the thread ends. */
    run_case("cancel", "pthread_cancel inside ckpt_checkpoint", sleepy_cb, true, PTHREAD_CANCELED, CKPT_OK);
    /* The thread ends with its own value; ckpt_checkpoint never returns to it. */
    run_case("exit", "pthread_exit from a callback", exiting_cb, false, (void *)42, 999);
    run_case("selfcancel", "a callback cancelling itself", self_cancel_cb, false, PTHREAD_CANCELED, 999);
    return t_finish("cancel");
}
