/*
 * Configuration: the JSON file of the original persipubsub, parsed with
 * jansson and validated strictly into a struct pps_config.
 *
 * pps__config_parse() is pure logic on a buffer (no file access) so that it
 * can be unit-tested and fuzzed; pps_config_load() reads the file, hands its
 * text over and additionally compares the queue directories on disk
 * (config_dirs.c). Validation stops at the first error and records it as
 * one line, "FILE: JSONPATH: expected ..., got ..." (config_path.c). The
 * queues are validated first (components refer to them), then the
 * components; both in the order of the file, which jansson keeps (it
 * iterates objects in insertion order).
 *
 * Each JSON object of the format has one table of its fields: the name, the
 * validator (which knows the expected type and range), and where in the
 * struct being built the value goes. One loop walks an object against its
 * table; the checks that involve several fields (a queue's path is
 * required, max_db_num must hold the subscribers, ...) come after it.
 * Every allocation hangs off the pps_config being built, so one
 * pps_config_free() releases a half-built one as well.
 */
#include "internal.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 255
#define INTERNAL_DBS 3u   /* meta, data and msg */
#define MAX_DB_NUM 32767u /* upper bound of max_db_num (an MDB_dbi) */
#define MAX_SUBSCRIBERS (MAX_DB_NUM - INTERNAL_DBS)
/* LMDB's lock file holds one 64-byte slot per reader and is mapped whole;
 * mdb_env_set_maxreaders() takes an unsigned int. */
#define READER_SLOT_BYTES 64u
#define MAX_READER_NUM                                                        \
    (SIZE_MAX / 2 / READER_SLOT_BYTES < 2147483647u                           \
         ? (uint64_t)(SIZE_MAX / 2 / READER_SLOT_BYTES)                       \
         : (uint64_t)2147483647u)
/* The smallest map: LMDB's two meta pages and the root pages of its
 * databases, the 64 KiB (16 pages) that a send keeps free for the
 * subscribers (space.c) and a send's own pages; with 4 KiB pages a map
 * needs about 192 KiB to take its first message. 1 MiB leaves room for
 * real messages and is the smallest map any test or example uses. */
#define MAP_MIN ((uint64_t)1 << 20)
#define MAP_MIN_TEXT "1 MiB"
/* The largest map: 8 TiB fits the address space of every 64-bit platform
 * (x86-64 gives a process 128 TiB) and the largest file ext4 takes (16 TiB
 * less a block), as mdb_env_open() extends data.mdb to the map's size; on
 * a 32-bit platform, half of the address space. */
#if SIZE_MAX > UINT32_MAX
#define MAP_MAX ((uint64_t)1 << 43)
#define MAP_MAX_TEXT "8 TiB"
#else
#define MAP_MAX ((uint64_t)1 << 31)
#define MAP_MAX_TEXT "2 GiB"
#endif
/* A queue directory's longest file name: "data.mdb", "lock.mdb" and
 * PPS__WAKE_FILE are 8 bytes. "<path>/<name>" and its NUL fit PATH_MAX. */
#define QUEUE_FILE_NAME_MAX 8u
#define QUEUE_PATH_MAX ((size_t)PATH_MAX - 2 - QUEUE_FILE_NAME_MAX)

#define DEFAULT_MAX_READER_NUM 1024u
#define DEFAULT_MAX_DB_NUM 1024u
#define DEFAULT_MAX_DB_SIZE_BYTES 34359738368u /* 32 GiB */
#define DEFAULT_MSG_TIMEOUT_SECS 500u
#define DEFAULT_MAX_MSGS_NUM 65536u
#define DEFAULT_HWM_LMDB_SIZE_BYTES 32212254720u /* 30 GiB */
#define DEFAULT_FILE_MODE 0600u

#define ID_EXPECTED "a subscriber id of 1 to 255 printable ASCII characters"

_Static_assert(sizeof(PPS__WAKE_FILE) - 1 <= QUEUE_FILE_NAME_MAX,
               "QUEUE_FILE_NAME_MAX covers the wake-up file");

typedef struct parse_ctx {
    const char *file;       /* names the configuration in messages */
    const char *base_dir;   /* resolves relative queue paths; NULL: keep */
    bool on_disk;           /* also compare queue directories on disk */
    pps_config *cfg;        /* being built */
    pps__config_dirs *dirs; /* of the queues validated so far */
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

/* ---- fields ------------------------------------------------------------- */

typedef struct field field;
typedef struct fields fields;

/* Validates v, the value of field f at JSON path jp, and stores it in the
 * member f->at of obj. */
typedef int (*field_fn)(const parse_ctx *c, const char *jp, const json_t *v,
                        const field *f, void *obj);

struct field {
    const char *name;
    field_fn parse;
    size_t at;             /* offsetof the member it fills */
    size_t count_at;       /* parse_ids: offsetof the count of ids */
    uint64_t max;          /* parse_count: the largest value, 0: none */
    const choice *choices; /* parse_choice: the names it takes */
    size_t n_choices;      /* ... how many */
    const char *expected;  /* parse_choice: the names, for messages */
    const fields *object;  /* parse_object: the fields of the object */
};

/* The fields of one kind of JSON object. */
struct fields {
    const field *list;
    size_t n;
};

static void *
member(void *obj, size_t at)
{
    return (char *)obj + at;
}

static int fail(const parse_ctx *c, const char *jp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* pps__config_fail() for the file being parsed. */
static int
fail(const parse_ctx *c, const char *jp, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return pps__config_fail(c->file, jp, "%s", msg);
}

static int
fail_got(const parse_ctx *c, const char *jp, const char *expected,
         const json_t *v)
{
    return pps__config_fail_got(c->file, jp, expected, v);
}

static int
nomem(const parse_ctx *c)
{
    return pps__err(PPS_ENOMEM, "%s: out of memory", c->file);
}

/* "unknown key (expected A, B or C)", the names taken from the table. */
static int
fail_unknown_key(const parse_ctx *c, const char *jp, const fields *t)
{
    char names[256] = "";
    size_t off = 0;
    for (size_t i = 0; i < t->n; i++) {
        const char *sep = i == 0 ? "" : (i + 1 < t->n ? ", " : " or ");
        int n = snprintf(names + off, sizeof(names) - off, "%s%s", sep,
                         t->list[i].name);
        if (n < 0 || (size_t)n >= sizeof(names) - off) {
            break;
        }
        off += (size_t)n;
    }
    return fail(c, jp, "unknown key (expected %s)", names);
}

/* Walks object v against table t, filling obj; seen (t->n entries, may be
 * NULL) receives the value of each field present. */
static int
parse_fields(const parse_ctx *c, const char *jp, const json_t *v,
             const fields *t, void *obj, const json_t **seen)
{
    if (!json_is_object(v)) {
        return fail_got(c, jp, "an object", v);
    }
    const char *key;
    json_t *f;
    json_object_foreach(pps__unconst(v), key, f)
    {
        char kp[PPS__CONFIG_JP_MAX];
        pps__config_jp_key(kp, jp, key);
        size_t i = 0;
        while (i < t->n && strcmp(key, t->list[i].name) != 0) {
            i++;
        }
        if (i == t->n) {
            return fail_unknown_key(c, kp, t);
        }
        if (seen != NULL) {
            seen[i] = f;
        }
        int rc = t->list[i].parse(c, kp, f, &t->list[i], obj);
        if (rc != PPS_OK) {
            return rc;
        }
    }
    return PPS_OK;
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

static bool
is_positive_integer(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) > 0;
}

/* A JSON integer in 1..f->max (f->max 0: up to the largest JSON integer),
 * stored as uint64_t. */
static int
parse_count(const parse_ctx *c, const char *jp, const json_t *v,
            const field *f, void *obj)
{
    if (is_positive_integer(v) &&
        (f->max == 0 || (uint64_t)json_integer_value(v) <= f->max)) {
        *(uint64_t *)member(obj, f->at) = (uint64_t)json_integer_value(v);
        return PPS_OK;
    }
    if (f->max == 0) {
        return fail_got(c, jp, "a positive integer", v);
    }
    char expected[64];
    snprintf(expected, sizeof(expected), "a positive integer up to %llu",
             (unsigned long long)f->max);
    return fail_got(c, jp, expected, v);
}

/* max_db_size_bytes: the LMDB map, MAP_MIN..MAP_MAX bytes. */
static int
parse_map_size(const parse_ctx *c, const char *jp, const json_t *v,
               const field *f, void *obj)
{
    if (!is_positive_integer(v)) {
        return fail_got(c, jp, "a positive integer", v);
    }
    uint64_t bytes = (uint64_t)json_integer_value(v);
    char expected[128];
    if (bytes < MAP_MIN) {
        snprintf(expected, sizeof(expected),
                 "at least %llu (" MAP_MIN_TEXT
                 ", the smallest map that holds messages)",
                 (unsigned long long)MAP_MIN);
        return fail_got(c, jp, expected, v);
    }
    if (bytes > MAP_MAX) {
        snprintf(expected, sizeof(expected),
                 "at most %llu (" MAP_MAX_TEXT
                 ", the largest map this platform can take)",
                 (unsigned long long)MAP_MAX);
        return fail_got(c, jp, expected, v);
    }
    *(uint64_t *)member(obj, f->at) = bytes;
    return PPS_OK;
}

/* One of f->choices by name, stored as int. */
static int
parse_choice(const parse_ctx *c, const char *jp, const json_t *v,
             const field *f, void *obj)
{
    if (json_is_string(v)) {
        for (size_t i = 0; i < f->n_choices; i++) {
            if (strcmp(json_string_value(v), f->choices[i].name) == 0) {
                *(int *)member(obj, f->at) = f->choices[i].value;
                return PPS_OK;
            }
        }
    }
    return fail_got(c, jp, f->expected, v);
}

/* "mode": 3 or 4 octal digits, at most 0777, with owner read and write;
 * stored as unsigned. */
static int
parse_mode(const parse_ctx *c, const char *jp, const json_t *v, const field *f,
           void *obj)
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
    *(unsigned *)member(obj, f->at) = mode;
    return PPS_OK;
}

/* A queue directory, resolved against the configuration's directory and
 * stored as a malloc'ed char *; its files' paths must fit PATH_MAX. */
static int
parse_path(const parse_ctx *c, const char *jp, const json_t *v, const field *f,
           void *obj)
{
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        return fail_got(c, jp, "a non-empty string", v);
    }
    char **out = member(obj, f->at);
    free(*out);
    *out = pps__path_join(c->base_dir, json_string_value(v));
    if (*out == NULL) {
        return nomem(c);
    }
    size_t len = strlen(*out);
    if (len > QUEUE_PATH_MAX) {
        char got[PPS__CONFIG_RENDER_SIZE];
        pps__config_render_value(v, got, sizeof(got));
        return fail(c, jp,
                    "expected a path of at most %zu bytes (its files, such "
                    "as \"<path>/data.mdb\", must fit in PATH_MAX, %d), got "
                    "%s (%zu bytes%s)",
                    QUEUE_PATH_MAX, PATH_MAX, got, len,
                    json_string_value(v)[0] != '/' && c->base_dir != NULL
                        ? " in the configuration's directory"
                        : "");
    }
    return PPS_OK;
}

/* An array of unique subscriber ids, copied to the char ** at f->at (owned
 * by the config even on failure; the size_t at f->count_at counts the
 * copies). */
static int
parse_ids(const parse_ctx *c, const char *jp, const json_t *v, const field *f,
          void *obj)
{
    char ***ids = member(obj, f->at);
    size_t *n = member(obj, f->count_at);
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
        char ip[PPS__CONFIG_JP_MAX];
        pps__config_jp_index(ip, jp, i);
        const json_t *e = json_array_get(v, i);
        const char *s = json_string_value(e);
        if (s == NULL || strlen(s) != json_string_length(e) ||
            !pps__sub_id_valid(s)) {
            return fail_got(c, ip, ID_EXPECTED, e);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp((*ids)[j], s) == 0) {
                char got[PPS__CONFIG_RENDER_SIZE];
                pps__config_render_value(e, got, sizeof(got));
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

/* A nested object with the fields f->object, filling the struct at f->at. */
static int
parse_object(const parse_ctx *c, const char *jp, const json_t *v,
             const field *f, void *obj)
{
    return parse_fields(c, jp, v, f->object, member(obj, f->at), NULL);
}

/* out_queue / in_queue: the key of a queue; its index goes to the long at
 * f->at. */
static int
parse_queue_ref(const parse_ctx *c, const char *jp, const json_t *v,
                const field *f, void *obj)
{
    const char *s = json_string_value(v);
    if (s != NULL && strlen(s) == json_string_length(v)) {
        for (size_t i = 0; i < c->cfg->n_queues; i++) {
            if (strcmp(c->cfg->queues[i].key, s) == 0) {
                *(long *)member(obj, f->at) = (long)i;
                return PPS_OK;
            }
        }
    }
    return fail_got(c, jp, "the key of a queue defined under queues", v);
}

/* ---- the tables --------------------------------------------------------- */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A field named `json`, checked by fn, stored in member m of struct T. */
#define FIELD(json, fn, T, m)                                                 \
    .name = (json), .parse = (fn), .at = offsetof(T, m)
#define HWM(json, fn, m) FIELD(json, fn, pps__hwm, m)
#define QUEUE(json, fn, m) FIELD(json, fn, pps__queue_cfg, m)
#define COMPONENT(json, fn, m) FIELD(json, fn, pps__component, m)

static const field hwm_list[] = {
    {HWM("MSG_TIMEOUT_SECS", parse_count, msg_timeout_secs)},
    {HWM("MAX_MSGS_NUM", parse_count, max_msgs_num)},
    {HWM("HWM_LMDB_SIZE_BYTES", parse_count, hwm_lmdb_size_bytes)},
    {HWM("strategy", parse_choice, strategy), .choices = strategies,
     .n_choices = COUNT(strategies),
     .expected = "\"prune_first\" or \"prune_last\""},
};
static const fields hwm_fields = {hwm_list, COUNT(hwm_list)};

enum {
    Q_PATH,
    Q_MAX_READER_NUM,
    Q_MAX_DB_NUM,
    Q_MAX_DB_SIZE_BYTES,
    Q_SUBSCRIBERS,
    Q_HWM,
    Q_DURABILITY,
    Q_MODE,
    Q_FIELDS
};

static const field queue_list[Q_FIELDS] = {
    [Q_PATH] = {QUEUE("path", parse_path, path)},
    [Q_MAX_READER_NUM] = {QUEUE("max_reader_num", parse_count, max_reader_num),
                          .max = MAX_READER_NUM},
    [Q_MAX_DB_NUM] = {QUEUE("max_db_num", parse_count, max_db_num),
                      .max = MAX_DB_NUM},
    [Q_MAX_DB_SIZE_BYTES] = {QUEUE("max_db_size_bytes", parse_map_size,
                                   max_db_size_bytes)},
    [Q_SUBSCRIBERS] = {QUEUE("subscribers", parse_ids, subscribers),
                       .count_at = offsetof(pps__queue_cfg, n_subscribers)},
    [Q_HWM] = {QUEUE("high-water-mark", parse_object, hwm),
               .object = &hwm_fields},
    [Q_DURABILITY] = {QUEUE("durability", parse_choice, durability),
                      .choices = durabilities,
                      .n_choices = COUNT(durabilities),
                      .expected = "\"sync\", \"nometasync\" or \"nosync\""},
    [Q_MODE] = {QUEUE("mode", parse_mode, file_mode)},
};
static const fields queue_fields = {queue_list, Q_FIELDS};

enum { C_OUT_QUEUE, C_IN_QUEUE, C_SUBSCRIBERS, C_FIELDS };

static const field component_list[C_FIELDS] = {
    [C_OUT_QUEUE] = {COMPONENT("out_queue", parse_queue_ref, out_queue)},
    [C_IN_QUEUE] = {COMPONENT("in_queue", parse_queue_ref, in_queue)},
    [C_SUBSCRIBERS] = {COMPONENT("subscribers", parse_ids, subscribers),
                       .count_at = offsetof(pps__component, n_subscribers)},
};
static const fields component_fields = {component_list, C_FIELDS};

/* ---- queues ------------------------------------------------------------- */

/* Queue `index` must not name the directory of an earlier one. */
static int
check_queue_dir(const parse_ctx *c, size_t index, const char *jp,
                const json_t *path)
{
    size_t alias;
    bool on_disk_only;
    int rc = pps__config_dirs_add(c->dirs, c->cfg->queues[index].path, &alias,
                                  &on_disk_only);
    if (rc != PPS_OK) {
        return rc == PPS_ENOMEM ? nomem(c) : rc;
    }
    if (alias == SIZE_MAX) {
        return PPS_OK;
    }
    char kp[PPS__CONFIG_JP_MAX];
    char other[PPS__CONFIG_JP_MAX];
    char got[PPS__CONFIG_RENDER_SIZE];
    pps__config_jp_key(kp, jp, "path");
    pps__config_jp_key(other, "queues", c->cfg->queues[alias].key);
    pps__config_render_value(path, got, sizeof(got));
    return fail(c, kp,
                "expected a path no other queue uses, got %s (the same %sas "
                "%s.path)",
                got, on_disk_only ? "directory " : "", other);
}

/* Queue number `index` of the file: key `key`, value v. */
static int
parse_queue(const parse_ctx *c, size_t index, const char *key, const json_t *v)
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

    char jp[PPS__CONFIG_JP_MAX];
    char kp[PPS__CONFIG_JP_MAX];
    pps__config_jp_key(jp, "queues", key);
    const json_t *seen[Q_FIELDS] = {NULL};
    int rc = parse_fields(c, jp, v, &queue_fields, q, seen);
    if (rc != PPS_OK) {
        return rc;
    }

    if (seen[Q_PATH] == NULL) {
        pps__config_jp_key(kp, jp, "path");
        return fail_got(c, kp, "a string", NULL);
    }
    if (q->max_db_num < INTERNAL_DBS + q->n_subscribers) {
        pps__config_jp_key(kp, jp, "max_db_num");
        char expected[128];
        snprintf(expected, sizeof(expected),
                 "at least %zu (3 internal databases and 1 per subscriber)",
                 (size_t)INTERNAL_DBS + q->n_subscribers);
        if (seen[Q_MAX_DB_NUM] == NULL) {
            return fail(c, kp, "expected %s, missing (the default is %u)",
                        expected, DEFAULT_MAX_DB_NUM);
        }
        return fail_got(c, kp, expected, seen[Q_MAX_DB_NUM]);
    }
    return check_queue_dir(c, index, jp, seen[Q_PATH]);
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

static int
parse_component(const parse_ctx *c, pps__component *comp, const char *id,
                const json_t *v)
{
    comp->out_queue = -1;
    comp->in_queue = -1;
    comp->id = strdup(id);
    if (comp->id == NULL) {
        return nomem(c);
    }

    char jp[PPS__CONFIG_JP_MAX];
    char kp[PPS__CONFIG_JP_MAX];
    pps__config_jp_key(jp, "", id);
    if (!pps__sub_id_valid(id)) {
        char got[PPS__CONFIG_RENDER_SIZE];
        pps__config_render_key(id, got, sizeof(got));
        return fail(c, jp,
                    "expected a component id of 1 to 255 printable ASCII "
                    "characters, got %s",
                    got);
    }
    const json_t *seen[C_FIELDS] = {NULL};
    int rc = parse_fields(c, jp, v, &component_fields, comp, seen);
    if (rc != PPS_OK) {
        return rc;
    }

    if (comp->out_queue < 0 && comp->in_queue < 0) {
        return fail_got(c, jp, "out_queue or in_queue", v);
    }
    const json_t *subs = seen[C_SUBSCRIBERS];
    comp->has_subscribers = subs != NULL;
    if (subs != NULL) {
        pps__config_jp_key(kp, jp, "subscribers");
        if (comp->out_queue < 0) {
            return fail_got(c, kp, "only in a component with out_queue", subs);
        }
        const pps__queue_cfg *q = &c->cfg->queues[comp->out_queue];
        for (size_t i = 0; i < comp->n_subscribers; i++) {
            if (!ids_contain(q->subscribers, q->n_subscribers,
                             comp->subscribers[i])) {
                char ip[PPS__CONFIG_JP_MAX];
                char qp[PPS__CONFIG_JP_MAX];
                char expected[PPS__CONFIG_JP_MAX + 32];
                pps__config_jp_index(ip, kp, i);
                pps__config_jp_key(qp, "queues", q->key);
                snprintf(expected, sizeof(expected), "a subscriber of %s", qp);
                return fail_got(c, ip, expected, json_array_get(subs, i));
            }
        }
    }
    if (comp->in_queue >= 0) {
        const pps__queue_cfg *q = &c->cfg->queues[comp->in_queue];
        if (!ids_contain(q->subscribers, q->n_subscribers, id)) {
            char expected[PPS__CONFIG_RENDER_SIZE + 64];
            char got[PPS__CONFIG_RENDER_SIZE];
            pps__config_jp_key(kp, jp, "in_queue");
            pps__config_render_key(id, got, sizeof(got));
            snprintf(expected, sizeof(expected),
                     "a queue listing %s in its subscribers", got);
            return fail_got(c, kp, expected, seen[C_IN_QUEUE]);
        }
    }
    return PPS_OK;
}

/* ---- the configuration -------------------------------------------------- */

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
    c->dirs = pps__config_dirs_new(nq, c->on_disk);
    if (cfg->queues == NULL || c->dirs == NULL) {
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

static int
config_parse(pps_config **out, const char *text, size_t len, const char *file,
             const char *base_dir, bool on_disk)
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
        .on_disk = on_disk,
        .cfg = NULL,
        .dirs = NULL,
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
        snprintf(pos, sizeof(pos), ":%d:%d: ", jerr.line, jerr.column);
        rc = pps__config_report(PPS_ECONFIG, file, pos, jerr.text);
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
    *out = c.cfg;
    c.cfg = NULL;

fail:
    pps__config_dirs_free(c.dirs);
    json_decref(root);
    pps_config_free(c.cfg);
    return rc;
}

int
pps__config_parse(pps_config **out, const char *text, size_t len,
                  const char *file, const char *base_dir)
{
    return config_parse(out, text, len, file, base_dir, false);
}

int
pps__config_parse_on_disk(pps_config **out, const char *text, size_t len,
                          const char *file, const char *base_dir)
{
    return config_parse(out, text, len, file, base_dir, true);
}
