/*
 * persipubsub-ctl status: the state of every queue, as a readable block per
 * queue or, with --json, as one JSON document (schema in
 * docs/persipubsub-ctl.rst; keys sorted, so the text is stable).
 *
 * Ages are measured against one clock reading taken when the command
 * starts, so the ages of one run are comparable with each other.
 */
#include "ctl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The version of the JSON schema: bumped only for incompatible changes
 * (keys may be added without a bump). */
#define STATUS_SCHEMA_VERSION 1

typedef struct status_run {
    int64_t now_ns;
    size_t queues;       /* printed so far */
    json_t *list;        /* --json: the "queues" array */
    char bad_utf8[1024]; /* --json: a text that JSON cannot hold */
} status_run;

/* ---- text --------------------------------------------------------------- */

static void
format_age(char *buf, size_t size, int64_t now_ns, int64_t published_ns)
{
    if (published_ns == 0) {
        snprintf(buf, size, "-");
        return;
    }
    int64_t ms = ctl_age_ms(now_ns, published_ns);
    snprintf(buf, size, "%lld.%03lld s", (long long)(ms / 1000),
             (long long)(ms % 1000));
}

static int
print_queue(const pps_queue_status *st, void *user)
{
    status_run *run = user;
    char age[64];
    if (run->queues++ > 0) {
        putchar('\n');
    }
    format_age(age, sizeof(age), run->now_ns, st->oldest_ns);
    double use = st->map_size > 0
                     ? 100.0 * (double)st->map_used / (double)st->map_size
                     : 0.0;
    printf("queue %s\n", st->path);
    printf("  %-20s %s\n", "key", st->key);
    printf("  %-20s %llu\n", "messages", (unsigned long long)st->messages);
    printf("  %-20s %llu\n", "bytes", (unsigned long long)st->bytes);
    printf("  %-20s %llu\n", "map size", (unsigned long long)st->map_size);
    printf("  %-20s %llu (%.1f%%)\n", "map used",
           (unsigned long long)st->map_used, use);
    printf("  %-20s %s\n", "oldest message age", age);
    printf("  %-20s %llu\n", "next id", (unsigned long long)st->next_id);
    printf("  %-20s %llu\n", "MSG_TIMEOUT_SECS",
           (unsigned long long)st->msg_timeout_secs);
    printf("  %-20s %llu\n", "MAX_MSGS_NUM",
           (unsigned long long)st->max_msgs_num);
    printf("  %-20s %llu\n", "HWM_LMDB_SIZE_BYTES",
           (unsigned long long)st->hwm_lmdb_size_bytes);
    printf("  %-20s %s\n", "strategy", st->strategy);
    printf("  %-20s %s\n", "durability", st->durability);
    int width = (int)strlen("subscriber");
    for (size_t i = 0; i < st->n_subscribers; i++) {
        size_t len = strlen(st->subscribers[i].id);
        if (len > (size_t)width) {
            width = (int)len;
        }
    }
    printf("  %-*s %10s  %s\n", width, "subscriber", "pending",
           "oldest pending age");
    for (size_t i = 0; i < st->n_subscribers; i++) {
        const pps_subscriber_status *s = &st->subscribers[i];
        format_age(age, sizeof(age), run->now_ns, s->oldest_ns);
        printf("  %-*s %10llu  %s\n", width, s->id,
               (unsigned long long)s->pending, age);
    }
    return ferror(stdout) ? 1 : 0;
}

/* ---- JSON --------------------------------------------------------------- */

/* Counters are below 2^63 in practice (they come from LMDB and from limits
 * that the configuration holds as JSON integers); a larger one would be
 * printed as a real rather than wrapped. */
static json_t *
json_u64(uint64_t v)
{
    return v <= (uint64_t)INT64_MAX ? json_integer((json_int_t)v)
                                    : json_real((double)v);
}

/* A JSON string; NULL (and run->bad_utf8 set) if s is not UTF-8, which a
 * path may not be. */
static json_t *
json_text(status_run *run, const char *s)
{
    json_t *j = json_string(s);
    if (j == NULL && run->bad_utf8[0] == '\0') {
        json_t *raw = json_string_nocheck(s); /* fails only without memory */
        if (raw != NULL) {
            snprintf(run->bad_utf8, sizeof(run->bad_utf8), "%s", s);
            json_decref(raw);
        }
    }
    return j;
}

/* Sets "oldest_age_secs" and "oldest_published" (null for none). */
static int
set_oldest(json_t *obj, int64_t now_ns, int64_t published_ns)
{
    if (published_ns == 0) {
        return json_object_set_new(obj, "oldest_age_secs", json_null()) |
               json_object_set_new(obj, "oldest_published", json_null());
    }
    char iso[CTL_ISO_TIME_MAX];
    ctl_iso_time(iso, published_ns);
    double age = (double)ctl_age_ms(now_ns, published_ns) / 1000.0;
    return json_object_set_new(obj, "oldest_age_secs", json_real(age)) |
           json_object_set_new(obj, "oldest_published", json_string(iso));
}

static int
add_queue(const pps_queue_status *st, void *user)
{
    status_run *run = user;
    json_t *q = json_object();
    json_t *subs = json_array();
    int bad = q == NULL || subs == NULL;
    if (bad) {
        json_decref(q);
        json_decref(subs);
        return 1;
    }
    bad |= json_array_append_new(run->list, q);
    bad |= json_object_set_new(q, "subscribers", subs);
    bad |= json_object_set_new(q, "key", json_text(run, st->key));
    bad |= json_object_set_new(q, "path", json_text(run, st->path));
    bad |= json_object_set_new(q, "messages", json_u64(st->messages));
    bad |= json_object_set_new(q, "bytes", json_u64(st->bytes));
    bad |= json_object_set_new(q, "map_size", json_u64(st->map_size));
    bad |= json_object_set_new(q, "map_used", json_u64(st->map_used));
    bad |= json_object_set_new(q, "next_id", json_u64(st->next_id));
    bad |= json_object_set_new(q, "msg_timeout_secs",
                               json_u64(st->msg_timeout_secs));
    bad |= json_object_set_new(q, "max_msgs_num", json_u64(st->max_msgs_num));
    bad |= json_object_set_new(q, "hwm_lmdb_size_bytes",
                               json_u64(st->hwm_lmdb_size_bytes));
    bad |= json_object_set_new(q, "strategy", json_text(run, st->strategy));
    bad |=
        json_object_set_new(q, "durability", json_text(run, st->durability));
    bad |= set_oldest(q, run->now_ns, st->oldest_ns);
    for (size_t i = 0; i < st->n_subscribers && !bad; i++) {
        const pps_subscriber_status *s = &st->subscribers[i];
        json_t *o = json_object();
        bad |= json_array_append_new(subs, o);
        bad |= json_object_set_new(o, "id", json_text(run, s->id));
        bad |= json_object_set_new(o, "pending", json_u64(s->pending));
        bad |= set_oldest(o, run->now_ns, s->oldest_ns);
    }
    return bad != 0;
}

static int
print_json(ctl_ctx *ctx, json_t *list)
{
    json_t *doc = json_object();
    if (doc == NULL ||
        json_object_set_new(doc, "schema_version",
                            json_integer(STATUS_SCHEMA_VERSION)) != 0 ||
        json_object_set(doc, "queues", list) != 0) {
        json_decref(doc);
        ctl_error(ctx, "out of memory");
        return CTL_EXIT_FAIL;
    }
    size_t flags = JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15);
    int rc = json_dumpf(doc, stdout, flags);
    json_decref(doc);
    if (rc != 0 || putchar('\n') == EOF) {
        ctl_error(ctx, "stdout: write error");
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

/* ---- the command -------------------------------------------------------- */

int
ctl_cmd_status(ctl_ctx *ctx, int argc, char **argv)
{
    static const ctl_opt opts[] = {
        {"--queue", true}, {"--json", false}, {NULL, false}};
    const char *queue = NULL;
    bool json = false;
    ctl_parser p;
    ctl_parser_init(&p, ctx, opts, argc, argv);
    const char *value;
    int o;
    while ((o = ctl_parser_next(&p, &value)) != CTL_OPT_END) {
        int rc = ctl_parser_exit(ctx, o);
        if (rc >= 0) {
            return rc;
        }
        switch (o) {
        case CTL_OPT_OPERAND:
            return ctl_usage(ctx, "%s: unexpected argument", value);
        case 0:
            queue = value;
            break;
        default:
            json = true;
            break;
        }
    }
    pps_config *cfg;
    int rc = ctl_load_config(ctx, &cfg);
    if (rc != CTL_EXIT_OK) {
        return rc;
    }
    status_run run = {ctl_now_ns(), 0, NULL, ""};
    int status;
    if (json) {
        run.list = json_array();
        status = run.list == NULL
                     ? PPS_ENOMEM
                     : pps_ctl_status(cfg, queue, add_queue, &run);
        if (status == PPS_ECALLBACK && run.bad_utf8[0] != '\0') {
            ctl_error(ctx, "%s: not valid UTF-8, which JSON cannot hold",
                      run.bad_utf8);
            rc = CTL_EXIT_FAIL;
        } else if (status == PPS_ECALLBACK) {
            ctl_error(ctx, "out of memory");
            rc = CTL_EXIT_FAIL;
        } else if (status != PPS_OK) {
            rc = ctl_fail(ctx, status);
        } else {
            rc = print_json(ctx, run.list);
        }
        json_decref(run.list);
    } else {
        status = pps_ctl_status(cfg, queue, print_queue, &run);
        if (fflush(stdout) != 0 || status == PPS_ECALLBACK) {
            ctl_error(ctx, "stdout: write error");
            rc = CTL_EXIT_FAIL;
        } else if (status != PPS_OK) {
            rc = ctl_fail(ctx, status);
        }
    }
    pps_config_free(cfg);
    return rc;
}
