/*
 * The subscriber: a durable subscription read zero-copy.
 *
 * A receive looks at the front of the subscriber's pending database in a
 * read transaction and hands the payload to the callback straight from the
 * memory map. Only after the callback accepted it does a short write
 * transaction consume the message (no flush: consuming is never made
 * durable on its own, so after an OS crash a consumed message may come
 * again, but none is lost). The callback therefore never runs under LMDB's
 * write lock: a slow subscriber does not hold up publishers, and a
 * subscriber killed inside its callback has consumed nothing.
 *
 * Each handle keeps one read transaction and one cursor, reset between
 * calls and renewed for the next (MDB_NOTLS makes that legal across
 * threads), so a receive allocates nothing.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pps_sub {
    pid_t pid;
    pps__env *env;
    char *id;
    MDB_dbi dbi;
    MDB_txn *rtxn;    /* reset between calls */
    MDB_cursor *rcur; /* on dbi, renewed with rtxn */
    uint64_t *ids;    /* accepted ids of a batch */
    size_t ids_cap;
};

/* What one look at the queue gave. */
enum { GOT_NOTHING = 0 };

int
pps_sub_open(pps_sub **out, const pps_config *cfg, const char *sub_id)
{
    pps__err_begin();
    if (out == NULL) {
        return pps__err(PPS_EINVAL, "pps_sub_open: out is NULL");
    }
    *out = NULL;
    if (cfg == NULL || sub_id == NULL) {
        return pps__err(PPS_EINVAL, "pps_sub_open: %s is NULL",
                        cfg == NULL ? "cfg" : "sub_id");
    }
    const pps__component *c = pps__config_component(cfg, sub_id);
    if (c == NULL || c->in_queue < 0) {
        return pps__err(PPS_ENOTFOUND,
                        c == NULL ? "%s: no component \"%s\""
                                  : "%s: component \"%s\" has no in_queue",
                        cfg->file, sub_id);
    }
    pps_sub *sub = calloc(1, sizeof(*sub));
    if (sub == NULL || (sub->id = strdup(sub_id)) == NULL) {
        free(sub);
        return pps__err(PPS_ENOMEM, "out of memory");
    }
    sub->pid = pps__pid();
    MDB_txn *txn = NULL;
    int status = pps__env_acquire(&sub->env, &cfg->queues[c->in_queue], false);
    if (status == PPS_OK) {
        status = pps__txn_write(sub->env, &txn);
    }
    if (status == PPS_OK) {
        status = pps__layout_check(sub->env, txn);
    }
    if (status == PPS_OK) {
        status = pps__layout_open_sub(sub->env, txn, sub_id, false, &sub->dbi);
    }
    if (status == PPS_OK) {
        status = pps__txn_commit(sub->env, txn, PPS__NOSYNC,
                                 "cannot open subscriber");
        txn = NULL;
    }
    if (status == PPS_OK) {
        status = pps__txn_read(sub->env, &sub->rtxn);
        int rc = status == PPS_OK
                     ? mdb_cursor_open(sub->rtxn, sub->dbi, &sub->rcur)
                     : 0;
        if (rc != 0) {
            status = pps__err_lmdb(rc, "cannot open cursor",
                                   pps__env_path(sub->env));
        } else if (status == PPS_OK) {
            mdb_txn_reset(sub->rtxn);
        }
    }
    if (status != PPS_OK) {
        if (txn != NULL) {
            mdb_txn_abort(txn);
        }
        pps_sub_close(sub);
        return status;
    }
    *out = sub;
    return PPS_OK;
}

void
pps_sub_close(pps_sub *sub)
{
    if (sub == NULL) {
        return;
    }
    if (sub->pid == pps__pid()) {
        if (sub->rcur != NULL) {
            mdb_cursor_close(sub->rcur);
        }
        if (sub->rtxn != NULL) {
            mdb_txn_abort(sub->rtxn);
        }
        pps__env_release(sub->env);
    }
    free(sub->ids);
    free(sub->id);
    free(sub);
}

static int
check_handle(const pps_sub *sub, pps_receive_fn fn, const char *what)
{
    if (sub == NULL || fn == NULL) {
        return pps__err(PPS_EINVAL, "%s: %s is NULL", what,
                        sub == NULL ? "sub" : "fn");
    }
    if (sub->pid != pps__pid()) {
        return pps__err(PPS_EFORKED, "subscriber handle opened by process %ld "
                        "used in process %ld after fork(); open a new one",
                        (long)sub->pid, (long)getpid());
    }
    return PPS_OK;
}

/* Consumes ids[0..n) in one write transaction without a flush. */
static int
consume_once(pps_sub *sub, const uint64_t *ids, size_t n)
{
    MDB_txn *txn;
    int status = pps__txn_write(sub->env, &txn);
    if (status != PPS_OK) {
        return status;
    }
    for (size_t i = 0; i < n && status == PPS_OK; i++) {
        status = pps__layout_consume(sub->env, txn, sub->dbi, ids[i]);
    }
    if (status != PPS_OK) {
        mdb_txn_abort(txn);
        return status;
    }
    return pps__txn_commit(sub->env, txn, PPS__NOSYNC,
                           "cannot commit consumption");
}

/* A consumption needs a few fresh pages (copy-on-write). When the map has
 * none left, a dead process's reader slot is the likely reason: pages freed
 * since its snapshot could not be reused. Clear it and try again. */
static int
consume(pps_sub *sub, const uint64_t *ids, size_t n)
{
    int status = consume_once(sub, ids, n);
    if (status == PPS_EFULL && pps__env_reclaim_readers(sub->env)) {
        pps__err_begin();
        status = consume_once(sub, ids, n);
    }
    return status;
}

/* Reads the message at the cursor into *msg. */
static int
load(pps_sub *sub, const MDB_val *key, pps_message *msg, bool *orphan)
{
    const pps__env_view *v = pps__env_get(sub->env);
    MDB_val k = *key, data, meta;
    *orphan = false;
    if (k.mv_size != sizeof(uint64_t)) {
        return pps__err(PPS_ESTORAGE, "%s: corrupt key in pending database "
                        "of \"%s\"", pps__env_path(sub->env), sub->id);
    }
    memcpy(&msg->id, k.mv_data, sizeof(msg->id));
    int rc = mdb_get(sub->rtxn, v->data, &k, &data);
    if (rc == 0) {
        rc = mdb_get(sub->rtxn, v->msg, &k, &meta);
    }
    if (rc == MDB_NOTFOUND) {
        *orphan = true; /* a pending id without its message */
        return PPS_OK;
    }
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot read message",
                             pps__env_path(sub->env));
    }
    pps__msg_meta m;
    if (meta.mv_size != sizeof(m)) {
        return pps__err(PPS_ESTORAGE, "%s: corrupt metadata of message %llu",
                        pps__env_path(sub->env),
                        (unsigned long long)msg->id);
    }
    memcpy(&m, meta.mv_data, sizeof(m));
    msg->data = data.mv_data;
    msg->len = data.mv_size;
    msg->published_ns = m.published_ns;
    return PPS_OK;
}

/* Makes room for one more id in the batch buffer; grows geometrically, so a
 * handle stops allocating once it has seen its largest batch. */
static int
reserve_ids(pps_sub *sub, size_t n)
{
    if (n <= sub->ids_cap) {
        return PPS_OK;
    }
    size_t cap = sub->ids_cap < 16 ? 16 : sub->ids_cap * 2;
    if (cap < n) {
        cap = n;
    }
    uint64_t *ids = realloc(sub->ids, cap * sizeof(*ids));
    if (ids == NULL) {
        return pps__err(PPS_ENOMEM, "out of memory");
    }
    sub->ids = ids;
    sub->ids_cap = cap;
    return PPS_OK;
}

/*
 * One look at the queue: hands up to max messages to fn and consumes the
 * accepted ones. Returns the number delivered and consumed (> 0),
 * GOT_NOTHING, or a negative status.
 */
static int
take(pps_sub *sub, size_t max, pps_receive_fn fn, void *user)
{
    int status = pps__txn_renew(sub->env, sub->rtxn);
    if (status != PPS_OK) {
        return status;
    }
    int rc = mdb_cursor_renew(sub->rtxn, sub->rcur);
    if (rc != 0) {
        mdb_txn_reset(sub->rtxn);
        return pps__err_lmdb(rc, "cannot renew cursor",
                             pps__env_path(sub->env));
    }
    size_t n_ids = 0;     /* ids to consume: delivered ones and orphans */
    size_t delivered = 0; /* messages the callback accepted */
    bool refused = false;
    uint64_t refused_id = 0;
    MDB_val k, v;
    rc = mdb_cursor_get(sub->rcur, &k, &v, MDB_FIRST);
    while (rc == 0 && delivered < max) {
        pps_message msg;
        bool orphan;
        status = load(sub, &k, &msg, &orphan);
        if (status == PPS_OK) {
            status = reserve_ids(sub, n_ids + 1);
        }
        if (status != PPS_OK) {
            break;
        }
        /* An orphan (a pending id whose message is gone) is consumed
         * silently: there is nothing to deliver. */
        if (!orphan) {
            if (fn(&msg, user) != 0) {
                refused = true;
                refused_id = msg.id;
                break;
            }
            delivered++;
        }
        sub->ids[n_ids++] = msg.id;
        rc = mdb_cursor_get(sub->rcur, &k, &v, MDB_NEXT);
    }
    mdb_txn_reset(sub->rtxn);
    if (status == PPS_OK && rc != 0 && rc != MDB_NOTFOUND) {
        status = pps__err_lmdb(rc, "cannot read pending messages",
                               pps__env_path(sub->env));
    }
    /* Consume what was accepted even if something after it failed: the
     * callback has seen those messages. */
    if (n_ids > 0) {
        int cs = consume(sub, sub->ids, n_ids);
        if (cs != PPS_OK) {
            return cs;
        }
    }
    if (status != PPS_OK) {
        return status;
    }
    if (refused && delivered == 0) {
        return pps__err(PPS_ECALLBACK, "%s: the callback of \"%s\" refused "
                        "message %llu; it was kept",
                        pps__env_path(sub->env), sub->id,
                        (unsigned long long)refused_id);
    }
    if (delivered == 0) {
        return GOT_NOTHING;
    }
    return delivered > (size_t)INT32_MAX ? INT32_MAX : (int)delivered;
}

/* Waits as timeout_ms says for messages, then takes up to max. */
static int
receive(pps_sub *sub, size_t max, int timeout_ms, pps_receive_fn fn,
        void *user)
{
    int64_t deadline = -1;
    if (timeout_ms > 0) {
        deadline = pps__now_monotonic_ns() + (int64_t)timeout_ms * 1000000;
    }
    for (;;) {
        uint32_t seen = pps__env_wake_seq(sub->env);
        int got = take(sub, max, fn, user);
        if (got != GOT_NOTHING) {
            return got;
        }
        if (timeout_ms == 0 ||
            (deadline >= 0 && pps__now_monotonic_ns() >= deadline)) {
            return pps__err(PPS_ETIMEDOUT, "%s: no message for \"%s\" within "
                            "%d ms", pps__env_path(sub->env), sub->id,
                            timeout_ms);
        }
        pps__env_wait(sub->env, seen, deadline);
    }
}

int
pps_sub_receive(pps_sub *sub, int timeout_ms, pps_receive_fn fn, void *user)
{
    pps__err_begin();
    int status = check_handle(sub, fn, "pps_sub_receive");
    if (status != PPS_OK) {
        return status;
    }
    status = receive(sub, 1, timeout_ms, fn, user);
    return status > 0 ? PPS_OK : status;
}

int
pps_sub_receive_batch(pps_sub *sub, size_t max, int timeout_ms,
                      pps_receive_fn fn, void *user)
{
    pps__err_begin();
    int status = check_handle(sub, fn, "pps_sub_receive_batch");
    if (status != PPS_OK) {
        return status;
    }
    if (max == 0) {
        return pps__err(PPS_EINVAL, "pps_sub_receive_batch: max is 0");
    }
    return receive(sub, max, timeout_ms, fn, user);
}

/* Consumes every pending message but the newest, in one transaction. */
static int
skip_to_top(pps_sub *sub)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint64_t last, id;
    int status = pps__txn_write(sub->env, &txn);
    if (status != PPS_OK) {
        return status;
    }
    int rc = mdb_cursor_open(txn, sub->dbi, &cur);
    if (rc == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    }
    if (rc == 0) {
        memcpy(&last, k.mv_data, sizeof(last));
    }
    /* Seek the front afresh after each consumption rather than trust a
     * cursor across deletions made through another path. */
    while (rc == 0 && status == PPS_OK) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc != 0) {
            break;
        }
        memcpy(&id, k.mv_data, sizeof(id));
        if (id >= last) {
            break;
        }
        status = pps__layout_consume(sub->env, txn, sub->dbi, id);
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (status == PPS_OK && rc != 0 && rc != MDB_NOTFOUND) {
        status = pps__err_lmdb(rc, "cannot skip to the newest message",
                               pps__env_path(sub->env));
    }
    if (status != PPS_OK) {
        mdb_txn_abort(txn);
        return status;
    }
    return pps__txn_commit(sub->env, txn, PPS__NOSYNC,
                           "cannot commit consumption");
}

int
pps_sub_receive_to_top(pps_sub *sub, int timeout_ms, pps_receive_fn fn,
                       void *user)
{
    pps__err_begin();
    int status = check_handle(sub, fn, "pps_sub_receive_to_top");
    if (status == PPS_OK) {
        status = skip_to_top(sub);
    }
    if (status == PPS_OK) {
        status = receive(sub, 1, timeout_ms, fn, user);
    }
    return status > 0 ? PPS_OK : status;
}
