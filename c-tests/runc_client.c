/* Built by scripts/test.d/45-runc.sh against the installed library (pkg-config ckpt), not by
 * meson: checkpoint|restore|explain key=value...: one ckpt request with what runc 1.1.5 sets
 * for a container, or, with bundle=DIR, the container layer's (ckpt_container_*), which works
 * the container-level options out itself. */
#include <ckpt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void must(ckpt_status s, const char *what) {
    if (s != CKPT_OK) {
        fprintf(stderr, "runc-ckpt: %s refused (status %d)\n", what, (int)s);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: runc-ckpt checkpoint|restore key=value...\n");
        return 2;
    }
    int dump = strcmp(argv[1], "checkpoint") == 0;
    int pid = 0;
    const char *pidfile = NULL, *bundle = NULL;
    ckpt_opts *o = ckpt_opts_new();
    for (int i = 2; i < argc; i++) {
        char *k = argv[i], *v = strchr(k, '=');
        if (!v) {
            fprintf(stderr, "runc-ckpt: not key=value: %s\n", k);
            return 2;
        }
        *v++ = 0;
        if (!strcmp(k, "pid")) pid = atoi(v);
        else if (!strcmp(k, "images")) must(ckpt_opts_set_image_path(o, v), k);
        else if (!strcmp(k, "root")) must(ckpt_opts_set_root(o, v), k);
        else if (!strcmp(k, "freeze")) must(ckpt_opts_set_freeze_cgroup(o, v), k);
        else if (!strcmp(k, "cgmode")) must(ckpt_opts_set_manage_cgroups_mode(o, v), k);
        else if (!strcmp(k, "status")) must(ckpt_opts_set_container_status(o, v), k);
        else if (!strcmp(k, "emptyns")) must(ckpt_opts_add_empty_ns(o, v), k);
        else if (!strcmp(k, "pidfile")) pidfile = v;
        else if (!strcmp(k, "bundle")) bundle = v;
        else if (!strcmp(k, "ext")) { /* ext=KEY:VALUE */
            char *c = strchr(v, ':');
            if (!c) {
                fprintf(stderr, "runc-ckpt: ext needs KEY:VALUE\n");
                return 2;
            }
            *c++ = 0;
            must(ckpt_opts_add_ext_mount(o, v, c), k);
        } else {
            fprintf(stderr, "runc-ckpt: unknown key %s\n", k);
            return 2;
        }
    }
    ckpt_error *err = NULL;
    ckpt_status s;
    ckpt_container *c = NULL;
    if (bundle) {
        c = ckpt_container_new();
        must(ckpt_container_set_bundle(c, bundle), "bundle");
        if (pid) must(ckpt_container_set_pid(c, pid), "pid");
    } else {
        /* What runc sets on every request. */
        must(ckpt_opts_set_manage_cgroups(o, true), "manage_cgroups");
        must(ckpt_opts_set_orphan_pts_master(o, true), "orphan_pts_master");
        must(ckpt_opts_set_log_level(o, 4), "log_level");
    }
    if (!strcmp(argv[1], "explain")) {
        char *json = NULL;
        s = c ? ckpt_container_explain(c, o, pid == 0, &json, &err) : CKPT_ERR_INVALID_ARGUMENT;
        if (s == CKPT_OK) printf("%s\n", json);
        ckpt_string_free(json);
    } else if (c && dump) {
        must(ckpt_opts_set_leave_running(o, true), "leave_running");
        s = ckpt_container_checkpoint(c, o, NULL, &err);
    } else if (c) {
        int32_t rpid = 0;
        s = ckpt_container_restore(c, o, &rpid, NULL, &err);
        if (s == CKPT_OK && pidfile) {
            FILE *f = fopen(pidfile, "w");
            if (!f || fprintf(f, "%d\n", rpid) < 0 || fclose(f) != 0) {
                perror(pidfile);
                return 1;
            }
        }
    } else if (dump) {
        must(ckpt_opts_set_leave_running(o, true), "leave_running");
        s = ckpt_checkpoint(o, pid, NULL, &err);
    } else {
        must(ckpt_opts_set_evasive_devices(o, true), "evasive_devices");
        int32_t rpid = 0;
        s = ckpt_restore(o, &rpid, NULL, &err);
        if (s == CKPT_OK && pidfile) {
            FILE *f = fopen(pidfile, "w");
            if (!f || fprintf(f, "%d\n", rpid) < 0 || fclose(f) != 0) {
                perror(pidfile);
                return 1;
            }
        }
        /* The restored tree is our child; exiting leaves it to init, as runc restore -d. */
    }
    if (s != CKPT_OK) {
        fprintf(stderr, "runc-ckpt: %s failed (status %d): %s\n", argv[1], (int)s,
                ckpt_error_message(err));
        const char *excerpt = ckpt_error_log_excerpt(err);
        if (excerpt) fprintf(stderr, "from %s:\n%s\n", ckpt_error_log_path(err), excerpt);
        ckpt_error_free(err);
    }
    ckpt_container_free(c);
    ckpt_opts_free(o);
    return s == CKPT_OK ? 0 : 1;
}
