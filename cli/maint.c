/*
 * persipubsub-ctl: the deployment and maintenance commands: init, prune,
 * clear, check and remove-subscriber.
 *
 * init, prune and clear work queue by queue (pps_ctl_init_queue(),
 * pps_ctl_prune_queue(), pps_ctl_clear_queue()) so that they can say what
 * they did to each; check makes one pps_ctl_check() call.
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ctl_opt no_opts[] = {{NULL, false}};

/* Parses a command that takes no operand and at most --queue (if
 * queue_opts) and --repair (if repair != NULL). Returns -1 to go on, or
 * the exit status. */
static int
parse_maint(ctl_ctx *ctx, int argc, char **argv, const char **queue,
            bool *repair)
{
    static const ctl_opt opts[] = {
        {"--queue", true}, {"--repair", false}, {NULL, false}};
    ctl_parser p;
    ctl_parser_init(&p, ctx, queue != NULL ? opts : no_opts, argc, argv);
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
            *queue = value;
            break;
        default:
            if (repair == NULL) {
                return ctl_usage(ctx, "--repair: unknown option");
            }
            *repair = true;
            break;
        }
    }
    return -1;
}

/* What init, prune or clear does to one queue; returns a library status. */
typedef int (*queue_fn)(ctl_ctx *ctx, const pps_config *cfg,
                        const ctl_queue *q, void *user);

/* The frame of init, prune and clear: options, the configuration, then fn
 * for each of its queues (or the one --queue names), stopping at the first
 * failure. */
static int
each_queue(ctl_ctx *ctx, int argc, char **argv, queue_fn fn, void *user)
{
    const char *queue = NULL;
    int rc = parse_maint(ctx, argc, argv, &queue, NULL);
    if (rc >= 0) {
        return rc;
    }
    pps_config *cfg;
    rc = ctl_load_config(ctx, &cfg);
    if (rc != CTL_EXIT_OK) {
        return rc;
    }
    ctl_queue_list list;
    int status = ctl_queues(cfg, queue, &list);
    for (size_t i = 0; status == PPS_OK && i < list.n; i++) {
        status = fn(ctx, cfg, &list.items[i], user);
    }
    rc = status == PPS_OK ? CTL_EXIT_OK : ctl_fail(ctx, status);
    ctl_queues_free(&list);
    pps_config_free(cfg);
    return rc;
}

/* ---- init --------------------------------------------------------------- */

static int
print_initialized(const pps_queue_status *st, void *user)
{
    (void)user;
    printf("%s: initialized; subscribers:", st->path);
    for (size_t i = 0; i < st->n_subscribers; i++) {
        printf("%s %s", i > 0 ? "," : "", st->subscribers[i].id);
    }
    printf("%s\n", st->n_subscribers == 0 ? " none" : "");
    return 0;
}

static int
init_one(ctl_ctx *ctx, const pps_config *cfg, const ctl_queue *q, void *user)
{
    (void)ctx;
    (void)user;
    int status = pps_ctl_init_queue(cfg, q->key);
    if (status == PPS_OK) {
        status = pps_ctl_status(cfg, q->key, print_initialized, NULL);
    }
    return status;
}

int
ctl_cmd_init(ctl_ctx *ctx, int argc, char **argv)
{
    return each_queue(ctx, argc, argv, init_one, NULL);
}

/* ---- prune and clear ---------------------------------------------------- */

typedef struct remover {
    int (*fn)(const pps_config *cfg, const char *queue, pps_removed *removed);
    const char *doing;
} remover;

static int
remove_one(ctl_ctx *ctx, const pps_config *cfg, const ctl_queue *q,
           void *user)
{
    const remover *r = user;
    pps_removed removed = {0, 0};
    ctl_progress_begin(ctx, r->doing, q->path);
    int status = r->fn(cfg, q->key, &removed);
    ctl_progress_end();
    if (status == PPS_OK) {
        printf("%s: removed %llu message%s, %llu bytes\n", q->path,
               (unsigned long long)removed.messages,
               removed.messages == 1 ? "" : "s",
               (unsigned long long)removed.bytes);
        fflush(stdout);
    }
    return status;
}

int
ctl_cmd_prune(ctl_ctx *ctx, int argc, char **argv)
{
    remover r = {pps_ctl_prune_queue, "pruning"};
    return each_queue(ctx, argc, argv, remove_one, &r);
}

int
ctl_cmd_clear(ctl_ctx *ctx, int argc, char **argv)
{
    remover r = {pps_ctl_clear_queue, "clearing"};
    return each_queue(ctx, argc, argv, remove_one, &r);
}

/* ---- check -------------------------------------------------------------- */

typedef struct tally_item {
    char *path;
    size_t problems;
    size_t repaired;
} tally_item;

/* Problems per queue, in the order the queues came. */
typedef struct tally {
    tally_item *items;
    size_t n;
    bool failed; /* out of memory: the per-queue summary is incomplete */
} tally;

static void
print_problem(const char *queue_path, const char *problem, int repaired,
              void *user)
{
    tally *t = user;
    printf("%s: %s%s\n", queue_path, problem, repaired ? " (repaired)" : "");
    if (t->n == 0 || strcmp(t->items[t->n - 1].path, queue_path) != 0) {
        tally_item *items = realloc(t->items, (t->n + 1) * sizeof(*items));
        char *path = strdup(queue_path);
        if (items != NULL) {
            t->items = items;
        }
        if (items == NULL || path == NULL) {
            free(path);
            t->failed = true;
            return;
        }
        t->items[t->n].path = path;
        t->items[t->n].problems = 0;
        t->items[t->n].repaired = 0;
        t->n++;
    }
    t->items[t->n - 1].problems++;
    t->items[t->n - 1].repaired += repaired != 0;
}

int
ctl_cmd_check(ctl_ctx *ctx, int argc, char **argv)
{
    const char *queue = NULL;
    bool repair = false;
    int rc = parse_maint(ctx, argc, argv, &queue, &repair);
    if (rc >= 0) {
        return rc;
    }
    pps_config *cfg;
    rc = ctl_load_config(ctx, &cfg);
    if (rc != CTL_EXIT_OK) {
        return rc;
    }
    tally t = {NULL, 0, false};
    size_t problems = 0;
    ctl_progress_begin(ctx,
                       queue != NULL ? "checking" : "checking the queues of",
                       queue != NULL ? queue : ctx->config);
    int status =
        pps_ctl_check(cfg, queue, repair, print_problem, &t, &problems);
    ctl_progress_end();
    if (status == PPS_OK && repair) {
        for (size_t i = 0; i < t.n; i++) {
            printf("%s: repaired %zu problem%s\n", t.items[i].path,
                   t.items[i].repaired, t.items[i].repaired == 1 ? "" : "s");
        }
        if (t.failed) {
            printf("repaired %zu problem%s in all\n", problems,
                   problems == 1 ? "" : "s");
        }
    }
    fflush(stdout);
    if (status == PPS_OK) {
        rc = CTL_EXIT_OK;
    } else if (status == PPS_ECORRUPT && !repair) {
        ctl_error(ctx, "%zu problem%s found; run " CTL_NAME " check --repair",
                  problems, problems == 1 ? "" : "s");
        rc = CTL_EXIT_FAIL;
    } else if (status == PPS_ECORRUPT) {
        ctl_error(ctx, "%s", pps_last_error());
        rc = CTL_EXIT_FAIL;
    } else {
        rc = ctl_fail(ctx, status);
    }
    for (size_t i = 0; i < t.n; i++) {
        free(t.items[i].path);
    }
    free(t.items);
    pps_config_free(cfg);
    return rc;
}

/* ---- remove-subscriber -------------------------------------------------- */

int
ctl_cmd_remove_subscriber(ctl_ctx *ctx, int argc, char **argv)
{
    ctl_parser p;
    ctl_parser_init(&p, ctx, no_opts, argc, argv);
    const char *operands[2] = {NULL, NULL};
    size_t n = 0;
    const char *value;
    int o;
    while ((o = ctl_parser_next(&p, &value)) != CTL_OPT_END) {
        int rc = ctl_parser_exit(ctx, o);
        if (rc >= 0) {
            return rc;
        }
        if (n == 2) {
            return ctl_usage(ctx, "%s: unexpected argument", value);
        }
        operands[n++] = value;
    }
    if (n < 2) {
        return ctl_usage(ctx, "missing %s", n == 0 ? "QUEUE and SUB_ID"
                                                   : "SUB_ID");
    }
    pps_config *cfg;
    int rc = ctl_load_config(ctx, &cfg);
    if (rc != CTL_EXIT_OK) {
        return rc;
    }
    ctl_queue_list list = {NULL, 0};
    int status = ctl_queues(cfg, operands[0], &list);
    if (status == PPS_OK) {
        status = pps_ctl_remove_subscriber(cfg, operands[0], operands[1]);
    }
    if (status == PPS_OK) {
        printf("%s: removed subscriber %s\n", list.items[0].path,
               operands[1]);
        fflush(stdout);
    }
    rc = status == PPS_OK ? CTL_EXIT_OK : ctl_fail(ctx, status);
    ctl_queues_free(&list);
    pps_config_free(cfg);
    return rc;
}
