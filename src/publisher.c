/*
 * The publisher: one write transaction per send (or per batch).
 *
 * A send reads the queue's sequence record, applies the high-water mark,
 * writes the payload, its metadata and the id into the pending database of
 * every target subscriber, advances the sequence and commits; the id is thus
 * assigned inside the transaction, which LMDB serializes across processes:
 * ids are strictly increasing per queue, and every key is appended
 * (MDB_APPEND: no search, pages filled completely).
 *
 * The publisher caches the queue's settings and subscriber handles. The
 * sequence record carries a generation that pps_ctl_init() bumps whenever it
 * changes either; a send that sees a new generation reloads them inside its
 * own transaction, so a subscriber registered meanwhile receives every
 * message committed after its registration.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STALE_GEN UINT64_MAX

struct pps_pub {
    pid_t pid;
    pps__env *env;
    const pps_config *cfg;
    const pps__component *comp;
    pps__settings settings;
    uint64_t gen;
    pps__subs all;       /* every registered subscriber (pruning) */
    MDB_dbi *targets;    /* the ones this publisher sends to */
    size_t n_targets;
    int64_t front_ns; /* see pps__hwm_enforce(); 0: unknown */
};

static int
refresh(pps_pub *pub, MDB_txn *txn, uint64_t gen)
{
    int status = pps__layout_check(pub->env, txn);
    if (status == PPS_OK) {
        status = pps__layout_read_settings(pub->env, txn, &pub->settings);
    }
    if (status == PPS_OK) {
        status = pps__subs_open(pub->env, txn, &pub->all);
    }
    if (status != PPS_OK) {
        return status;
    }
    const pps__component *c = pub->comp;
    size_t n = c->has_subscribers ? c->n_subscribers : pub->all.n;
    MDB_dbi *t = realloc(pub->targets, (n > 0 ? n : 1) * sizeof(*t));
    if (t == NULL) {
        return pps__err(PPS_ENOMEM, "out of memory");
    }
    pub->targets = t;
    pub->n_targets = 0;
    for (size_t i = 0; i < n; i++) {
        long k = (long)i;
        if (c->has_subscribers) {
            k = pps__subs_find(&pub->all, c->subscribers[i]);
            if (k < 0) {
                return pps__err(PPS_ENOTINIT,
                                "%s: subscriber \"%s\" of publisher \"%s\" is "
                                "not registered; run persipubsub-ctl init",
                                pps__env_path(pub->env), c->subscribers[i],
                                c->id);
            }
        }
        t[pub->n_targets++] = pub->all.dbis[k];
    }
    pub->gen = gen;
    return PPS_OK;
}

int
pps_pub_open(pps_pub **out, const pps_config *cfg, const char *pub_id)
{
    pps__err_begin();
    if (out == NULL) {
        return pps__err(PPS_EINVAL, "pps_pub_open: out is NULL");
    }
    *out = NULL;
    if (cfg == NULL || pub_id == NULL) {
        return pps__err(PPS_EINVAL, "pps_pub_open: %s is NULL",
                        cfg == NULL ? "cfg" : "pub_id");
    }
    const pps__component *c = pps__config_component(cfg, pub_id);
    if (c == NULL || c->out_queue < 0) {
        return pps__err(PPS_ENOTFOUND,
                        c == NULL ? "%s: no component \"%s\""
                                  : "%s: component \"%s\" has no out_queue",
                        cfg->file, pub_id);
    }
    pps_pub *pub = calloc(1, sizeof(*pub));
    if (pub == NULL) {
        return pps__err(PPS_ENOMEM, "out of memory");
    }
    pub->pid = pps__pid();
    pub->cfg = cfg;
    pub->comp = c;
    pub->gen = STALE_GEN;
    int status = pps__env_acquire(&pub->env, &cfg->queues[c->out_queue],
                                  false);
    MDB_txn *txn = NULL;
    pps__seq seq;
    if (status == PPS_OK) {
        status = pps__txn_write(pub->env, &txn);
    }
    if (status == PPS_OK) {
        status = pps__layout_read_seq(pub->env, txn, &seq);
    }
    if (status == PPS_OK) {
        status = refresh(pub, txn, seq.gen);
    }
    if (status == PPS_OK) {
        status = pps__txn_commit(pub->env, txn, PPS__NOSYNC,
                                 "cannot open publisher");
        txn = NULL;
    }
    if (status != PPS_OK) {
        if (txn != NULL) {
            mdb_txn_abort(txn);
        }
        pps_pub_close(pub);
        return status;
    }
    *out = pub;
    return PPS_OK;
}

void
pps_pub_close(pps_pub *pub)
{
    if (pub == NULL) {
        return;
    }
    pps__env_release(pub->env);
    pps__subs_free(&pub->all);
    free(pub->targets);
    free(pub);
}

static int
put(pps_pub *pub, MDB_txn *txn, MDB_dbi dbi, uint64_t id, const void *data,
    size_t len)
{
    MDB_val k = {sizeof(id), &id};
    MDB_val v = {len, pps__mut(data)};
    int rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST) {
        return pps__err(PPS_ESTORAGE,
                        "%s: message id %llu is not above the last stored id "
                        "(inconsistent queue: run persipubsub-ctl check)",
                        pps__env_path(pub->env), (unsigned long long)id);
    }
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot store message",
                             pps__env_path(pub->env));
    }
    return PPS_OK;
}

/* One attempt at a send. If the map fills up after the high-water mark
 * pruned something, *pruned says so: the caller can commit the pruning
 * alone and try again. */
static int
send_once(pps_pub *pub, const pps_buf *msgs, size_t n, bool *pruned)
{
    MDB_txn *txn;
    pps__seq seq;
    int status = pps__txn_write(pub->env, &txn);
    if (status != PPS_OK) {
        return status;
    }
    status = pps__layout_read_seq(pub->env, txn, &seq);
    if (status == PPS_OK && seq.gen != pub->gen) {
        status = refresh(pub, txn, seq.gen);
    }
    if (status != PPS_OK) {
        goto fail;
    }
    if (pub->n_targets == 0) {
        mdb_txn_abort(txn); /* nobody would ever receive it */
        return PPS_OK;
    }
    int64_t now = pps__now_realtime_ns();
    pps__removed removed = {0};
    status = pps__hwm_enforce(pub->env, txn, &pub->settings, pub->all.dbis,
                              pub->all.n, now, &removed, &pub->front_ns);
    *pruned = removed.messages > 0;
    if (status == PPS_OK) {
        status = pps__space_for_send(pub->env, pps__env_space(pub->env), msgs,
                                     n, pub->n_targets);
    }
    if (status != PPS_OK) {
        goto fail;
    }
    const pps__env_view *v = pps__env_get(pub->env);
    pps__msg_meta meta = {.published_ns = now,
                          .pending = (uint32_t)pub->n_targets};
    for (size_t i = 0; i < n && status == PPS_OK; i++) {
        uint64_t id = seq.next_id++;
        status = put(pub, txn, v->data, id, msgs[i].data, msgs[i].len);
        if (status == PPS_OK) {
            status = put(pub, txn, v->msg, id, &meta, sizeof(meta));
        }
        for (size_t s = 0; s < pub->n_targets && status == PPS_OK; s++) {
            status = put(pub, txn, pub->targets[s], id, NULL, 0);
        }
    }
    if (status == PPS_OK) {
        status = pps__layout_write_seq(pub->env, txn, &seq);
    }
    if (status != PPS_OK) {
        goto fail;
    }
    status = pps__txn_commit(pub->env, txn, (int)pub->settings.durability,
                             "cannot commit message");
    if (status != PPS_OK) {
        pub->gen = STALE_GEN; /* handles opened in it were closed */
        pub->front_ns = 0;
        return status;
    }
    pps__env_notify(pub->env);
    return PPS_OK;

fail:
    mdb_txn_abort(txn);
    pub->gen = STALE_GEN;
    pub->front_ns = 0;
    return status;
}

/* Commits the high-water mark's pruning on its own, then lets the freed
 * pages become reusable. */
static int
prune_alone(pps_pub *pub)
{
    MDB_txn *txn;
    int status = pps__txn_write(pub->env, &txn);
    if (status != PPS_OK) {
        return status;
    }
    status = pps__hwm_enforce(pub->env, txn, &pub->settings, pub->all.dbis,
                              pub->all.n, pps__now_realtime_ns(), NULL, NULL);
    if (status != PPS_OK) {
        mdb_txn_abort(txn);
        return status;
    }
    status = pps__txn_commit(pub->env, txn, (int)pub->settings.durability,
                             "cannot commit pruning");
    return status == PPS_OK ? pps__layout_settle(pub->env) : status;
}

static int
send_all(pps_pub *pub, const pps_buf *msgs, size_t n)
{
    if (pub->pid != pps__pid()) {
        return pps__err(PPS_EFORKED, "publisher handle opened by process %ld "
                        "used in process %ld after fork(); open a new one",
                        (long)pub->pid, (long)getpid());
    }
    if (n == 0) {
        return PPS_OK;
    }
    bool pruned = false;
    int status = send_once(pub, msgs, n, &pruned);
    if (status == PPS_EFULL && pps__env_reclaim_readers(pub->env)) {
        /* Pages were held for a process that died inside a read. */
        pps__err_begin();
        status = send_once(pub, msgs, n, &pruned);
    }
    if (status == PPS_EFULL && pruned) {
        /* Pages freed in a transaction are not reusable by that same
         * transaction: prune first, in commits of its own, then retry. */
        pps__err_begin();
        status = prune_alone(pub);
        if (status == PPS_OK) {
            status = send_once(pub, msgs, n, &pruned);
        }
    }
    return status;
}

int
pps_pub_send(pps_pub *pub, const void *data, size_t len)
{
    pps__err_begin();
    if (pub == NULL || (data == NULL && len > 0)) {
        return pps__err(PPS_EINVAL, "pps_pub_send: %s is NULL",
                        pub == NULL ? "pub" : "data");
    }
    pps_buf one = {data, len};
    return send_all(pub, &one, 1);
}

int
pps_pub_send_many(pps_pub *pub, const pps_buf *msgs, size_t n)
{
    pps__err_begin();
    if (pub == NULL || (msgs == NULL && n > 0)) {
        return pps__err(PPS_EINVAL, "pps_pub_send_many: %s is NULL",
                        pub == NULL ? "pub" : "msgs");
    }
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].data == NULL && msgs[i].len > 0) {
            return pps__err(PPS_EINVAL,
                            "pps_pub_send_many: message %zu has NULL data "
                            "and length %zu; nothing was sent",
                            i, msgs[i].len);
        }
    }
    return send_all(pub, msgs, n);
}
