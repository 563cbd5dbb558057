/* Every setter's bad inputs: each returns its CKPT_ERR_* status, leaves a reason in
 * ckpt_opts_last_error, and changes nothing (checked through what a later operation does).
 * scripts/test.d/20-c.sh checks that every ckpt_opts_set_* / ckpt_opts_add_* in ckpt.h is named
 * here. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static const char BAD_UTF8[] = {'a', (char)0xff, (char)0xfe, 'z', 0};

typedef ckpt_status (*str_setter)(ckpt_opts *, const char *);

struct str_case {
    const char *name;
    str_setter fn;
    const char *good[6];          /* accepted values */
    const char *bad[12];          /* refused with CKPT_ERR_INVALID_ARGUMENT */
    const char *reason;           /* a word the refusal's reason must contain */
    int path;                     /* a path: bytes that are not UTF-8 are accepted */
};

#define S(fn) #fn, fn
static const struct str_case STR_CASES[] = {
    {S(ckpt_opts_set_image_path), {"/tmp/x", "rel/dir"}, {0}, 0, 1},
    {S(ckpt_opts_set_work_path), {"/tmp/x"}, {0}, 0, 1},
    /* Its form (relative, no '..') and target are checked when the dump starts: parent_path(). */
    {S(ckpt_opts_set_parent_path), {"pre-1", "a/b"}, {0}, 0, 1},
    {S(ckpt_opts_set_criu_path), {"/usr/local/sbin/criu", "criu"}, {0}, 0, 1},
    {S(ckpt_opts_set_pid_file), {"/tmp/p.pid"}, {0}, 0, 1},
    {S(ckpt_opts_set_console_socket), {"/tmp/console.sock"}, {0}, 0, 1},
    {S(ckpt_opts_set_service_address), {"/run/criu.sock"}, {0}, 0, 1},
    {S(ckpt_opts_set_root), {"/"}, {0}, 0, 1},
    {S(ckpt_opts_set_freeze_cgroup), {"/sys/fs/cgroup/freezer/x"}, {0}, 0, 1},
    {S(ckpt_opts_set_lsm_mount_context), {"system_u:object_r:container_file_t:s0"}, {0}, 0, 0},
    {S(ckpt_opts_set_config_file), {"/etc/criu/x.conf"}, {0}, 0, 1},
    {S(ckpt_opts_set_cgroup_props), {"\"cpu\": {}"}, {0}, 0, 0},
    {S(ckpt_opts_set_cgroup_props_file), {"/tmp/props"}, {0}, 0, 1},
    {S(ckpt_opts_set_cgroup_yard), {"/tmp/yard"}, {0}, 0, 1},
    {S(ckpt_opts_set_tls_cacert), {"/tmp/ca.pem"}, {0}, 0, 1},
    {S(ckpt_opts_set_tls_cacrl), {"/tmp/ca.crl"}, {0}, 0, 1},
    {S(ckpt_opts_set_tls_cert), {"/tmp/cert.pem"}, {0}, 0, 1},
    {S(ckpt_opts_set_tls_key), {"/tmp/key.pem"}, {0}, 0, 1},
    {S(ckpt_opts_set_page_server),
     {"[::1]:27277", "127.0.0.1:1", "host.example:65535", "localhost:80"},
     {"1.2.3.4", ":80", "h:0", "h:65536", "::1:80", "[::1]80", "[::1", "[zz]:80", "h:x", "h:-1",
      "h:"},
     "page-server", 0},
    {S(ckpt_opts_set_manage_cgroups_mode), {"soft", "full", "strict", "ignore"},
     {"bogus", "SOFT", " soft", "soft "}, "manage-cgroups-mode", 0},
    {S(ckpt_opts_set_network_lock), {"iptables", "nftables", "skip"}, {"bogus", "IPTABLES"},
     "network lock", 0},
    {S(ckpt_opts_set_container_status), {"created", "running", "paused", "stopped"},
     {"bogus", "Running", "exited"}, "container status", 0},
    {S(ckpt_opts_set_log_file), {"x.log", "dump-2.log"}, {"a/b", "/abs.log", ".", "..", "dir/"},
     "'/'", 1},
    {S(ckpt_opts_set_lsm_profile), {"apparmor:p", "selinux:a:b"}, {"apparmor", ":x", "x:"},
     "TYPE:NAME", 0},
    {S(ckpt_opts_set_pre_dump_mode), {"splice", "read"}, {"bogus", "SPLICE"}, "pre-dump mode", 0},
    {S(ckpt_opts_add_empty_ns), {"network"},
     {"pid", "mnt", "ipc", "uts", "user", "cgroup", "NETWORK", "time"}, "network", 0},
    {S(ckpt_opts_add_external), {"net[4026531992]:extRootNetNS"}, {0}, 0, 0},
    {S(ckpt_opts_add_cgroup_dump_controller), {"pids"}, {0}, 0, 0},
    {S(ckpt_opts_add_skip_mount), {"/proc/sys"}, {0}, 0, 1},
    {S(ckpt_opts_add_enable_fs), {"nfs"}, {0}, 0, 0},
    {S(ckpt_opts_add_irmap_scan_path), {"/etc"}, {0}, 0, 1},
    {S(ckpt_opts_add_exec_cmd), {"/bin/true"}, {0}, 0, 0},
};

typedef ckpt_status (*bool_setter)(ckpt_opts *, bool);
static const struct {
    const char *name;
    bool_setter fn;
} BOOL_CASES[] = {
    {S(ckpt_opts_set_leave_running)},     {S(ckpt_opts_set_leave_stopped)},
    {S(ckpt_opts_set_tcp_established)},   {S(ckpt_opts_set_tcp_skip_in_flight)},
    {S(ckpt_opts_set_tcp_close)},         {S(ckpt_opts_set_link_remap)},
    {S(ckpt_opts_set_ext_unix_sk)},       {S(ckpt_opts_set_shell_job)},
    {S(ckpt_opts_set_lazy_pages)},        {S(ckpt_opts_set_file_locks)},
    {S(ckpt_opts_set_pre_dump)},          {S(ckpt_opts_set_track_mem)},
    {S(ckpt_opts_set_auto_dedup)},        {S(ckpt_opts_set_evasive_devices)},
    {S(ckpt_opts_set_force_irmap)},       {S(ckpt_opts_set_auto_ext_mnt)},
    {S(ckpt_opts_set_ext_sharing)},       {S(ckpt_opts_set_ext_masters)},
    {S(ckpt_opts_set_weak_sysctls)},      {S(ckpt_opts_set_orphan_pts_master)},
    {S(ckpt_opts_set_manage_cgroups)},    {S(ckpt_opts_set_mntns_compat_mode)},
    {S(ckpt_opts_set_skip_file_rwx_check)}, {S(ckpt_opts_set_unprivileged)},
    {S(ckpt_opts_set_display_stats)},     {S(ckpt_opts_set_log_to_stderr)},
    {S(ckpt_opts_set_tls)},               {S(ckpt_opts_set_tls_no_cn_verify)},
};

typedef ckpt_status (*u32_setter)(ckpt_opts *, uint32_t);
static const struct {
    const char *name;
    u32_setter fn;
} U32_CASES[] = {
    {S(ckpt_opts_set_criu_timeout)}, {S(ckpt_opts_set_timeout_ms)},
    {S(ckpt_opts_set_ghost_limit)},  {S(ckpt_opts_set_cpu_cap)},
    {S(ckpt_opts_add_unix_sk_ino)},  {S(ckpt_opts_set_restore_wait_ms)},
};

/* After a failed setter: the status, and a reason on the handle. */
static void expect_refused(ckpt_opts *o, ckpt_status st, ckpt_status want, const char *what,
                           const char *reason_word) {
    CHECK_ST(st, want, "%s", what);
    const char *why = ckpt_opts_last_error(o);
    CHECK(why != NULL && why[0] != 0, "%s: ckpt_opts_last_error gives a reason", what);
    if (why && reason_word)
        CHECK(strstr(why, reason_word) != NULL, "%s: reason \"%s\" mentions \"%s\"", what, why,
              reason_word);
}

static void expect_accepted(ckpt_opts *o, ckpt_status st, const char *what) {
    CHECK_ST(st, CKPT_OK, "%s", what);
    CHECK(ckpt_opts_last_error(o) == NULL, "%s: last error cleared after success", what);
}

static void string_setters(void) {
    printf("-- string setters: NULL handle, NULL, invalid UTF-8, empty, malformed\n");
    ckpt_opts *o = ckpt_opts_new();
    for (size_t i = 0; i < sizeof STR_CASES / sizeof STR_CASES[0]; i++) {
        const struct str_case *c = &STR_CASES[i];
        CHECK_ST(c->fn(NULL, c->good[0]), CKPT_ERR_NULL_ARGUMENT, "%s(NULL handle)", c->name);
        expect_refused(o, c->fn(o, NULL), CKPT_ERR_NULL_ARGUMENT, t_fmt("%s(NULL)", c->name),
                       "NULL");
        if (c->path)
            expect_accepted(o, c->fn(o, BAD_UTF8), t_fmt("%s(not UTF-8: a path)", c->name));
        else
            expect_refused(o, c->fn(o, BAD_UTF8), CKPT_ERR_INVALID_UTF8,
                           t_fmt("%s(invalid UTF-8)", c->name), "UTF-8");
        expect_refused(o, c->fn(o, ""), CKPT_ERR_INVALID_ARGUMENT, t_fmt("%s(\"\")", c->name),
                       NULL);
        for (int g = 0; g < 6 && c->good[g]; g++)
            expect_accepted(o, c->fn(o, c->good[g]), t_fmt("%s(\"%s\")", c->name, c->good[g]));
        for (int b = 0; b < 12 && c->bad[b]; b++)
            expect_refused(o, c->fn(o, c->bad[b]), CKPT_ERR_INVALID_ARGUMENT,
                           t_fmt("%s(\"%s\")", c->name, c->bad[b]), c->reason);
    }
    printf("%zu string setters checked\n", sizeof STR_CASES / sizeof STR_CASES[0]);
    t_not_exercised("interior NUL bytes: a C string ends at its first NUL, so none can reach "
                    "ckpt from C (the Rust API refuses them)");
    ckpt_opts_free(o);
}

static void scalar_setters(void) {
    printf("-- bool and number setters\n");
    ckpt_opts *o = ckpt_opts_new();
    for (size_t i = 0; i < sizeof BOOL_CASES / sizeof BOOL_CASES[0]; i++) {
        CHECK_ST(BOOL_CASES[i].fn(NULL, true), CKPT_ERR_NULL_ARGUMENT, "%s(NULL handle)",
                 BOOL_CASES[i].name);
        expect_accepted(o, BOOL_CASES[i].fn(o, true), BOOL_CASES[i].name);
        expect_accepted(o, BOOL_CASES[i].fn(o, false), BOOL_CASES[i].name);
    }
    for (size_t i = 0; i < sizeof U32_CASES / sizeof U32_CASES[0]; i++) {
        CHECK_ST(U32_CASES[i].fn(NULL, 1), CKPT_ERR_NULL_ARGUMENT, "%s(NULL handle)",
                 U32_CASES[i].name);
        expect_accepted(o, U32_CASES[i].fn(o, 0), U32_CASES[i].name);
        expect_accepted(o, U32_CASES[i].fn(o, UINT32_MAX), U32_CASES[i].name);
    }
    CHECK_ST(ckpt_opts_set_log_level(NULL, 4), CKPT_ERR_NULL_ARGUMENT, "log level, NULL handle");
    for (int l = 0; l <= 4; l++)
        expect_accepted(o, ckpt_opts_set_log_level(o, l), t_fmt("log level %d", l));
    const int bad_levels[] = {-1, 5, 100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof bad_levels / sizeof bad_levels[0]; i++)
        expect_refused(o, ckpt_opts_set_log_level(o, bad_levels[i]), CKPT_ERR_INVALID_ARGUMENT,
                       t_fmt("log level %d", bad_levels[i]), "out of range");
    ckpt_opts_free(o);
}

static bool fd_open(int fd) {
    return fcntl(fd, F_GETFD) != -1;
}

static void fd_setters(void) {
    printf("-- status fd, inherit fd, pidfd store socket\n");
    ckpt_opts *o = ckpt_opts_new();
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
    /* A number far above anything this test opens, so nothing reuses it meanwhile. */
    int closed = 900;
    close(closed);
    const int bad[] = {-1, INT_MIN, 0, 1, 2, closed};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(o, ckpt_opts_set_status_fd(o, bad[i]), CKPT_ERR_BAD_FD,
                       t_fmt("status fd %d", bad[i]), "status fd");
    CHECK(fd_open(0) && fd_open(1) && fd_open(2), "stdio untouched by the refusals");
    CHECK_ST(ckpt_opts_set_status_fd(NULL, p[1]), CKPT_ERR_NULL_ARGUMENT, "status fd, NULL handle");
    CHECK(fd_open(p[1]), "a refused fd stays the caller's (NULL handle)");
    /* The read end of a pipe is open, but not for writing. */
    expect_refused(o, ckpt_opts_set_status_fd(o, p[0]), CKPT_ERR_BAD_FD, "status fd read-only",
                   "writing");
    CHECK(fd_open(p[0]), "a refused fd stays the caller's (read-only)");
    int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
    expect_refused(o, ckpt_opts_set_status_fd(o, ro), CKPT_ERR_BAD_FD, "status fd O_RDONLY file",
                   "writing");
    close(ro);

    /* The duplicating form: the same refusals, and the caller keeps its fd either way. */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(o, ckpt_opts_set_status_fd_dup(o, bad[i]), CKPT_ERR_BAD_FD,
                       t_fmt("status fd dup %d", bad[i]), "status fd");
    CHECK_ST(ckpt_opts_set_status_fd_dup(NULL, p[1]), CKPT_ERR_NULL_ARGUMENT,
             "status fd dup, NULL handle");
    expect_refused(o, ckpt_opts_set_status_fd_dup(o, p[0]), CKPT_ERR_BAD_FD,
                   "status fd dup read-only", "writing");
    {
        ckpt_opts *d = ckpt_opts_new();
        int before = t_count_fds();
        expect_accepted(d, ckpt_opts_set_status_fd_dup(d, p[1]), "status fd dup, write end");
        CHECK(t_count_fds() == before + 1, "ckpt holds a duplicate of the status fd");
        expect_accepted(d, ckpt_opts_set_status_fd_dup(d, p[1]), "status fd dup, again");
        CHECK(t_count_fds() == before + 1, "the second duplicate replaced the first");
        ckpt_opts_free(d);
        CHECK(t_count_fds() == before && fd_open(p[1]), "free closed the duplicate, not p[1]");
    }

    /* Accepted: ownership passes to the handle. */
    expect_accepted(o, ckpt_opts_set_status_fd(o, p[1]), "status fd, write end");
    CHECK_ST(ckpt_opts_set_status_fd(o, p[1]), CKPT_ERR_BAD_FD,
             "giving the handle its own status fd again");
    CHECK(fd_open(p[1]), "the handle's status fd survives the refused second give");
    int q[2];
    CHECK(pipe2(q, O_CLOEXEC) == 0, "pipe");
    expect_refused(o, ckpt_opts_set_status_fd(o, closed), CKPT_ERR_BAD_FD, "closed fd after a good one",
                   NULL);
    CHECK(fd_open(p[1]), "a failed set keeps the status fd given before");
    expect_accepted(o, ckpt_opts_set_status_fd(o, q[1]), "replacing the status fd");
    CHECK(!fd_open(p[1]), "the replaced status fd is closed by ckpt");
    ckpt_opts_free(o);
    CHECK(!fd_open(q[1]), "ckpt_opts_free closes an unused status fd");
    char c;
    CHECK(read(q[0], &c, 1) == 0, "no byte was written to an unused status fd");
    close(q[0]);
    close(p[0]);

    o = ckpt_opts_new();
    CHECK_ST(ckpt_opts_add_inherit_fd(NULL, "pipe:[1]", 0), CKPT_ERR_NULL_ARGUMENT,
             "inherit fd, NULL handle");
    expect_refused(o, ckpt_opts_add_inherit_fd(o, NULL, 0), CKPT_ERR_NULL_ARGUMENT,
                   "inherit fd, NULL key", NULL);
    expect_refused(o, ckpt_opts_add_inherit_fd(o, "", 0), CKPT_ERR_INVALID_ARGUMENT,
                   "inherit fd, empty key", NULL);
    expect_refused(o, ckpt_opts_add_inherit_fd(o, BAD_UTF8, 0), CKPT_ERR_INVALID_UTF8,
                   "inherit fd, bad key", NULL);
    expect_refused(o, ckpt_opts_add_inherit_fd(o, "pipe:[1]", -1), CKPT_ERR_BAD_FD,
                   "inherit fd -1", NULL);
    expect_refused(o, ckpt_opts_add_inherit_fd(o, "pipe:[1]", closed), CKPT_ERR_BAD_FD,
                   "inherit fd closed", NULL);
    int keep = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int before = t_count_fds();
    expect_accepted(o, ckpt_opts_add_inherit_fd(o, "file[1:2]", keep), "inherit fd");
    CHECK(t_count_fds() == before + 1, "ckpt holds a duplicate of the inherited fd");

    CHECK_ST(ckpt_opts_set_pidfd_store_sk(NULL, keep), CKPT_ERR_NULL_ARGUMENT,
             "pidfd store, NULL handle");
    expect_refused(o, ckpt_opts_set_pidfd_store_sk(o, -1), CKPT_ERR_BAD_FD, "pidfd store -1",
                   NULL);
    expect_refused(o, ckpt_opts_set_pidfd_store_sk(o, closed), CKPT_ERR_BAD_FD,
                   "pidfd store closed", NULL);
    expect_refused(o, ckpt_opts_set_pidfd_store_sk(o, keep), CKPT_ERR_BAD_FD,
                   "pidfd store on a file", NULL);
    /* A cancellation token: NULL handle refused, NULL token detaches. */
    ckpt_cancel *token = ckpt_cancel_new();
    CHECK_ST(ckpt_opts_set_cancel(NULL, token), CKPT_ERR_NULL_ARGUMENT, "cancel, NULL handle");
    expect_accepted(o, ckpt_opts_set_cancel(o, NULL), "cancel NULL detaches");
    ckpt_cancel_free(token);
    int stream[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, stream) == 0, "socketpair");
    expect_refused(o, ckpt_opts_set_pidfd_store_sk(o, stream[0]), CKPT_ERR_BAD_FD,
                   "pidfd store on a stream socket", "SOCK_DGRAM");
    int dgram = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    expect_accepted(o, ckpt_opts_set_pidfd_store_sk(o, dgram), "pidfd store on a dgram socket");
    CHECK(t_count_fds() == before + 5, "refusals left no duplicate behind");
    ckpt_opts_free(o);
    CHECK(fd_open(keep) && fd_open(dgram), "the caller keeps its own inherited/pidfd fds");
    CHECK(t_count_fds() == before + 3, "ckpt_opts_free closed its duplicates");
    close(keep);
    close(dgram);
    close(stream[0]);
    close(stream[1]);
}

static void pair_setters(void) {
    printf("-- ext mounts, cgroup roots, veth pairs, join-ns, notify\n");
    ckpt_opts *o = ckpt_opts_new();
    CHECK_ST(ckpt_opts_add_ext_mount(NULL, "/m", "m"), CKPT_ERR_NULL_ARGUMENT, "ext mount, NULL");
    expect_refused(o, ckpt_opts_add_ext_mount(o, NULL, "m"), CKPT_ERR_NULL_ARGUMENT,
                   "ext mount, NULL key", NULL);
    expect_refused(o, ckpt_opts_add_ext_mount(o, "/m", NULL), CKPT_ERR_NULL_ARGUMENT,
                   "ext mount, NULL value", NULL);
    expect_refused(o, ckpt_opts_add_ext_mount(o, "", "m"), CKPT_ERR_INVALID_ARGUMENT,
                   "ext mount, empty key", NULL);
    expect_refused(o, ckpt_opts_add_ext_mount(o, "/m", ""), CKPT_ERR_INVALID_ARGUMENT,
                   "ext mount, empty value", NULL);
    expect_accepted(o, ckpt_opts_add_ext_mount(o, "/m", BAD_UTF8),
                    "ext mount, a value that is not UTF-8 (a path)");
    expect_accepted(o, ckpt_opts_add_ext_mount(o, "/m", "m"), "ext mount");

    CHECK_ST(ckpt_opts_add_cgroup_root(NULL, NULL, "/x"), CKPT_ERR_NULL_ARGUMENT,
             "cgroup root, NULL handle");
    expect_refused(o, ckpt_opts_add_cgroup_root(o, "cpu", NULL), CKPT_ERR_NULL_ARGUMENT,
                   "cgroup root, NULL path", NULL);
    expect_refused(o, ckpt_opts_add_cgroup_root(o, "cpu", ""), CKPT_ERR_INVALID_ARGUMENT,
                   "cgroup root, empty path", NULL);
    expect_refused(o, ckpt_opts_add_cgroup_root(o, BAD_UTF8, "/x"), CKPT_ERR_INVALID_UTF8,
                   "cgroup root, bad controller", NULL);
    expect_refused(o, ckpt_opts_add_cgroup_root(o, "", "/x"), CKPT_ERR_INVALID_ARGUMENT,
                   "cgroup root, empty controller", NULL);
    expect_accepted(o, ckpt_opts_add_cgroup_root(o, NULL, "/x"), "cgroup root, all controllers");
    expect_accepted(o, ckpt_opts_add_cgroup_root(o, "cpu", "/x"), "cgroup root, cpu");

    CHECK_ST(ckpt_opts_add_veth_pair(NULL, "a", "b"), CKPT_ERR_NULL_ARGUMENT, "veth, NULL");
    expect_refused(o, ckpt_opts_add_veth_pair(o, NULL, "b"), CKPT_ERR_NULL_ARGUMENT,
                   "veth, NULL in", NULL);
    expect_refused(o, ckpt_opts_add_veth_pair(o, "a", NULL), CKPT_ERR_NULL_ARGUMENT,
                   "veth, NULL out", NULL);
    expect_refused(o, ckpt_opts_add_veth_pair(o, "", "b"), CKPT_ERR_INVALID_ARGUMENT,
                   "veth, empty in", NULL);
    expect_accepted(o, ckpt_opts_add_veth_pair(o, "eth0", "veth0"), "veth");

    CHECK_ST(ckpt_opts_add_join_ns(NULL, "net", "/proc/1/ns/net", NULL), CKPT_ERR_NULL_ARGUMENT,
             "join-ns, NULL handle");
    expect_refused(o, ckpt_opts_add_join_ns(o, NULL, "/proc/1/ns/net", NULL),
                   CKPT_ERR_NULL_ARGUMENT, "join-ns, NULL ns", NULL);
    expect_refused(o, ckpt_opts_add_join_ns(o, "net", NULL, NULL), CKPT_ERR_NULL_ARGUMENT,
                   "join-ns, NULL file", NULL);
    expect_refused(o, ckpt_opts_add_join_ns(o, "bogus", "/proc/1/ns/net", NULL),
                   CKPT_ERR_INVALID_ARGUMENT, "join-ns, unknown ns", "expected one of");
    expect_refused(o, ckpt_opts_add_join_ns(o, "net", "", NULL), CKPT_ERR_INVALID_ARGUMENT,
                   "join-ns, empty file", NULL);
    expect_refused(o, ckpt_opts_add_join_ns(o, "net", "/proc/1/ns/net", BAD_UTF8),
                   CKPT_ERR_INVALID_UTF8, "join-ns, bad extra", NULL);
    expect_accepted(o, ckpt_opts_add_join_ns(o, "net", "/proc/1/ns/net", NULL), "join-ns");

    CHECK_ST(ckpt_opts_set_notify(NULL, NULL, NULL), CKPT_ERR_NULL_ARGUMENT, "notify, NULL");
    expect_accepted(o, ckpt_opts_set_notify(o, NULL, NULL), "notify, no callback");
    ckpt_opts_free(o);
}

/* Null handles and outputs at the operations. */
static void operation_arguments(void) {
    printf("-- operations: NULL handle, NULL outputs, bad pid\n");
    ckpt_error *err = (ckpt_error *)1;
    CHECK_ST(ckpt_checkpoint(NULL, 1, NULL, &err), CKPT_ERR_NULL_ARGUMENT, "checkpoint(NULL)");
    CHECK(err && ckpt_error_code(err) == CKPT_ERR_NULL_ARGUMENT, "error object for NULL handle");
    ckpt_error_free(err);
    CHECK_ST(ckpt_checkpoint(NULL, 1, NULL, NULL), CKPT_ERR_NULL_ARGUMENT,
             "checkpoint(NULL), no error wanted");
    ckpt_opts *o = ckpt_opts_new();
    CHECK_ST(ckpt_checkpoint(o, getpid(), NULL, NULL), CKPT_ERR_INVALID_ARGUMENT,
             "checkpoint without an image path");
    CHECK_OK(ckpt_opts_set_image_path(o, "/tmp/ckpt-ctest-never"), NULL);
    CHECK_ST(ckpt_checkpoint(o, 0, NULL, NULL), CKPT_ERR_INVALID_ARGUMENT, "pid 0");
    CHECK_ST(ckpt_checkpoint(o, -5, NULL, NULL), CKPT_ERR_INVALID_ARGUMENT, "pid -5");
    CHECK(!t_exists("/tmp/ckpt-ctest-never"), "no directory created for a refused pid");
    /* criu swrk is this process's child: an ancestor's tree holds criu too, which CRIU
     * refused only after seizing (and stopping) the caller's own tree, in a message quoting a
     * warning ("Unable to interrupt task"). */
    char *self_dir = t_tmpdir("s-self");
    ckpt_opts *so = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(so, self_dir), NULL);
    CHECK_OK(ckpt_opts_set_leave_running(so, true), NULL);
    err = NULL;
    CHECK_ST(ckpt_checkpoint(so, getppid(), NULL, &err), CKPT_ERR_INVALID_ARGUMENT,
             "the parent's pid");
    CHECK(err && strstr(ckpt_error_message(err), "ancestor"), "names an ancestor: %s",
          ckpt_error_message(err));
    ckpt_error_free(err);
    ckpt_opts_free(so);
    t_remove(self_dir, NULL);
    int32_t pid = 7;
    CHECK_ST(ckpt_restore(NULL, &pid, NULL, NULL), CKPT_ERR_NULL_ARGUMENT, "restore(NULL)");
    CHECK(pid == 0, "restore zeroes *pid first");
    /* A restore makes a child the caller must reap: without a place for its pid, refused
     * before anything runs (it used to restore and return OK, the pid dropped). */
    err = NULL;
    CHECK_ST(ckpt_restore(o, NULL, NULL, &err), CKPT_ERR_NULL_ARGUMENT, "restore(o, NULL pid)");
    CHECK(err && ckpt_error_message(err) && strstr(ckpt_error_message(err), "pid"),
          "the message names the pid output: %s", ckpt_error_message(err));
    ckpt_error_free(err);
    CHECK_ST(ckpt_criu_version(NULL, NULL, NULL), CKPT_ERR_NULL_ARGUMENT, "version(NULL out)");
    CHECK_ST(ckpt_feature_check(NULL, NULL, NULL, NULL), CKPT_ERR_NULL_ARGUMENT,
             "feature check with both outputs NULL");
    CHECK(ckpt_opts_last_error(NULL) == NULL, "last_error(NULL) is NULL");
    ckpt_opts_free(o);
}

/* The container status refusals happen before criu starts. */
static void container_status(void) {
    printf("-- container status\n");
    char *dir, *counter;
    pid_t pid = t_start_workload("s-status", &dir, &counter);
    ckpt_opts *o = t_opts_leave_running(dir);
    const char *states[] = {"created", "stopped"};
    for (int i = 0; i < 2; i++) {
        CHECK_OK(ckpt_opts_set_container_status(o, states[i]), NULL);
        /* A failing set leaves the status as it was. */
        CHECK_ST(ckpt_opts_set_container_status(o, "bogus"), CKPT_ERR_INVALID_ARGUMENT, "bogus");
        ckpt_error *err = NULL;
        CHECK_ST(ckpt_checkpoint(o, pid, NULL, &err), CKPT_ERR_INVALID_STATE, "%s", states[i]);
        const char *want = t_fmt("container cannot be checkpointed in %s state", states[i]);
        const char *m = ckpt_error_message(err);
        CHECK(m && strstr(m, want), "message \"%s\" says \"%s\"", m ? m : "(none)", want);
        CHECK(ckpt_error_log_path(err) == NULL, "refused before criu ran: no log");
        ckpt_error_free(err);
    }
    CHECK(!t_exists(dir), "refused before anything was created");

    /* Running or paused: a dead or zombie pid counts as stopped. */
    pid_t zombie = fork();
    if (zombie == 0)
        _exit(0);
    t_wait_gone(zombie, 2000); /* a zombie now: not reaped yet */
    pid_t dead = t_free_pid();
    const char *live[] = {"running", "paused"};
    for (int i = 0; i < 2; i++) {
        CHECK_OK(ckpt_opts_set_container_status(o, live[i]), NULL);
        ckpt_error *err = NULL;
        CHECK_ST(ckpt_checkpoint(o, zombie, NULL, &err), CKPT_ERR_INVALID_STATE, "%s zombie",
                 live[i]);
        const char *m = ckpt_error_message(err);
        CHECK(m && strstr(m, "stopped state"), "zombie counts as stopped: %s", m ? m : "(none)");
        ckpt_error_free(err);
        CHECK_ST(ckpt_checkpoint(o, dead, NULL, &err), CKPT_ERR_INVALID_STATE, "%s dead pid",
                 live[i]);
        m = ckpt_error_message(err);
        CHECK(m && strstr(m, "stopped state"), "dead pid counts as stopped: %s", m ? m : "(none)");
        ckpt_error_free(err);
    }
    waitpid(zombie, NULL, 0);
    /* running with a live tree is let through to CRIU. */
    CHECK_OK(ckpt_opts_set_container_status(o, "running"), NULL);
    ckpt_error *err = NULL;
    CHECK_OK(ckpt_checkpoint(o, pid, NULL, &err), err);
    ckpt_error_free(err);
    t_kill(pid);
    ckpt_opts_free(o);
    t_remove(dir, counter);
}

/* parent-path is checked when the dump starts, against the image path: relative, no '..',
 * existing, and not leading out through a symlink. Then CRIU's feature check decides: without
 * memory tracking, CKPT_ERR_UNSUPPORTED. */
static void parent_path(void) {
    printf("-- parent path at dump time\n");
    char *dir = t_tmpdir("s-parent"), *outside = NULL;
    if (asprintf(&outside, "%s.outside", dir) < 0)
        abort();
    t_sh("mkdir -p '%s/real' '%s' && ln -s '%s' '%s/escape' && ln -s real '%s/inside'", dir,
         outside, outside, dir, dir);
    ckpt_opts *o = t_opts_leave_running(dir);
    pid_t self = getpid();
    struct {
        const char *parent;
        ckpt_status want;
        const char *word;
    } cases[] = {
        {"/tmp", CKPT_ERR_INVALID_ARGUMENT, "must be relative to the image path"},
        {"../real", CKPT_ERR_INVALID_ARGUMENT, "must not contain '..'"},
        {"real/../real", CKPT_ERR_INVALID_ARGUMENT, "must not contain '..'"},
        {"escape", CKPT_ERR_INVALID_ARGUMENT, "outside the image path"},
        {".", CKPT_ERR_INVALID_ARGUMENT, "outside the image path"},
        {"missing", CKPT_ERR_NOT_FOUND, "does not exist"},
        {"inside", CKPT_ERR_UNSUPPORTED, "memory change tracking"},
        {"real", CKPT_ERR_UNSUPPORTED, "memory change tracking"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_OK(ckpt_opts_set_parent_path(o, cases[i].parent), NULL);
        ckpt_error *err = NULL;
        CHECK_ST(ckpt_checkpoint(o, self, NULL, &err), cases[i].want, "parent %s",
                 cases[i].parent);
        const char *m = ckpt_error_message(err);
        CHECK(m && strstr(m, cases[i].word), "parent %s: \"%s\" says \"%s\"", cases[i].parent,
              m ? m : "(none)", cases[i].word);
        ckpt_error_free(err);
    }
    /* A refused set keeps the previous parent ("real": refused for memory tracking, not for
     * its form). */
    CHECK_ST(ckpt_opts_set_parent_path(o, ""), CKPT_ERR_INVALID_ARGUMENT, "empty parent");
    ckpt_error *err = NULL;
    CHECK_ST(ckpt_checkpoint(o, self, NULL, &err), CKPT_ERR_UNSUPPORTED,
             "still the earlier parent");
    ckpt_error_free(err);
    ckpt_opts_free(o);
    t_remove(dir, outside);
}

/* Failing setters after good ones change nothing: seen through a real dump. */
static void never_half_applied(void) {
    printf("-- a failing set keeps the earlier value\n");
    char *dir, *counter;
    pid_t pid = t_start_workload("s-keep", &dir, &counter);
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    CHECK_ST(ckpt_opts_set_image_path(o, ""), CKPT_ERR_INVALID_ARGUMENT, "empty image path");
    CHECK_ST(ckpt_opts_set_image_path(o, NULL), CKPT_ERR_NULL_ARGUMENT, "NULL image path");
    CHECK_OK(ckpt_opts_set_leave_running(o, true), NULL);
    CHECK_OK(ckpt_opts_set_log_file(o, "keep.log"), NULL);
    CHECK_ST(ckpt_opts_set_log_file(o, "sub/other.log"), CKPT_ERR_INVALID_ARGUMENT, "log a/b");
    CHECK_OK(ckpt_opts_set_log_level(o, 1), NULL);
    CHECK_ST(ckpt_opts_set_log_level(o, 9), CKPT_ERR_INVALID_ARGUMENT, "log level 9");
    CHECK_ST(ckpt_opts_set_parent_path(o, ""), CKPT_ERR_INVALID_ARGUMENT, "empty parent");
    CHECK_ST(ckpt_opts_set_container_status(o, "bogus"), CKPT_ERR_INVALID_ARGUMENT, "bogus status");
    CHECK_ST(ckpt_opts_set_page_server(o, "h:0"), CKPT_ERR_INVALID_ARGUMENT, "page server h:0");
    CHECK_ST(ckpt_opts_set_criu_path(o, ""), CKPT_ERR_INVALID_ARGUMENT, "empty criu path");
    ckpt_error *err = NULL;
    /* Had any refused value stuck, this dump would go elsewhere, ask for a parent, refuse the
     * status, dial a page server or fail to start criu. */
    CHECK_OK(ckpt_checkpoint(o, pid, NULL, &err), err);
    ckpt_error_free(err);
    CHECK(t_exists(t_fmt("%s/inventory.img", dir)), "images in the image path set first");
    const char *log = t_fmt("%s/keep.log", dir);
    CHECK(t_exists(log), "log in keep.log");
    CHECK(!t_file_contains(log, "Dumping task"), "log level 1 kept (no info lines)");
    CHECK(t_count_prefix(dir, "pages-") > 0, "pages written locally: no page server was kept");

    /* And the other way: a good page server, then refused ones; the dump dials the good one. */
    int port = t_free_port();
    CHECK_OK(ckpt_opts_set_page_server(o, t_fmt("127.0.0.1:%d", port)), NULL);
    const char *bad_ps[] = {"1.2.3.4", ":80", "h:0", "h:65536", "::1:80"};
    for (int i = 0; i < 5; i++)
        CHECK_ST(ckpt_opts_set_page_server(o, bad_ps[i]), CKPT_ERR_INVALID_ARGUMENT, "%s",
                 bad_ps[i]);
    CHECK_OK(ckpt_opts_set_log_level(o, 4), NULL);
    CHECK_OK(ckpt_opts_set_log_file(o, "ps.log"), NULL);
    CHECK_ST(ckpt_checkpoint(o, pid, NULL, &err), CKPT_ERR_CRIU, "nobody listens on port %d",
             port);
    const char *lp = ckpt_error_log_path(err);
    CHECK(lp && t_file_contains(lp, t_fmt("Can't connect to server 127.0.0.1:%d", port)),
          "CRIU dialled the page server kept, 127.0.0.1:%d", port);
    if (err)
        printf("page server kept: %s\n", ckpt_error_message(err));
    ckpt_error_free(err);
    t_kill(pid);
    ckpt_opts_free(o);
    t_remove(dir, counter);
}

int main(void) {
    t_begin("setters");
    string_setters();
    scalar_setters();
    fd_setters();
    pair_setters();
    operation_arguments();
    container_status();
    parent_path();
    never_half_applied();
    ckpt_opts_free(NULL);
    return t_finish("setters");
}
