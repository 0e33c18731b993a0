#define _XOPEN_SOURCE 700
#include "pps_test.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char *
pps_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/pps-test-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    char *dir = mkdtemp(buf);
    cr_assert_not_null(dir, "mkdtemp failed");
    char *copy = strdup(dir);
    cr_assert_not_null(copy);
    return copy;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void
pps_test_cleanup(char *dir)
{
    if (dir == NULL) {
        return;
    }
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

char *
pps_test_write(const char *dir, const char *name, const char *json)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(json, f);
    fclose(f);
    char *copy = strdup(path);
    cr_assert_not_null(copy);
    return copy;
}

pps_config *
pps_test_config(const char *dir, const char *json)
{
    char *path = pps_test_write(dir, "config.json", json);
    pps_config *cfg = NULL;
    int rc = pps_config_load(&cfg, path);
    cr_assert_eq(rc, PPS_OK, "config: %s: %s", pps_status_name(rc),
                 pps_last_error());
    free(path);
    return cfg;
}

pps_config *
pps_test_queue(const char *dir, const char *json)
{
    pps_config *cfg = pps_test_config(dir, json);
    int rc = pps_ctl_init(cfg);
    cr_assert_eq(rc, PPS_OK, "init: %s: %s", pps_status_name(rc),
                 pps_last_error());
    return cfg;
}

pps_config *
pps_test_simple(const char *dir, const char *const *subs, const char *hwm,
                const char *extra)
{
    char json[16384];
    size_t off = 0;
    off += (size_t)snprintf(json + off, sizeof(json) - off,
                            "{\"pub\": {\"out_queue\": \"q\"},\n");
    for (size_t i = 0; subs[i] != NULL; i++) {
        off += (size_t)snprintf(json + off, sizeof(json) - off,
                                "\"%s\": {\"in_queue\": \"q\"},\n", subs[i]);
    }
    off += (size_t)snprintf(json + off, sizeof(json) - off,
                            "\"queues\": {\"q\": {\"path\": \"q\", "
                            "\"max_db_size_bytes\": 268435456, "
                            "\"subscribers\": [");
    for (size_t i = 0; subs[i] != NULL; i++) {
        off += (size_t)snprintf(json + off, sizeof(json) - off, "%s\"%s\"",
                                i > 0 ? ", " : "", subs[i]);
    }
    off += (size_t)snprintf(json + off, sizeof(json) - off, "]");
    if (hwm != NULL) {
        off += (size_t)snprintf(json + off, sizeof(json) - off,
                                ", \"high-water-mark\": %s", hwm);
    }
    if (extra != NULL) {
        off += (size_t)snprintf(json + off, sizeof(json) - off, ", %s",
                                extra);
    }
    snprintf(json + off, sizeof(json) - off, "}}}\n");
    return pps_test_queue(dir, json);
}

int
pps_test_wait(pid_t pid)
{
    int st = 0;
    pid_t r;
    do {
        r = waitpid(pid, &st, 0);
    } while (r < 0);
    return st;
}

void
pps_test_wait_ok(pid_t pid)
{
    int st = pps_test_wait(pid);
    cr_assert(WIFEXITED(st), "child %d did not exit normally (status 0x%x)",
              (int)pid, st);
    cr_assert_eq(WEXITSTATUS(st), 0, "child %d exited with %d", (int)pid,
                 WEXITSTATUS(st));
}

int
pps_test_collect(const pps_message *msg, void *user)
{
    pps_test_sink *s = user;
    if (s->refuse != 0) {
        return s->refuse;
    }
    if (s->n >= sizeof(s->ids) / sizeof(s->ids[0])) {
        return -1;
    }
    s->ids[s->n] = msg->id;
    s->lens[s->n] = msg->len;
    s->data[s->n] = malloc(msg->len + 1);
    if (s->data[s->n] == NULL) {
        return -1;
    }
    if (msg->len > 0) {
        memcpy(s->data[s->n], msg->data, msg->len);
    }
    s->data[s->n][msg->len] = '\0';
    s->n++;
    return 0;
}

void
pps_test_sink_free(pps_test_sink *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->data[i]);
    }
    s->n = 0;
}
