/* One check per runc checkpoint flag (and the libcontainer settings with a visible effect):
 * each shows the value reached CRIU, through what CRIU did (the images, the tree, the log) or
 * what CRIU said about it. Where CRIU 4.1.1 or this kernel makes an effect unobservable, the
 * output says so. lazy-pages, status-fd and page-server have their own programs (lazy.c,
 * page_server.c); pre-dump's refusal is in features.c. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* Checkpoints and expects CRIU itself to refuse, saying `needle` in its log. */
static void expect_criu_refusal(const ckpt_opts *o, pid_t pid, const char *needle,
                                const char *what) {
    ckpt_error *err = NULL;
    ckpt_status st = ckpt_checkpoint(o, pid, NULL, &err);
    CHECK_ST(st, CKPT_ERR_CRIU, "%s: CRIU refuses", what);
    const char *ex = ckpt_error_log_excerpt(err);
    const char *lp = ckpt_error_log_path(err);
    CHECK(ex && strstr(ex, needle), "%s: excerpt quotes \"%s\"; excerpt:\n%s", what, needle,
          ex ? ex : "(none)");
    CHECK(lp && t_file_contains(lp, needle), "%s: log %s says \"%s\"", what, lp ? lp : "(none)",
          needle);
    if (ex && strstr(ex, needle))
        printf("%s unset: CRIU refused: %s\n", what, ckpt_error_message(err));
    ckpt_error_free(err);
}

/* Checkpoints and returns the status; the error (if any) goes to `*errp` when not NULL. */
static ckpt_status dump(const ckpt_opts *o, pid_t pid, ckpt_error **errp) {
    ckpt_error *err = NULL;
    ckpt_status st = ckpt_checkpoint(o, pid, NULL, &err);
    if (errp)
        *errp = err;
    else
        ckpt_error_free(err);
    return st;
}

/* leave-running: false (sent explicitly) lets CRIU kill the tree; true keeps it (basic.c and
 * dump_restore.c show true). */
static void flag_leave_running(void) {
    printf("-- leave-running\n");
    char *dir, *counter;
    pid_t pid = t_start_workload("f-leave", &dir, &counter);
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    CHECK_OK(ckpt_opts_set_leave_running(o, true), NULL);
    CHECK_OK(ckpt_opts_set_leave_running(o, false), NULL);
    ckpt_error *err = NULL;
    CHECK_OK(dump(o, pid, &err), err);
    ckpt_error_free(err);
    CHECK(t_wait_gone(pid, 3000), "leave-running=false: CRIU killed the tree");
    t_kill(pid);
    ckpt_opts_free(o);
    t_remove_if_passed(dir, counter);
}

/* shell-job: a tree that is a member, not the leader, of its session. The session is made here
 * and led by the tree's parent shell: left in the caller's session, the leader may sit outside
 * CRIU's pid namespace (a CI runner's, or any session started outside a container), and CRIU
 * refuses that for another reason ("A session leader of N is outside of its pid namespace"),
 * shell-job or not. */
static void flag_shell_job(void) {
    printf("-- shell-job\n");
    char *dir = t_tmpdir("f-shell"), *counter = t_counter_path(dir);
    char *loop = t_counter_script(counter), *pidfile = NULL, *script = NULL;
    if (asprintf(&pidfile, "%s.pid", dir) < 0 ||
        asprintf(&script, "(%s) & echo $! > %s.tmp; mv %s.tmp %s; wait", loop, pidfile, pidfile,
                 pidfile) < 0)
        abort();
    pid_t leader = t_start_script(script, T_NEW_SESSION, NULL, 0);
    t_wait_counter_above(counter, 2, 5000);
    pid_t pid = (pid_t)t_wait_counter_above(pidfile, 0, 5000);
    CHECK(pid > 0 && pid != leader && getsid(pid) == leader,
          "shell-job: tree %d is in session %d, led by its parent %d", (int)pid,
          (int)getsid(pid), (int)leader);
    ckpt_opts *o = t_opts_leave_running(dir);
    expect_criu_refusal(o, pid, "is not a session leader. Consider using --shell-job", "shell-job");
    CHECK_OK(ckpt_opts_set_shell_job(o, true), NULL);
    ckpt_error *err = NULL;
    CHECK_OK(dump(o, pid, &err), err);
    ckpt_error_free(err);
    CHECK(t_exists(t_fmt("%s/pstree.img", dir)), "shell-job: images written");
    CHECK(t_alive(pid), "shell-job: tree still running");
    t_kill(leader); /* and its process group, which holds the tree */
    ckpt_opts_free(o);
    free(loop);
    free(script);
    t_sh("rm -f '%s'", pidfile);
    free(pidfile);
    t_remove_if_passed(dir, counter);
}

/* file-locks: a tree holding a flock(2) lock. */
static void flag_file_locks(void) {
    printf("-- file-locks\n");
    char *dir = t_tmpdir("f-locks"), *counter = t_counter_path(dir);
    char *loop = t_counter_script(counter), *script = NULL;
    if (asprintf(&script, "exec 9>%s.lock; flock 9; %s", dir, loop) < 0)
        abort();
    pid_t pid = t_start_script(script, T_NEW_SESSION, NULL, 0);
    t_wait_counter_above(counter, 2, 5000);
    ckpt_opts *o = t_opts_leave_running(dir);
    expect_criu_refusal(o, pid, "You can try --file-locks", "file-locks");
    CHECK_OK(ckpt_opts_set_file_locks(o, true), NULL);
    ckpt_error *err = NULL;
    CHECK_OK(dump(o, pid, &err), err);
    ckpt_error_free(err);
    CHECK(t_exists(t_fmt("%s/filelocks.img", dir)), "file-locks: filelocks.img written");
    t_kill(pid);
    ckpt_opts_free(o);
    t_sh("rm -f '%s.lock'", dir);
    free(loop);
    free(script);
    t_remove_if_passed(dir, counter);
}

/* ext-unix-sk: a datagram socket connected to a named socket outside the tree. */
static void flag_ext_unix_sk(void) {
    printf("-- ext-unix-sk\n");
    char *dir = t_tmpdir("f-extsk"), *counter = t_counter_path(dir);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s.sock", dir);
    unlink(addr.sun_path);
    int srv = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int cli = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(bind(srv, (struct sockaddr *)&addr, sizeof addr) == 0, "bind %s", addr.sun_path);
    CHECK(connect(cli, (struct sockaddr *)&addr, sizeof addr) == 0, "connect");
    char *script = t_counter_script(counter);
    pid_t pid = t_start_script(script, T_NEW_SESSION, &cli, 1);
    close(cli);
    t_wait_counter_above(counter, 2, 5000);
    ckpt_opts *o = t_opts_leave_running(dir);
    expect_criu_refusal(o, pid, "External socket is used. Consider using --ext-unix-sk",
                        "ext-unix-sk");
    CHECK_OK(ckpt_opts_set_ext_unix_sk(o, true), NULL);
    ckpt_error *err = NULL;
    CHECK_OK(dump(o, pid, &err), err);
    ckpt_error_free(err);
    CHECK(t_file_contains(t_fmt("%s/dump.log", dir), "Dumped extern"),
          "ext-unix-sk: CRIU dumped the external socket");
    t_kill(pid);
    close(srv);
    unlink(addr.sun_path);
    ckpt_opts_free(o);
    free(script);
    t_remove_if_passed(dir, counter);
}

/* link-remap: a file open by a name that was removed while another hard link keeps it. */
static void flag_link_remap(void) {
    printf("-- link-remap\n");
    char *dir = t_tmpdir("f-remap"), *counter = t_counter_path(dir);
    char *files = NULL, *loop = t_counter_script(counter), *script = NULL;
    if (asprintf(&files, "%s.files", dir) < 0 ||
        asprintf(&script, "exec 3<%s/a; %s", files, loop) < 0)
        abort();
    t_sh("rm -rf '%s'; mkdir -p '%s' && echo data > '%s/a' && ln '%s/a' '%s/b'", files, files,
         files, files, files);
    pid_t pid = t_start_script(script, T_NEW_SESSION, NULL, 0);
    t_wait_counter_above(counter, 2, 5000);
    unlink(t_fmt("%s/a", files));
    ckpt_opts *o = t_opts_leave_running(dir);
    expect_criu_refusal(o, pid, "Can't create link remap for", "link-remap");
    CHECK(t_count_prefix(files, "link_remap.") == 0, "link-remap: no remap link yet");
    CHECK_OK(ckpt_opts_set_link_remap(o, true), NULL);
    /* CRIU removes the remap link again when the tree keeps running; let it kill the tree so
     * the link stays, as it must for a restore. */
    CHECK_OK(ckpt_opts_set_leave_running(o, false), NULL);
    ckpt_error *err = NULL;
    CHECK_OK(dump(o, pid, &err), err);
    ckpt_error_free(err);
    CHECK(t_file_contains(t_fmt("%s/dump.log", dir), "Will allow link remaps on FS"),
          "link-remap: CRIU acknowledged the option");
    CHECK(t_count_prefix(files, "link_remap.") == 1,
          "link-remap: CRIU linked the removed file back as link_remap.N");
    CHECK(t_exists(t_fmt("%s/remap-fpath.img", dir)), "link-remap: remap-fpath.img written");
    t_kill(pid);
    ckpt_opts_free(o);
    t_sh("rm -rf '%s'", files);
    free(files);
    free(loop);
    free(script);
    t_remove_if_passed(dir, counter);
}

/* CRIU 4.1.1 reads SO_PASSCRED and SO_PASSSEC of every socket; Linux 6.16 and later refuse
 * them on inet sockets, so any TCP socket fails the dump after the flag has had its effect. */
static bool inet_opts_refused(ckpt_error *err) {
    const char *ex = ckpt_error_log_excerpt(err);
    return ex && strstr(ex, "Can't get 1:16 opt");
}

static int tcp_listener(int *port) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 8) == 0 &&
              getsockname(l, (struct sockaddr *)&a, &len) == 0,
          "tcp listener");
    *port = ntohs(a.sin_port);
    return l;
}

static int tcp_connect(int port) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0, "connect to 127.0.0.1:%d", port);
    return c;
}

/* tcp-established: both ends of an established loopback connection inside the tree. */
static void flag_tcp_established(void) {
    printf("-- tcp-established\n");
    char *dir = t_tmpdir("f-tcp"), *counter = t_counter_path(dir);
    int port = 0;
    int l = tcp_listener(&port);
    int c = tcp_connect(port);
    int s = accept(l, NULL, NULL);
    int keep[2] = {c, s};
    char *script = t_counter_script(counter);
    pid_t pid = t_start_script(script, T_NEW_SESSION, keep, 2);
    close(c);
    close(s);
    close(l);
    t_wait_counter_above(counter, 2, 5000);
    ckpt_opts *o = t_opts_leave_running(dir);
    expect_criu_refusal(o, pid, "Connected TCP socket, consider using --tcp-established",
                        "tcp-established");
    CHECK_OK(ckpt_opts_set_tcp_established(o, true), NULL);
    ckpt_error *err = NULL;
    ckpt_status st = dump(o, pid, &err);
    const char *lp = t_fmt("%s/dump.log", dir);
    CHECK(t_file_contains(lp, "Will dump/restore TCP connections"),
          "tcp-established: CRIU acknowledged the option");
    CHECK(!t_file_contains(lp, "consider using --tcp-established"),
          "tcp-established: CRIU accepted the established connection");
    if (st == CKPT_OK) {
        CHECK(t_count_prefix(dir, "tcp-stream-") > 0, "tcp-established: tcp-stream image");
    } else if (inet_opts_refused(err)) {
        printf("tcp-established set: CRIU went past the connection check\n");
        t_not_exercised("a complete dump of a TCP connection: CRIU 4.1.1 cannot read "
                        "SO_PASSCRED/SO_PASSSEC of inet sockets on Linux >= 6.16 (\"%s\")",
                        "Can't get 1:16 opt: Operation not supported");
    } else {
        CHECK_OK(st, err);
    }
    ckpt_error_free(err);
    t_kill(pid);
    ckpt_opts_free(o);
    free(script);
    t_remove_if_passed(dir, counter);
}

/* tcp-skip-in-flight: a listening socket with a connection waiting in its accept queue. */
static void flag_tcp_skip_in_flight(void) {
    printf("-- tcp-skip-in-flight\n");
    char *dir = t_tmpdir("f-inflight"), *counter = t_counter_path(dir);
    int port = 0;
    int l = tcp_listener(&port);
    char *script = t_counter_script(counter);
    pid_t pid = t_start_script(script, T_NEW_SESSION, &l, 1);
    int c = tcp_connect(port); /* never accepted: in flight */
    close(l);
    t_wait_counter_above(counter, 2, 5000);
    ckpt_opts *o = t_opts_leave_running(dir);
    expect_criu_refusal(o, pid, "In-flight connections can be ignored", "tcp-skip-in-flight");
    CHECK_OK(ckpt_opts_set_tcp_skip_in_flight(o, true), NULL);
    ckpt_error *err = NULL;
    ckpt_status st = dump(o, pid, &err);
    CHECK(t_file_contains(t_fmt("%s/dump.log", dir), "Will skip in-flight TCP connections"),
          "tcp-skip-in-flight: CRIU acknowledged the option");
    CHECK(t_file_contains(t_fmt("%s/dump.log", dir), "Skipping in-flight connection"),
          "tcp-skip-in-flight: CRIU skipped the in-flight connection");
    if (st != CKPT_OK && inet_opts_refused(err))
        t_not_exercised("a complete dump of a listening TCP socket: CRIU 4.1.1 cannot read "
                        "SO_PASSCRED/SO_PASSSEC of inet sockets on Linux >= 6.16");
    else
        CHECK_OK(st, err);
    ckpt_error_free(err);
    t_kill(pid);
    close(c);
    ckpt_opts_free(o);
    free(script);
    t_remove_if_passed(dir, counter);
}

/* empty-ns network: a tree in its own network namespace. */
static void flag_empty_ns(void) {
    printf("-- empty-ns network\n");
    char *dir = t_tmpdir("f-emptyns"), *counter = t_counter_path(dir);
    char *loop = t_counter_script(counter), *script = NULL;
    if (asprintf(&script, "exec unshare -n sh -c '%s'", loop) < 0)
        abort();
    pid_t pid = t_start_script(script, T_NEW_SESSION, NULL, 0);
    t_wait_counter_above(counter, 2, 5000);
    char *full = NULL, *empty = NULL;
    if (asprintf(&full, "%s/full", dir) < 0 || asprintf(&empty, "%s/empty", dir) < 0)
        abort();
    ckpt_opts *o = t_opts_leave_running(full);
    ckpt_error *err = NULL;
    CHECK_OK(dump(o, pid, &err), err);
    ckpt_error_free(err);
    CHECK(t_count_prefix(full, "netdev-") > 0, "without empty-ns: the netns devices are dumped");
    ckpt_opts_free(o);

    o = t_opts_leave_running(empty);
    CHECK_OK(ckpt_opts_add_empty_ns(o, "network"), NULL);
    CHECK_ST(ckpt_opts_add_empty_ns(o, "pid"), CKPT_ERR_INVALID_ARGUMENT, "empty-ns pid");
    CHECK_OK(dump(o, pid, &err), err);
    ckpt_error_free(err);
    CHECK(t_count_prefix(empty, "netdev-") == 0 && t_count_prefix(empty, "ifaddr-") == 0,
          "empty-ns network: CRIU left the namespace's devices and addresses out");
    CHECK(t_exists(t_fmt("%s/pstree.img", empty)), "empty-ns network: the tree was dumped");
    t_kill(pid);
    ckpt_opts_free(o);
    free(full);
    free(empty);
    free(loop);
    free(script);
    t_remove_if_passed(dir, counter);
}

/* work-path: CRIU's log and work files go there, the images stay in the image path. */
static void flag_work_path(void) {
    printf("-- work-path\n");
    char *dir = t_tmpdir("f-work"), *counter = t_counter_path(dir);
    char *img = NULL, *work = NULL;
    if (asprintf(&img, "%s/img", dir) < 0 || asprintf(&work, "%s/work/sub", dir) < 0)
        abort();
    pid_t pid = t_start_counter(counter);
    ckpt_opts *o = t_opts_leave_running(img);
    CHECK_OK(ckpt_opts_set_work_path(o, work), NULL);
    ckpt_error *err = NULL;
    CHECK_OK(dump(o, pid, &err), err);
    ckpt_error_free(err);
    CHECK(t_exists(t_fmt("%s/dump.log", work)), "work-path: dump.log in the work directory");
    CHECK(!t_exists(t_fmt("%s/dump.log", img)), "work-path: no dump.log in the image directory");
    CHECK(t_exists(t_fmt("%s/inventory.img", img)), "work-path: images in the image directory");
    struct stat st;
    CHECK(stat(work, &st) == 0 && (st.st_mode & 0777) == 0700, "work-path created 0700 (%o)",
          st.st_mode & 0777);
    CHECK(stat(img, &st) == 0 && (st.st_mode & 0777) == 0700, "image path created 0700 (%o)",
          st.st_mode & 0777);
    t_kill(pid);
    ckpt_opts_free(o);
    free(img);
    free(work);
    t_remove_if_passed(dir, counter);
}

/* parent-path: CRIU cannot dump on top of a parent without memory tracking; ckpt asks CRIU's
 * feature check and refuses before the dump. */
static void flag_parent_path(void) {
    printf("-- parent-path\n");
    char *dir = t_tmpdir("f-parent"), *counter = t_counter_path(dir);
    t_sh("mkdir -p '%s/parent'", dir);
    pid_t pid = t_start_counter(counter);
    ckpt_opts *o = t_opts_leave_running(dir);
    CHECK_OK(ckpt_opts_set_parent_path(o, "parent"), NULL);
    ckpt_error *err = NULL;
    CHECK_ST(dump(o, pid, &err), CKPT_ERR_UNSUPPORTED, "parent-path without memory tracking");
    const char *m = ckpt_error_message(err);
    CHECK(m && strstr(m, "memory change tracking"), "message names memory tracking: %s",
          m ? m : "(none)");
    printf("parent-path refused: %s\n", m ? m : "(none)");
    t_not_exercised("a dump on top of parent images (the kernel lacks soft-dirty memory "
                    "tracking, CRIU's mem_dirty_track)");
    ckpt_error_free(err);
    CHECK(t_alive(pid), "the tree is untouched");
    t_kill(pid);
    ckpt_opts_free(o);
    t_remove_if_passed(dir, counter);
}

/* lazy-pages without a page server is refused before criu starts. */
static void flag_lazy_needs_page_server(void) {
    printf("-- lazy-pages without page-server\n");
    char *dir = t_tmpdir("f-lazy");
    ckpt_opts *o = t_opts_leave_running(dir);
    CHECK_OK(ckpt_opts_set_lazy_pages(o, true), NULL);
    ckpt_error *err = NULL;
    CHECK_ST(dump(o, getpid(), &err), CKPT_ERR_INVALID_ARGUMENT, "lazy-pages alone");
    const char *m = ckpt_error_message(err);
    CHECK(m && strstr(m, "page-server"), "message asks for a page server: %s", m ? m : "(none)");
    CHECK(ckpt_error_log_path(err) == NULL, "criu did not run, so no log path");
    ckpt_error_free(err);
    CHECK(!t_exists(dir), "nothing created before the refusal");
    ckpt_opts_free(o);
    t_remove_if_passed(dir, NULL);
}

/* auto-dedup and manage-cgroups-mode change nothing CRIU 4.1.1 does on a plain dump: dedup
 * works against parent images (which need memory tracking) and the cgroup mode applies on
 * restore. The dump accepts both; the same handle then restores, where both show. */
static void flag_auto_dedup_and_cgroups(void) {
    printf("-- auto-dedup, manage-cgroups-mode\n");
    char *dir = t_tmpdir("f-cg"), *counter = t_counter_path(dir);
    char *cg = NULL, *loop = t_counter_script(counter), *script = NULL;
    if (asprintf(&cg, "/sys/fs/cgroup/pids/ckpt-ctest-%d", (int)getpid()) < 0 ||
        asprintf(&script, "echo $$ > %s/cgroup.procs && %s", cg, loop) < 0)
        abort();
    if (mkdir(cg, 0755) != 0) {
        t_not_exercised("manage-cgroups-mode: cannot create %s", cg);
        free(cg);
        free(loop);
        free(script);
        free(counter);
        free(dir);
        return;
    }
    pid_t pid = t_start_script(script, T_NEW_SESSION, NULL, 0);
    CHECK(t_wait_counter_above(counter, 2, 5000) > 2, "workload in its own pids cgroup runs");

    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    CHECK_OK(ckpt_opts_set_auto_dedup(o, true), NULL);
    CHECK_OK(ckpt_opts_set_manage_cgroups_mode(o, "strict"), NULL);
    ckpt_error *err = NULL;
    CHECK_OK(dump(o, pid, &err), err);
    ckpt_error_free(err);
    t_kill(pid);
    CHECK(t_exists(t_fmt("%s/cgroup.img", dir)), "the tree's cgroup was dumped");
    t_not_exercised("auto-dedup on dump (it punches holes in parent images; parent images "
                    "need pre-dump, which needs memory tracking)");
    t_not_exercised("manage-cgroups-mode on dump (CRIU 4.1.1 reads the mode only on restore): "
                    "shown on restore below");

    struct stat st;
    const char *pages = t_fmt("%s/pages-1.img", dir);
    CHECK(stat(pages, &st) == 0 && st.st_blocks > 0, "pages-1.img holds data before restore");

    /* strict: the cgroup still exists, so CRIU must abort the restore. */
    int32_t rpid = 0;
    CHECK_ST(ckpt_restore(o, &rpid, NULL, &err), CKPT_ERR_CRIU, "restore in strict cgroup mode");
    const char *lp = ckpt_error_log_path(err);
    CHECK(lp && t_file_contains(lp, "cgroups restore mode 0x10"),
          "CRIU got cgroup mode strict (0x10)");
    CHECK(lp && t_file_contains(lp, "Abort restore of existing cgroups"),
          "strict: CRIU refused the existing cgroup");
    if (err)
        printf("manage-cgroups-mode strict: %s\n", ckpt_error_message(err));
    ckpt_error_free(err);
    t_reap();

    /* soft: CRIU reuses the cgroup; auto-dedup frees the pages it restored. */
    CHECK_OK(ckpt_opts_set_manage_cgroups_mode(o, "soft"), NULL);
    CHECK_OK(ckpt_opts_set_log_file(o, "restore-soft.log"), NULL);
    err = NULL;
    ckpt_status rs = ckpt_restore(o, &rpid, NULL, &err);
    CHECK_OK(rs, err);
    ckpt_error_free(err);
    if (rs == CKPT_OK) {
        const char *log = t_fmt("%s/restore-soft.log", dir);
        CHECK(t_file_contains(log, "cgroups restore mode 0x4)"), "CRIU got cgroup mode soft (0x4)");
        CHECK(t_file_contains(log, "Skip restoring properties on cgroup dir"),
              "soft: CRIU reused the existing cgroup");
        CHECK(stat(pages, &st) == 0 && st.st_blocks == 0,
              "auto-dedup: CRIU punched the restored pages out of pages-1.img (%lld blocks)",
              (long long)st.st_blocks);
        char *cgfile = t_read_file(t_fmt("/proc/%d/cgroup", (int)rpid));
        CHECK(cgfile && strstr(cgfile, t_fmt("pids:/ckpt-ctest-%d", (int)getpid())),
              "restored tree is back in its cgroup");
        free(cgfile);
        t_kill(rpid);
    }
    t_reap();
    ckpt_opts_free(o);
    for (int i = 0; i < 100 && rmdir(cg) != 0; i++)
        usleep(20 * 1000);
    free(cg);
    free(loop);
    free(script);
    t_remove_if_passed(dir, counter);
}

/* log level and log file name (set by libcontainer, not runc flags): CRIU writes there. */
static void setting_log(void) {
    printf("-- log level, log file\n");
    char *dir, *counter;
    pid_t pid = t_start_workload("f-log", &dir, &counter);
    ckpt_opts *o = t_opts_leave_running(dir);
    CHECK_OK(ckpt_opts_set_log_file(o, "mine.log"), NULL);
    CHECK_OK(ckpt_opts_set_log_level(o, 1), NULL);
    ckpt_error *err = NULL;
    CHECK_OK(dump(o, pid, &err), err);
    ckpt_error_free(err);
    const char *log = t_fmt("%s/mine.log", dir);
    CHECK(t_exists(log) && !t_exists(t_fmt("%s/dump.log", dir)), "log in mine.log");
    CHECK(!t_file_contains(log, "Dumping task"), "log level 1: no info lines");
    CHECK_OK(ckpt_opts_set_log_level(o, 4), NULL);
    CHECK_OK(ckpt_opts_set_log_file(o, "debug.log"), NULL);
    CHECK_OK(dump(o, pid, &err), err);
    ckpt_error_free(err);
    CHECK(t_file_contains(t_fmt("%s/debug.log", dir), "Dumping task"), "log level 4: info lines");
    t_kill(pid);
    ckpt_opts_free(o);
    t_remove_if_passed(dir, counter);
}

struct seen {
    void *self;
    int calls;
    int bad_userdata;
    char names[512];
    int abort_on_post_dump;
};

static int on_notify(void *userdata, const ckpt_notification *n) {
    struct seen *s = userdata;
    if (s->self != s)
        s->bad_userdata++;
    s->calls++;
    const char *name = ckpt_notification_script(n);
    if (name && strlen(s->names) + strlen(name) + 2 < sizeof s->names) {
        strcat(s->names, name);
        strcat(s->names, " ");
    }
    if (s->abort_on_post_dump && name && strcmp(name, "post-dump") == 0) {
        ckpt_notification_set_error(n, "the runtime says no");
        return 1;
    }
    return 0;
}

/* The notification callback gets CRIU's notifications with the caller's userdata, and a
 * non-zero return aborts the dump with CKPT_ERR_CALLBACK and the callback's message. */
static void setting_notify(void) {
    printf("-- notification callback\n");
    char *dir, *counter;
    pid_t pid = t_start_workload("f-notify", &dir, &counter);
    ckpt_opts *o = t_opts_leave_running(dir);
    struct seen s = {.self = &s};
    CHECK_OK(ckpt_opts_set_notify(o, on_notify, &s), NULL);
    ckpt_error *err = NULL;
    CHECK_OK(dump(o, pid, &err), err);
    ckpt_error_free(err);
    printf("notifications: %s\n", s.names);
    CHECK(s.calls >= 2 && s.bad_userdata == 0, "callback called (%d) with our userdata", s.calls);
    CHECK(strstr(s.names, "pre-dump") && strstr(s.names, "post-dump"),
          "pre-dump and post-dump notified: %s", s.names);
    CHECK(ckpt_notification_script(NULL) == NULL && ckpt_notification_pid(NULL) == 0 &&
              ckpt_notification_fd(NULL) == -1,
          "notification accessors take NULL");
    CHECK_ST(ckpt_notification_set_error(NULL, "x"), CKPT_ERR_NULL_ARGUMENT, "set_error(NULL)");

    struct seen a = {.self = &a, .abort_on_post_dump = 1};
    CHECK_OK(ckpt_opts_set_notify(o, on_notify, &a), NULL);
    CHECK_ST(dump(o, pid, &err), CKPT_ERR_CALLBACK, "callback aborts");
    const char *m = ckpt_error_message(err);
    CHECK(m && strstr(m, "the runtime says no"), "error carries the callback's message: %s",
          m ? m : "(none)");
    ckpt_error_free(err);
    CHECK(t_alive(pid), "tree survives an aborted dump");
    CHECK_OK(ckpt_opts_set_notify(o, NULL, NULL), NULL);
    CHECK_OK(dump(o, pid, &err), err);
    ckpt_error_free(err);
    CHECK(a.calls > 0 && strstr(a.names, "post-dump"), "aborting callback ran");
    t_kill(pid);
    ckpt_opts_free(o);
    t_remove_if_passed(dir, counter);
}

int main(void) {
    t_begin("flags");
    flag_leave_running();
    flag_shell_job();
    flag_file_locks();
    flag_ext_unix_sk();
    flag_link_remap();
    flag_tcp_established();
    flag_tcp_skip_in_flight();
    flag_empty_ns();
    flag_work_path();
    flag_parent_path();
    flag_lazy_needs_page_server();
    flag_auto_dedup_and_cgroups();
    setting_log();
    setting_notify();
    printf("lazy-pages, status-fd: see test lazy; page-server: see test page_server; pre-dump: "
           "see test features\n");
    t_reap();
    return t_finish("flags");
}
