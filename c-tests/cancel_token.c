/* ckpt_cancel: a token triggered before the call fails it at once with CKPT_ERR_CANCELLED; a
 * trigger from another thread, or from a signal handler, while ckpt_checkpoint waits in a
 * notification stops the dump the way its timeout would: CRIU is told to abort, the workload
 * keeps running, criu is reaped and no descriptor stays open. Plus NULL handling. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

static sem_t in_callback;
static ckpt_cancel *sig_token; /* what the SIGUSR1 handler triggers */

/* Says the dump reached pre-dump, then sleeps so the trigger lands while it is handled. */
static int announce_cb(void *ud, const ckpt_notification *n) {
    (void)ud;
    if (strcmp(ckpt_notification_script(n), "pre-dump") == 0) {
        sem_post(&in_callback);
        usleep(300 * 1000);
    }
    return 0;
}

static void on_usr1(int sig) {
    (void)sig;
    ckpt_cancel_trigger(sig_token);
}

struct job {
    ckpt_opts *opts;
    pid_t pid;
    ckpt_status st;
    ckpt_outcome outcome;
    char message[512];
};

static void *dump_thread(void *arg) {
    struct job *j = arg;
    ckpt_error *err = NULL;
    j->st = ckpt_checkpoint(j->opts, j->pid, NULL, &err);
    j->outcome = ckpt_error_outcome(err);
    const char *m = ckpt_error_message(err);
    snprintf(j->message, sizeof j->message, "%s", m ? m : "");
    ckpt_error_free(err);
    return NULL;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void null_handling(void) {
    printf("-- NULL handling\n");
    CHECK_ST(ckpt_cancel_trigger(NULL), CKPT_ERR_NULL_ARGUMENT, "trigger(NULL)");
    CHECK(!ckpt_cancel_is_triggered(NULL), "is_triggered(NULL)");
    ckpt_cancel_free(NULL);
    ckpt_cancel *c = ckpt_cancel_new();
    CHECK(c != NULL, "ckpt_cancel_new");
    CHECK_ST(ckpt_opts_set_cancel(NULL, c), CKPT_ERR_NULL_ARGUMENT, "set_cancel(NULL, c)");
    ckpt_opts *o = ckpt_opts_new();
    CHECK_ST(ckpt_opts_set_cancel(o, NULL), CKPT_OK, "set_cancel(o, NULL) detaches");
    CHECK(!ckpt_cancel_is_triggered(c), "a new token is not triggered");
    CHECK(strstr(ckpt_status_str(CKPT_ERR_CANCELLED), "cancel") != NULL, "status text: %s",
          ckpt_status_str(CKPT_ERR_CANCELLED));
    ckpt_opts_free(o);
    ckpt_cancel_free(c);
}

static void before_the_call(void) {
    printf("-- triggered before the call\n");
    char *dir, *counter;
    pid_t pid = t_start_workload("cancel-before", &dir, &counter);
    ckpt_opts *o = t_opts_leave_running(dir);
    ckpt_cancel *c = ckpt_cancel_new();
    CHECK_ST(ckpt_opts_set_cancel(o, c), CKPT_OK, "set_cancel");
    CHECK_ST(ckpt_cancel_trigger(c), CKPT_OK, "trigger");
    CHECK(ckpt_cancel_is_triggered(c), "triggered");
    /* The options hold their own reference: the token may go first. */
    ckpt_cancel_free(c);
    double t0 = now_ms();
    ckpt_error *err = NULL;
    ckpt_stats *stats = NULL;
    ckpt_status st = ckpt_checkpoint(o, pid, &stats, &err);
    double took = now_ms() - t0;
    CHECK_ST(st, CKPT_ERR_CANCELLED, "%s", ckpt_error_message(err));
    CHECK(ckpt_error_code(err) == CKPT_ERR_CANCELLED, "error code");
    CHECK(stats == NULL, "no statistics");
    CHECK(took < 500, "failed at once, not after %.0f ms", took);
    CHECK(!t_exists(dir), "the image directory was not created");
    printf("before the call: %s (%.1f ms)\n", ckpt_error_message(err), took);
    ckpt_error_free(err);
    err = NULL;
    int32_t rpid = 0;
    CHECK_ST(ckpt_restore(o, &rpid, NULL, &err), CKPT_ERR_CANCELLED, "restore");
    ckpt_error_free(err);
    CHECK(t_alive(pid), "the workload runs");
    ckpt_opts_free(o);
    t_kill(pid);
    t_remove_if_passed(dir, counter);
}

static void during_the_dump(bool from_signal) {
    const char *what = from_signal ? "signal handler" : "other thread";
    printf("-- triggered from %s during pre-dump\n", from_signal ? "a signal handler" : "another thread");
    char *dir, *counter;
    pid_t pid = t_start_workload(from_signal ? "cancel-sig" : "cancel-thread", &dir, &counter);
    ckpt_opts *o = t_opts_leave_running(dir);
    ckpt_cancel *c = ckpt_cancel_new();
    CHECK_ST(ckpt_opts_set_cancel(o, c), CKPT_OK, "%s", what);
    CHECK_ST(ckpt_opts_set_notify(o, announce_cb, NULL), CKPT_OK, "%s", what);
    int fds = t_count_fds();
    sem_init(&in_callback, 0, 0);
    struct job j = {o, pid, 999, 0, ""};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, dump_thread, &j) == 0, "%s", what);
    sem_wait(&in_callback);
    if (from_signal) {
        sig_token = c;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
        /* The handler runs on the dumping thread, inside ckpt. */
        CHECK(pthread_kill(t, SIGUSR1) == 0, "%s", what);
    } else {
        CHECK_ST(ckpt_cancel_trigger(c), CKPT_OK, "%s", what);
    }
    CHECK(pthread_join(t, NULL) == 0, "%s", what);
    CHECK_ST(j.st, CKPT_ERR_CANCELLED, "%s: %s", what, j.message);
    CHECK(strstr(j.message, "told to abort") != NULL, "%s: %s", what, j.message);
    CHECK((j.outcome & CKPT_OUTCOME_TREE_KILLED) == 0, "%s: outcome %u", what, j.outcome);
    CHECK(t_count_fds() == fds, "%s: %d fds open, %d before", what, t_count_fds(), fds);
    CHECK(t_count_zombies() == 0, "%s: %d zombies (criu unreaped?)", what, t_count_zombies());
    long v = t_read_counter(counter);
    CHECK(t_wait_counter_above(counter, v, 5000) > v, "%s: the workload stopped", what);
    printf("%s: %s; the workload runs\n", what, j.message);
    if (from_signal) {
        signal(SIGUSR1, SIG_DFL);
        sig_token = NULL;
    }
    ckpt_cancel_free(c);
    ckpt_opts_free(o);
    sem_destroy(&in_callback);
    t_kill(pid);
    t_remove_if_passed(dir, counter);
}

int main(void) {
    t_begin("cancel_token");
    null_handling();
    before_the_call();
    during_the_dump(false);
    during_the_dump(true);
    return t_finish("cancel_token");
}
