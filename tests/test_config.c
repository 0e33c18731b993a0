/* Configuration loading and validation (src/config.c). */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INVALID_DIR PPS_TEST_DATA_DIR "/config/invalid"
#define VALID_DIR PPS_TEST_DATA_DIR "/config/valid"

/* The whole file at `path`, NUL-terminated; *len (if not NULL) gets its
 * size. Fails the test if it cannot be read. */
static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 4096;
    size_t n = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
    }
    cr_assert(!ferror(f), "cannot read %s", path);
    fclose(f);
    buf[n] = '\0';
    if (len != NULL) {
        *len = n;
    }
    return buf;
}

static void
spit(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names of DIR's files ending in ".json"; *n gets their count. */
static char **
json_files(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    char **names = NULL;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) {
            names = realloc(names, (*n + 1) * sizeof(*names));
            cr_assert_not_null(names);
            names[(*n)++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, *n, sizeof(*names), cmp_names);
    return names;
}

/* Parses `json` in memory as "test.json" with base_dir; PPS_OK expected. */
static pps_config *
parse_ok(const char *json, const char *base_dir)
{
    pps_config *cfg = NULL;
    pps__err_begin();
    int rc =
        pps__config_parse(&cfg, json, strlen(json), "test.json", base_dir);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_not_null(cfg);
    return cfg;
}

/* Parses `json` in memory as "test.json"; PPS_ECONFIG expected and the
 * message must equal "test.json: " + expected. */
static void
parse_fails(const char *json, const char *expected)
{
    pps_config *cfg = (pps_config *)&cfg; /* must be reset to NULL */
    pps__err_begin();
    int rc = pps__config_parse(&cfg, json, strlen(json), "test.json", NULL);
    cr_assert_eq(rc, PPS_ECONFIG, "%s for %s", pps_status_name(rc), json);
    cr_assert_null(cfg);
    char want[2048];
    snprintf(want, sizeof(want), "test.json: %s", expected);
    cr_assert_str_eq(pps_last_error(), want);
}

/* ---- invalid configurations, as data ------------------------------------ */

Test(config, invalid_files_fail_with_the_expected_message, .timeout = 30)
{
    size_t n;
    char **names = json_files(INVALID_DIR, &n);
    cr_assert_geq(n, 20, "only %zu invalid cases", n);
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        char path[4096];
        size_t len;
        snprintf(path, sizeof(path), "%s/%s", INVALID_DIR, name);
        char *text = slurp(path, &len);
        snprintf(path, sizeof(path), "%s/%.*s.err", INVALID_DIR,
                 (int)(strlen(name) - 5), name);
        char *expected = slurp(path, NULL);
        size_t elen = strlen(expected);
        if (elen > 0 && expected[elen - 1] == '\n') {
            expected[--elen] = '\0';
        }
        cr_expect_null(strchr(expected, '\n'), "%s: .err is not one line",
                       name);
        cr_expect(strncmp(expected, name, strlen(name)) == 0 &&
                      expected[strlen(name)] == ':',
                  "%s: .err must start with the file name", name);

        /* In memory, named by its base name. */
        char *dir = pps_test_tmpdir();
        pps_config *cfg = (pps_config *)&cfg;
        pps__err_begin();
        int rc = pps__config_parse(&cfg, text, len, name, dir);
        cr_expect_eq(rc, PPS_ECONFIG, "%s: %s", name, pps_status_name(rc));
        cr_expect_null(cfg, "%s: *out not reset", name);
        cr_expect_str_eq(pps_last_error(), expected, "%s", name);
        cr_expect_null(strchr(pps_last_error(), '\n'), "%s", name);
        pps_config_free(rc == PPS_OK ? cfg : NULL);

        /* From a private directory, named by its full path; the directory
         * must hold nothing but the file afterwards. */
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        spit(path, text, len);
        cfg = (pps_config *)&cfg;
        rc = pps_config_load(&cfg, path);
        cr_expect_eq(rc, PPS_ECONFIG, "%s: %s", name, pps_status_name(rc));
        cr_expect_null(cfg, "%s: *out not reset", name);
        char want[4096];
        snprintf(want, sizeof(want), "%s%s", path,
                 elen >= strlen(name) ? expected + strlen(name) : "");
        cr_expect_str_eq(pps_last_error(), want, "%s", name);
        pps_config_free(rc == PPS_OK ? cfg : NULL);
        cr_expect_eq(pps_test_dir_entries(dir), 1, "%s: something was created",
                     name);

        pps_test_cleanup(dir);
        free(expected);
        free(text);
        free(names[i]);
    }
    free(names);
}

Test(config, first_error_wins, .timeout = 30)
{
    /* Two errors in one queue: the first in file order is reported. */
    parse_fails("{\"queues\": {\"q\": {\"path\": \"q\", \"mode\": \"0400\", "
                "\"max_db_num\": 0}}}",
                "queues.q.mode: expected an octal mode string of 3 or 4 "
                "digits, at most \"0777\", with owner read and write (e.g. "
                "\"0600\"), got \"0400\"");
    parse_fails("{\"queues\": {\"q\": {\"path\": \"q\", \"subscribers\": "
                "[\"a\", \"\", \"a\"]}}}",
                "queues.q.subscribers[1]: expected a subscriber id of 1 to "
                "255 printable ASCII characters, got \"\"");
    /* Queues are validated before the components that name them. */
    parse_fails("{\"pub\": {\"bad\": 1}, \"queues\": {\"q\": {}}}",
                "queues.q.path: expected a string, missing");
    /* Components in file order. */
    parse_fails("{\"b\": {\"x\": 1}, \"a\": {\"y\": 1}, "
                "\"queues\": {\"q\": {\"path\": \"q\"}}}",
                "b.x: unknown key (expected out_queue, in_queue or "
                "subscribers)");
    /* A later failing call replaces the message. */
    parse_fails("{\"queues\": 1}", "queues: expected an object, got 1");
}

Test(config, messages_stay_short_and_on_one_line, .timeout = 30)
{
    char json[4096];
    char key[600];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    snprintf(json, sizeof(json),
             "{\"queues\": {\"q\": {\"path\": \"q\", \"%s\": 1}}}", key);
    pps_config *cfg = NULL;
    pps__err_begin();
    cr_assert_eq(pps__config_parse(&cfg, json, strlen(json), "t.json", NULL),
                 PPS_ECONFIG);
    cr_assert_str_eq(
        pps_last_error(),
        "t.json: queues.q[\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
        "...]: unknown key (expected path, max_reader_num, "
        "max_db_num, max_db_size_bytes, subscribers, "
        "high-water-mark, durability or mode)");

    /* A file name with a newline is still reported on one line. */
    const char *bad = "{\"queues\": []}";
    pps__err_begin();
    cr_assert_eq(pps__config_parse(&cfg, bad, strlen(bad), "a\nb.json", NULL),
                 PPS_ECONFIG);
    cr_assert_str_eq(pps_last_error(),
                     "a?b.json: queues: expected an object, got []");

    /* The text need not be NUL-terminated: only len bytes are read. */
    const char *ok = "{\"queues\": {\"q\": {\"path\": \"q\"}}}garbage";
    pps__err_begin();
    cr_assert_eq(pps__config_parse(&cfg, ok, strlen(ok) - 7, "t.json", NULL),
                 PPS_OK, "%s", pps_last_error());
    pps_config_free(cfg);
}

/* ---- valid configurations ----------------------------------------------- */

Test(config, valid_files_load, .timeout = 30)
{
    size_t n;
    char **names = json_files(VALID_DIR, &n);
    cr_assert_geq(n, 1);
    size_t entries = pps_test_dir_entries(VALID_DIR);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", VALID_DIR, names[i]);
        pps_config *cfg = NULL;
        int rc = pps_config_load(&cfg, path);
        cr_expect_eq(rc, PPS_OK, "%s: %s", names[i], pps_last_error());
        cr_expect_eq(pps_test_dir_entries(VALID_DIR), entries,
                     "%s: created something", names[i]);
        pps_config_free(cfg);
        free(names[i]);
    }
    free(names);
    /* The example shipped with the project as well. */
    pps_config *cfg = NULL;
    cr_assert_eq(
        pps_config_load(&cfg, PPS_TEST_DATA_DIR "/../config/example.json"),
        PPS_OK, "%s", pps_last_error());
    pps_config_free(cfg);
}

Test(config, defaults_are_applied, .timeout = 30)
{
    pps_config *cfg = parse_ok("{\"sub\": {\"in_queue\": \"q\"}, \"queues\": "
                               "{\"q\": {\"path\": \"/abs/q\", "
                               "\"subscribers\": [\"sub\"]}}}",
                               NULL);
    cr_assert_str_eq(cfg->file, "test.json");
    cr_assert_eq(cfg->n_queues, 1);
    const pps__queue_cfg *q = &cfg->queues[0];
    cr_assert_str_eq(q->key, "q");
    cr_assert_str_eq(q->path, "/abs/q");
    cr_assert_eq(q->max_reader_num, 1024);
    cr_assert_eq(q->max_db_num, 1024);
    cr_assert_eq(q->max_db_size_bytes, UINT64_C(34359738368));
    cr_assert_eq(q->hwm.msg_timeout_secs, 500);
    cr_assert_eq(q->hwm.max_msgs_num, 65536);
    cr_assert_eq(q->hwm.hwm_lmdb_size_bytes, UINT64_C(32212254720));
    cr_assert_eq(q->hwm.strategy, PPS__PRUNE_FIRST);
    cr_assert_eq(q->durability, PPS__SYNC);
    cr_assert_eq(q->file_mode, 0600);
    cr_assert_eq(q->n_subscribers, 1);
    cr_assert_str_eq(q->subscribers[0], "sub");
    cr_assert_eq(cfg->n_components, 1);
    cr_assert_str_eq(cfg->components[0].id, "sub");
    cr_assert_eq(cfg->components[0].in_queue, 0);
    cr_assert_eq(cfg->components[0].out_queue, -1);
    cr_assert(!cfg->components[0].has_subscribers);
    cr_assert_eq(cfg->components[0].n_subscribers, 0);
    pps_config_free(cfg);

    /* An empty high-water-mark object keeps every default too; a config
     * may have no components. */
    cfg = parse_ok("{\"queues\": {\"q\": {\"path\": \"q\", "
                   "\"high-water-mark\": {}}}}",
                   NULL);
    cr_assert_eq(cfg->n_components, 0);
    cr_assert_eq(cfg->queues[0].n_subscribers, 0);
    cr_assert_eq(cfg->queues[0].hwm.max_msgs_num, 65536);
    cr_assert_eq(cfg->queues[0].hwm.strategy, PPS__PRUNE_FIRST);
    pps_config_free(cfg);
}

Test(config, every_field_is_read, .timeout = 30)
{
    size_t len;
    char *text = slurp(VALID_DIR "/full.json", &len);
    pps_config *cfg = NULL;
    pps__err_begin();
    cr_assert_eq(pps__config_parse(&cfg, text, len, "full.json", "/etc/pps"),
                 PPS_OK, "%s", pps_last_error());
    free(text);
    cr_assert_eq(cfg->n_queues, 2);
    const pps__queue_cfg *q = &cfg->queues[0];
    cr_assert_str_eq(q->key, "queues/demo");
    cr_assert_str_eq(q->path, "/etc/pps/queues/demo");
    cr_assert_eq(q->max_reader_num, 2147483647);
    cr_assert_eq(q->max_db_num, 5);
    cr_assert_eq(q->max_db_size_bytes, UINT64_C(68719476736));
    cr_assert_eq(q->hwm.msg_timeout_secs, 600);
    cr_assert_eq(q->hwm.max_msgs_num, 10000);
    cr_assert_eq(q->hwm.hwm_lmdb_size_bytes, 1000000);
    cr_assert_eq(q->hwm.strategy, PPS__PRUNE_LAST);
    cr_assert_eq(q->durability, PPS__NOMETASYNC);
    cr_assert_eq(q->file_mode, 0640);
    cr_assert_eq(q->n_subscribers, 2);
    cr_assert_str_eq(q->subscribers[0], "sub");
    cr_assert_str_eq(q->subscribers[1], "relay");
    q = &cfg->queues[1];
    cr_assert_str_eq(q->key, "out");
    cr_assert_str_eq(q->path, "/var/lib/pps/out");
    cr_assert_eq(q->max_db_num, 32767);
    cr_assert_eq(q->durability, PPS__NOSYNC);
    cr_assert_eq(q->file_mode, 0700);
    cr_assert_eq(q->hwm.strategy, PPS__PRUNE_FIRST);

    /* Components in the order of the file. */
    cr_assert_eq(cfg->n_components, 4);
    const char *order[] = {"pub", "sub", "relay", "sink"};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(cfg->components[i].id, order[i]);
    }
    const pps__component *pub = &cfg->components[0];
    cr_assert_eq(pub->out_queue, 0);
    cr_assert_eq(pub->in_queue, -1);
    cr_assert(pub->has_subscribers);
    cr_assert_eq(pub->n_subscribers, 1);
    cr_assert_str_eq(pub->subscribers[0], "relay");
    /* Both a subscriber of one queue and the publisher of another. */
    const pps__component *relay = &cfg->components[2];
    cr_assert_eq(relay->in_queue, 0);
    cr_assert_eq(relay->out_queue, 1);
    cr_assert(relay->has_subscribers);
    cr_assert_eq(relay->n_subscribers, 0);
    const pps__component *sink = &cfg->components[3];
    cr_assert_eq(sink->in_queue, 1);
    cr_assert_eq(sink->out_queue, -1);
    pps_config_free(cfg);
}

Test(config, relative_paths_resolve_against_the_config_dir, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_config(dir, "{\"queues\": {\"a\": {\"path\": \"q/x\"}, "
                             "\"b\": {\"path\": \"/abs/y\"}, "
                             "\"c\": {\"path\": \"./z//w/./\"}, "
                             "\"d\": {\"path\": \"../up\"}}}");
    char want[4096];
    snprintf(want, sizeof(want), "%s/q/x", dir);
    cr_assert_str_eq(cfg->queues[0].path, want);
    cr_assert_str_eq(cfg->queues[1].path, "/abs/y");
    snprintf(want, sizeof(want), "%s/z/w", dir);
    cr_assert_str_eq(cfg->queues[2].path, want);
    snprintf(want, sizeof(want), "%s/../up", dir);
    cr_assert_str_eq(cfg->queues[3].path, want);
    cr_assert_eq(pps_test_dir_entries(dir), 1);
    pps_config_free(cfg);
    pps_test_cleanup(dir);

    /* Without a directory, relative paths stay relative. */
    const char *json = "{\"queues\": {\"a\": {\"path\": \"q/x\"}, "
                       "\"b\": {\"path\": \".\"}}}";
    const struct {
        const char *base;
        const char *a;
        const char *b;
    } cases[] = {
        {NULL, "q/x", "."},
        {"", "q/x", "."},
        {"/", "/q/x", "/"},
        {"base/", "base/q/x", "base"},
        {"/srv//", "/srv/q/x", "/srv"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg = parse_ok(json, cases[i].base);
        cr_assert_str_eq(cfg->queues[0].path, cases[i].a);
        cr_assert_str_eq(cfg->queues[1].path, cases[i].b);
        pps_config_free(cfg);
    }

    /* A bare file name keeps relative paths relative. */
    char *here = pps_test_tmpdir();
    char *old = getcwd(NULL, 0);
    cr_assert_not_null(old);
    cr_assert_eq(chdir(here), 0);
    free(pps_test_write(".", "c.json",
                        "{\"queues\": {\"a\": {\"path\": \"q\"}}}"));
    cfg = NULL;
    cr_assert_eq(pps_config_load(&cfg, "c.json"), PPS_OK, "%s",
                 pps_last_error());
    cr_assert_str_eq(cfg->queues[0].path, "q");
    pps_config_free(cfg);
    cr_assert_eq(chdir(old), 0);
    free(old);
    pps_test_cleanup(here);
}

Test(config, limits_are_inclusive, .timeout = 30)
{
    pps_config *cfg = parse_ok(
        "{\"queues\": {\"q\": {\"path\": \"q\", \"max_db_num\": 5, "
        "\"max_reader_num\": 2147483647, \"max_db_size_bytes\": "
        "8796093022208, \"subscribers\": [\"a\", \"b\"], "
        "\"high-water-mark\": {\"MSG_TIMEOUT_SECS\": 1, \"MAX_MSGS_NUM\": 1, "
        "\"HWM_LMDB_SIZE_BYTES\": 1}, \"mode\": \"777\"}}}",
        NULL);
    const pps__queue_cfg *q = &cfg->queues[0];
    cr_assert_eq(q->max_db_num, 5);
    cr_assert_eq(q->max_reader_num, 2147483647);
    cr_assert_eq(q->max_db_size_bytes, UINT64_C(8796093022208)); /* 8 TiB */
    cr_assert_eq(q->hwm.msg_timeout_secs, 1);
    cr_assert_eq(q->file_mode, 0777);
    pps_config_free(cfg);

    /* The map: 1 MiB to 8 TiB, both inclusive. */
    cfg = parse_ok("{\"queues\": {\"q\": {\"path\": \"q\", "
                   "\"max_db_size_bytes\": 1048576}}}",
                   NULL);
    cr_assert_eq(cfg->queues[0].max_db_size_bytes, 1048576);
    pps_config_free(cfg);
    parse_fails(
        "{\"queues\": {\"q\": {\"path\": \"q\", "
        "\"max_db_size_bytes\": 1048575}}}",
        "queues.q.max_db_size_bytes: expected at least 1048576 (1 MiB, "
        "the smallest map that holds messages), got 1048575");
    parse_fails(
        "{\"queues\": {\"q\": {\"path\": \"q\", "
        "\"max_db_size_bytes\": 1}}}",
        "queues.q.max_db_size_bytes: expected at least 1048576 (1 MiB, "
        "the smallest map that holds messages), got 1");
    parse_fails(
        "{\"queues\": {\"q\": {\"path\": \"q\", "
        "\"max_db_size_bytes\": 8796093022209}}}",
        "queues.q.max_db_size_bytes: expected at most 8796093022208 (8 "
        "TiB, the largest map this platform can take), got "
        "8796093022209");
    parse_fails(
        "{\"queues\": {\"q\": {\"path\": \"q\", "
        "\"max_db_size_bytes\": 0}}}",
        "queues.q.max_db_size_bytes: expected a positive integer, got 0");

    /* The default max_db_num is checked too. */
    char *json = malloc(1100 * 8 + 256);
    cr_assert_not_null(json);
    size_t off = (size_t)sprintf(json, "{\"queues\": {\"q\": {\"path\": "
                                       "\"q\", \"subscribers\": [");
    for (int i = 0; i < 1022; i++) {
        off += (size_t)sprintf(json + off, "%s\"%d\"", i > 0 ? "," : "", i);
    }
    sprintf(json + off, "]}}}");
    parse_fails(json, "queues.q.max_db_num: expected at least 1025 (3 "
                      "internal databases and 1 per subscriber), missing (the "
                      "default is 1024)");
    free(json);
}

Test(config, component_lookup, .timeout = 30)
{
    pps_config *cfg = parse_ok("{\"pub\": {\"out_queue\": \"q\"}, "
                               "\"the sub\": {\"in_queue\": \"q\"}, "
                               "\"queues\": {\"q\": {\"path\": \"q\", "
                               "\"subscribers\": [\"the sub\"]}}}",
                               NULL);
    const pps__component *c = pps__config_component(cfg, "pub");
    cr_assert_not_null(c);
    cr_assert_str_eq(c->id, "pub");
    cr_assert_eq(c->out_queue, 0);
    c = pps__config_component(cfg, "the sub");
    cr_assert_not_null(c);
    cr_assert_eq(c->in_queue, 0);
    cr_assert_null(pps__config_component(cfg, "queues"));
    cr_assert_null(pps__config_component(cfg, "nobody"));
    cr_assert_null(pps__config_component(cfg, NULL));
    cr_assert_null(pps__config_component(NULL, "pub"));
    pps_config_free(cfg);
}

/* ---- loading files and bad arguments ------------------------------------ */

Test(config, free_null_is_a_no_op, .timeout = 30)
{
    pps_config_free(NULL);
}

Test(config, unreadable_files_are_named, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    char path[4096];
    snprintf(path, sizeof(path), "%s/missing.json", dir);
    pps_config *cfg = (pps_config *)&cfg;
    cr_assert_eq(pps_config_load(&cfg, path), PPS_ECONFIG);
    cr_assert_null(cfg);
    char want[4200];
    snprintf(want, sizeof(want), "%s: cannot read: %s", path,
             strerror(ENOENT));
    cr_assert_str_eq(pps_last_error(), want);

    /* A directory is not a configuration either. */
    cr_assert_eq(pps_config_load(&cfg, dir), PPS_ECONFIG);
    cr_assert_null(cfg);
    snprintf(want, sizeof(want), "%s: cannot read: %s", dir, strerror(EISDIR));
    cr_assert_str_eq(pps_last_error(), want);
    cr_assert_eq(pps_test_dir_entries(dir), 0);
    pps_test_cleanup(dir);
}

Test(config, null_arguments_are_einval, .timeout = 30)
{
    pps_config *cfg = (pps_config *)&cfg;
    cr_assert_eq(pps_config_load(&cfg, NULL), PPS_EINVAL);
    cr_assert_null(cfg);
    cr_assert_neq(pps_last_error()[0], '\0');
    cr_assert_eq(pps_config_load(NULL, VALID_DIR "/full.json"), PPS_EINVAL);

    const char *json = "{\"queues\": {\"q\": {\"path\": \"q\"}}}";
    cfg = (pps_config *)&cfg;
    cr_assert_eq(pps__config_parse(&cfg, NULL, 0, "t.json", NULL), PPS_EINVAL);
    cr_assert_null(cfg);
    cfg = (pps_config *)&cfg;
    cr_assert_eq(pps__config_parse(&cfg, json, strlen(json), NULL, NULL),
                 PPS_EINVAL);
    cr_assert_null(cfg);
    cr_assert_eq(pps__config_parse(NULL, json, strlen(json), "t.json", NULL),
                 PPS_EINVAL);
}

Test(config, subscriber_id_rules, .timeout = 30)
{
    char id[300];
    memset(id, 'a', sizeof(id));
    id[255] = '\0';
    cr_assert(pps__sub_id_valid(id));
    id[255] = 'a';
    id[256] = '\0';
    cr_assert(!pps__sub_id_valid(id));
    cr_assert(pps__sub_id_valid("a"));
    cr_assert(pps__sub_id_valid("data_db"));
    cr_assert(pps__sub_id_valid("pps.meta"));
    cr_assert(pps__sub_id_valid("sub:x"));
    cr_assert(pps__sub_id_valid(" "));
    cr_assert(pps__sub_id_valid("~!\"#$%&'()*+,-./0123456789"));
    cr_assert(!pps__sub_id_valid(""));
    cr_assert(!pps__sub_id_valid(NULL));
    cr_assert(!pps__sub_id_valid("a\x01"));
    cr_assert(!pps__sub_id_valid("tab\t"));
    cr_assert(!pps__sub_id_valid("del\x7f"));
    cr_assert(!pps__sub_id_valid("caf\xc3\xa9"));
}

/* ---- queue directories -------------------------------------------------- */

Test(config, path_normalizer, .timeout = 10)
{
    static const struct {
        const char *in;
        const char *kept;   /* ".." kept: the path the queue opens */
        const char *folded; /* ".." folded: the spelling compared */
    } cases[] = {
        {"qd", "qd", "qd"},
        {"./qd/", "qd", "qd"},
        {"qd/", "qd", "qd"},
        {"qd//.", "qd", "qd"},
        {"a//./b/", "a/b", "a/b"},
        {"sub/../qd", "sub/../qd", "qd"},
        {"a/b/../../c", "a/b/../../c", "c"},
        {"a/..", "a/..", "."},
        {"..", "..", ".."},
        {"../x", "../x", "../x"},
        {"a/../../x", "a/../../x", "../x"},
        {"../../x/../y", "../../x/../y", "../../y"},
        {".", ".", "."},
        {"./", ".", "."},
        {"/", "/", "/"},
        {"//", "/", "/"},
        {"/..", "/..", "/"},
        {"/../x", "/../x", "/x"},
        {"/a/b/../../..", "/a/b/../../..", "/"},
        {"/srv//q/./x/../y/", "/srv/q/x/../y", "/srv/q/y"},
        {"a/.../b", "a/.../b", "a/.../b"},
        {"a/..b/../c", "a/..b/../c", "a/c"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char kept[64];
        char folded[64];
        snprintf(kept, sizeof(kept), "%s", cases[i].in);
        snprintf(folded, sizeof(folded), "%s", cases[i].in);
        pps__path_normalize(kept, false);
        pps__path_normalize(folded, true);
        cr_expect_str_eq(kept, cases[i].kept, "%s", cases[i].in);
        cr_expect_str_eq(folded, cases[i].folded, "%s", cases[i].in);
    }
}

/* Loads DIR/config.json holding `json`; PPS_ECONFIG expected with the
 * message "DIR/config.json: " + expected, and nothing created in dir. */
static void
load_fails(const char *dir, const char *json, const char *expected)
{
    char *path = pps_test_write(dir, "config.json", json);
    size_t entries = pps_test_dir_entries(dir);
    pps_config *cfg = (pps_config *)&cfg;
    int rc = pps_config_load(&cfg, path);
    cr_assert_eq(rc, PPS_ECONFIG, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_null(cfg);
    char want[8192];
    snprintf(want, sizeof(want), "%s: %s", path, expected);
    cr_assert_str_eq(pps_last_error(), want);
    cr_assert_eq(pps_test_dir_entries(dir), entries, "something was created");
    free(path);
}

Test(config, aliased_queue_directories_are_rejected, .timeout = 30)
{
    /* Spellings of one directory, found without looking at the disk. */
    const char *aliases[] = {"qd/", "./qd/", "qd/.", "sub/../qd",
                             "x/y/../../qd"};
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        char json[256];
        char want[256];
        snprintf(json, sizeof(json),
                 "{\"queues\": {\"a\": {\"path\": \"qd\"}, \"b\": "
                 "{\"path\": \"%s\"}}}",
                 aliases[i]);
        snprintf(want, sizeof(want),
                 "queues.b.path: expected a path no other queue uses, got "
                 "\"%s\" (the same as queues.a.path)",
                 aliases[i]);
        parse_fails(json, want);
    }
    /* Only the file system knows these: a symbolic link to a directory
     * that exists, and through it to one that does not exist yet. */
    char *dir = pps_test_tmpdir();
    char *real = pps_test_path_in(dir, "real");
    char *qd = pps_test_path_in(dir, "real/qd");
    char *link = pps_test_path_in(dir, "link");
    cr_assert_eq(mkdir(real, 0700), 0);
    cr_assert_eq(mkdir(qd, 0700), 0);
    cr_assert_eq(symlink("real", link), 0);
    const char *json =
        "{\"queues\": {\"a\": {\"path\": \"real/qd\"}, \"b\": {\"path\": "
        "\"link/qd\"}}}";
    load_fails(dir, json,
               "queues.b.path: expected a path no other queue uses, got "
               "\"link/qd\" (the same directory as queues.a.path)");
    pps_config *cfg = parse_ok(json, dir); /* no disk, no way to know */
    pps_config_free(cfg);
    load_fails(dir,
               "{\"queues\": {\"a\": {\"path\": \"link/new/q\"}, \"b\": "
               "{\"path\": \"real/new/../new/q\"}}}",
               "queues.b.path: expected a path no other queue uses, got "
               "\"real/new/../new/q\" (the same directory as "
               "queues.a.path)");
    cr_assert_eq(pps_test_dir_entries(real), 1, "real/new was created");
    /* The symbolic link itself, and a ".." below it. */
    load_fails(dir,
               "{\"queues\": {\"a\": {\"path\": \"link\"}, \"b\": {\"path\": "
               "\"real/qd/..\"}}}",
               "queues.b.path: expected a path no other queue uses, got "
               "\"real/qd/..\" (the same directory as queues.a.path)");
    /* Different directories stay valid, also side by side under a link. */
    char *path = pps_test_write(
        dir, "config.json",
        "{\"queues\": {\"a\": {\"path\": \"link/qd\"}, \"b\": {\"path\": "
        "\"link/other\"}, \"c\": {\"path\": \"real\"}, \"d\": {\"path\": "
        "\"qd\"}}}");
    cfg = NULL;
    cr_assert_eq(pps_config_load(&cfg, path), PPS_OK, "%s", pps_last_error());
    pps_config_free(cfg);
    free(path);
    free(real);
    free(qd);
    free(link);
    pps_test_cleanup(dir);
}

Test(config, queue_paths_fit_path_max, .timeout = 30)
{
    /* "<path>/data.mdb" and its NUL must fit PATH_MAX: the path itself may
     * have PATH_MAX - 10 bytes. */
    enum { MAX = PATH_MAX - 2 - 8 };
    char *path = malloc(PATH_MAX + 64);
    char *json = malloc(PATH_MAX + 128);
    cr_assert(path != NULL && json != NULL);
    path[0] = '/';
    memset(path + 1, 'p', MAX - 1);
    path[MAX] = '\0';
    snprintf(json, PATH_MAX + 128, "{\"queues\": {\"q\": {\"path\": \"%s\"}}}",
             path);
    pps_config *cfg = parse_ok(json, NULL);
    cr_assert_eq(strlen(cfg->queues[0].path), MAX);
    pps_config_free(cfg);
    /* Trailing slashes do not count: they are not part of the path. */
    snprintf(json, PATH_MAX + 128,
             "{\"queues\": {\"q\": {\"path\": \"%s///\"}}}", path);
    pps_config_free(parse_ok(json, NULL));

    path[MAX] = 'p';
    path[MAX + 1] = '\0';
    snprintf(json, PATH_MAX + 128, "{\"queues\": {\"q\": {\"path\": \"%s\"}}}",
             path);
    char want[512];
    snprintf(want, sizeof(want),
             "queues.q.path: expected a path of at most %d bytes (its files, "
             "such as \"<path>/data.mdb\", must fit in PATH_MAX, %d), got "
             "\"/pppppppppppppppppppppppppppppppppppppp... (%d bytes)",
             MAX, PATH_MAX, MAX + 1);
    parse_fails(json, want);

    /* A relative path counts with the directory it is resolved against. */
    memset(path, 'r', MAX - 5);
    path[MAX - 5] = '\0';
    snprintf(json, PATH_MAX + 128, "{\"queues\": {\"q\": {\"path\": \"%s\"}}}",
             path);
    pps_config_free(parse_ok(json, "/abc"));
    pps__err_begin();
    cr_assert_eq(
        pps__config_parse(&cfg, json, strlen(json), "test.json", "/abcd"),
        PPS_ECONFIG);
    snprintf(want, sizeof(want),
             "test.json: queues.q.path: expected a path of at most %d bytes "
             "(its files, such as \"<path>/data.mdb\", must fit in PATH_MAX, "
             "%d), got \"rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr... (%d bytes "
             "in the configuration's directory)",
             MAX, PATH_MAX, MAX + 1);
    cr_assert_str_eq(pps_last_error(), want);
    free(json);
    free(path);
}

/* ---- the queues of a configuration (config_query.c) --------------------- */

Test(config, queue_listing_and_lookup, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_config(
        dir, "{\"queues\": {\"q1\": {\"path\": \"one\"}, "
             "\"q2\": {\"path\": \"two\"}}}");
    cr_assert_eq(pps_config_queue_count(cfg), 2);
    cr_assert_eq(pps_config_queue_count(NULL), 0);
    cr_assert_str_eq(pps_config_queue_key(cfg, 1), "q2");
    cr_assert(strstr(pps_config_queue_path(cfg, 0), "/one") != NULL);
    cr_assert_null(pps_config_queue_key(cfg, 2));
    cr_assert_null(pps_config_queue_path(cfg, 2));
    size_t i = 9;
    cr_assert_eq(pps_config_queue_find(cfg, "q2", &i), PPS_OK);
    cr_assert_eq(i, 1);
    cr_assert_eq(pps_config_queue_find(cfg, pps_config_queue_path(cfg, 0), &i),
                 PPS_OK);
    cr_assert_eq(i, 0);
    cr_assert_eq(pps_config_queue_find(cfg, "q3", &i), PPS_ENOTFOUND);
    cr_assert_eq(pps_config_queue_find(cfg, NULL, &i), PPS_EINVAL);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
