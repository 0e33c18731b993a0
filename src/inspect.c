/*
 * Inspection: the status of a queue and its consistency check.
 *
 * Status costs O(number of subscribers): counts come from LMDB statistics
 * and ages from the first key of each database. The check reads everything
 * and so grows with the queue; without repair it runs in a read transaction
 * and never blocks publishers. With repair it runs in one write
 * transaction: what it finds is collected first and fixed afterwards, so
 * the scan never walks a database it is changing.
 */
#include "internal.h"

#include <stdio.h>
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

/* Publish time of message `id`, 0 if unknown. */
static int64_t
published(MDB_txn *txn, const pps__env_view *v, uint64_t id)
{
    MDB_val k = {sizeof(id), &id}, val;
    pps__msg_meta m;
    if (mdb_get(txn, v->msg, &k, &val) != 0 || val.mv_size != sizeof(m)) {
        return 0;
    }
    memcpy(&m, val.mv_data, sizeof(m));
    return m.published_ns;
}

/* First id of a database, false if empty or unreadable. */
static bool
first_id(MDB_txn *txn, MDB_dbi dbi, uint64_t *id)
{
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, dbi, &cur) != 0) {
        return false;
    }
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    mdb_cursor_close(cur);
    if (rc != 0 || k.mv_size != sizeof(*id)) {
        return false;
    }
    memcpy(id, k.mv_data, sizeof(*id));
    return true;
}

static int
status_queue(const pps__queue_cfg *q, pps_status_fn fn, void *user)
{
    pps__env *e;
    MDB_txn *txn;
    pps__subs subs = {0};
    pps_subscriber_status *ss = NULL;
    int status = pps__queue_open(q, &e, &txn, &subs);
    if (status != PPS_OK) {
        return status;
    }
    const pps__env_view *v = pps__env_get(e);
    pps__settings set;
    pps__seq seq;
    pps_queue_status st = {.key = q->key, .path = q->path};
    status = pps__layout_read_settings(e, txn, &set);
    if (status == PPS_OK) {
        status = pps__layout_read_seq(e, txn, &seq);
    }
    if (status == PPS_OK) {
        status = pps__hwm_usage(e, txn, &st.messages, &st.bytes);
    }
    if (status == PPS_OK) {
        ss = calloc(subs.n > 0 ? subs.n : 1, sizeof(*ss));
    }
    if (status != PPS_OK || ss == NULL) {
        status = status != PPS_OK ? status
                                  : pps__err(PPS_ENOMEM, "out of memory");
        goto done;
    }
    MDB_envinfo info;
    MDB_stat est;
    mdb_env_info(v->env, &info);
    mdb_env_stat(v->env, &est);
    st.map_size = info.me_mapsize;
    st.map_used = (uint64_t)(info.me_last_pgno + 1) * est.ms_psize;
    uint64_t id;
    st.oldest_ns = first_id(txn, v->msg, &id) ? published(txn, v, id) : 0;
    st.next_id = seq.next_id;
    st.msg_timeout_secs = set.msg_timeout_secs;
    st.max_msgs_num = set.max_msgs_num;
    st.hwm_lmdb_size_bytes = set.hwm_lmdb_size_bytes;
    st.strategy = strategy_name(set.strategy);
    st.durability = durability_name(set.durability);
    const char *sid = subs.ids;
    for (size_t i = 0; i < subs.n; i++) {
        MDB_stat s;
        ss[i].id = sid;
        sid += strlen(sid) + 1;
        if (mdb_stat(txn, subs.dbis[i], &s) == 0) {
            ss[i].pending = s.ms_entries;
        }
        ss[i].oldest_ns =
            first_id(txn, subs.dbis[i], &id) ? published(txn, v, id) : 0;
    }
    st.n_subscribers = subs.n;
    st.subscribers = ss;
    if (fn(&st, user) != 0) {
        status = pps__err(PPS_ECALLBACK, "status callback stopped at %s",
                          q->path);
    }
done:
    /* Nothing was written; committing keeps the handles for the process. */
    if (status == PPS_OK || status == PPS_ECALLBACK) {
        int cs = pps__txn_commit(e, txn, PPS__NOSYNC, "cannot end status");
        status = status == PPS_OK ? cs : status;
    } else {
        mdb_txn_abort(txn);
    }
    free(ss);
    pps__subs_free(&subs);
    pps__env_release(e);
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
    int status = pps__ctl_queue_range(cfg, queue, &first, &end);
    for (size_t i = first; i < end && status == PPS_OK; i++) {
        status = status_queue(&cfg->queues[i], fn, user);
    }
    return status;
}
