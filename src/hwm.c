/*
 * The high-water mark: the limits that keep a queue bounded.
 *
 * Applied inside the write transaction of every send and by pps_ctl_prune():
 * first the messages older than MSG_TIMEOUT_SECS are removed, walking from
 * the oldest id and stopping at the first young one; then, if the queue is
 * at or over MAX_MSGS_NUM or HWM_LMDB_SIZE_BYTES, half of the messages go,
 * the oldest half (prune_first) or the newest (prune_last).
 *
 * A send_many of more messages than MAX_MSGS_NUM leaves room for would
 * leave the queue over the mark until the next send; so after a batch the
 * mark is applied again, in the same transaction: while the queue is over
 * MAX_MSGS_NUM, half of it is pruned as the strategy says (prune_first
 * keeps the newest of the batch, prune_last its oldest).
 *
 * Nothing here scans the queue: the count and the size come from LMDB's
 * database statistics (kept in the database records, O(1)), the age from
 * the first key, and each removal is one seek to the first or last id. The
 * work is proportional to what is removed.
 */
#include "internal.h"


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

int
pps__hwm_enforce(const pps__env *e, MDB_txn *txn, const pps__settings *s,
                 const pps__subs *subs, int64_t now_ns,
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
        status = pps__layout_end_msg(e, txn, false, &id, &meta, &found);
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
        status = pps__layout_remove_msg(e, txn, id, subs->dbis, subs->n,
                                        removed);
        if (status != PPS_OK) {
            return status;
        }
    }

    uint64_t count = 0, bytes = 0;
    status = pps__layout_usage(e, txn, &count, &bytes);
    if (status != PPS_OK || count == 0 || !pps__hwm_over(count, bytes, s)) {
        return status;
    }
    bool newest = s->strategy == PPS__PRUNE_LAST;
    for (uint64_t left = pps__hwm_prune_count(count); left > 0; left--) {
        status = pps__layout_end_msg(e, txn, newest, &id, &meta, &found);
        if (status != PPS_OK) {
            return status;
        }
        if (!found) {
            break;
        }
        status = pps__layout_remove_msg(e, txn, id, subs->dbis, subs->n,
                                        removed);
        if (status != PPS_OK) {
            return status;
        }
    }
    return PPS_OK;
}

int
pps__hwm_enforce_batch(const pps__env *e, MDB_txn *txn,
                       const pps__settings *s, const pps__subs *subs,
                       pps__removed *removed)
{
    uint64_t count = 0, bytes = 0, id;
    pps__msg_meta meta;
    bool found;
    int status = pps__layout_usage(e, txn, &count, &bytes);
    bool newest = s->strategy == PPS__PRUNE_LAST;
    while (status == PPS_OK && count > s->max_msgs_num) {
        for (uint64_t left = pps__hwm_prune_count(count); left > 0; left--) {
            status = pps__layout_end_msg(e, txn, newest, &id, &meta, &found);
            if (status != PPS_OK || !found) {
                break;
            }
            status = pps__layout_remove_msg(e, txn, id, subs->dbis, subs->n,
                                            removed);
            if (status != PPS_OK) {
                break;
            }
        }
        if (status == PPS_OK) {
            status = pps__layout_usage(e, txn, &count, &bytes);
        }
    }
    return status;
}
