/*
 * Control: initialize queues from the configuration, prune, clear.
 *
 * pps_ctl_init() is idempotent. It creates what is missing, stores the
 * limits, and registers subscribers. A subscriber's pending database starts
 * empty, and registering it bumps the generation in the sequence record, so
 * publishers reload their subscriber lists in their next send: a subscriber
 * receives exactly the messages committed after its registration.
 * Subscribers that left the configuration are kept, never silently dropped
 * with their pending messages.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool
settings_equal(const pps__settings *a, const pps__settings *b)
{
    return a->msg_timeout_secs == b->msg_timeout_secs &&
           a->max_msgs_num == b->max_msgs_num &&
           a->hwm_lmdb_size_bytes == b->hwm_lmdb_size_bytes &&
           a->strategy == b->strategy && a->durability == b->durability;
}

static int
put_meta(pps__env *e, MDB_txn *txn, const char *key, const void *val,
         size_t len)
{
    MDB_val k = {strlen(key), pps__mut(key)};
    MDB_val v = {len, pps__mut(val)};
    int rc = mdb_put(txn, pps__env_get(e)->meta, &k, &v, 0);
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot write queue settings",
                             pps__env_path(e));
    }
    return PPS_OK;
}

/* The settings part of init, in write transaction txn. */
static int
init_settings(pps__env *e, MDB_txn *txn, const pps__queue_cfg *q,
              bool *changed)
{
    MDB_val k = {sizeof(PPS__KEY_FORMAT) - 1,
                 pps__mut(PPS__KEY_FORMAT)};
    MDB_val v;
    int rc = mdb_get(txn, pps__env_get(e)->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        uint32_t version = PPS__FORMAT_VERSION;
        int status = put_meta(e, txn, PPS__KEY_FORMAT, &version,
                              sizeof(version));
        if (status != PPS_OK) {
            return status;
        }
        *changed = true;
    } else {
        int status = pps__layout_check(e, txn);
        if (status != PPS_OK) {
            return status;
        }
    }
    pps__settings want = {
        .msg_timeout_secs = q->hwm.msg_timeout_secs,
        .max_msgs_num = q->hwm.max_msgs_num,
        .hwm_lmdb_size_bytes = q->hwm.hwm_lmdb_size_bytes,
        .strategy = (uint32_t)q->hwm.strategy,
        .durability = (uint32_t)q->durability,
    };
    k.mv_size = sizeof(PPS__KEY_SETTINGS) - 1;
    k.mv_data = pps__mut(PPS__KEY_SETTINGS);
    rc = mdb_get(txn, pps__env_get(e)->meta, &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return pps__err_lmdb(rc, "cannot read queue settings",
                             pps__env_path(e));
    }
    if (rc == 0 && v.mv_size == sizeof(want)) {
        pps__settings have; /* LMDB values are only 2-byte aligned */
        memcpy(&have, v.mv_data, sizeof(have));
        if (settings_equal(&have, &want)) {
            return PPS_OK;
        }
    }
    *changed = true;
    return put_meta(e, txn, PPS__KEY_SETTINGS, &want, sizeof(want));
}

/* The subscriber part of init: registers the ones not registered yet. */
static int
init_subscribers(pps__env *e, MDB_txn *txn, const pps__queue_cfg *q,
                 bool *changed)
{
    pps__subs have = {0};
    char *list = NULL;
    int status = pps__layout_read_subscribers(e, txn, &have.ids, &have.len,
                                              &have.n);
    if (status != PPS_OK) {
        return status;
    }
    size_t len = have.len;
    for (size_t i = 0; i < q->n_subscribers; i++) {
        len += strlen(q->subscribers[i]) + 1;
    }
    list = malloc(len > 0 ? len : 1);
    if (list == NULL) {
        status = pps__err(PPS_ENOMEM, "out of memory");
        goto done;
    }
    if (have.len > 0) {
        memcpy(list, have.ids, have.len);
    }
    size_t used = have.len;
    for (size_t i = 0; i < q->n_subscribers; i++) {
        const char *id = q->subscribers[i];
        MDB_dbi dbi;
        status = pps__layout_open_sub(e, txn, id, true, &dbi);
        if (status != PPS_OK) {
            goto done;
        }
        if (pps__subs_find(&have, id) >= 0) {
            continue;
        }
        size_t n = strlen(id) + 1;
        memcpy(list + used, id, n);
        used += n;
    }
    if (used != have.len) {
        *changed = true;
        status = pps__subs_write(e, txn, list, used);
    }
done:
    free(list);
    pps__subs_free(&have);
    return status;
}

static int
init_queue(const pps__queue_cfg *q)
{
    pps__env *e;
    MDB_txn *txn;
    bool changed = false;
    pps__seq seq;
    int status = pps__env_acquire(&e, q, true);
    if (status != PPS_OK) {
        return status;
    }
    status = pps__txn_write(e, &txn);
    if (status != PPS_OK) {
        pps__env_release(e);
        return status;
    }
    status = init_settings(e, txn, q, &changed);
    if (status == PPS_OK) {
        status = init_subscribers(e, txn, q, &changed);
    }
    if (status == PPS_OK) {
        status = pps__layout_read_seq(e, txn, &seq);
    }
    if (status == PPS_OK && changed) {
        seq.gen++;
        status = pps__layout_write_seq(e, txn, &seq);
    }
    if (status == PPS_OK) {
        status = pps__txn_commit(e, txn, PPS__SYNC, "cannot initialize queue");
    } else {
        mdb_txn_abort(txn);
    }
    pps__env_release(e);
    return status;
}

static int
init_range(const pps_config *cfg, const char *queue, const char *what)
{
    if (cfg == NULL) {
        return pps__err(PPS_EINVAL, "%s: cfg is NULL", what);
    }
    size_t first, end;
    int status = pps__ctl_queue_range(cfg, queue, &first, &end);
    for (size_t i = first; i < end && status == PPS_OK; i++) {
        status = init_queue(&cfg->queues[i]);
    }
    return status;
}

int
pps_ctl_init(const pps_config *cfg)
{
    pps__err_begin();
    return init_range(cfg, NULL, "pps_ctl_init");
}

int
pps_ctl_init_queue(const pps_config *cfg, const char *queue)
{
    pps__err_begin();
    if (queue == NULL) {
        return pps__err(PPS_EINVAL, "pps_ctl_init_queue: queue is NULL");
    }
    return init_range(cfg, queue, "pps_ctl_init_queue");
}

int
pps__queue_open(const pps__queue_cfg *q, pps__env **e, MDB_txn **txn,
                pps__subs *subs)
{
    int status = pps__env_acquire(e, q, false);
    if (status != PPS_OK) {
        return status;
    }
    status = pps__txn_write(*e, txn);
    if (status != PPS_OK) {
        pps__env_release(*e);
        return status;
    }
    status = pps__layout_check(*e, *txn);
    if (status == PPS_OK) {
        status = pps__subs_open(*e, *txn, subs);
    }
    if (status != PPS_OK) {
        mdb_txn_abort(*txn);
        pps__subs_free(subs);
        pps__env_release(*e);
    }
    return status;
}

/* Runs `op` on one queue inside a write transaction with every subscriber's
 * pending database open. */
typedef int (*queue_op)(pps__env *e, MDB_txn *txn, const pps__subs *subs,
                        pps__removed *removed);

static int
with_queue(const pps__queue_cfg *q, queue_op op, int durability,
           pps__removed *removed)
{
    pps__env *e;
    MDB_txn *txn;
    pps__subs subs = {0};
    int status = pps__queue_open(q, &e, &txn, &subs);
    if (status != PPS_OK) {
        return status;
    }
    status = op(e, txn, &subs, removed);
    if (status == PPS_OK) {
        status = pps__txn_commit(e, txn, durability, "cannot commit");
        if (status == PPS_OK && removed->messages > 0) {
            status = pps__layout_settle(e);
        }
    } else {
        mdb_txn_abort(txn);
    }
    pps__subs_free(&subs);
    pps__env_release(e);
    return status;
}

static int
prune_op(pps__env *e, MDB_txn *txn, const pps__subs *subs,
         pps__removed *removed)
{
    pps__settings s;
    int status = pps__layout_read_settings(e, txn, &s);
    if (status != PPS_OK) {
        return status;
    }
    return pps__hwm_enforce(e, txn, &s, subs->dbis, subs->n,
                            pps__now_realtime_ns(), removed, NULL);
}

static int
clear_op(pps__env *e, MDB_txn *txn, const pps__subs *subs,
         pps__removed *removed)
{
    const pps__env_view *v = pps__env_get(e);
    uint64_t count, bytes;
    int status = pps__hwm_usage(e, txn, &count, &bytes);
    if (status != PPS_OK) {
        return status;
    }
    int rc = mdb_drop(txn, v->data, 0);
    if (rc == 0) {
        rc = mdb_drop(txn, v->msg, 0);
    }
    for (size_t i = 0; i < subs->n && rc == 0; i++) {
        rc = mdb_drop(txn, subs->dbis[i], 0);
    }
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot clear queue", pps__env_path(e));
    }
    removed->messages += count;
    removed->bytes += bytes;
    return PPS_OK;
}

int
pps__ctl_prune_queue(const pps__queue_cfg *q, pps__removed *removed)
{
    return with_queue(q, prune_op, PPS__SYNC, removed);
}

int
pps__ctl_clear_queue(const pps__queue_cfg *q, pps__removed *removed)
{
    return with_queue(q, clear_op, PPS__SYNC, removed);
}

int
pps__ctl_queue_range(const pps_config *cfg, const char *name, size_t *first,
                     size_t *end)
{
    *first = 0;
    *end = cfg->n_queues;
    if (name == NULL) {
        return PPS_OK;
    }
    struct stat want;
    bool have_stat = stat(name, &want) == 0;
    for (size_t i = 0; i < cfg->n_queues; i++) {
        const pps__queue_cfg *q = &cfg->queues[i];
        struct stat st;
        if (strcmp(q->key, name) == 0 || strcmp(q->path, name) == 0 ||
            (have_stat && stat(q->path, &st) == 0 && st.st_dev == want.st_dev &&
             st.st_ino == want.st_ino)) {
            *first = i;
            *end = i + 1;
            return PPS_OK;
        }
    }
    return pps__err(PPS_ENOTFOUND, "%s: no queue \"%s\" (by key or path)",
                    cfg->file, name);
}

typedef int (*per_queue_fn)(const pps__queue_cfg *q, pps__removed *removed);

static int
each_queue(const pps_config *cfg, const char *queue, per_queue_fn fn,
           pps_removed *out, const char *what)
{
    if (cfg == NULL) {
        return pps__err(PPS_EINVAL, "%s: cfg is NULL", what);
    }
    size_t first, end;
    int status = pps__ctl_queue_range(cfg, queue, &first, &end);
    pps__removed total = {0};
    for (size_t i = first; i < end && status == PPS_OK; i++) {
        status = fn(&cfg->queues[i], &total);
    }
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
    return each_queue(cfg, NULL, pps__ctl_prune_queue, NULL, "pps_ctl_prune");
}

int
pps_ctl_clear(const pps_config *cfg)
{
    pps__err_begin();
    return each_queue(cfg, NULL, pps__ctl_clear_queue, NULL, "pps_ctl_clear");
}

int
pps_ctl_prune_queue(const pps_config *cfg, const char *queue,
                    pps_removed *removed)
{
    pps__err_begin();
    return each_queue(cfg, queue, pps__ctl_prune_queue, removed,
                      "pps_ctl_prune_queue");
}

int
pps_ctl_clear_queue(const pps_config *cfg, const char *queue,
                    pps_removed *removed)
{
    pps__err_begin();
    return each_queue(cfg, queue, pps__ctl_clear_queue, removed,
                      "pps_ctl_clear_queue");
}

size_t
pps_config_queue_count(const pps_config *cfg)
{
    return cfg != NULL ? cfg->n_queues : 0;
}

const char *
pps_config_queue_key(const pps_config *cfg, size_t index)
{
    return cfg != NULL && index < cfg->n_queues ? cfg->queues[index].key
                                                : NULL;
}

const char *
pps_config_queue_path(const pps_config *cfg, size_t index)
{
    return cfg != NULL && index < cfg->n_queues ? cfg->queues[index].path
                                                : NULL;
}

int
pps_config_queue_find(const pps_config *cfg, const char *name, size_t *index)
{
    pps__err_begin();
    if (cfg == NULL || name == NULL || index == NULL) {
        return pps__err(PPS_EINVAL, "pps_config_queue_find: %s is NULL",
                        cfg == NULL ? "cfg" : name == NULL ? "name" : "index");
    }
    size_t end;
    return pps__ctl_queue_range(cfg, name, index, &end);
}
