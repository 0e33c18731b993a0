/*
 * The high-water mark: the limits that keep a queue bounded.
 *
 * Applied inside the write transaction of every send and by pps_ctl_prune():
 * first the messages older than MSG_TIMEOUT_SECS are removed, walking from
 * the oldest id and stopping at the first young one; then, if the queue is
 * at or over MAX_MSGS_NUM or HWM_LMDB_SIZE_BYTES, half of the messages go,
 * the oldest half (prune_first) or the newest (prune_last).
 *
 * Nothing here scans the queue: the count and the size come from LMDB's
 * database statistics (kept in the database records, O(1)), the age from
 * the first key, and each removal is one seek to the first or last id. The
 * work is proportional to what is removed.
 */
#include "internal.h"

#include <string.h>

bool
pps__hwm_expired(int64_t published_ns, int64_t now_ns, uint64_t timeout_secs)
{
    if (timeout_secs >= (uint64_t)INT64_MAX / 1000000000) {
        return false;
    }
    int64_t timeout_ns = (int64_t)timeout_secs * 1000000000;
    if (published_ns > now_ns) {
        return false; /* the clock went back: not older than anything */
    }
    return now_ns - published_ns > timeout_ns;
}

bool
pps__hwm_over(uint64_t count, uint64_t bytes, const pps__settings *s)
{
    return count >= s->max_msgs_num || bytes >= s->hwm_lmdb_size_bytes;
}

uint64_t
pps__hwm_prune_count(uint64_t count)
{
    return count - count / 2; /* half, rounded up: at least one of one */
}

/* The oldest (or newest) message: its id and metadata. */
static int
edge(pps__env *e, MDB_txn *txn, bool last, uint64_t *id, pps__msg_meta *meta,
     bool *found)
{
    MDB_cursor *cur;
    MDB_val k, v;
    *found = false;
    int rc = mdb_cursor_open(txn, pps__env_get(e)->msg, &cur);
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot open cursor", pps__env_path(e));
    }
    rc = mdb_cursor_get(cur, &k, &v, last ? MDB_LAST : MDB_FIRST);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {
        return PPS_OK;
    }
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot read message metadata",
                             pps__env_path(e));
    }
    if (k.mv_size != sizeof(*id) || v.mv_size != sizeof(*meta)) {
        return pps__err(PPS_ESTORAGE, "%s: corrupt message metadata",
                        pps__env_path(e));
    }
    memcpy(id, k.mv_data, sizeof(*id));
    memcpy(meta, v.mv_data, sizeof(*meta));
    *found = true;
    return PPS_OK;
}

int
pps__hwm_usage(pps__env *e, MDB_txn *txn, uint64_t *count, uint64_t *bytes)
{
    const pps__env_view *v = pps__env_get(e);
    MDB_stat data, msg;
    int rc = mdb_stat(txn, v->data, &data);
    if (rc == 0) {
        rc = mdb_stat(txn, v->msg, &msg);
    }
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot read database statistics",
                             pps__env_path(e));
    }
    *count = msg.ms_entries;
    /* As the original persipubsub: the pages holding messages times the
     * page size (free pages, reused by later commits, do not count). */
    *bytes = (uint64_t)data.ms_psize *
             (data.ms_branch_pages + data.ms_leaf_pages +
              data.ms_overflow_pages + msg.ms_branch_pages +
              msg.ms_leaf_pages + msg.ms_overflow_pages);
    return PPS_OK;
}

int
pps__hwm_enforce(pps__env *e, MDB_txn *txn, const pps__settings *s,
                 const MDB_dbi *subs, size_t n, int64_t now_ns,
                 pps__removed *removed, int64_t *front_ns)
{
    uint64_t id;
    pps__msg_meta meta;
    bool found;
    int status;

    /* The oldest message only ever gets younger (it is consumed, pruned,
     * or followed by later ones), so a publish time seen at the front
     * before is a lower bound: while even that one has not expired,
     * nothing has, and the seek can be skipped. */
    bool skip_expiry = front_ns != NULL && *front_ns != 0 &&
                       !pps__hwm_expired(*front_ns, now_ns,
                                         s->msg_timeout_secs);
    for (; !skip_expiry;) {
        status = edge(e, txn, false, &id, &meta, &found);
        if (status != PPS_OK) {
            return status;
        }
        if (!found ||
            !pps__hwm_expired(meta.published_ns, now_ns, s->msg_timeout_secs)) {
            if (front_ns != NULL) {
                /* Empty: anything sent later is younger than now. */
                *front_ns = found ? meta.published_ns : now_ns;
            }
            break;
        }
        status = pps__layout_remove_msg(e, txn, id, subs, n, removed);
        if (status != PPS_OK) {
            return status;
        }
    }

    uint64_t count = 0, bytes = 0;
    status = pps__hwm_usage(e, txn, &count, &bytes);
    if (status != PPS_OK || count == 0 || !pps__hwm_over(count, bytes, s)) {
        return status;
    }
    bool last = s->strategy == PPS__PRUNE_LAST;
    for (uint64_t todo = pps__hwm_prune_count(count); todo > 0; todo--) {
        status = edge(e, txn, last, &id, &meta, &found);
        if (status != PPS_OK) {
            return status;
        }
        if (!found) {
            break;
        }
        status = pps__layout_remove_msg(e, txn, id, subs, n, removed);
        if (status != PPS_OK) {
            return status;
        }
    }
    return PPS_OK;
}
