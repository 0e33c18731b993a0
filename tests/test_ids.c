/*
 * Hostile ids (issue 4; docs/reliability.rst, "Security"): subscriber and
 * publisher ids that look like paths or format strings are plain names,
 * never reaching a path or a format; ids with control characters or over
 * 255 bytes are refused by the configuration loader.
 */
#include "pps_test.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- security: ids that look like paths or format strings --------------- */

static const char *const evil_subs[] = {"%n%s%s%s%n", "../../etc", "/", "../x",
                                        "a/../../b", "pps.meta", "%p%x"};
#define N_EVIL (sizeof(evil_subs) / sizeof(evil_subs[0]))

/* Appends s as a JSON string (escaping what JSON needs). */
static size_t
json_str(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    o += (size_t)snprintf(out + o, cap - o, "\"");
    for (; *s != '\0' && o + 8 < cap; s++) {
        if (*s == '"' || *s == '\\') {
            o += (size_t)snprintf(out + o, cap - o, "\\%c", *s);
        } else if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x",
                                  (unsigned)(unsigned char)*s);
        } else {
            out[o++] = *s;
            out[o] = '\0';
        }
    }
    o += (size_t)snprintf(out + o, cap - o, "\"");
    return o;
}

/* A config whose publisher is `pub` and subscribers the n ids in subs. */
static char *
evil_json(const char *pub, const char *const *subs, size_t n)
{
    size_t cap = 16384, o = 0;
    char *j = malloc(cap);
    cr_assert_not_null(j);
    o += (size_t)snprintf(j + o, cap - o, "{");
    o += json_str(j + o, cap - o, pub);
    o += (size_t)snprintf(j + o, cap - o, ": {\"out_queue\": \"q\"},\n");
    for (size_t i = 0; i < n; i++) {
        o += json_str(j + o, cap - o, subs[i]);
        o += (size_t)snprintf(j + o, cap - o, ": {\"in_queue\": \"q\"},\n");
    }
    o += (size_t)snprintf(j + o, cap - o,
                          "\"queues\": {\"q\": {\"path\": \"q\", "
                          "\"max_db_size_bytes\": 1048576, "
                          "\"durability\": \"nosync\", \"subscribers\": [");
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            o += (size_t)snprintf(j + o, cap - o, ", ");
        }
        o += json_str(j + o, cap - o, subs[i]);
    }
    snprintf(j + o, cap - o, "]}}}\n");
    return j;
}

Test(ids, ids_like_paths_and_format_strings_are_plain_names,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    /* /tmp/etc would be where "../../etc" leads from DIR/q. */
    char parent_etc[4096];
    snprintf(parent_etc, sizeof(parent_etc), "%s/../etc", dir);
    struct stat st;
    bool etc_before = stat(parent_etc, &st) == 0;

    const char *pub_id = "%s%s%n../pub";
    char *json = evil_json(pub_id, evil_subs, N_EVIL);
    pps_config *cfg = pps_test_queue(dir, json);
    free(json);
    pps_pub *pub = NULL;
    int rc = pps_pub_open(&pub, cfg, pub_id);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_eq(pps_pub_send(pub, "hello %s %n", 11), PPS_OK);
    for (size_t i = 0; i < N_EVIL; i++) {
        pps_sub *sub = pps_test_sub_open(cfg, evil_subs[i]);
        pps_test_sink sink = {0};
        rc = pps_sub_receive(sub, 0, pps_test_collect, &sink);
        cr_assert_eq(rc, PPS_OK, "subscriber \"%s\": %s: %s", evil_subs[i],
                     pps_status_name(rc), pps_last_error());
        cr_assert_eq(sink.n, 1);
        cr_assert_str_eq(sink.data[0], "hello %s %n");
        /* Its failures quote the id literally. */
        rc = pps_sub_receive(sub, 0, pps_test_collect, &sink);
        cr_assert_eq(rc, PPS_ETIMEDOUT);
        cr_assert_not_null(strstr(pps_last_error(), evil_subs[i]),
                           "the detail does not quote \"%s\": %s",
                           evil_subs[i], pps_last_error());
        pps_test_sink_free(&sink);
        pps_sub_close(sub);
    }
    /* An unknown id, quoted literally, not interpreted. */
    pps_sub *none = NULL;
    rc = pps_sub_open(&none, cfg, "%n%n%n%s");
    cr_assert_eq(rc, PPS_ENOTFOUND);
    cr_assert_not_null(strstr(pps_last_error(), "%n%n%n%s"), "%s",
                       pps_last_error());
    pps_pub *nopub = NULL;
    rc = pps_pub_open(&nopub, cfg, "../../../../etc/passwd");
    cr_assert_eq(rc, PPS_ENOTFOUND);
    cr_assert_null(nopub);
    pps_test_expect_consistent(cfg);
    pps_pub_close(pub);

    /* Nothing but the queue's own files appeared. */
    pps_test_snap *s = pps_test_snap_take(dir);
    const char *want[] = {"config.json", "q", "q/data.mdb", "q/lock.mdb",
                          "q/pps.wake"};
    cr_assert_eq(s->n, 5, "%zu files under the test directory", s->n);
    for (size_t i = 0; i < 5; i++) {
        cr_assert_str_eq(s->f[i].name, want[i]);
    }
    free(s);
    cr_assert_eq(stat(parent_etc, &st) == 0, etc_before,
                 "%s appeared", parent_etc);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(ids, ids_with_control_characters_are_rejected, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    const char *bad[] = {"new\nline", "tab\there", "del\x7f", "esc\x1b[2J",
                         "bell\a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *subs[] = {bad[i]};
        char *json = evil_json("pub", subs, 1);
        char *path = pps_test_write(dir, "bad.json", json);
        pps_config *cfg = NULL;
        int rc = pps_config_load(&cfg, path);
        cr_assert_eq(rc, PPS_ECONFIG, "id %zu accepted: %s", i,
                     pps_status_name(rc));
        cr_assert_null(cfg);
        pps_test_expect_detail(path,
                               "config with a control character in an id");
        free(json);
        free(path);
    }
    /* And a 256-byte id. */
    char longid[257];
    memset(longid, 'L', 256);
    longid[256] = '\0';
    const char *subs[] = {longid};
    char *json = evil_json("pub", subs, 1);
    char *path = pps_test_write(dir, "long.json", json);
    pps_config *cfg = NULL;
    cr_assert_eq(pps_config_load(&cfg, path), PPS_ECONFIG);
    free(json);
    free(path);
    /* Nothing was created. */
    pps_test_snap *s = pps_test_snap_take(dir);
    for (size_t i = 0; i < s->n; i++) {
        cr_assert(strstr(s->f[i].name, ".json") != NULL, "%s created",
                  s->f[i].name);
    }
    free(s);
    pps_test_cleanup(dir);
}
