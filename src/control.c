/*
 * Control: initialize queues from the configuration, prune, clear.
 *
 * pps_ctl_init() is idempotent. It creates what is missing, stores the
 * limits, and registers subscribers. A subscriber's pending database starts
 * empty, and registering it bumps the generation in the sequence record, so
 * publishers reload their subscriber lists in their next send: a subscriber
 * receives exactly the messages committed after its registration.
 * Subscribers that left the configuration are kept, never silently dropped
 * with their pending messages: pps_ctl_remove_subscriber() removes one on
 * purpose, in one transaction that releases what it pends on, deletes its
 * pending database (freeing its place under max_db_num) and bumps the
 * generation, so publishers stop sending to it and its handles get
 * PPS_ENOTINIT.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Databases of a queue that are not subscribers' (layout.c). */
#define INTERNAL_DBS 3

static int
init_body(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    (void)durability;
    const pps__queue_cfg *q = ctx;
    const pps__settings want = {
        .msg_timeout_secs = q->hwm.msg_timeout_secs,
        .max_msgs_num = q->hwm.max_msgs_num,
        .hwm_lmdb_size_bytes = q->hwm.hwm_lmdb_size_bytes,
        .strategy = (uint32_t)q->hwm.strategy,
        .durability = (uint32_t)q->durability,
    };
    bool changed = false;
    pps__seq seq;
    int status = pps__layout_init_format(e, txn, &changed);
    if (status == PPS_OK) {
        status = pps__layout_write_settings(e, txn, &want, &changed);
    }
    if (status == PPS_OK) {
        status = pps__subs_register(e, txn, q->subscribers, q->n_subscribers,
                                    q->max_db_num > INTERNAL_DBS
                                        ? q->max_db_num - INTERNAL_DBS
                                        : 0,
                                    &changed);
    }
    if (status == PPS_OK && changed) {
        status = pps__layout_read_seq(e, txn, &seq);
        seq.gen++;
    }
    if (status == PPS_OK && changed) {
        status = pps__layout_write_seq(e, txn, &seq);
    }
    return status;
}

static int
init_queue(const pps__queue_cfg *q)
{
    pps__env *e;
    int status = pps__env_acquire(&e, q, true);
    if (status == PPS_OK) {
        status = pps__txn_run(e, PPS__SYNC, init_body, pps__unconst(q),
                              "cannot initialize queue");
        pps__env_release(e);
    }
    return status;
}

/* Runs fn on the queues that `queue` selects (NULL: all of them). */
static int
each_queue(const pps_config *cfg, const char *queue,
           int (*fn)(const pps__queue_cfg *q, pps__removed *removed),
           pps__removed *total, const char *what)
{
    size_t first, end;
    if (cfg == NULL) {
        return pps__err(PPS_EINVAL, "%s: cfg is NULL", what);
    }
    int status = pps__config_find_queues(cfg, queue, &first, &end);
    for (size_t i = first; i < end && status == PPS_OK; i++) {
        status = fn(&cfg->queues[i], total);
    }
    return status;
}

static int
init_one(const pps__queue_cfg *q, pps__removed *removed)
{
    (void)removed;
    return init_queue(q);
}

int
pps_ctl_init(const pps_config *cfg)
{
    pps__err_begin();
    return each_queue(cfg, NULL, init_one, NULL, "pps_ctl_init");
}

int
pps_ctl_init_queue(const pps_config *cfg, const char *queue)
{
    pps__err_begin();
    if (queue == NULL) {
        return pps__err(PPS_EINVAL, "pps_ctl_init_queue: queue is NULL");
    }
    return each_queue(cfg, queue, init_one, NULL, "pps_ctl_init_queue");
}

/* ---- prune and clear ------------------------------------------------------ */

typedef struct removal {
    bool prune; /* else clear */
    pps__removed removed;
} removal;

static int
removal_body(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    (void)durability;
    removal *job = ctx;
    pps__subs subs = {0};
    pps__settings s;
    job->removed = (pps__removed){0};
    int status = pps__layout_check_format(e, txn);
    if (status == PPS_OK) {
        status = pps__layout_read_settings(e, txn, &s);
    }
    if (status == PPS_OK) {
        status = pps__subs_open(e, txn, &subs);
    }
    if (status == PPS_OK) {
        status = job->prune
                     ? pps__hwm_enforce(e, txn, &s, &subs,
                                        pps__now_realtime_ns(), &job->removed,
                                        NULL)
                     : pps__layout_clear(e, txn, &subs, &job->removed);
    }
    pps__subs_free(&subs);
    return status;
}

/* Prunes or clears one queue; an operator's removal is flushed. */
static int
remove_from(const pps__queue_cfg *q, bool prune, pps__removed *total)
{
    pps__env *e;
    removal job = {.prune = prune};
    int status = pps__env_acquire(&e, q, false);
    if (status != PPS_OK) {
        return status;
    }
    status = pps__txn_run(e, PPS__SYNC, removal_body, &job,
                          prune ? "cannot commit pruning"
                                : "cannot commit clearing");
    if (status == PPS_OK && job.removed.messages > 0) {
        status = pps__txn_recycle_freed(e, PPS__SYNC);
    }
    pps__env_release(e);
    if (status == PPS_OK && total != NULL) {
        total->messages += job.removed.messages;
        total->bytes += job.removed.bytes;
    }
    return status;
}

static int
prune_one(const pps__queue_cfg *q, pps__removed *total)
{
    return remove_from(q, true, total);
}

static int
clear_one(const pps__queue_cfg *q, pps__removed *total)
{
    return remove_from(q, false, total);
}

/* Runs prune or clear and reports what it removed (out may be NULL). */
static int
report_removal(const pps_config *cfg, const char *queue,
               int (*fn)(const pps__queue_cfg *q, pps__removed *removed),
               pps_removed *out, const char *what)
{
    pps__removed total = {0};
    int status = each_queue(cfg, queue, fn, &total, what);
    if (out != NULL) {
        out->messages = total.messages;
        out->bytes = total.bytes;
    }
    return status;
}

int
pps_ctl_prune(const pps_config *cfg)
{
    pps__err_begin();
    return report_removal(cfg, NULL, prune_one, NULL, "pps_ctl_prune");
}

int
pps_ctl_clear(const pps_config *cfg)
{
    pps__err_begin();
    return report_removal(cfg, NULL, clear_one, NULL, "pps_ctl_clear");
}

int
pps_ctl_prune_queue(const pps_config *cfg, const char *queue,
                    pps_removed *removed)
{
    pps__err_begin();
    return report_removal(cfg, queue, prune_one, removed,
                          "pps_ctl_prune_queue");
}

int
pps_ctl_clear_queue(const pps_config *cfg, const char *queue,
                    pps_removed *removed)
{
    pps__err_begin();
    return report_removal(cfg, queue, clear_one, removed,
                          "pps_ctl_clear_queue");
}

/* ---- removing a subscriber ------------------------------------------------ */

typedef struct unregister_job {
    const char *sub_id;
    uint64_t pending;
} unregister_job;

static int
unregister_body(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    (void)durability;
    unregister_job *job = ctx;
    pps__seq seq;
    int status = pps__layout_check_format(e, txn);
    if (status == PPS_OK) {
        status = pps__subs_unregister(e, txn, job->sub_id, &job->pending);
    }
    if (status == PPS_OK) {
        status = pps__layout_read_seq(e, txn, &seq);
    }
    if (status == PPS_OK) {
        seq.gen++;
        status = pps__layout_write_seq(e, txn, &seq);
    }
    return status;
}

int
pps_ctl_remove_subscriber(const pps_config *cfg, const char *queue,
                          const char *sub_id)
{
    static const char fn[] = "pps_ctl_remove_subscriber";
    size_t first, end;
    pps__err_begin();
    if (cfg == NULL || queue == NULL || sub_id == NULL) {
        return pps__err(PPS_EINVAL, "%s: %s is NULL", fn,
                        cfg == NULL     ? "cfg"
                        : queue == NULL ? "queue"
                                        : "sub_id");
    }
    if (!pps__sub_id_valid(sub_id)) {
        return pps__err(PPS_EINVAL, "%s: not a subscriber id (1 to 255 "
                        "printable bytes)", fn);
    }
    int status = pps__config_find_queues(cfg, queue, &first, &end);
    if (status != PPS_OK) {
        return status;
    }
    const pps__queue_cfg *q = &cfg->queues[first];
    for (size_t i = 0; i < q->n_subscribers; i++) {
        if (strcmp(q->subscribers[i], sub_id) == 0) {
            return pps__err(PPS_EINVAL,
                            "%s: queue \"%s\" still lists subscriber \"%s\" "
                            "(the next init would register it again): "
                            "remove it from the configuration first; nothing "
                            "was changed",
                            cfg->file, q->key, sub_id);
        }
    }
    pps__env *e;
    status = pps__env_acquire(&e, q, false);
    if (status != PPS_OK) {
        return status;
    }
    unregister_job job = {sub_id, 0};
    status = pps__txn_run(e, PPS__SYNC, unregister_body, &job,
                          "cannot commit the removal of a subscriber");
    if (status == PPS_OK && job.pending > 0) {
        /* What it freed is reusable by the very next send. */
        status = pps__txn_recycle_freed(e, PPS__SYNC);
    }
    pps__env_release(e);
    return status;
}

/* ---- opening a queue for inspection ---------------------------------------- */

static int
open_subs_body(pps__env *e, MDB_txn *txn, void *subs, int *durability)
{
    (void)durability;
    int status = pps__layout_check_format(e, txn);
    if (status == PPS_OK) {
        status = pps__subs_open(e, txn, subs);
    }
    return status;
}

int
pps__ctl_open_queue(const pps__queue_cfg *q, bool write, pps__env **e,
                    pps__subs *subs)
{
    int status = write ? pps__env_acquire(e, q, false)
                       : pps__env_acquire_reader(e, q);
    if (status != PPS_OK) {
        return status;
    }
    /* A transaction that writes nothing (a read transaction where the
     * caller may only read the queue). */
    status = pps__txn_open_handles(*e, open_subs_body, subs,
                                   "cannot open subscriber databases");
    if (status != PPS_OK) {
        pps__subs_free(subs);
        pps__env_release(*e);
        *e = NULL;
    }
    return status;
}
