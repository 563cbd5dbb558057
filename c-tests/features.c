/* Version and features through ckpt equal what the criu CLI says; CRIU's CHECK passes; and
 * pre-dump is refused with a clear message on this kernel, which lacks memory tracking. */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

#include "helpers.h"

/* `criu --version` ("Version: 4.1.1", maybe a GitID line) as major*10000+minor*100+sub. */
static int cli_version(void) {
    FILE *p = popen("criu --version", "r");
    if (!p)
        return -1;
    int maj = 0, min = 0, sub = 0, n = 0;
    char line[256];
    while (fgets(line, sizeof line, p))
        if (n < 2)
            n = sscanf(line, "Version: %d.%d.%d", &maj, &min, &sub);
    pclose(p);
    return n >= 2 ? maj * 10000 + min * 100 + sub : -1;
}

static bool cli_feature(const char *name) {
    return t_sh("criu check --feature %s >/dev/null 2>&1", name) == 0;
}

static void version(void) {
    printf("-- version\n");
    int32_t v = 0;
    ckpt_error *err = NULL;
    CHECK_OK(ckpt_criu_version(NULL, &v, &err), err);
    CHECK(err == NULL, "no error on success");
    int cli = cli_version();
    CHECK(cli > 0 && v == cli, "ckpt_criu_version %d == criu --version %d", v, cli);
    printf("ckpt_criu_version %d, criu --version %d\n", v, cli);

    /* The same through a handle naming the binary, and with no error pointer. */
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_criu_path(o, "criu"), NULL);
    int32_t v2 = 0;
    CHECK_OK(ckpt_criu_version(o, &v2, NULL), NULL);
    CHECK(v2 == v, "version via a handle %d", v2);
    ckpt_opts_free(o);
}

static void features(void) {
    printf("-- features\n");
    ckpt_feature sup = 0xff, ans = 0xff;
    ckpt_error *err = NULL;
    CHECK_OK(ckpt_feature_check(NULL, &sup, &ans, &err), err);
    struct {
        ckpt_feature bit;
        const char *cli;
    } f[] = {
        {CKPT_FEATURE_MEM_TRACK, "mem_dirty_track"},
        {CKPT_FEATURE_LAZY_PAGES, "uffd-noncoop"},
        {CKPT_FEATURE_PIDFD_STORE, "pidfd_store"},
    };
    for (int i = 0; i < 3; i++) {
        bool by_cli = cli_feature(f[i].cli);
        bool by_ckpt = (sup & f[i].bit) != 0;
        CHECK(ans & f[i].bit, "CRIU answered on %s", f[i].cli);
        CHECK(by_cli == by_ckpt, "%s: ckpt says %d, criu check --feature says %d", f[i].cli,
              by_ckpt, by_cli);
        printf("%-16s ckpt %-3s criu check %s\n", f[i].cli, by_ckpt ? "yes" : "no",
               by_cli ? "yes" : "no");
    }
    CHECK((sup & ~7u) == 0 && (ans & ~7u) == 0, "no unknown bits");
    ckpt_feature only = 0;
    CHECK_OK(ckpt_feature_check(NULL, &only, NULL, NULL), NULL);
    CHECK(only == sup, "supported alone matches");
    CHECK_OK(ckpt_check(NULL, &err), err);
    ckpt_error_free(err);
}

static void pre_dump_refused(void) {
    printf("-- pre-dump\n");
    ckpt_feature sup = 0;
    CHECK_OK(ckpt_feature_check(NULL, &sup, NULL, NULL), NULL);
    if (sup & CKPT_FEATURE_MEM_TRACK) {
        t_not_exercised("the pre-dump refusal: this kernel has memory tracking");
        return;
    }
    char *dir, *counter;
    pid_t pid = t_start_workload("feat-predump", &dir, &counter);
    ckpt_opts *o = ckpt_opts_new();
    CHECK_OK(ckpt_opts_set_image_path(o, dir), NULL);
    CHECK_OK(ckpt_opts_set_pre_dump(o, true), NULL);
    ckpt_error *err = NULL;
    ckpt_stats *st = NULL;
    CHECK_ST(ckpt_checkpoint(o, pid, &st, &err), CKPT_ERR_UNSUPPORTED, "pre-dump");
    const char *m = ckpt_error_message(err);
    CHECK(m && strstr(m, "pre-dump") && strstr(m, "memory change tracking"),
          "message says why: %s", m ? m : "(none)");
    CHECK(st == NULL, "no statistics");
    CHECK(ckpt_error_log_path(err) == NULL, "refused before a pre-dump ran: no log");
    CHECK(t_count_prefix(dir, "pages-") == 0, "nothing dumped");
    CHECK(t_alive(pid), "tree untouched");
    printf("pre-dump refused: %s\n", m ? m : "(none)");
    ckpt_error_free(err);

    err = NULL;
    CHECK_ST(ckpt_checkpoint_iterative(o, pid, 3, NULL, NULL, NULL, &err), CKPT_ERR_UNSUPPORTED,
             "iterative pre-dump");
    m = ckpt_error_message(err);
    CHECK(m && strstr(m, "memory change tracking"), "iterative: %s", m ? m : "(none)");
    ckpt_error_free(err);
    t_not_exercised("pre-dump itself (kernel lacks soft-dirty memory tracking)");
    t_kill(pid);
    ckpt_opts_free(o);
    t_remove(dir, counter);
}

int main(void) {
    t_begin("features");
    version();
    features();
    pre_dump_refused();
    return t_finish("features");
}
