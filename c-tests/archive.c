/* Checkpoint archives through the C API: bad arguments refused with a status and a message,
 * then a leave-running checkpoint of a real process exported, inspected and imported. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

int main(void) {
    t_begin("archive");
    ckpt_error *err = NULL;

    /* NULL and bad values: a status, never a crash; the handle keeps the reason. */
    ckpt_archive_opts_free(NULL);
    ckpt_archive_string_free(NULL);
    CHECK_ST(ckpt_archive_opts_set_name(NULL, "x"), CKPT_ERR_NULL_ARGUMENT, "NULL handle");
    ckpt_archive_opts *o = ckpt_archive_opts_new();
    CHECK(o != NULL, "ckpt_archive_opts_new");
    CHECK_ST(ckpt_archive_opts_set_name(o, NULL), CKPT_ERR_NULL_ARGUMENT, "NULL name");
    CHECK_ST(ckpt_archive_opts_set_compression(o, "lz4"), CKPT_ERR_INVALID_ARGUMENT, "lz4");
    CHECK(ckpt_archive_opts_last_error(o) != NULL, "last error after a refusal");
    CHECK_ST(ckpt_archive_opts_set_spec_path(o, "relative.json"), CKPT_ERR_INVALID_ARGUMENT,
             "relative spec path");
    CHECK_ST(ckpt_archive_opts_set_namespace(o, "bogus", NULL), CKPT_ERR_INVALID_ARGUMENT,
             "unknown namespace type");
    CHECK_ST(ckpt_archive_opts_set_config_json(o, "[1]"), CKPT_ERR_INVALID_ARGUMENT, "not an object");
    /* The archive path checked alone, before any checkpoint: as the export would find it. */
    CHECK_ST(ckpt_archive_check_path(NULL, NULL), CKPT_ERR_NULL_ARGUMENT, "NULL archive path");
    CHECK_ST(ckpt_archive_check_path("", NULL), CKPT_ERR_INVALID_ARGUMENT, "empty archive path");
    CHECK_ST(ckpt_archive_check_path("/nonexistent-ckpt-dir/a.tar", &err), CKPT_ERR_NOT_FOUND,
             "missing directory");
    CHECK(err && strstr(ckpt_error_message(err), "does not exist"), "%s",
          ckpt_error_message(err));
    ckpt_error_free(err);
    err = NULL;
    CHECK_ST(ckpt_archive_check_path("/dev/null", &err), CKPT_ERR_INVALID_ARGUMENT, "device node");
    CHECK(err && strstr(ckpt_error_message(err), "not a regular file but a character device"), "%s",
          ckpt_error_message(err));
    ckpt_error_free(err);
    err = NULL;
    CHECK_ST(ckpt_archive_check_path("/tmp", NULL), CKPT_ERR_INVALID_ARGUMENT, "directory");
    CHECK_ST(ckpt_archive_check_path("/tmp/ckpt-ctest-unwritten.tar", &err), CKPT_OK, "a new file");
    CHECK(err == NULL, "no error on success");
    CHECK_ST(ckpt_archive_export(NULL, "/x", "/y", &err), CKPT_ERR_NULL_ARGUMENT, "NULL opts");
    CHECK(err != NULL, "an error object for NULL opts");
    ckpt_error_free(err);
    err = NULL;
    char *json = (char *)1;
    CHECK_ST(ckpt_archive_inspect(NULL, "/nonexistent/archive", &json, &err), CKPT_ERR_IO,
             "missing archive");
    CHECK(json == NULL, "result set to NULL on failure");
    ckpt_error_free(err);
    err = NULL;

    /* A real checkpoint, exported and read back. */
    char *dir, *counter;
    pid_t pid = t_start_workload("archive", &dir, &counter);
    ckpt_opts *co = t_opts_leave_running(dir);
    CHECK_OK(ckpt_checkpoint(co, pid, NULL, &err), err);
    ckpt_error_free(err);
    err = NULL;
    ckpt_opts_free(co);

    char *spec = strdup(t_fmt("%s.spec.json", dir));
    char *archive = strdup(t_fmt("%s.tar.zst", dir));
    char *target = strdup(t_fmt("%s.imported", dir));
    FILE *f = fopen(spec, "w");
    CHECK(f != NULL, "spec file");
    fputs("{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},"
          "\"root\":{\"path\":\"/\"}}",
          f);
    fclose(f);
    CHECK_OK(ckpt_archive_opts_set_spec_path(o, spec), NULL);
    CHECK(ckpt_archive_opts_last_error(o) == NULL, "last error cleared by a success");
    CHECK_OK(ckpt_archive_opts_set_name(o, "ckpt-archive-c"), NULL);
    CHECK_OK(ckpt_archive_opts_set_compression(o, "zstd"), NULL);
    CHECK_OK(ckpt_archive_export(o, dir, archive, &err), err);
    CHECK(err == NULL, "err is NULL on success");
    struct stat sb;
    CHECK(stat(archive, &sb) == 0 && (sb.st_mode & 0777) == 0600, "archive written 0600");

    json = NULL;
    CHECK_OK(ckpt_archive_inspect(NULL, archive, &json, &err), err);
    CHECK(json && strstr(json, "\"name\":\"ckpt-archive-c\""), "inspect names it: %s", json);
    CHECK(json && strstr(json, "\"comm\":\"sh\""), "inspect shows the tree: %s", json);
    ckpt_archive_string_free(json);

    ckpt_archive_opts *io = ckpt_archive_opts_new();
    CHECK_OK(ckpt_archive_opts_set_name(io, "ckpt-archive-c2"), NULL);
    json = NULL;
    CHECK_OK(ckpt_archive_import(io, archive, target, &json, &err), err);
    CHECK(json && strstr(json, "\"old_name\":\"ckpt-archive-c\""), "import result: %s", json);
    ckpt_archive_string_free(json);
    CHECK(access(t_fmt("%s/checkpoint/inventory.img", target), F_OK) == 0, "images unpacked");
    CHECK(access(t_fmt("%s/config.json", target), F_OK) == 0, "spec written");
    /* Again into the same (now full) directory: refused, and nothing is lost. */
    CHECK_ST(ckpt_archive_import(io, archive, target, NULL, &err), CKPT_ERR_INVALID_ARGUMENT,
             "non-empty target");
    CHECK(err && strstr(ckpt_error_message(err), "not empty"), "message says why");
    ckpt_error_free(err);
    CHECK(access(t_fmt("%s/config.json", target), F_OK) == 0, "first import kept");

    ckpt_archive_opts_free(io);
    ckpt_archive_opts_free(o);
    t_kill(pid);
    unlink(spec);
    unlink(archive);
    t_remove(target, NULL);
    free(spec);
    free(archive);
    t_remove(dir, counter);
    return t_finish("archive");
}
