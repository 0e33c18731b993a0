/*
 * The status of a queue.
 *
 * Status costs O(number of subscribers): counts come from LMDB statistics
 * and ages from the first key of each database. It is read from a snapshot
 * (a read transaction, which blocks nobody), and the callback runs after
 * that transaction ended: a status reader that blocks (a full pipe) stalls
 * no publisher, and its callback may use the library on the same queue.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static const char *
strategy_name(uint32_t s)
{
    return s == PPS__PRUNE_LAST ? "prune_last" : "prune_first";
}

static const char *
durability_name(uint32_t d)
{
    return d == PPS__NOSYNC        ? "nosync"
           : d == PPS__NOMETASYNC ? "nometasync"
                                   : "sync";
}

/* Fills st and ss (subs.n entries) from a snapshot of the queue. */
static int
read_status(pps__env *e, MDB_txn *txn, const pps__subs *subs,
            pps_queue_status *st, pps_subscriber_status *ss)
{
    pps__settings set;
    pps__seq seq;
    uint64_t id = 0;
    bool found = false;
    int status = pps__layout_read_settings(e, txn, &set);
    if (status == PPS_OK) {
        status = pps__layout_read_seq(e, txn, &seq);
    }
    if (status == PPS_OK) {
        status = pps__layout_usage(e, txn, &st->messages, &st->bytes);
    }
    if (status == PPS_OK) {
        status = pps__layout_first_id(e, txn, e->dbs.msg, &id, &found);
    }
    if (status != PPS_OK) {
        return status;
    }
    MDB_envinfo info;
    MDB_stat est;
    mdb_env_info(e->env, &info);
    mdb_env_stat(e->env, &est);
    st->map_size = info.me_mapsize;
    st->map_used = (uint64_t)(info.me_last_pgno + 1) * est.ms_psize;
    st->oldest_ns = found ? pps__layout_published(e, txn, id) : 0;
    st->next_id = seq.next_id;
    st->msg_timeout_secs = set.msg_timeout_secs;
    st->max_msgs_num = set.max_msgs_num;
    st->hwm_lmdb_size_bytes = set.hwm_lmdb_size_bytes;
    st->strategy = strategy_name(set.strategy);
    st->durability = durability_name(set.durability);
    const char *sid = subs->ids;
    for (size_t i = 0; i < subs->n && status == PPS_OK; i++) {
        ss[i].id = sid;
        sid += strlen(sid) + 1;
        status = pps__layout_pending_count(e, txn, subs->dbis[i],
                                           &ss[i].pending);
        if (status == PPS_OK) {
            status = pps__layout_first_id(e, txn, subs->dbis[i], &id, &found);
        }
        ss[i].oldest_ns =
            status == PPS_OK && found ? pps__layout_published(e, txn, id) : 0;
    }
    st->n_subscribers = subs->n;
    st->subscribers = ss;
    return status;
}

/* Reads one queue's status from a snapshot, then, holding no lock and no
 * transaction, hands it to fn. */
static int
status_queue(const pps__queue_cfg *q, pps_status_fn fn, void *user)
{
    pps__env *e;
    MDB_txn *txn = NULL;
    pps__subs subs = {0};
    pps_subscriber_status *ss = NULL;
    pps_queue_status st = {.key = q->key, .path = q->path};
    int status = pps__ctl_open_queue(q, false, &e, &subs);
    if (status != PPS_OK) {
        return status;
    }
    ss = calloc(subs.n > 0 ? subs.n : 1, sizeof(*ss));
    status = ss != NULL ? pps__txn_begin_read(e, &txn) : pps__err_nomem();
    if (status == PPS_OK && ss != NULL) {
        status = read_status(e, txn, &subs, &st, ss);
        mdb_txn_abort(txn);
    }
    pps__env_release(e);
    if (status == PPS_OK && fn(&st, user) != 0) {
        status = pps__err(PPS_ECALLBACK, "status callback stopped at %s",
                          q->path);
    }
    free(ss);
    pps__subs_free(&subs);
    return status;
}

int
pps_ctl_status(const pps_config *cfg, const char *queue, pps_status_fn fn,
               void *user)
{
    pps__err_begin();
    if (cfg == NULL || fn == NULL) {
        return pps__err(PPS_EINVAL, "pps_ctl_status: %s is NULL",
                        cfg == NULL ? "cfg" : "fn");
    }
    size_t first, end;
    int status = pps__config_find_queues(cfg, queue, &first, &end);
    for (size_t i = first; i < end && status == PPS_OK; i++) {
        status = status_queue(&cfg->queues[i], fn, user);
    }
    return status;
}
