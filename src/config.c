/*
 * Configuration: the JSON file of the original persipubsub, parsed with
 * jansson and validated strictly into a struct pps_config.
 *
 * pps__config_parse() is pure logic on a buffer (no file access) so that it
 * can be unit-tested and fuzzed; pps_config_load() only reads the file and
 * hands its text over. Validation stops at the first error and records it
 * as one line, "FILE: JSONPATH: expected ..., got ...". The queues are
 * validated first (components refer to them), then the components; both in
 * the order of the file, which jansson keeps (it iterates objects in
 * insertion order). Every allocation hangs off the pps_config being built,
 * so one pps_config_free() releases a half-built one as well.
 */
#include "internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JP_MAX 512     /* a rendered JSON path */
#define RENDER_MAX 40  /* characters of a value or key shown in a message */
#define LINE_MAX_ 1024 /* a whole message (the size of error.c's buffer) */
#define FILE_MAX ((size_t)64 << 20) /* larger files are refused */

#define ID_MAX 255
#define INTERNAL_DBS 3u            /* meta, data and msg */
#define MAX_DB_NUM 32767u          /* upper bound of max_db_num */
#define MAX_READER_NUM 2147483647u /* fits LMDB's unsigned int */
#define MAX_SUBSCRIBERS (MAX_DB_NUM - INTERNAL_DBS)

#define DEFAULT_MAX_READER_NUM 1024u
#define DEFAULT_MAX_DB_NUM 1024u
#define DEFAULT_MAX_DB_SIZE_BYTES 34359738368u /* 32 GiB */
#define DEFAULT_MSG_TIMEOUT_SECS 500u
#define DEFAULT_MAX_MSGS_NUM 65536u
#define DEFAULT_HWM_LMDB_SIZE_BYTES 32212254720u /* 30 GiB */
#define DEFAULT_FILE_MODE 0600u

#define ID_EXPECTED "a subscriber id of 1 to 255 printable ASCII characters"

typedef struct parse_ctx {
    const char *file;     /* names the configuration in messages */
    const char *base_dir; /* resolves relative queue paths; NULL: keep */
    pps_config *cfg;      /* being built */
} parse_ctx;

typedef struct choice {
    const char *name;
    int value;
} choice;

static const choice strategies[] = {
    {"prune_first", PPS__PRUNE_FIRST},
    {"prune_last", PPS__PRUNE_LAST},
};

static const choice durabilities[] = {
    {"sync", PPS__SYNC},
    {"nometasync", PPS__NOMETASYNC},
    {"nosync", PPS__NOSYNC},
};

/* ---- messages ----------------------------------------------------------- */

/* Copies the JSON text s to out, cut after at most `max` characters (never
 * inside an escape sequence) and then marked with "...". */
static void
clip(char *out, size_t size, const char *s, size_t max)
{
    size_t len = strlen(s);
    size_t n = 0;
    while (n < len) {
        size_t tok = 1;
        if (s[n] == '\\' && n + 1 < len) {
            tok = s[n + 1] == 'u' ? 6 : 2;
        }
        if (n + tok > max) {
            break;
        }
        n += tok;
    }
    if (n > len) {
        n = len;
    }
    snprintf(out, size, "%.*s%s", (int)n, s, n < len ? "..." : "");
}

/* A short, ASCII, one-line rendering of a JSON value. */
static void
render_value(const json_t *v, char *out, size_t size)
{
    char *s =
        json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s == NULL) {
        snprintf(out, size, "?");
        return;
    }
    clip(out, size, s, RENDER_MAX);
    free(s);
}

/* An object key rendered as a (possibly clipped) JSON string literal. */
static void
render_key(const char *key, char *out, size_t size)
{
    json_t *s = json_string(key);
    if (s == NULL) {
        snprintf(out, size, "\"?\"");
        return;
    }
    render_value(s, out, size);
    json_decref(s);
}

#define ALPHA "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"

static bool
is_ident(const char *s)
{
    return strspn(s, ALPHA) > 0 && s[strspn(s, ALPHA "0123456789")] == '\0';
}

/* out = the strings of parts one after the other, cut to fit. */
static void
concat(char *out, size_t size, const char *const *parts, size_t n)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(parts[i]);
        if (len > size - 1 - off) {
            len = size - 1 - off;
        }
        memcpy(out + off, parts[i], len);
        off += len;
    }
    out[off] = '\0';
}

#define CONCAT(out, size, ...)                                                \
    concat((out), (size), (const char *const[]){__VA_ARGS__},                 \
           sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* out = the path of member `key` of the value at `parent` ("" is the root):
 * identifiers as .KEY (bare at the top level), anything else (and long
 * keys, clipped) as ["KEY"]. */
static void
jp_key(char out[JP_MAX], const char *parent, const char *key)
{
    if (is_ident(key) && strlen(key) <= RENDER_MAX) {
        CONCAT(out, JP_MAX, parent, parent[0] != '\0' ? "." : "", key);
    } else {
        char r[RENDER_MAX + 8];
        render_key(key, r, sizeof(r));
        CONCAT(out, JP_MAX, parent, "[", r, "]");
    }
}

static void
jp_index(char out[JP_MAX], const char *parent, size_t i)
{
    char num[32];
    snprintf(num, sizeof(num), "[%zu]", i);
    CONCAT(out, JP_MAX, parent, num);
}

/* Replaces control characters, so that a message is always one line. */
static void
one_line(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            *s = '?';
        }
    }
}

static int fail(const parse_ctx *c, const char *jp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records "FILE: JP: <message>" (or "FILE: <message>" for the root) and
 * returns PPS_ECONFIG. */
static int
fail(const parse_ctx *c, const char *jp, const char *fmt, ...)
{
    char msg[LINE_MAX_];
    char line[LINE_MAX_];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (jp[0] != '\0') {
        CONCAT(line, sizeof(line), c->file, ": ", jp, ": ", msg);
    } else {
        CONCAT(line, sizeof(line), c->file, ": ", msg);
    }
    one_line(line);
    return pps__err(PPS_ECONFIG, "%s", line);
}

/* "expected EXPECTED, got VALUE", or ", missing" when v is NULL. */
static int
fail_got(const parse_ctx *c, const char *jp, const char *expected,
         const json_t *v)
{
    if (v == NULL) {
        return fail(c, jp, "expected %s, missing", expected);
    }
    char got[RENDER_MAX + 8];
    render_value(v, got, sizeof(got));
    return fail(c, jp, "expected %s, got %s", expected, got);
}

static int
nomem(const parse_ctx *c)
{
    return pps__err(PPS_ENOMEM, "%s: out of memory", c->file);
}

/* ---- values ------------------------------------------------------------- */

bool
pps__sub_id_valid(const char *id)
{
    if (id == NULL) {
        return false;
    }
    size_t len = strnlen(id, ID_MAX + 1);
    if (len == 0 || len > ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (ch < 0x20 || ch > 0x7e) {
            return false;
        }
    }
    return true;
}

/* A JSON integer in 1..max (max 0: up to the largest JSON integer). */
static int
parse_uint(const parse_ctx *c, const char *jp, const json_t *v, uint64_t max,
           uint64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) > 0 &&
        (max == 0 || (uint64_t)json_integer_value(v) <= max)) {
        *out = (uint64_t)json_integer_value(v);
        return PPS_OK;
    }
    if (max == 0) {
        return fail_got(c, jp, "a positive integer", v);
    }
    char expected[64];
    snprintf(expected, sizeof(expected), "a positive integer up to %llu",
             (unsigned long long)max);
    return fail_got(c, jp, expected, v);
}

static int
parse_choice(const parse_ctx *c, const char *jp, const json_t *v,
             const choice *choices, size_t n, const char *expected, int *out)
{
    if (json_is_string(v)) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(json_string_value(v), choices[i].name) == 0) {
                *out = choices[i].value;
                return PPS_OK;
            }
        }
    }
    return fail_got(c, jp, expected, v);
}

/* "mode": 3 or 4 octal digits, at most 0777, with owner read and write. */
static int
parse_mode(const parse_ctx *c, const char *jp, const json_t *v, unsigned *out)
{
    static const char expected[] =
        "an octal mode string of 3 or 4 digits, at most \"0777\", with owner "
        "read and write (e.g. \"0600\")";
    const char *s = json_string_value(v);
    size_t len = s != NULL ? strlen(s) : 0;
    bool ok = len >= 3 && len <= 4 && len == json_string_length(v);
    unsigned mode = 0;
    for (size_t i = 0; ok && i < len; i++) {
        ok = s[i] >= '0' && s[i] <= '7';
        mode = mode * 8 + (unsigned)(s[i] - '0');
    }
    if (!ok || mode > 0777 || (mode & 0600) != 0600) {
        return fail_got(c, jp, expected, v);
    }
    *out = mode;
    return PPS_OK;
}

/* Removes empty and "." segments and trailing slashes ("a//./b/" is "a/b"),
 * so that two spellings of one path compare equal. ".." is kept: resolving
 * it lexically would be wrong across symbolic links. Never lengthens s. */
static void
normalize_path(char *s)
{
    bool absolute = s[0] == '/';
    size_t r = 0;
    size_t w = 0;
    while (s[r] != '\0') {
        while (s[r] == '/') {
            r++;
        }
        size_t start = r;
        while (s[r] != '\0' && s[r] != '/') {
            r++;
        }
        size_t seg = r - start;
        if (seg == 0 || (seg == 1 && s[start] == '.')) {
            continue;
        }
        if (w > 0 || absolute) {
            s[w++] = '/';
        }
        memmove(s + w, s + start, seg);
        w += seg;
    }
    if (w == 0) {
        s[w++] = absolute ? '/' : '.';
    }
    s[w] = '\0';
}

/* A relative path joined to base_dir with one '/', then normalized; NULL
 * when out of memory. */
static char *
resolve_path(const char *base_dir, const char *rel)
{
    size_t blen = 0;
    if (rel[0] != '/' && base_dir != NULL) {
        blen = strlen(base_dir);
        while (blen > 0 && base_dir[blen - 1] == '/') {
            blen--;
        }
        if (blen == 0 && base_dir[0] == '/') {
            blen = 1; /* the root directory itself */
        }
    }
    size_t rlen = strlen(rel);
    char *p = malloc(blen + 1 + rlen + 1);
    if (p == NULL) {
        return NULL;
    }
    size_t off = 0;
    if (blen > 0) {
        memcpy(p, base_dir, blen);
        off = blen;
        p[off++] = '/';
    }
    memcpy(p + off, rel, rlen + 1);
    normalize_path(p);
    return p;
}

static int
parse_path(const parse_ctx *c, const char *jp, const json_t *v, char **out)
{
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        return fail_got(c, jp, "a non-empty string", v);
    }
    free(*out);
    *out = resolve_path(c->base_dir, json_string_value(v));
    if (*out == NULL) {
        return nomem(c);
    }
    return PPS_OK;
}

/* An array of unique subscriber ids, copied to *ids (owned by the config
 * even on failure; *n counts the copies). */
static int
parse_ids(const parse_ctx *c, const char *jp, const json_t *v, char ***ids,
          size_t *n)
{
    if (!json_is_array(v)) {
        return fail_got(c, jp, "an array of subscriber ids", v);
    }
    size_t size = json_array_size(v);
    if (size > MAX_SUBSCRIBERS) {
        char expected[96];
        snprintf(expected, sizeof(expected),
                 "at most %u subscriber ids (max_db_num is at most %u)",
                 MAX_SUBSCRIBERS, MAX_DB_NUM);
        return fail_got(c, jp, expected, v);
    }
    *ids = calloc(size > 0 ? size : 1, sizeof(**ids));
    if (*ids == NULL) {
        return nomem(c);
    }
    for (size_t i = 0; i < size; i++) {
        char ip[JP_MAX];
        jp_index(ip, jp, i);
        const json_t *e = json_array_get(v, i);
        const char *s = json_string_value(e);
        if (s == NULL || strlen(s) != json_string_length(e) ||
            !pps__sub_id_valid(s)) {
            return fail_got(c, ip, ID_EXPECTED, e);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp((*ids)[j], s) == 0) {
                char got[RENDER_MAX + 8];
                render_value(e, got, sizeof(got));
                return fail(c, ip,
                            "expected a subscriber id not listed before, got "
                            "%s (already at [%zu])",
                            got, j);
            }
        }
        (*ids)[i] = strdup(s);
        if ((*ids)[i] == NULL) {
            return nomem(c);
        }
        (*n)++;
    }
    return PPS_OK;
}

/* ---- queues ------------------------------------------------------------- */

static int
parse_hwm(const parse_ctx *c, const char *jp, json_t *v, pps__hwm *hwm)
{
    if (!json_is_object(v)) {
        return fail_got(c, jp, "an object", v);
    }
    const char *key;
    json_t *f;
    json_object_foreach(v, key, f)
    {
        char kp[JP_MAX];
        jp_key(kp, jp, key);
        int rc;
        if (strcmp(key, "MSG_TIMEOUT_SECS") == 0) {
            rc = parse_uint(c, kp, f, 0, &hwm->msg_timeout_secs);
        } else if (strcmp(key, "MAX_MSGS_NUM") == 0) {
            rc = parse_uint(c, kp, f, 0, &hwm->max_msgs_num);
        } else if (strcmp(key, "HWM_LMDB_SIZE_BYTES") == 0) {
            rc = parse_uint(c, kp, f, 0, &hwm->hwm_lmdb_size_bytes);
        } else if (strcmp(key, "strategy") == 0) {
            rc = parse_choice(c, kp, f, strategies,
                              sizeof(strategies) / sizeof(strategies[0]),
                              "\"prune_first\" or \"prune_last\"",
                              &hwm->strategy);
        } else {
            rc = fail(c, kp,
                      "unknown key (expected MSG_TIMEOUT_SECS, MAX_MSGS_NUM, "
                      "HWM_LMDB_SIZE_BYTES or strategy)");
        }
        if (rc != PPS_OK) {
            return rc;
        }
    }
    return PPS_OK;
}

/* Queue number `index` of the file: key `key`, value v. */
static int
parse_queue(const parse_ctx *c, size_t index, const char *key, json_t *v)
{
    pps__queue_cfg *q = &c->cfg->queues[index];
    q->max_reader_num = DEFAULT_MAX_READER_NUM;
    q->max_db_num = DEFAULT_MAX_DB_NUM;
    q->max_db_size_bytes = DEFAULT_MAX_DB_SIZE_BYTES;
    q->hwm.msg_timeout_secs = DEFAULT_MSG_TIMEOUT_SECS;
    q->hwm.max_msgs_num = DEFAULT_MAX_MSGS_NUM;
    q->hwm.hwm_lmdb_size_bytes = DEFAULT_HWM_LMDB_SIZE_BYTES;
    q->hwm.strategy = PPS__PRUNE_FIRST;
    q->durability = PPS__SYNC;
    q->file_mode = DEFAULT_FILE_MODE;
    q->key = strdup(key);
    if (q->key == NULL) {
        return nomem(c);
    }

    char jp[JP_MAX];
    char kp[JP_MAX];
    jp_key(jp, "queues", key);
    if (!json_is_object(v)) {
        return fail_got(c, jp, "an object", v);
    }
    const json_t *path = NULL;
    const json_t *max_db_num = NULL;
    const char *k;
    json_t *f;
    json_object_foreach(v, k, f)
    {
        jp_key(kp, jp, k);
        int rc;
        if (strcmp(k, "path") == 0) {
            path = f;
            rc = parse_path(c, kp, f, &q->path);
        } else if (strcmp(k, "max_reader_num") == 0) {
            rc = parse_uint(c, kp, f, MAX_READER_NUM, &q->max_reader_num);
        } else if (strcmp(k, "max_db_num") == 0) {
            max_db_num = f;
            rc = parse_uint(c, kp, f, MAX_DB_NUM, &q->max_db_num);
        } else if (strcmp(k, "max_db_size_bytes") == 0) {
            rc = parse_uint(c, kp, f, 0, &q->max_db_size_bytes);
        } else if (strcmp(k, "subscribers") == 0) {
            rc = parse_ids(c, kp, f, &q->subscribers, &q->n_subscribers);
        } else if (strcmp(k, "high-water-mark") == 0) {
            rc = parse_hwm(c, kp, f, &q->hwm);
        } else if (strcmp(k, "durability") == 0) {
            rc = parse_choice(c, kp, f, durabilities,
                              sizeof(durabilities) / sizeof(durabilities[0]),
                              "\"sync\", \"nometasync\" or \"nosync\"",
                              &q->durability);
        } else if (strcmp(k, "mode") == 0) {
            rc = parse_mode(c, kp, f, &q->file_mode);
        } else {
            rc = fail(c, kp,
                      "unknown key (expected path, max_reader_num, "
                      "max_db_num, max_db_size_bytes, subscribers, "
                      "high-water-mark, durability or mode)");
        }
        if (rc != PPS_OK) {
            return rc;
        }
    }

    if (path == NULL) {
        jp_key(kp, jp, "path");
        return fail_got(c, kp, "a string", NULL);
    }
    if (q->max_db_num < INTERNAL_DBS + q->n_subscribers) {
        jp_key(kp, jp, "max_db_num");
        char expected[128];
        snprintf(expected, sizeof(expected),
                 "at least %zu (3 internal databases and 1 per subscriber)",
                 (size_t)INTERNAL_DBS + q->n_subscribers);
        if (max_db_num == NULL) {
            return fail(c, kp, "expected %s, missing (the default is %u)",
                        expected, DEFAULT_MAX_DB_NUM);
        }
        return fail_got(c, kp, expected, max_db_num);
    }
    for (size_t i = 0; i < index; i++) {
        if (strcmp(c->cfg->queues[i].path, q->path) == 0) {
            char other[JP_MAX];
            char got[RENDER_MAX + 8];
            jp_key(kp, jp, "path");
            jp_key(other, "queues", c->cfg->queues[i].key);
            render_value(path, got, sizeof(got));
            return fail(c, kp,
                        "expected a path no other queue uses, got %s (the "
                        "same as %s.path)",
                        got, other);
        }
    }
    return PPS_OK;
}

/* ---- components --------------------------------------------------------- */

static bool
ids_contain(char *const *ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ids[i], id) == 0) {
            return true;
        }
    }
    return false;
}

/* out_queue / in_queue: the key of a queue; *out receives its index. */
static int
parse_queue_ref(const parse_ctx *c, const char *jp, const json_t *v, long *out)
{
    const char *s = json_string_value(v);
    if (s != NULL && strlen(s) == json_string_length(v)) {
        for (size_t i = 0; i < c->cfg->n_queues; i++) {
            if (strcmp(c->cfg->queues[i].key, s) == 0) {
                *out = (long)i;
                return PPS_OK;
            }
        }
    }
    return fail_got(c, jp, "the key of a queue defined under queues", v);
}

static int
parse_component(const parse_ctx *c, pps__component *comp, const char *id,
                json_t *v)
{
    comp->out_queue = -1;
    comp->in_queue = -1;
    comp->id = strdup(id);
    if (comp->id == NULL) {
        return nomem(c);
    }

    char jp[JP_MAX];
    char kp[JP_MAX];
    jp_key(jp, "", id);
    if (!pps__sub_id_valid(id)) {
        char got[RENDER_MAX + 8];
        render_key(id, got, sizeof(got));
        return fail(c, jp,
                    "expected a component id of 1 to 255 printable ASCII "
                    "characters, got %s",
                    got);
    }
    if (!json_is_object(v)) {
        return fail_got(c, jp, "an object", v);
    }
    const json_t *subs = NULL;
    const char *k;
    json_t *f;
    json_object_foreach(v, k, f)
    {
        jp_key(kp, jp, k);
        int rc;
        if (strcmp(k, "out_queue") == 0) {
            rc = parse_queue_ref(c, kp, f, &comp->out_queue);
        } else if (strcmp(k, "in_queue") == 0) {
            rc = parse_queue_ref(c, kp, f, &comp->in_queue);
        } else if (strcmp(k, "subscribers") == 0) {
            subs = f;
            comp->has_subscribers = true;
            rc = parse_ids(c, kp, f, &comp->subscribers, &comp->n_subscribers);
        } else {
            rc = fail(c, kp,
                      "unknown key (expected out_queue, in_queue or "
                      "subscribers)");
        }
        if (rc != PPS_OK) {
            return rc;
        }
    }

    if (comp->out_queue < 0 && comp->in_queue < 0) {
        return fail_got(c, jp, "out_queue or in_queue", v);
    }
    if (subs != NULL) {
        jp_key(kp, jp, "subscribers");
        if (comp->out_queue < 0) {
            return fail_got(c, kp, "only in a component with out_queue", subs);
        }
        const pps__queue_cfg *q = &c->cfg->queues[comp->out_queue];
        for (size_t i = 0; i < comp->n_subscribers; i++) {
            if (!ids_contain(q->subscribers, q->n_subscribers,
                             comp->subscribers[i])) {
                char ip[JP_MAX];
                char qp[JP_MAX];
                char expected[JP_MAX + 32];
                jp_index(ip, kp, i);
                jp_key(qp, "queues", q->key);
                snprintf(expected, sizeof(expected), "a subscriber of %s", qp);
                return fail_got(c, ip, expected, json_array_get(subs, i));
            }
        }
    }
    if (comp->in_queue >= 0) {
        const pps__queue_cfg *q = &c->cfg->queues[comp->in_queue];
        if (!ids_contain(q->subscribers, q->n_subscribers, id)) {
            char expected[RENDER_MAX + 64];
            char got[RENDER_MAX + 8];
            jp_key(kp, jp, "in_queue");
            render_key(id, got, sizeof(got));
            snprintf(expected, sizeof(expected),
                     "a queue listing %s in its subscribers", got);
            return fail_got(c, kp, expected, json_object_get(v, "in_queue"));
        }
    }
    return PPS_OK;
}

/* ---- the configuration -------------------------------------------------- */

static void
free_ids(char **ids, size_t n)
{
    if (ids == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(ids[i]);
    }
    free(ids);
}

void
pps_config_free(pps_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    if (cfg->queues != NULL) {
        for (size_t i = 0; i < cfg->n_queues; i++) {
            pps__queue_cfg *q = &cfg->queues[i];
            free(q->key);
            free(q->path);
            free_ids(q->subscribers, q->n_subscribers);
        }
        free(cfg->queues);
    }
    if (cfg->components != NULL) {
        for (size_t i = 0; i < cfg->n_components; i++) {
            pps__component *comp = &cfg->components[i];
            free(comp->id);
            free_ids(comp->subscribers, comp->n_subscribers);
        }
        free(cfg->components);
    }
    free(cfg->file);
    free(cfg);
}

/* Validates the parsed document into c->cfg. */
static int
parse_root(parse_ctx *c, json_t *root)
{
    if (!json_is_object(root)) {
        return fail_got(c, "", "an object at the top level", root);
    }
    json_t *queues = json_object_get(root, "queues");
    if (!json_is_object(queues)) {
        return fail_got(c, "queues", "an object", queues);
    }
    size_t nq = json_object_size(queues);
    if (nq == 0) {
        return fail_got(c, "queues", "at least one queue", queues);
    }
    pps_config *cfg = c->cfg;
    cfg->queues = calloc(nq, sizeof(*cfg->queues));
    if (cfg->queues == NULL) {
        return nomem(c);
    }
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach(queues, key, v)
    {
        cfg->n_queues = i + 1; /* counted as soon as it holds anything */
        int rc = parse_queue(c, i, key, v);
        if (rc != PPS_OK) {
            return rc;
        }
        i++;
    }

    size_t nc = json_object_size(root) - 1;
    if (nc == 0) {
        return PPS_OK;
    }
    cfg->components = calloc(nc, sizeof(*cfg->components));
    if (cfg->components == NULL) {
        return nomem(c);
    }
    cfg->n_components = nc;
    i = 0;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "queues") == 0) {
            continue;
        }
        int rc = parse_component(c, &cfg->components[i], key, v);
        if (rc != PPS_OK) {
            return rc;
        }
        i++;
    }
    return PPS_OK;
}

int
pps__config_parse(pps_config **out, const char *text, size_t len,
                  const char *file, const char *base_dir)
{
    if (out != NULL) {
        *out = NULL;
    }
    if (out == NULL || text == NULL || file == NULL) {
        return pps__err(PPS_EINVAL,
                        "pps__config_parse: out, text and file must not be "
                        "NULL");
    }
    parse_ctx c = {
        .file = file,
        .base_dir = base_dir != NULL && base_dir[0] != '\0' ? base_dir : NULL,
        .cfg = NULL,
    };
    int rc;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        /* jansson reports most allocation failures as a syntax error with
         * no text, some even as a wrong token: only these two are known. */
        if (json_error_code(&jerr) == json_error_out_of_memory ||
            jerr.text[0] == '\0') {
            rc = nomem(&c);
            goto fail;
        }
        char pos[64];
        char line[LINE_MAX_];
        snprintf(pos, sizeof(pos), ":%d:%d: ", jerr.line, jerr.column);
        CONCAT(line, sizeof(line), file, pos, jerr.text);
        one_line(line);
        rc = pps__err(PPS_ECONFIG, "%s", line);
        goto fail;
    }
    c.cfg = calloc(1, sizeof(*c.cfg));
    if (c.cfg == NULL || (c.cfg->file = strdup(file)) == NULL) {
        rc = nomem(&c);
        goto fail;
    }
    rc = parse_root(&c, root);
    if (rc != PPS_OK) {
        goto fail;
    }
    json_decref(root);
    *out = c.cfg;
    return PPS_OK;

fail:
    json_decref(root);
    pps_config_free(c.cfg);
    return rc;
}

/* ---- loading a file ----------------------------------------------------- */

/* "PATH: cannot read: WHY" (WHY is errnum's text, or `why` if errnum is 0). */
static int
fail_read(const char *path, int errnum, const char *why)
{
    char text[256];
    if (errnum != 0 && strerror_r(errnum, text, sizeof(text)) != 0) {
        snprintf(text, sizeof(text), "error %d", errnum);
    }
    char line[LINE_MAX_];
    CONCAT(line, sizeof(line), path,
           ": cannot read: ",
           errnum != 0 ? text : (why != NULL ? why : "unknown error"));
    one_line(line);
    return pps__err(errnum == ENOMEM ? PPS_ENOMEM : PPS_ECONFIG, "%s", line);
}

/* Reads the whole file (at most FILE_MAX bytes) into a malloc'ed buffer. */
static int
read_file(const char *path, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    size_t cap = 0;
    int rc = PPS_OK;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return fail_read(path, errno, NULL);
    }
    for (;;) {
        if (*len == cap) {
            if (cap >= FILE_MAX) {
                rc = fail_read(path, 0, "larger than 64 MiB");
                goto fail;
            }
            cap = cap == 0 ? 4096 : cap * 2;
            char *grown = realloc(*text, cap);
            if (grown == NULL) {
                rc = fail_read(path, ENOMEM, NULL);
                goto fail;
            }
            *text = grown;
        }
        errno = 0;
        size_t got = fread(*text + *len, 1, cap - *len, f);
        *len += got;
        if (got == 0) {
            if (ferror(f)) {
                rc = fail_read(path, errno != 0 ? errno : EIO, NULL);
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    return PPS_OK;

fail:
    fclose(f);
    free(*text);
    *text = NULL;
    *len = 0;
    return rc;
}

int
pps_config_load(pps_config **out, const char *path)
{
    pps__err_begin();
    if (out != NULL) {
        *out = NULL;
    }
    if (out == NULL || path == NULL) {
        return pps__err(PPS_EINVAL,
                        "pps_config_load: out and path must not be NULL");
    }
    char *text = NULL;
    size_t len = 0;
    char *dir = NULL;
    int rc = read_file(path, &text, &len);
    if (rc != PPS_OK) {
        goto fail;
    }
    /* The directory of the file: "" (keep relative) for a bare name. */
    const char *slash = strrchr(path, '/');
    if (slash != NULL) {
        dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
        if (dir == NULL) {
            rc = pps__err(PPS_ENOMEM, "%s: out of memory", path);
            goto fail;
        }
    }
    rc = pps__config_parse(out, text, len, path, dir);

fail:
    free(text);
    free(dir);
    return rc;
}

const pps__component *
pps__config_component(const pps_config *cfg, const char *id)
{
    if (cfg == NULL || id == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_components; i++) {
        if (strcmp(cfg->components[i].id, id) == 0) {
            return &cfg->components[i];
        }
    }
    return NULL;
}
