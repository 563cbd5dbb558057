/* A C callback that ends its thread (pthread_exit, or a cancellation it allowed) starts a
 * forced unwind. Unwinding through ckpt's Rust frames would abort the process, so the unwind
 * is stopped here, at the callback's caller, the way glibc's own pthread_cleanup_push stops
 * it: a cancel buffer registered around the call catches it with a longjmp. ckpt then ends
 * the operation as for a failing callback (criu told to abort, killed if need be, and
 * reaped; descriptors closed), and resumes the thread's exit from its C entry point with
 * ckpt_thread_exit_resume, so the thread ends as its callback asked and with its value.
 *
 * Built without -fexceptions on purpose: pthread.h then gives the setjmp-based cancel
 * buffers used here (the ones pthread_cleanup_push expands to in C). */
#include <pthread.h>
#include <setjmp.h>
#include <stddef.h>

typedef int (*ckpt_guarded_fn)(void *ctx);

/* Calls fn(ctx). When the call ends the thread instead of returning, sets *exited to 1 and
 * returns -1 with the exit suspended; the caller must finish its work and then call
 * ckpt_thread_exit_resume from a frame that may be unwound. */
int ckpt_thread_exit_guard(ckpt_guarded_fn fn, void *ctx, int *exited) {
    __pthread_unwind_buf_t buf;
    int rc;
    *exited = 0;
    if (__sigsetjmp_cancel(buf.__cancel_jmp_buf, 0)) {
        /* The forced unwind reached this frame: take the buffer off the thread's chain and
         * return as if the callback had failed. */
        __pthread_unregister_cancel(&buf);
        *exited = 1;
        return -1;
    }
    __pthread_register_cancel(&buf);
    rc = fn(ctx);
    __pthread_unregister_cancel(&buf);
    return rc;
}

/* Resumes a thread exit that ckpt_thread_exit_guard suspended: the forced unwind starts
 * again from here towards the thread's start, keeping the value given to pthread_exit. */
void ckpt_thread_exit_resume(void) {
    __pthread_unwind_buf_t buf;
    if (__sigsetjmp_cancel(buf.__cancel_jmp_buf, 0))
        return; /* not reached: nothing longjmps here, the unwind goes to the previous one */
    __pthread_register_cancel(&buf);
    __pthread_unwind_next(&buf);
}
